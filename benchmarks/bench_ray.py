"""``--engine ray`` against ``--jobs 2`` on study 2's family shape, and study 2's critical path from its measured
epoch costs.

    .venv/bin/python -m benchmarks.bench_ray [--data-root DIR] [--train-subset 512] [--out DIR]
    .venv/bin/python -m benchmarks.bench_ray --critical-path-only

1. One family as study 2 trains it (an LSR trunk of 30 epochs, lr decays at 15 and 25, branches TSLA(15),
   TSLA(25), TSLA(28)), trained by ``tsla compare --jobs 2`` and by ``--engine ray`` with a local Ray of 2 CPUs
   (``--cpus-per-run 1``), one after the other in this run: the wall-time ratio ray / jobs (goal <= 1.10) and
   whether every run's metrics are identical (timings aside). ``--jobs`` starts a branch once its trunk has
   *finished*; Ray once the trunk has kept its checkpoint at S.
2. The critical path of the study-2 grid (3 regimes x 3 draws x 4 seeds; per cell an LSR trunk with TSLA(15),
   TSLA(25), TSLA(28), a 35-epoch budget run from epoch 30 and TSLA(25) ending on -0.2, and a baseline with
   reverse(15)) against its total compute, from the ``epoch_seconds`` of the committed runs
   (docs/evidence/study2/runs), and the wall time of that task graph on W workers, simulated by list scheduling
   in submission order (what Ray does with equal tasks).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVIDENCE = ROOT / "docs" / "evidence" / "study2" / "runs"
# study 2's family: (run, source, S, epochs); the source None trains from epoch 0
FAMILY = [("lsr", None, 0, 30), ("tsla@15", "lsr", 15, 30), ("tsla@25", "lsr", 25, 30), ("tsla@28", "lsr", 28, 30),
          ("budget", "lsr", 30, 35), ("lsr-neg@25", "lsr", 25, 30), ("baseline", None, 0, 30),
          ("wei@15", "baseline", 15, 30)]


def _compare(data_root: str, out: Path, subset: int, extra: list[str]) -> float:
    argv = [sys.executable, "-m", "tsla", "compare", "--dataset", "fashion-mnist", "--data-root", data_root,
            "--methods", "lsr,tsla@15,tsla@25,tsla@28", "--theta", "0.4", "--epochs", "30", "--milestones", "15,25",
            "--train-subset", str(subset), "--test-subset", "500", "--batch-size", "64", "--lr", "0.05",
            "--no-augment", "--test-every", "30", "--threads", "1", "--device", "cpu", "--no-progress",
            "--out", str(out), *extra]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise SystemExit(f"bench_ray: {' '.join(extra)} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - start


def _records(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if not k.endswith(("seconds", "per_second"))}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def engine_ratio(data_root: str, out: Path, subset: int) -> dict:
    """Both engines on one family, one after the other; the wall-time ratio and whether the results agree."""
    jobs = _compare(data_root, out / "jobs2", subset, ["--jobs", "2"])
    ray = _compare(data_root, out / "ray", subset, ["--engine", "ray", "--cpus-per-run", "1"])
    runs = sorted(p.name for p in (out / "jobs2").iterdir() if (p / "metrics.jsonl").is_file())
    same = all(_records(out / "jobs2" / r) == _records(out / "ray" / r) for r in runs)
    return {"jobs2_seconds": jobs, "ray_seconds": ray, "ratio": ray / jobs, "goal": 1.10, "identical": same,
            "runs": runs}


def _epoch_costs(evidence: Path) -> dict[str, float]:
    """Mean seconds per epoch of each family member over the committed study-2 runs."""
    sums: dict[str, list[float]] = {}
    for metrics in evidence.glob("*/d*/*/metrics.jsonl"):
        label = metrics.parent.name.rsplit("-seed", 1)[0]
        for line in metrics.read_text().splitlines():
            record = json.loads(line)
            if "epoch_seconds" in record:
                sums.setdefault(label, []).append(record["epoch_seconds"])
    return {label: sum(v) / len(v) for label, v in sums.items()}


def _family_tasks(cost: dict[str, float]) -> list[tuple[str, float, str | None]]:
    """One family as segments (name, seconds, the task it waits for), as tsla.experiments.grid_tasks splits it."""
    tasks: list[tuple[str, float, str | None]] = []
    for run, source, start, epochs in FAMILY:
        points = sorted({s for _, src, s, _ in FAMILY if src == run})
        before = None if source is None else f"{source}@{start}"
        edges = [start, *[p for p in points if p > start], epochs]
        for a, b in zip(edges, edges[1:]):
            name = f"{run}@{b}"
            tasks.append((name, (b - a) * cost[run], before))
            before = name
    return tasks


def simulate(tasks: list[tuple[str, float, str | None]], workers: int) -> float:
    """Wall time of the task graph on ``workers`` equal workers: each free worker takes the first ready task in
    submission order."""
    finish: dict[str, float] = {}
    free = [0.0] * workers
    heapq.heapify(free)
    pending = list(tasks)
    while pending:
        now = heapq.heappop(free)
        ready = [t for t in pending if t[2] is None or (t[2] in finish and finish[t[2]] <= now)]
        if not ready:  # wait for the next dependency to finish
            later = min(finish[t[2]] for t in pending if t[2] in finish and finish[t[2]] > now)
            heapq.heappush(free, later)
            continue
        name, seconds, _ = ready[0]
        pending.remove(ready[0])
        finish[name] = now + seconds
        heapq.heappush(free, finish[name])
    return max(finish.values())


def critical_path(evidence: Path = EVIDENCE, families: int = 36) -> dict:
    """The grid's total compute, its critical path (a trunk plus its longest branch), and simulated wall times."""
    cost = _epoch_costs(evidence)
    family = _family_tasks(cost)
    grid = [(f"{i}/{name}", s, None if dep is None else f"{i}/{dep}") for i in range(families)
            for name, s, dep in family]
    total = sum(s for _, s, _ in grid)
    path = max(start * cost[source] + (epochs - start) * cost[run] if source else epochs * cost[run]
               for run, source, start, epochs in FAMILY)
    epochs_of = {run: epochs for run, _, _, epochs in FAMILY}
    unsplit = max(epochs_of[source] * cost[source] + (epochs - start) * cost[run] if source else epochs * cost[run]
                  for run, source, start, epochs in FAMILY)  # a branch waiting for its trunk's end (--jobs, --shard)
    walls = {w: simulate(grid, w) for w in (1, 8, 36, 72, 144, 288)}
    return {"epoch_seconds": cost, "total_seconds": total, "critical_path_seconds": path,
            "unsplit_path_seconds": unsplit, "workers_usable": total / path, "wall_seconds": walls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("TSLA_DATA", "/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--train-subset", type=int, default=512)
    parser.add_argument("--out", default="benchmarks/results/ray")
    parser.add_argument("--critical-path-only", action="store_true")
    args = parser.parse_args(argv)
    cp = critical_path()
    print(f"study-2 grid: {cp['total_seconds'] / 3600:.1f} h of compute; critical path (a trunk plus its longest "
          f"branch) {cp['critical_path_seconds']:.0f} s ({cp['unsplit_path_seconds']:.0f} s if branches waited for "
          f"their trunk's end); up to {cp['workers_usable']:.0f} workers useful")
    for w, s in cp["wall_seconds"].items():
        print(f"  {w:4d} workers: {s / 3600:6.2f} h ({s / cp['critical_path_seconds']:.2f} x the critical path)")
    if args.critical_path_only:
        return 0
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"bench_ray: {out} is not empty: pass another --out")
    r = engine_ratio(args.data_root, out, args.train_subset)
    print(f"one family (train subset {args.train_subset}): --jobs 2 {r['jobs2_seconds']:.1f} s, --engine ray "
          f"{r['ray_seconds']:.1f} s: ratio {r['ratio']:.3f} (goal <= {r['goal']}); identical results: "
          f"{r['identical']}")
    (out / "bench_ray.json").write_text(json.dumps({"engines": r, "critical_path": cp}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
