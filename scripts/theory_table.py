"""Markdown table of scripts/theory_measure.py's JSON lines: per (method, epoch), mean ± sample std over seeds of
each quantity, and in brackets the mean over seeds of the per-seed 95% bootstrap interval (over the diagnostic
images; over the mini-batches for mb_* keys).

    python scripts/theory_table.py FILE.jsonl [FILE.jsonl ...]
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict

COLUMNS = [
    ("delta_corrected", "δ", 2), ("sigma2_corrected", "σ²", 0), ("grad_norm2_corrected", "‖∇F‖²", 2),
    ("bias2_corrected", "‖∇F_ŷ − ∇F‖²", 0), ("lsr_cosine", "cos(∇F, E h)", 3),
    ("lsr_variance_ratio", "LSR var / σ² (v1)", 3), ("lsr_variance_ratio_scaled", "LSR var / ((1−θ)²σ²)", 3),
    ("one_step_gain", "one-step gain", 3), ("mb_sigma2_corrected", "train-mode σ_b²", 3),
    ("mb_grad_norm2_corrected", "train-mode ‖∇F_b‖²", 3), ("mb_bias2_corrected", "train-mode ‖b_b‖²", 2),
    ("mb_one_step_gain", "train-mode gain", 3),
]


def cell(rows: list[dict], key: str, digits: int) -> str:
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    if not values:
        return "undefined"
    mean = statistics.fmean(values)
    text = f"{mean:.{digits}f}" + (f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")
    lo = [r[f"{key}_lo"] for r in rows if isinstance(r.get(f"{key}_lo"), (int, float))]
    hi = [r[f"{key}_hi"] for r in rows if isinstance(r.get(f"{key}_hi"), (int, float))]
    if lo and hi:
        text += f" [{statistics.fmean(lo):.{digits}f}, {statistics.fmean(hi):.{digits}f}]"
    return text


def main(paths: list[str]) -> None:
    groups: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for path in paths:
        for line in open(path):
            r = json.loads(line)
            groups[(r["method"], r["epoch"])].append(r)
    print("| run | epoch | seeds | " + " | ".join(c[1] for c in COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for (method, epoch), rows in sorted(groups.items()):
        print(f"| {method} | {epoch} | {len(rows)} | " + " | ".join(cell(rows, k, d) for k, _, d in COLUMNS) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
