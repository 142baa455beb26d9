"""``tsla report --paired``: the paired analysis of one or more regimes, written as CSV files and a Markdown page.

OUT/runs.csv        one row per finished run (see :data:`tsla.report.paired.RUN_COLUMNS`)
OUT/contrasts.csv   per contrast: paired mean difference of test top-1 (points) at the last epoch or, with
                    ``--measure best-val``, at each run's best validation epoch (column ``measure``), 95% t interval,
                    exact sign-flip p, Holm-adjusted p, minimum detectable effect (80% power), TOST p, verdict
OUT/secondary.csv   the same for test NLL and test ECE (no equivalence margin), with a ``metric`` column
OUT/speed.csv       H3: epochs to reach LSR's final accuracy, paired against LSR's own (negative: faster)
OUT/paired.md       the tables above per regime, with the cells chosen on the validation set
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Sequence

from ..errors import RunDirError
from .collect import collect_runs
from .plots import plot_curves
from .paired import CONTRAST_COLUMNS, RUN_COLUMNS, SPEED_COLUMNS, contrasts, read_runs_csv, run_rows
from .paired import speed_rows, write_csv


def _mean_sd(values: Sequence[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def _num(value: Any, digits: int = 2) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _p(value: Any) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def val_selected(rows: Sequence[dict[str, Any]], methods: Sequence[str]) -> str | None:
    """The cell whose mean final validation top-1 is highest among cells of ``methods`` (a prefix match, so
    ``tsla@`` covers every TSLA(s)); None without validation numbers."""
    means: dict[str, list[float]] = {}
    for row in rows:
        if any(str(row["method"]).startswith(m) for m in methods) and row.get("val_top1") not in (None, ""):
            means.setdefault(row["label"], []).append(float(row["val_top1"]))
    return max(means, key=lambda k: statistics.fmean(means[k])) if means else None


def _regime_markdown(regime: str, rows: list[dict], found: list[dict], speed: list[dict], margin: float,
                     measure: str = "last") -> list[str]:
    lines = [f"## {regime}", "", "| cell | seeds | test top-1 (%) | test top-1 at best val (%) | best val epoch | "
             "val top-1 (%) | test NLL | test ECE (%) | train top-1 (%) |", "|---|---|---|---|---|---|---|---|---|"]
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]

        def col(key: str) -> list[float]:
            return [float(r[key]) for r in mine if r.get(key) not in (None, "")]

        nll = col("test_nll")
        lines.append(f"| {label} | {len(mine)} | {_mean_sd(col('test_top1'))} | "
                     f"{_mean_sd(col('test_top1_at_best_val'))} | {_mean_sd(col('best_val_epoch'))} | "
                     f"{_mean_sd(col('val_top1'))} | "
                     f"{_num(statistics.fmean(nll), 4) if nll else '—'} | {_mean_sd(col('test_ece'))} | "
                     f"{_mean_sd(col('train_top1'))} |")
    best_tsla, best_lsr = val_selected(rows, ("tsla@",)), val_selected(rows, ("lsr",))
    if best_tsla or best_lsr:
        lines += ["", f"Chosen on validation (highest mean val top-1): TSLA cell {best_tsla or '—'}, "
                      f"LSR cell {best_lsr or '—'}."]
    at = "final test top-1" if measure == "last" else "test top-1 at each run's best validation epoch"
    lines += ["", f"Paired contrasts of {at} (a − b, percentage points; Holm within each family; "
                  f"equivalence margin ±{margin:g}):", "",
              "| family | a | b | pairs | mean diff | 95% CI | sign-flip p | Holm p | MDE (80%) | TOST p | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in found:
        lines.append(f"| {c['family']} | {c['a']} | {c['b']} | {c['n_pairs']} | {c['mean_diff']:+.2f} | "
                     f"[{_num(c['ci_low'])}, {_num(c['ci_high'])}] | {_p(c['p_raw'])} | {_p(c['p_holm'])} | "
                     f"{_num(c['mde'])} | {_p(c['tost_p'])} | {c['verdict']} |")
    if speed:
        lines += ["", f"H3 — epochs until the {speed[0]['curve'].replace('_', ' ')} first reaches LSR's final value "
                      f"(same seed), minus LSR's own (negative: faster than LSR):", "",
                  "| a | b | pairs | mean diff (epochs) | 95% CI | sign-flip p | Holm p | verdict |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in speed:
            lines.append(f"| {c['a']} | {c['b']} | {c['n_pairs']} | {c['mean_diff']:+.1f} | "
                         f"[{_num(c['ci_low'], 1)}, {_num(c['ci_high'], 1)}] | {_p(c['p_raw'])} | {_p(c['p_holm'])} | "
                         f"{c['verdict']} |")
    return lines + [""]


def write_paired(dirs: Sequence[Path], out: Path, margin: float = 0.5,
                 pairs: Sequence[Sequence[tuple[str, str]]] | None = None,
                 margin_epochs: float = 2.0, measure: str = "last") -> dict[str, Any]:
    """Analyse each directory of ``dirs`` as one regime (named by its folder) and write the files listed in this
    module's docstring into ``out``; the contrasts compare ``measure`` (:data:`tsla.report.paired.MEASURES`).
    Returns ``{"runs", "contrasts", "secondary", "speed"}`` (lists of rows). Raises ``RunDirError`` when a directory
    holds no finished run."""
    rows: list[dict] = []
    speed: list[dict] = []
    curves: list[tuple[str, list]] = []
    for directory in map(Path, dirs):
        runs = collect_runs([directory], [])
        if not runs:
            raise RunDirError(f"no finished runs in {directory}: run `tsla compare` first")
        regime = directory.resolve().name
        rows += run_rows(runs, regime)
        curves.append((regime, runs))
        first = pairs[0] if pairs else None  # H3 is asked of the first declared family's schedule cells
        speed += speed_rows(runs, regime, margin_epochs, [a for a, _ in first] if first else None)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "runs.csv", rows, RUN_COLUMNS)
    rows = read_runs_csv(out / "runs.csv")  # so that contrasts.csv is exactly what runs.csv alone gives
    found = contrasts(rows, pairs, margin, measure=measure)
    secondary = [{**c, "metric": metric} for metric in ("test_nll", "test_ece")
                 for c in contrasts(rows, pairs, math.nan, metric)]
    write_csv(out / "contrasts.csv", found, CONTRAST_COLUMNS)
    write_csv(out / "secondary.csv", secondary, ("metric", *CONTRAST_COLUMNS))
    write_csv(out / "speed.csv", speed, ("curve", *SPEED_COLUMNS))
    text = ["# Paired analysis", "",
            "Per regime: the cells (mean ± sample std over seeds), then each contrast a − b paired by seed. "
            "Verdicts: 'a > b' / 'a < b' when the Holm-adjusted exact sign-flip p < 0.05; 'equivalent' when the two "
            "one-sided t tests (TOST) place the difference inside the margin; otherwise 'undecided' (the MDE says "
            "what effect the data could have seen with 80% power).", ""]
    for regime in dict.fromkeys(r["regime"] for r in rows):
        text += _regime_markdown(regime, [r for r in rows if r["regime"] == regime],
                                 [c for c in found if c["regime"] == regime],
                                 [c for c in speed if c["regime"] == regime], margin, measure)
    (out / "paired.md").write_text("\n".join(text))
    for regime, runs in curves:  # validation curves (every epoch) where there are any
        has_val = any("val_top1" in row for run in runs for row in run.metrics)
        plot_curves(runs, out / f"curves-{regime}.png", "val" if has_val else "test")
    return {"runs": rows, "contrasts": found, "secondary": secondary, "speed": speed}
