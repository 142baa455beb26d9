"""``runs.csv`` as text: writing the rows, and reading them back checked (columns, numbers, finiteness, one row per
(regime, cell, seed)), so that a contrast is never computed from a row it would silently misread."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError

# a runs.csv written before the last four columns existed still recomputes its contrasts (the last-epoch measure)
REQUIRED_RUN_COLUMNS = ("regime", "label", "method", "theta", "switch_epoch", "seed", "val_top1", "test_top1",
                        "test_nll", "test_ece", "train_top1", "train_onehot_loss", "epochs", "commit")
RUN_COLUMNS = (*REQUIRED_RUN_COLUMNS, "best_val_epoch", "test_top1_at_best_val", "noise_memorised_final",
               "label_noise_type")
# columns that must hold a finite number when not empty (empty: the run did not record it)
NUMBER_COLUMNS = ("theta", "switch_epoch", "seed", "val_top1", "test_top1", "test_nll", "test_ece", "train_top1",
                  "train_onehot_loss", "epochs", "best_val_epoch", "test_top1_at_best_val", "noise_memorised_final")


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


def _numbers(values: list[str], column: str, source: str) -> list[float | None]:
    """The column's cells as floats (None where empty); ``ConfigError`` naming the first bad line (2: the first row)."""
    filled = [v.strip() or "nan" for v in values]  # empty cells: NaN for now, None below
    try:
        numbers = np.asarray(filled, dtype=float)
    except ValueError:
        for line, text in enumerate(filled, 2):
            try:
                float(text)
            except ValueError:
                raise ConfigError(f"{source} line {line}: {column} = {text!r} is not a number: fix the row or write "
                                  f"runs.csv again with 'tsla report --paired'") from None
        raise
    empty = np.asarray([not v.strip() for v in values], dtype=bool)
    bad = ~np.isfinite(numbers) & ~empty
    if bad.any():
        line = int(np.argmax(bad))
        raise ConfigError(f"{source} line {line + 2}: {column} = {values[line].strip()} is not finite: a diverged run "
                          f"has no paired difference; drop its row (and its seed's other rows) or rerun it")
    return [None if e else float(x) for x, e in zip(numbers.tolist(), empty.tolist())]


def parse_runs_csv(text: str, source: str) -> list[dict[str, Any]]:
    """The rows of a ``runs.csv``'s text (``source`` names it in messages), with the number columns as floats
    (None where empty) and ``seed`` as an int. Raises ``ConfigError`` with one line naming the file, the line and
    the column for: missing columns, text or a non-finite value in a number column, a seed that is not a whole
    number, and a (regime, label, seed) given twice (which would replace the first)."""
    try:
        table = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))  # a BOM would rename 'regime'
    except csv.Error as exc:
        raise ConfigError(f"cannot read {source} ({exc}): give a runs.csv written by 'tsla report --paired'") from None
    header, body = (table[0], table[1:]) if table else ([], [])
    if body and not set(REQUIRED_RUN_COLUMNS) <= set(header):
        missing = ", ".join(c for c in REQUIRED_RUN_COLUMNS if c not in header)
        raise ConfigError(f"{source} lacks the runs.csv columns {missing}: give a runs.csv written by "
                          f"'tsla report --paired'")
    for line, cells in enumerate(body, 2):
        if len(cells) != len(header):
            raise ConfigError(f"{source} line {line} has {len(cells)} cells, the header {len(header)}: a row was cut "
                              f"or joined; write runs.csv again with 'tsla report --paired'")
    columns = {name: [cells[i] for cells in body] for i, name in enumerate(header)}
    for column in NUMBER_COLUMNS:
        if column in columns:  # an older runs.csv lacks the best-validation columns
            columns[column] = _numbers(columns[column], column, source)
    seeds = columns["seed"]
    for line, seed in enumerate(seeds, 2):
        if seed is None or seed != int(seed):
            raise ConfigError(f"{source} line {line}: seed = {seed!r} is not a whole number: every row needs its seed")
    columns["seed"] = [int(seed) for seed in seeds]
    rows = [dict(zip(header, values)) for values in zip(*(columns[name] for name in header))]
    seen: dict[tuple[str, str, int], int] = {}
    for line, row in enumerate(rows, 2):
        key = (row["regime"], row["label"], row["seed"])
        if key in seen:
            raise ConfigError(f"{source} lines {seen[key]} and {line} are both regime {key[0]}, cell {key[1]}, seed "
                              f"{key[2]}: keep one row per run (two would pair one seed twice)")
        seen[key] = line
    return rows


def read_runs_csv(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``runs.csv`` file, checked as :func:`parse_runs_csv` says; ``ConfigError`` when unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read {path} ({reason}): give a runs.csv written by 'tsla report --paired'") from None
    return parse_runs_csv(text, str(path))
