"""Study 3's per-epoch figure for one regime (docs/results3.md): the mean over every (draw, seed) pair of each cell's
test top-1 per epoch (left) and of LSR's and TSLA(15)'s validation top-1 on the clean and the noisy validation labels
(right; the clean regime has no noisy labelling, so only the clean one), from the committed metrics.jsonl files.
Descriptive: no rule reads it.

    python scripts/study3_figure.py docs/evidence/study3/runs sym40 docs/figures/study3-sym40-curves.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from study3_runs import REGIMES, VAL_KEY, labellings  # noqa: E402

CELLS = {"baseline": "one-hot", "lsr": "LSR θ=0.4", "tsla@15": "TSLA(15)", "tsla@25": "TSLA(25)",
         "lsr-neg@25": "LSR → −0.2 at 25"}


def curves(runs: Path, regime: str, cell: str, key: str) -> tuple[np.ndarray, int]:
    """Mean over runs of ``key`` per epoch (in %), and the number of runs. Raises ``LookupError`` naming what is
    missing: no finished run of the cell, or a run without ``key``."""
    pattern = "baseline-seed*" if cell == "baseline" else f"{cell}-theta0.4-seed*"
    folders = sorted(p for p in (runs / regime).glob(f"d*/{pattern}") if (p / "summary.json").is_file())
    if not folders:
        raise LookupError(f"no finished {cell} run under {runs / regime}: give the runs folder and a regime with "
                          f"runs ({', '.join(REGIMES)})")
    values = []
    for p in folders:
        records = [json.loads(line) for line in (p / "metrics.jsonl").read_text().splitlines()]
        if any(key not in r for r in records):
            raise LookupError(f"{p / 'metrics.jsonl'} has no {key} in every epoch")
        values.append([100 * r[key] for r in records])
    return np.mean(np.array(values), axis=0), len(values)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    runs, regime, out = Path(argv[0]), argv[1], Path(argv[2])
    shown = labellings(regime)  # the clean regime's runs have one labelling only
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    try:
        for cell, label in CELLS.items():
            mean, n = curves(runs, regime, cell, "test_top1")
            left.plot(range(len(mean)), mean, label=f"{label} (n={n})")
        for cell, colour in (("lsr", "C1"), ("tsla@15", "C2")):
            for name in shown:
                mean, _ = curves(runs, regime, cell, VAL_KEY[name])
                style = "-" if name == "clean" else "--"
                right.plot(range(len(mean)), mean, style, color=colour, label=f"{CELLS[cell]}, {name} val labels")
    except (LookupError, OSError, ValueError) as exc:
        print(f"study3_figure.py: {exc}", file=sys.stderr)
        return 2
    left.set(title=f"{regime}: test top-1 per epoch (mean over pairs)", xlabel="epoch", ylabel="test top-1 (%)")
    title = "validation top-1 on the clean and the noisy labels" if len(shown) > 1 else "validation top-1"
    right.set(title=title, xlabel="epoch", ylabel="validation top-1 (%)")
    for ax in (left, right):
        for m in (15, 25):
            ax.axvline(m, color="grey", lw=0.5)
        ax.legend(fontsize=7)
    fig.savefig(out, dpi=110, metadata={"Software": None})
    print(f"study3_figure.py: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
