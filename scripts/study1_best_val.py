"""The first study's R1/R2 contrasts re-measured with early stopping, from the committed per-epoch logs (issue 19).

The first study evaluated the test set only every 5 epochs (after epochs 4, 9, ..., 29), so the early-stopped
measure here is the one a user gets who checkpoints every 5 epochs: among the epochs with a test evaluation, the one
with the best validation top-1 (ties: the earliest), and the test top-1 of that epoch. The test set never chooses
the epoch. A branched TSLA(s) run's metrics.jsonl holds its LSR trunk's epochs before s, so its early-stopped epoch
may lie in the shared prefix, where it *is* LSR.

    python scripts/study1_best_val.py [--runs docs/evidence/study/runs] [--out docs/evidence/study]

writes ``runs-best-val.csv`` (one row per run: the early-stopped epoch and test top-1 beside the last epoch's) and
``contrasts-best-val.csv`` (the published families, Holm within each, margin ±0.5, with a ``measure`` column:
``best-val-5`` both cells early-stopped; ``last-vs-best-val-5`` a at its last epoch against b early-stopped, the
comparison issue 19 quotes), and prints them as markdown.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tsla.report.paired import analyse, write_csv
from tsla.report.stats import holm, verdict

REGIMES = ("r1-few", "r2-noise")
THETAS = ("0.1", "0.2", "0.4")
FAMILIES = {  # as declared in docs/results.md: 1 = H1, 2 = H2, 3 = TSLA(25) - LSR, 4 = TSLA(s) - baseline
    1: [(f"tsla@15-theta{t}", f"lsr-theta{t}") for t in THETAS],
    2: [(f"lsr-theta{t}", "baseline") for t in THETAS],
    3: [(f"tsla@25-theta{t}", f"lsr-theta{t}") for t in THETAS],
    4: [(f"tsla@{s}-theta{t}", "baseline") for s in (15, 25) for t in THETAS],
}
MARGIN = 0.5


def early_stopped(metrics: list[dict]) -> tuple[int, float, float]:
    """(epoch, val top-1 %, test top-1 %) at the best validation top-1 among the epochs with a test evaluation."""
    tested = [m for m in metrics if "test_top1" in m and "val_top1" in m]
    best = max(tested, key=lambda m: (m["val_top1"], -m["epoch"]))  # ties: the earliest epoch
    return best["epoch"], 100 * best["val_top1"], 100 * best["test_top1"]


def run_rows(runs: Path) -> list[dict]:
    rows = []
    for regime in REGIMES:
        for run in sorted((runs / regime).iterdir()):
            label, _, seed = run.name.rpartition("-seed")
            if label.startswith("tsla-auto") or not (run / "summary.json").is_file():
                continue
            label = "baseline" if label == "baseline" else label
            metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
            epoch, val, test = early_stopped(metrics)
            rows.append({"regime": regime, "label": label, "seed": int(seed), "best_val_epoch": epoch,
                         "val_top1_at_best_val": round(val, 4), "test_top1_at_best_val": round(test, 4),
                         "test_top1_last": round(100 * metrics[-1]["test_top1"], 4)})
    return rows


def contrast_rows(rows: list[dict]) -> list[dict]:
    out = []
    for measure, key_a, key_b in (("best-val-5", "test_top1_at_best_val", "test_top1_at_best_val"),
                                  ("last-vs-best-val-5", "test_top1_last", "test_top1_at_best_val")):
        for regime in REGIMES:
            mine = [r for r in rows if r["regime"] == regime]
            for number, pairs in FAMILIES.items():
                family = []
                for a, b in pairs:
                    va = {r["seed"]: r[key_a] for r in mine if r["label"] == a}
                    vb = {r["seed"]: r[key_b] for r in mine if r["label"] == b}
                    diffs = [va[s] - vb[s] for s in sorted(set(va) & set(vb))]
                    family.append({"measure": measure, "regime": regime, "family": number, "a": a, "b": b,
                                   **analyse(diffs, MARGIN)})
                for row, p in zip(family, holm([r["p_raw"] for r in family])):
                    row["p_holm"] = p
                    row["verdict"] = verdict(row["mean_diff"], p, row["tost_p"], MARGIN)
                out += family
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("docs/evidence/study/runs"))
    parser.add_argument("--out", type=Path, default=Path("docs/evidence/study"))
    args = parser.parse_args()
    rows = run_rows(args.runs)
    cons = contrast_rows(rows)
    write_csv(args.out / "runs-best-val.csv", rows, list(rows[0]))
    write_csv(args.out / "contrasts-best-val.csv", cons, list(cons[0]))
    print("| measure | regime | family | a | b | pairs | mean diff | 95% CI | sign-flip p | Holm p | verdict |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in cons:
        print(f"| {r['measure']} | {r['regime']} | {r['family']} | {r['a']} | {r['b']} | {r['n_pairs']} | "
              f"{r['mean_diff']:+.2f} | [{r['ci_low']:.2f}, {r['ci_high']:.2f}] | {r['p_raw']:.3f} | "
              f"{r['p_holm']:.3f} | {r['verdict']} |")


if __name__ == "__main__":
    main()
