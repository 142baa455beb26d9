"""``runs.csv`` as text: one line per row, the header first, NaN and None as empty cells."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Sequence


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """The CSV text of ``rows`` (one line per row, the header first); NaN and None as empty cells."""
    f = io.StringIO()
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_fmt(row.get(c)) for c in columns])
    return f.getvalue()


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    Path(path).write_text(csv_text(rows, columns))
