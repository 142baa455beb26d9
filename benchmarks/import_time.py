"""How long ``import tsla`` takes against ``import torch`` alone, each in a fresh interpreter (issue 21, item 8).

    .venv/bin/python -m benchmarks.import_time [--repeats 7]

Each round starts two new processes back to back, one running ``import torch`` and one ``import torch, tsla``
(tsla imports torch itself, so this is the whole cost a user of the loss pays), in alternating order; the ratio of
each round's two wall times is taken and the median over rounds reported, as in benchmarks/timing.py. Goal: at most
1.2x. A benchmark, not a test: the machine's load moves single timings by tens of percent.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HEAVY = ("torchvision", "PIL", "tsla.training.trainer", "matplotlib")


def _wall(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def run(repeats: int = 7) -> dict:
    torch_only, with_tsla, ratios = [], [], []
    for i in range(repeats):
        if i % 2 == 0:
            a, b = _wall("import torch"), _wall("import torch, tsla")
        else:
            b, a = _wall("import torch, tsla"), _wall("import torch")
        torch_only.append(a)
        with_tsla.append(b)
        ratios.append(b / a)
    loaded = subprocess.run([sys.executable, "-c", f"import sys, tsla; print([m for m in {HEAVY!r} if m in sys.modules])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    return {"import_torch_s": statistics.median(torch_only), "import_tsla_s": statistics.median(with_tsla),
            "ratio": statistics.median(ratios), "goal": 1.2, "repeats": repeats, "heavy_modules_loaded": loaded}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    result = run(parser.parse_args(argv).repeats)
    print(f"import torch {result['import_torch_s']:.2f} s, import tsla {result['import_tsla_s']:.2f} s: "
          f"ratio {result['ratio']:.3f} (goal <= {result['goal']}; median of {result['repeats']} alternating rounds); "
          f"heavy modules after import tsla: {result['heavy_modules_loaded']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
