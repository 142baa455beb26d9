"""Are two finished runs the same computation? Compares every logged metric of every epoch (timings left out) and
every tensor of the final model, bit for bit.

    python scripts/same_runs.py RUN_A RUN_B [RUN_A RUN_B ...]
    python scripts/same_runs.py --cells REGIME tsla-auto tsla@15     # every seed and theta of two cells of a regime

Prints one line per pair: "identical" or the first metric / tensor that differs; exits 1 if any pair differs. Used for
the reproducibility and tsla-auto sections of docs/results.md (reruns, thread counts, trained vs replayed tsla-auto).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from tsla.training.checkpoint import load_checkpoint

TIMING = ("seconds", "per_second")


def _metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{k: v for k, v in row.items() if not any(t in k for t in TIMING)} for row in rows]


def compare(a: Path, b: Path) -> str | None:
    """None when ``a`` and ``b`` logged the same metrics (the keys both logged) and ended with equal weights, else
    what differs first."""
    ma, mb = _metrics(a), _metrics(b)
    if len(ma) != len(mb):
        return f"{len(ma)} against {len(mb)} epochs logged"
    for ra, rb in zip(ma, mb):
        for key in sorted(ra.keys() & rb.keys()):
            if ra[key] != rb[key]:
                return f"epoch {ra.get('epoch')}: {key} {ra[key]!r} against {rb[key]!r}"
    wa, wb = (load_checkpoint(r / "checkpoint.pt")["model"] for r in (a, b))
    if wa.keys() != wb.keys():
        return "the models have different parameters"
    for name in wa:
        if not torch.equal(wa[name], wb[name]):
            return f"final weights differ in {name}"
    return None


def _cell_pairs(regime: Path, a: str, b: str) -> list[tuple[Path, Path]]:
    pairs = []
    for run in sorted(regime.glob(f"{a}-*")):
        other = regime / (b + run.name[len(a):])
        if (run / "summary.json").exists() and (other / "summary.json").exists():
            pairs.append((run, other))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="pairs of run directories")
    parser.add_argument("--cells", nargs=3, metavar=("REGIME", "A", "B"),
                        help="compare cell A with cell B for every seed and theta in the folder REGIME")
    args = parser.parse_args(argv)
    if args.cells:
        pairs = _cell_pairs(Path(args.cells[0]), args.cells[1], args.cells[2])
    elif args.runs and len(args.runs) % 2 == 0:
        pairs = list(zip(args.runs[::2], args.runs[1::2]))
    else:
        parser.error("give pairs of run directories, or --cells REGIME A B")
    if not pairs:
        parser.error("no finished pair of runs found")
    differ = 0
    for a, b in pairs:
        found = compare(a, b)
        differ += found is not None
        print(f"{a} vs {b}: {found or 'identical (every metric of every epoch, every final weight)'}")
    print(f"{len(pairs) - differ} of {len(pairs)} pairs identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
