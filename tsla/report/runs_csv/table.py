"""A ``runs.csv`` held by column: each number column one float array (NaN where the cell is empty), ``seed`` one
integer array, each text column codes into its distinct values. 10^6 rows take about 8 bytes per row and column,
where a list of row dicts took about 2.5 KiB per row."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .columns import NUMBER_COLUMNS


@dataclass
class TextColumn:
    """A text column: row i holds ``values[codes[i]]``; ``values`` in the order of their first row."""

    codes: np.ndarray  # int32, one per row
    values: list[str]

    def tolist(self) -> list[str]:
        return [self.values[c] for c in self.codes.tolist()]


@dataclass
class RunsTable:
    """The rows of a ``runs.csv`` by column: ``header`` is the file's header, ``columns`` the columns kept (a number
    column: float64, NaN for an empty cell; ``seed``: int64; any other column: a :class:`TextColumn`)."""

    header: list[str]
    columns: dict[str, np.ndarray | TextColumn]
    n_rows: int

    def numbers(self, name: str) -> np.ndarray:
        """The number column ``name`` (float64, NaN where empty; ``seed``: int64). Raises ``KeyError`` if absent."""
        column = self.columns[name]
        if isinstance(column, TextColumn):
            raise KeyError(f"{name} is a text column")
        return column

    def text(self, name: str) -> TextColumn:
        """The text column ``name``. Raises ``KeyError`` if absent."""
        column = self.columns[name]
        if not isinstance(column, TextColumn):
            raise KeyError(f"{name} is a number column")
        return column

    def rows(self) -> list[dict[str, Any]]:
        """One dict per row, keyed in the header's order: numbers as floats (None where empty), ``seed`` as int,
        text as str (what a row-by-row reader gives)."""
        names = [name for name in dict.fromkeys(self.header) if name in self.columns]
        values = []
        for name in names:
            column = self.columns[name]
            if isinstance(column, TextColumn):
                values.append(column.tolist())
            elif name == "seed":
                values.append(column.tolist())
            else:
                values.append([None if math.isnan(x) else x for x in column.tolist()])
        return [dict(zip(names, row)) for row in zip(*values)]

    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]], names: Sequence[str]) -> "RunsTable":
        """The columns ``names`` of row dicts (a missing key, None and "" read as empty: NaN). Raises ``ValueError``
        where a number column holds something ``float`` refuses, and ``TypeError`` for a seed that is empty."""
        columns: dict[str, np.ndarray | TextColumn] = {}
        for name in names:
            cells = [row.get(name) for row in rows]
            if name == "seed":
                columns[name] = np.array([int(c) for c in cells], dtype=np.int64)
            elif name in NUMBER_COLUMNS:
                columns[name] = np.array([math.nan if c in (None, "") else float(c) for c in cells], dtype=float)
            else:
                lookup: dict[str, int] = {}
                codes = [lookup.setdefault(str(c), len(lookup)) for c in cells]
                columns[name] = TextColumn(np.array(codes, dtype=np.int32), list(lookup))
        return cls(list(names), columns, len(rows))
