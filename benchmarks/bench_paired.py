"""The paired report at scale: ``tsla report --runs-csv`` on generated 10^6-row ``runs.csv`` files, timed and with
its peak resident memory, each case in a fresh process.

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.bench_paired [--rows 1000000] [--case N] [--out DIR]

Cases (about ``--rows`` rows each): many cells and seeds (1000 cells x 1000 seeds, 999 default contrasts), few
cells with many seeds (4 cells x 250,000 seeds, 3 contrasts), both with effects from none to obvious, and the
sign-flip Monte Carlo's worst case (1000 x 1000, every contrast near p = 0.0005). The printed table and
``DIR/results.json`` give the wall time of the command and the process's peak RSS, beside the RSS of the same
process after its imports alone (``import tsla`` brings torch: about 500 MiB).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tsla.report.runs_csv import RUN_COLUMNS
from tsla.training.env_info import git_commit

# runs the report in a fresh interpreter; prints the seconds of main() and the peak RSS in KiB: VmHWM, the process's
# own high-water mark (ru_maxrss would report the parent's size at fork where that is larger)
CHILD = """
import json, resource, sys, time

def peak_kib():
    try:
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("VmHWM:")).split()[1])
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

from tsla.cli import main
imported = peak_kib()
started = time.perf_counter()
code = main(sys.argv[1:])
seconds = time.perf_counter() - started
print(json.dumps({"exit": code, "seconds": seconds, "peak_rss_kib": peak_kib(), "import_rss_kib": imported}))
"""


def cell_labels(n_cells: int) -> list[tuple[str, str, float]]:
    """``n_cells`` (label, method, theta): the baseline, then per theta an LSR cell and schedule cells, so that the
    default contrasts are every schedule cell against LSR at its theta and every LSR cell against the baseline."""
    cells = [("baseline", "baseline", 0.0)]
    k = 0
    while len(cells) < n_cells:
        theta = round(0.001 * (k + 1), 3)
        for method in ("lsr", "tsla@20", "tsla@30"):
            if len(cells) < n_cells:
                cells.append((f"{method}-theta{theta:g}", method, theta))
        k += 1
    return cells


NOISE = 0.3  # standard deviation of a run's test top-1 around its cell and seed (points)


def cell_effects(cells: list[tuple[str, str, float]], n_seeds: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Each cell's effect on test top-1 (points). ``mixed``: drawn from a few sizes, so that the contrasts range from
    none to obvious (most take the Monte Carlo's early stop or Hoeffding's bound); ``borderline``: every default
    contrast 3.5 standard errors from 0 (p near 0.0005: the sign-flip Monte Carlo draws every pattern, its worst
    case)."""
    if kind == "mixed":
        return rng.choice([0.0, 0.0, 0.005, 0.02, 0.03, 0.05, 0.3], size=len(cells))
    step = 3.5 * np.sqrt(2) * NOISE / np.sqrt(n_seeds)  # 3.5 standard errors of a paired mean difference
    return np.array([0.0 if method == "baseline" else step if method == "lsr" else 2 * step
                     for _, method, _ in cells])


def write_runs_csv(path: Path, n_cells: int, n_seeds: int, seed: int = 0, kind: str = "mixed") -> int:
    """A ``runs.csv`` of ``n_cells`` x ``n_seeds`` rows in one regime: test top-1 = 90 + the cell's effect
    (:func:`cell_effects`) + the seed's effect + noise; the other number columns filled alike. Returns the number of
    rows written."""
    rng = np.random.default_rng(seed)
    cells = cell_labels(n_cells)
    effects = cell_effects(cells, n_seeds, kind, rng)
    seed_effect = rng.normal(0.0, 0.5, n_seeds)
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join(RUN_COLUMNS) + "\n")
        for (label, method, theta), effect in zip(cells, effects):
            top1 = 90.0 + effect + seed_effect + rng.normal(0.0, NOISE, n_seeds)
            best = top1 + rng.normal(0.0, 0.1, n_seeds)
            nll = 0.35 - effect / 100 + rng.normal(0.0, 0.01, n_seeds)
            ece = 2.0 + rng.normal(0.0, 0.2, n_seeds)
            switch = "20" if method == "tsla@20" else "30" if method == "tsla@30" else ""
            prefix = f"r,{label},{method},{theta:g},{switch},"
            f.write("".join(f"{prefix}{s},{b:.4f},{t:.4f},{n:.5f},{e:.4f},99.5,0.05,40,abc123,{s % 40},{b:.4f},,none\n"
                            for s, t, b, n, e in zip(range(n_seeds), top1.tolist(), best.tolist(), nll.tolist(),
                                                     ece.tolist())))
    return n_cells * n_seeds


def measure(path: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, "report", "--runs-csv", str(path), "--out", str(out)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"the report failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10**6, help="rows per case (default: 10^6)")
    parser.add_argument("--out", default=None, help="write results.json and results.md here (default: print only)")
    parser.add_argument("--case", type=int, choices=(1, 2, 3), action="append",
                        help="run only these cases (1: many cells, 2: few cells, 3: borderline; default: all)")
    args = parser.parse_args(argv)
    side = max(2, round(args.rows ** 0.5))
    cases = [("many cells, many seeds", side, args.rows // side, "mixed"),
             ("few cells, many seeds", 4, args.rows // 4, "mixed"),
             ("many cells, every contrast borderline", side, args.rows // side, "borderline")]
    cases = [case for number, case in enumerate(cases, 1) if not args.case or number in args.case]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, n_cells, n_seeds, kind in cases:
            path = Path(tmp) / "runs.csv"
            rows = write_runs_csv(path, n_cells, n_seeds, kind=kind)
            result = measure(path, Path(tmp) / "out")
            contrasts = sum(1 for _ in open(Path(tmp) / "out" / "contrasts.csv")) - 1
            results.append({"case": name, "cells": n_cells, "seeds": n_seeds, "rows": rows, "contrasts": contrasts,
                            "megabytes": path.stat().st_size / 2**20, **result})
    lines = ["| case | rows | cells x seeds | contrasts | wall (s) | peak RSS (MiB) | RSS after imports (MiB) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['case']} | {r['rows']:,} | {r['cells']} x {r['seeds']:,} | {r['contrasts']} | "
                     f"{r['seconds']:.1f} | {r['peak_rss_kib'] / 1024:.0f} | {r['import_rss_kib'] / 1024:.0f} |")
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "cpus": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0], "python": platform.python_version(), "numpy": np.__version__,
            "commit": git_commit()}
    lines.append(f"\n{meta['date']}, {meta['cpus']} CPUs, load average {meta['load_average_1min']:.1f} at the end, "
                 f"numpy {meta['numpy']}, commit {meta['commit']}")
    print("\n".join(lines))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "results.json").write_text(json.dumps({"meta": meta, "rows": results}, indent=2) + "\n")
        (Path(args.out) / "results.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
