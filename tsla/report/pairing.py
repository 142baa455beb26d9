"""The rows of a runs table grouped once by regime and cell, and two cells paired by seed.

One sort of all rows by (regime, label, seed) gives every cell as a run of rows with its seeds ascending, so a
contrast costs the length of its two cells (a merge of sorted seeds), never a scan of all rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .runs_csv import RunsTable


@dataclass(frozen=True)
class Cell:
    """One (regime, label): ``rows`` (row numbers of the table) in the order of ``seeds`` (ascending, unique)."""

    rows: np.ndarray
    seeds: np.ndarray
    first_row: int  # the cell's first row in the file's order (its method and theta are read there)


def group_table(table: RunsTable) -> dict[str, dict[str, Cell]]:
    """``{regime: {label: Cell}}``, regimes and each regime's labels in the order of their first row (as a dict
    filled row by row would be). Assumes one row per (regime, label, seed), as the table's reader has checked."""
    regime, label = table.text("regime"), table.text("label")
    seed = table.numbers("seed")
    order = np.lexsort((seed, label.codes, regime.codes))
    r, l = regime.codes[order], label.codes[order]
    starts = np.flatnonzero(np.r_[True, (r[1:] != r[:-1]) | (l[1:] != l[:-1])]) if order.size else np.zeros(0, int)
    stops = np.r_[starts[1:], order.size].astype(int)
    firsts = np.minimum.reduceat(order, starts) if order.size else np.zeros(0, int)
    cells: dict[str, dict[str, Cell]] = {}
    for g in np.argsort(firsts, kind="stable").tolist():
        start, stop = int(starts[g]), int(stops[g])
        rows = order[start:stop]
        cells.setdefault(regime.values[r[start]], {})[label.values[l[start]]] = Cell(rows, seed[rows], int(firsts[g]))
    return cells


def paired_differences(a: Cell, b: Cell, values: np.ndarray) -> np.ndarray:
    """``values`` of a minus those of b at each seed both cells have, seeds ascending; a seed where either value is
    NaN (an empty cell of runs.csv) is left out."""
    _, ia, ib = np.intersect1d(a.seeds, b.seeds, assume_unique=True, return_indices=True)
    x, y = values[a.rows[ia]], values[b.rows[ib]]
    keep = ~(np.isnan(x) | np.isnan(y))
    with np.errstate(over="ignore", invalid="ignore"):  # ±1e308 - ∓1e308: inf, refused by the caller in one line
        return x[keep] - y[keep]


def share_a_seed(a: Cell, b: Cell) -> bool:
    return bool(np.intersect1d(a.seeds, b.seeds, assume_unique=True).size)
