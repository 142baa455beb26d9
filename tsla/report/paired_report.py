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
import os
import statistics
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, RunDirError
from .collect import collect_runs
from .plots import plot_curves
from .paired import CONTRAST_COLUMNS, MEASURES, SPEED_COLUMNS, contrasts, group_cells, run_rows, speed_rows
from .runs_csv import NUMBER_COLUMNS, RUN_COLUMNS, csv_text, parse_table, write_csv
from .write_files import write_together


def _mean_sd(values: Sequence[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def _num(value: Any, digits: int = 2) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _signed(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:+.2f}"


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


def _regime_markdown(regime: str, cells: dict[str, dict[int, dict]], found: list[dict], speed: list[dict],
                     margin: float, measure: str = "last") -> list[str]:
    lines = [f"## {regime}", "", "| cell | seeds | test top-1 (%) | test top-1 at best val (%) | best val epoch | "
             "val top-1 (%) | test NLL | test ECE (%) | train top-1 (%) |", "|---|---|---|---|---|---|---|---|---|"]
    for label, seeds in cells.items():
        mine = list(seeds.values())

        def col(key: str) -> list[float]:
            return [float(r[key]) for r in mine if r.get(key) not in (None, "")]

        nll = col("test_nll")
        lines.append(f"| {label} | {len(mine)} | {_mean_sd(col('test_top1'))} | "
                     f"{_mean_sd(col('test_top1_at_best_val'))} | {_mean_sd(col('best_val_epoch'))} | "
                     f"{_mean_sd(col('val_top1'))} | "
                     f"{_num(statistics.fmean(nll), 4) if nll else '—'} | {_mean_sd(col('test_ece'))} | "
                     f"{_mean_sd(col('train_top1'))} |")
    rows = [row for seeds in cells.values() for row in seeds.values()]
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
        lines.append(f"| {c['family']} | {c['a']} | {c['b']} | {c['n_pairs']} | {_signed(c['mean_diff'])} | "
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


def regime_names(dirs: Sequence[Path]) -> list[str]:
    """One unique name per comparison directory: its folder name, or, where two share one (a/r1, b/r1), its path
    from their common folder. Raises ``ConfigError`` when one folder is given twice (its seeds would count twice)."""
    resolved = [Path(d).resolve() for d in dirs]
    first: dict[Path, int] = {}
    for i, path in enumerate(resolved):
        if path in first:
            raise ConfigError(f"{dirs[i]} is the folder {dirs[first[path]]} again: give each regime once (twice "
                              f"would count its seeds twice)")
        first[path] = i
    names = [path.name for path in resolved]
    if len(set(names)) == len(names):
        return names
    common = Path(os.path.commonpath(resolved))
    return [str(path.relative_to(common)) if path != common else path.name for path in resolved]


def _check_runs(runs: Sequence[Any], rows: Sequence[dict[str, Any]]) -> None:
    """Refuse (``RunDirError``, naming the run folders) a non-finite final metric and two runs of one cell and seed."""
    seen: dict[tuple, Any] = {}
    for run, row in zip(runs, rows):
        for key in NUMBER_COLUMNS:
            value = row.get(key)
            if isinstance(value, float) and not math.isfinite(value):
                raise RunDirError(f"{run.path}: its final {key} is {value}, not a finite number: a diverged run has "
                                  f"no paired difference; leave its regime's seed out or rerun it")
        key = (row["regime"], row["label"], row["seed"])
        if key in seen:
            raise RunDirError(f"{seen[key].path} and {run.path} are both cell {row['label']}, seed {row['seed']} of "
                              f"regime {row['regime']}: keep one (two would pair one seed twice)")
        seen[key] = run


def _check_tested(directory: Path, rows: Sequence[dict[str, Any]], measure: str) -> None:
    """``RunDirError`` when no run of a regime has the test number its contrasts compare (runs trained with
    ``--test-every 0``, as ``tsla select``'s candidates are; for ``--measure best-val``, runs that never tested a
    best validation epoch): its contrast table would be empty, every contrast gone, with exit 0."""
    column = MEASURES.get(measure, "test_top1")
    if not rows or any(row.get(column) is not None for row in rows):
        return
    if (directory / "selection.json").is_file():
        why = "tsla select's candidates are never tested"
        fix = "its selection.json holds the test numbers of the choice"
    elif column == "test_top1":
        why, fix = "they trained with --test-every 0", "train them with a --test-every other than 0"
    else:
        why = "none tested a best validation epoch: trained without --val-size, with --test-every 0, or before tsla " \
              "recorded it"
        fix = "use --measure last" if any(row.get("test_top1") is not None for row in rows) else \
            "train them with --val-size and a --test-every other than 0"
    raise RunDirError(f"no run in {directory} has a {column} ({why}), so there is no contrast to compute: {fix}")


def write_paired(dirs: Sequence[Path], out: Path, margin: float = 0.5,
                 pairs: Sequence[Sequence[tuple[str, str]]] | None = None,
                 margin_epochs: float = 2.0, measure: str = "last") -> dict[str, Any]:
    """Analyse each directory of ``dirs`` as one regime (named by :func:`regime_names`) and write the files listed in
    this module's docstring into ``out`` (the contrasts compare ``measure``, :data:`tsla.report.paired.MEASURES`),
    all together and only once every check has passed (an earlier report
    there stays whole otherwise). Returns ``{"runs", "contrasts", "secondary", "speed"}`` (lists of rows).

    Raises ``RunDirError`` when a directory holds no finished run or none with the measured test number (runs of
    ``tsla select``), a run's final metric is not finite, two runs are one cell and seed, or ``out`` cannot be
    written; ``ConfigError`` for a folder given twice and a declared contrast that cannot be computed."""
    dirs = [Path(d) for d in dirs]
    rows: list[dict] = []
    speed: list[dict] = []
    curves: list[tuple[str, list]] = []
    for directory, regime in zip(dirs, regime_names(dirs)):
        notes: list[str] = []
        runs = collect_runs([directory], notes)
        twice = [note.removeprefix("skipped ") for note in notes if ": duplicate of " in note]
        if twice:  # the plain report keeps the first; a paired one would silently drop a run of that seed
            raise RunDirError(f"{twice[0]}: keep one run per cell and seed (the paired report pairs each seed once)")
        if not runs:
            raise RunDirError(f"no finished runs in {directory}: run `tsla compare` first")
        mine = run_rows(runs, regime)
        _check_runs(runs, mine)
        _check_tested(directory, mine, measure)
        rows += mine
        curves.append((regime, runs))
        first = pairs[0] if pairs else None  # H3 is asked of the first declared family's schedule cells
        speed += speed_rows(runs, regime, margin_epochs, [a for a, _ in first] if first else None)
    runs_text = csv_text(rows, RUN_COLUMNS)
    table = parse_table(runs_text, "runs.csv")  # so that contrasts.csv is exactly what runs.csv alone gives
    rows = table.rows()
    found = contrasts(table, pairs, margin, measure=measure)
    secondary = [{**c, "metric": metric} for metric in ("test_nll", "test_ece")
                 for c in contrasts(table, pairs, math.nan, metric)]
    text = ["# Paired analysis", "",
            "Per regime: the cells (mean ± sample std over seeds), then each contrast a − b paired by seed. "
            "Verdicts: 'a > b' / 'a < b' when the Holm-adjusted exact sign-flip p < 0.05; 'equivalent' when the two "
            "one-sided t tests (TOST) place the difference inside the margin; otherwise 'undecided' (the MDE says "
            "what effect the data could have seen with 80% power).", ""]
    by_regime = group_cells(rows)
    for regime, cells in by_regime.items():
        text += _regime_markdown(regime, cells, [c for c in found if c["regime"] == regime],
                                 [c for c in speed if c["regime"] == regime], margin, measure)
    writers = {
        "runs.csv": lambda path: path.write_text(runs_text),
        "contrasts.csv": lambda path: write_csv(path, found, CONTRAST_COLUMNS),
        "secondary.csv": lambda path: write_csv(path, secondary, ("metric", *CONTRAST_COLUMNS)),
        "speed.csv": lambda path: write_csv(path, speed, ("curve", *SPEED_COLUMNS)),
        "paired.md": lambda path: path.write_text("\n".join(text)),
    }
    for regime, runs in curves:  # validation curves (every epoch) where there are any
        has_val = any("val_top1" in row for run in runs for row in run.metrics)
        writers[f"curves-{regime.replace(os.sep, '-')}.png"] = (
            lambda path, runs=runs, split="val" if has_val else "test": plot_curves(runs, path, split))
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_together(out, writers)
    except OSError as exc:
        raise RunDirError(f"cannot write the paired report in {out} ({exc.strerror or exc}): free some disk space or "
                          f"choose a writable --out (an earlier report there is left as it was)") from None
    return {"runs": rows, "contrasts": found, "secondary": secondary, "speed": speed}
