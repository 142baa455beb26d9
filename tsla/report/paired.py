"""Paired comparisons over seeds, written as CSV: ``runs.csv`` (one row per run) and ``contrasts.csv`` (one row per
contrast), plus ``speed.csv``, ``secondary.csv`` and ``paired.md``.

A *regime* is one comparison directory (its folder name): runs that differ only in method, theta and seed. A *cell*
is a (method, theta) within it, labelled ``baseline``, ``lsr-theta0.2``, ``tsla@20-theta0.2``, ... A *contrast* a − b
pairs the runs of cells a and b that share a seed (same initialisation, data order and augmentation) and analyses the
per-seed differences of final test top-1 in percentage points (:mod:`tsla.report.stats`); Holm's adjustment runs
over the contrasts of one regime. ``contrasts.csv`` is a function of ``runs.csv`` alone (:func:`contrasts_from_csv`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import ConfigError
from .collect import RunRecord
from .pairing import Cell, group_table, paired_differences, share_a_seed
from .runs_csv import CONTRAST_KEYS, RunsTable, read_table
from .runs_csv import REQUIRED_RUN_COLUMNS, RUN_COLUMNS, csv_text, read_runs_csv, write_csv  # noqa: F401 - re-exported
from .stats import holm, mean_ci, minimum_detectable_effect, sign_flip_p, tost_p, verdict

SPEED_COLUMNS = ("regime", "a", "b", "n_pairs", "mean_diff", "ci_low", "ci_high", "p_raw", "p_holm", "mde",
                 "tost_p", "verdict", "family")
CONTRAST_COLUMNS = (*SPEED_COLUMNS, "measure")
# fractions in metrics, percentage points here
PERCENT = ("val_top1", "test_top1", "test_ece", "train_top1", "test_top1_at_best_val", "noise_memorised_final")
# --measure: the test top-1 a contrast compares, at the last epoch or at the epoch of the best validation top-1
MEASURES = {"last": "test_top1", "best-val": "test_top1_at_best_val"}


def cell_label(method: str, theta: float) -> str:
    """``baseline`` (theta plays no part), else ``<method>-theta<θ>``."""
    return "baseline" if method == "baseline" else f"{method}-theta{theta:g}"


def run_rows(runs: Iterable[RunRecord], regime: str) -> list[dict[str, Any]]:
    """One ``runs.csv`` row per finished run: its final metrics (accuracies, ECE and the memorised share in
    percentage points), its best-validation epoch and the test top-1 there (summary.json's ``best_val``; empty for a
    run without one, e.g. written before tsla recorded it), and its label-noise type ("none" without noise)."""
    rows = []
    for run in runs:
        final = run.summary.get("final") or {}
        best = run.summary.get("best_val") or {}
        row: dict[str, Any] = {"regime": regime, "label": cell_label(run.method, run.theta), "method": run.method,
                               "theta": run.theta, "switch_epoch": run.switch_epoch, "seed": run.seed}
        values = {**{key: final.get(key) for key in RUN_COLUMNS[6:12]}, "best_val_epoch": best.get("epoch"),
                  "test_top1_at_best_val": best.get("test_top1"), "noise_memorised_final": final.get("noise_memorised")}
        for key, value in values.items():
            row[key] = None if value is None else (100 * value if key in PERCENT else value)
        row["epochs"] = run.summary.get("epochs")
        row["commit"] = run.summary.get("git_commit")
        noisy = run.config.get("label_noise")
        row["label_noise_type"] = run.config.get("label_noise_type", "symmetric") if noisy else "none"
        rows.append(row)
    return rows


def default_contrasts(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """Every smoothing-schedule cell against LSR at its theta (H1), and every LSR cell against the baseline (H2)."""
    cells = {}
    for row in rows:
        cells.setdefault(row["label"], (row["method"], float(row["theta"])))
    pairs = []
    for label, (method, theta) in cells.items():
        lsr = cell_label("lsr", theta)
        if method not in ("baseline", "lsr") and lsr in cells:
            pairs.append((label, lsr))
    pairs += [(label, "baseline") for label, (method, _) in cells.items() if method == "lsr" and "baseline" in cells]
    return pairs


def group_cells(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[int, dict[str, Any]]]]:
    """``{regime: {label: {seed: row}}}`` in one pass over the rows (each contrast then looks its cells up instead
    of scanning every row)."""
    index: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    for row in rows:
        index.setdefault(row["regime"], {}).setdefault(row["label"], {})[int(row["seed"])] = row
    return index


def analyse(diffs: Sequence[float], margin: float) -> dict[str, Any]:
    """The statistics of one contrast's per-seed differences (Holm's p is filled in over the family)."""
    mean, low, high = mean_ci(diffs)
    return {"n_pairs": len(diffs), "mean_diff": mean, "ci_low": low, "ci_high": high, "p_raw": sign_flip_p(diffs),
            "mde": minimum_detectable_effect(diffs), "tost_p": tost_p(diffs, margin)}


def contrasts(rows: Sequence[dict[str, Any]] | RunsTable, families: Sequence[Sequence[tuple[str, str]]] | None,
              margin: float, metric: str | None = None, measure: str = "last") -> list[dict[str, Any]]:
    """One row per (regime, a, b): ``metric`` (default: the test top-1 of ``measure``, :data:`MEASURES`) of a minus b
    over their shared seeds (a seed whose value is empty in either cell is left out); Holm within each family of
    contrasts of a regime (column ``family``, counted from 1); column ``measure`` says which epoch was measured.
    ``rows``: row dicts or a :class:`RunsTable` (one row per regime, label and seed, as its reader checks). Raises
    ``ConfigError`` for a ``measure`` that is not in :data:`MEASURES`.

    ``families`` None: one family, :func:`default_contrasts`, per regime. A default contrast that cannot be computed
    (its cells share no seed, or no shared seed has a value of the metric in both) stays in the table, its numbers
    empty (NaN) and its verdict "not computed: <why>", and counts in Holm's family as p = 1, so the family is never
    smaller than the table says. Raises ``ConfigError`` for a declared label that no run has, for a declared
    contrast that cannot be computed (dropping it would shrink Holm's family and make the others look stronger),
    and for per-seed differences that are not finite or whose squares overflow (values such as ±1e308).
    """
    if measure not in MEASURES:
        raise ConfigError(f"--measure {measure!r} is unknown: choose {' or '.join(MEASURES)}")
    metric = metric or MEASURES[measure]
    table = rows if isinstance(rows, RunsTable) else RunsTable.from_rows(rows, (*CONTRAST_KEYS, metric))
    values = table.numbers(metric) if metric in table.columns else np.full(table.n_rows, math.nan)
    out = []
    for regime, cells in group_table(table).items():
        declared = families is not None
        if declared:
            mine = []
        else:  # each cell's method and theta as its first row gives them
            method, theta = table.text("method"), table.numbers("theta")
            mine = [{"label": label, "method": method.values[method.codes[cell.first_row]],
                     "theta": theta[cell.first_row]} for label, cell in cells.items()]
        for number, pairs in enumerate(families if declared else [default_contrasts(mine)], 1):
            out += _family(cells, values, regime, number, pairs, margin, declared, metric)
    return [{**row, "measure": measure} for row in out]


def _family(cells: dict[str, Cell], values: np.ndarray, regime: str, number: int, pairs: Sequence[tuple[str, str]],
            margin: float, declared: bool, metric: str) -> list[dict[str, Any]]:
    family, why_not = [], {}
    for a, b in pairs:
        missing = [x for x in (a, b) if x not in cells]
        if missing:
            raise ConfigError(f"--contrasts {a}:{b}: regime {regime} has no cell {missing[0]!r}; its cells are "
                              f"{', '.join(sorted(cells))}")
        shared = share_a_seed(cells[a], cells[b])
        if declared and not shared:
            raise ConfigError(f"--contrasts {a}:{b}: in regime {regime} the two cells share no seed (a has "
                              f"{cells[a].seeds.size}, b {cells[b].seeds.size}), so there is no pair to compare: "
                              f"train both at the same seeds or drop the contrast")
        diffs = paired_differences(cells[a], cells[b], values)
        if not diffs.size:
            if declared:
                raise ConfigError(f"--contrasts {a}:{b}: in regime {regime} no seed the two cells share has a value "
                                  f"of {metric} in both (its cells in runs.csv are empty), so the contrast cannot be "
                                  f"computed and leaving it out would shrink Holm's family: use a measure the runs "
                                  f"have (e.g. --measure last) or drop the contrast")
            why_not[len(family)] = "the cells share no seed" if not shared else f"no shared seed has {metric}"
            family.append({"regime": regime, "family": number, "a": a, "b": b, "n_pairs": 0, "mean_diff": math.nan,
                           "ci_low": math.nan, "ci_high": math.nan, "p_raw": math.nan, "mde": math.nan,
                           "tost_p": math.nan})
            continue
        _check_finite(diffs, regime, a, b, metric)
        family.append({"regime": regime, "family": number, "a": a, "b": b, **analyse(diffs, margin)})
    # a contrast that could not be computed still counts in the family, as p = 1 (it can reject nothing)
    adjusted = holm([1.0 if i in why_not else row["p_raw"] for i, row in enumerate(family)])
    for i, (row, p) in enumerate(zip(family, adjusted)):
        if i in why_not:
            row["p_holm"], row["verdict"] = math.nan, f"not computed: {why_not[i]}"
        else:
            row["p_holm"] = p
            row["verdict"] = verdict(row["mean_diff"], p, row["tost_p"], margin)
    return family


def _check_finite(diffs: np.ndarray, regime: str, a: str, b: str, metric: str) -> None:
    """``ConfigError`` when a contrast's per-seed differences are not finite, or large enough that their squares
    overflow (the interval, the test and the sign-flip sums would be inf or NaN, and a verdict with p = 0)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(diffs).all() and math.isfinite(float(np.dot(diffs, diffs))):
            return
    worst = float(diffs[np.argmax(np.abs(diffs))])
    raise ConfigError(f"contrast {a}:{b} in regime {regime}: a per-seed difference of {metric} is {worst:g}, too large "
                      f"to analyse (a value such as ±1e308 in runs.csv?): correct the values, which are percentage "
                      f"points for accuracies")


def epochs_to_reach(metrics: Sequence[dict[str, Any]], target: float, key: str) -> int | None:
    """Epochs trained (1-based) until ``key`` first reaches ``target``; None if it never does."""
    for row in metrics:
        value = row.get(key)
        if isinstance(value, (int, float)) and value >= target - 1e-12:
            return int(row["epoch"]) + 1
    return None


def speed_rows(runs: Sequence[RunRecord], regime: str, margin_epochs: float,
               cells: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """H3, per schedule cell (those in ``cells``, default all) against LSR at its theta: per seed, epochs until the
    cell's validation top-1 (test top-1 without a validation set) first reaches LSR's final value of that seed,
    minus LSR's own; a cell that never reaches it counts as its epoch count + 1. Negative: faster than LSR. Holm
    over the rows of the regime."""
    key = "val_top1" if any("val_top1" in m for r in runs for m in r.metrics) else "test_top1"
    by_cell: dict[str, dict[int, RunRecord]] = {}
    for run in runs:
        by_cell.setdefault(cell_label(run.method, run.theta), {})[run.seed] = run
    rows = []
    for label, seeds in by_cell.items():
        method = next(iter(seeds.values())).method
        lsr = by_cell.get(cell_label("lsr", next(iter(seeds.values())).theta))
        if method in ("baseline", "lsr") or lsr is None or (cells is not None and label not in cells):
            continue
        diffs = []
        for seed in sorted(set(seeds) & set(lsr)):
            ref = lsr[seed]
            target = (ref.summary.get("final") or {}).get(key)
            if target is None:
                continue
            cap = int(seeds[seed].summary.get("epochs") or len(seeds[seed].metrics)) + 1
            mine = epochs_to_reach(seeds[seed].metrics, target, key) or cap
            diffs.append(mine - (epochs_to_reach(ref.metrics, target, key) or cap))
        if diffs:
            rows.append({"regime": regime, "a": label, "b": cell_label("lsr", ref.theta), "curve": key,
                         **analyse(diffs, margin_epochs)})
    for row, p in zip(rows, holm([row["p_raw"] for row in rows])):
        row["p_holm"] = p
        row["verdict"] = verdict(row["mean_diff"], p, row["tost_p"], margin_epochs)
    return rows


def contrasts_from_csv(path: Path, families: Sequence[Sequence[tuple[str, str]]] | None,
                       margin: float, measure: str = "last") -> list[dict[str, Any]]:
    """``contrasts.csv``'s rows recomputed from a ``runs.csv`` alone. Raises ``ConfigError`` when ``measure`` asks
    for a column that the file does not have (a runs.csv written before best-validation measures)."""
    column = MEASURES.get(measure)
    table = read_table(path, keep=(*CONTRAST_KEYS, column) if column else CONTRAST_KEYS)
    if table.n_rows and column is not None and column not in table.header:
        raise ConfigError(f"{path} has no {column} column (written before tsla recorded best-validation epochs): "
                          f"use --measure last, or write it again with 'tsla report --paired'")
    return contrasts(table, families, margin, measure=measure)


def parse_contrasts(text: str | None) -> list[list[tuple[str, str]]] | None:
    """'a:b,c:d;e:f' -> [[(a, b), (c, d)], [(e, f)]]: families separated by ';', each Holm-adjusted on its own;
    None stays None (the default contrasts, one family)."""
    if text is None:
        return None
    families = []
    for part in text.split(";"):
        pairs = []
        for item in (t.strip() for t in part.split(",") if t.strip()):
            a, sep, b = item.partition(":")
            if not sep or not a.strip() or not b.strip():
                raise ConfigError(f"--contrasts {item!r}: write each contrast as A:B, e.g. "
                                  f"tsla@20-theta0.1:lsr-theta0.1 (families separated by ';')")
            pairs.append((a.strip(), b.strip()))
        if pairs:
            families.append(pairs)
    if not families:
        raise ConfigError("--contrasts is empty: give A:B pairs, or leave it out for the default contrasts")
    return families
