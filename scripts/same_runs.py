"""Are two finished runs the same computation? Compares every logged metric of every epoch (timings left out) and
every tensor of the final model, bit for bit.

    python scripts/same_runs.py RUN_A RUN_B [RUN_A RUN_B ...]
    python scripts/same_runs.py --cells REGIME tsla-auto tsla@15     # every seed and theta of two cells of a regime

Prints one line per pair: "identical" or the first metric / tensor that differs; exits 1 if any pair differs, and 2
with one line (no traceback) for a folder that cannot be read, or one folder given as both runs of a pair.
"Identical" means bit for bit: +0.0 and -0.0 differ, a NaN equals the same NaN, and a metric logged by one run only
is a difference. Used for
the reproducibility and tsla-auto sections of docs/results.md (reruns, thread counts, trained vs replayed tsla-auto).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path
from typing import Any

import torch

from tsla.errors import TslaError
from tsla.training.checkpoint import load_checkpoint

TIMING = ("seconds", "per_second")


class Unreadable(Exception):
    """A run folder that cannot be compared (missing, a cut metrics.jsonl, a damaged checkpoint): one line."""


def _metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise Unreadable(f"{path} is missing: give a run folder that tsla trained")
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise Unreadable(f"{path} line {number} is not JSON (a cut or edited file): rerun or restore the run") from None
        if not isinstance(row, dict):
            raise Unreadable(f"{path} line {number} is not a JSON object")
        rows.append({k: v for k, v in row.items() if not any(t in k for t in TIMING)})
    return rows


def _bits(value: Any) -> Any:
    """A value in a form whose == is bit-for-bit: a float as its 8 bytes (+0.0 and -0.0 differ, a NaN equals the
    same NaN), and the type kept (1, 1.0 and True differ); lists and dicts element by element."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_bits(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _bits(v)) for k, v in value.items())))
    return (type(value).__name__, value)


def _same_tensor(x: torch.Tensor, y: torch.Tensor) -> bool:
    """Equal dtype, shape and bytes (torch.equal calls -0.0 equal to +0.0 and a NaN unequal to itself)."""
    if x.dtype != y.dtype or x.shape != y.shape:
        return False
    return bytes(x.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()) == \
        bytes(y.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())


def _weights(run: Path) -> dict[str, torch.Tensor]:
    if not (run / "checkpoint.pt").is_file():  # load_checkpoint's own message advises --resume, meaningless here
        raise Unreadable(f"{run / 'checkpoint.pt'} is missing: give a run folder that tsla trained (its checkpoint "
                         f"holds the final weights)")
    try:
        return load_checkpoint(run / "checkpoint.pt")["model"]
    except TslaError as exc:
        raise Unreadable(str(exc)) from None


def compare(a: Path, b: Path) -> str | None:
    """None when ``a`` and ``b`` logged the same metrics (every key of every epoch, timings left out, each value bit
    for bit) and ended with bit-identical weights, else what differs first. Raises ``Unreadable`` for a run folder
    that cannot be read."""
    ma, mb = _metrics(a), _metrics(b)
    if len(ma) != len(mb):
        return f"{len(ma)} against {len(mb)} epochs logged"
    for ra, rb in zip(ma, mb):
        for key in sorted(ra.keys() | rb.keys()):
            if key not in ra or key not in rb:
                return f"epoch {ra.get('epoch')}: {key} logged by {b if key in rb else a} only"
            if _bits(ra[key]) != _bits(rb[key]):
                return f"epoch {ra.get('epoch')}: {key} {ra[key]!r} against {rb[key]!r}"
    wa, wb = _weights(a), _weights(b)
    if wa.keys() != wb.keys():
        return "the models have different parameters"
    for name in wa:
        if not _same_tensor(wa[name], wb[name]):
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
        if not Path(args.cells[0]).is_dir():
            parser.error(f"--cells: {args.cells[0]} is not a folder: give the regime's comparison folder")
        pairs = _cell_pairs(Path(args.cells[0]), args.cells[1], args.cells[2])
    elif args.runs and len(args.runs) % 2 == 0:
        pairs = list(zip(args.runs[::2], args.runs[1::2]))
    else:
        parser.error("give pairs of run directories, or --cells REGIME A B")
    if not pairs:
        parser.error("no finished pair of runs found")
    for a, b in pairs:  # a folder against itself is "identical" whatever it holds: a typo, not a reproduction
        if a.resolve() == b.resolve():
            parser.error(f"{a} and {b} are the same folder: give two runs to compare")
    differ = 0
    for a, b in pairs:
        try:
            found = compare(a, b)
        except Unreadable as exc:
            print(f"same_runs.py: error: {exc}", file=sys.stderr)
            return 2
        differ += found is not None
        print(f"{a} vs {b}: {found or 'identical (every metric of every epoch, every final weight)'}")
    print(f"{len(pairs) - differ} of {len(pairs)} pairs identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
