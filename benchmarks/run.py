"""Run every benchmark; write benchmarks/results/results.json and results.md.

    .venv/bin/python -m benchmarks.run [--quick] [--no-compile] [--only loss|engine] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from tsla.training.env_info import git_commit, versions

from . import bench_engine, bench_loss


def _markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"Measured {meta['date']} on {meta['machine']} ({meta['threads']} torch threads), torch {meta['torch']}, "
             f"commit {meta['commit']}. Ratios are medians over alternating repeats in one process.", "",
             "| benchmark | case | ratio | goal | met |", "|---|---|---|---|---|"]
    for r in rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        value = f"{100 * r['ratio']:.1f}%" if "share" in r["benchmark"] else f"{r['ratio']:.3f}x"
        lines.append(f"| {r['benchmark']} | {r['case']} | {value} | {r['goal']} | {met} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test, not for reporting)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    parser.add_argument("--only", choices=("loss", "engine"), help="run one group of benchmarks")
    args = parser.parse_args(argv)
    reps = 3 if args.quick else None
    rows = []
    started = time.time()
    commit = git_commit()  # the code being measured: read before the run, while HEAD may still move
    if args.only in (None, "loss"):
        rows += bench_loss.run(**({"repeats": reps, "inner": 10} if reps else {}))
    if args.only in (None, "engine"):
        rows += bench_engine.engine_vs_bare(**({"images": 256, "repeats": reps} if reps else {}))
        rows += bench_engine.cpu_options(**({"images": 128, "repeats": 2, "warmup": 1} if reps else {}),
                                         compile_too=not args.no_compile)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "commit": commit,
            "versions": versions(), "seconds": time.time() - started, "quick": args.quick}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    table = _markdown(rows, meta)
    (out / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
