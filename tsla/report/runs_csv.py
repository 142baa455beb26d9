"""``runs.csv`` as text: writing the rows, and reading them back checked (columns, numbers, finiteness, one row per
(regime, cell, seed)), so that a contrast is never computed from a row it would silently misread."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError

RUN_COLUMNS = ("regime", "label", "method", "theta", "switch_epoch", "seed", "val_top1", "test_top1", "test_nll",
               "test_ece", "train_top1", "train_onehot_loss", "epochs", "commit")
# columns that must hold a finite number when not empty (empty: the run did not record it)
NUMBER_COLUMNS = ("theta", "switch_epoch", "seed", "val_top1", "test_top1", "test_nll", "test_ece", "train_top1",
                  "train_onehot_loss", "epochs")


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


def parse_runs_csv(text: str, source: str) -> list[dict[str, Any]]:
    """The rows of a ``runs.csv``'s text (``source`` names it in messages). Raises ``ConfigError`` with one line
    naming the file, the line and the column for: missing columns, text or a non-finite value in a number column, a
    seed that is not a whole number, and a (regime, label, seed) given twice (which would replace the first)."""
    try:
        rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))  # a BOM would rename 'regime'
    except csv.Error as exc:
        raise ConfigError(f"cannot read {source} ({exc}): give a runs.csv written by 'tsla report --paired'") from None
    if rows and not set(RUN_COLUMNS) <= set(rows[0]):
        missing = ", ".join(c for c in RUN_COLUMNS if c not in rows[0])
        raise ConfigError(f"{source} lacks the runs.csv columns {missing}: give a runs.csv written by "
                          f"'tsla report --paired'")
    seen: dict[tuple[str, str, int], int] = {}
    for line, row in enumerate(rows, 2):  # line 1 is the header
        for column in NUMBER_COLUMNS:
            text_value = (row.get(column) or "").strip()
            if not text_value:
                continue
            try:
                value = float(text_value)
            except ValueError:
                raise ConfigError(f"{source} line {line}: {column} = {text_value!r} is not a number: fix the row or "
                                  f"write runs.csv again with 'tsla report --paired'") from None
            if not math.isfinite(value):
                raise ConfigError(f"{source} line {line}: {column} = {text_value} is not finite: a diverged run "
                                  f"has no paired difference; drop its row (and its seed's other rows) or rerun it")
        seed = (row.get("seed") or "").strip()
        if not seed or float(seed) != int(float(seed)):
            raise ConfigError(f"{source} line {line}: seed = {seed!r} is not a whole number: every row needs its seed")
        key = (row["regime"], row["label"], int(float(seed)))
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
