"""Reading ``runs.csv`` back checked, in blocks of about BLOCK_CHARS characters: the header, then each block into
columns (:mod:`.blocks`), then one (regime, label, seed) per row. Memory: the kept columns (8 bytes per row each)
and one block at a time, whatever the length of the file."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Collection, Iterator, TextIO

import numpy as np

from ...errors import ConfigError
from .blocks import parse_block
from .columns import NUMBER_COLUMNS, REQUIRED_RUN_COLUMNS
from .table import RunsTable, TextColumn

BLOCK_CHARS = 1 << 20  # characters parsed at once: about 7,500 rows of runs.csv, some 10 MiB while parsed
KEY = ("regime", "label", "seed")  # one row per key; kept whatever ``keep`` says, to check that


def _blocks(stream: TextIO) -> Iterator[str]:
    """The stream's text in blocks of whole lines of about BLOCK_CHARS characters. A block whose quote marks are
    not yet paired runs on to a later line end (a quoted cell may hold a line break)."""
    carry = ""
    while True:
        chunk = stream.read(BLOCK_CHARS)
        text = carry + chunk
        if not chunk:
            if text:
                yield text
            return
        cut = text.rfind("\n") + 1
        if cut == 0 or text.count('"', 0, cut) % 2:
            carry = text
            continue
        yield text[:cut]
        carry = text[cut:]


def _header(text: str, source: str) -> tuple[list[str], str]:
    """The first record of ``text`` and the text after it."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, [])
    except csv.Error as exc:
        raise ConfigError(f"cannot read {source} ({exc}): give a runs.csv written by 'tsla report --paired'") from None
    end = 0
    for _ in range(reader.line_num):
        end = text.find("\n", end) + 1 or len(text)
    return header, text[end:]


def _check_header(header: list[str], source: str) -> None:
    """``ConfigError`` naming the runs.csv columns the header lacks (checked even when no row follows it)."""
    if not set(REQUIRED_RUN_COLUMNS) <= set(header):
        missing = ", ".join(c for c in REQUIRED_RUN_COLUMNS if c not in header)
        raise ConfigError(f"{source} lacks the runs.csv columns {missing}: give a runs.csv written by "
                          f"'tsla report --paired'")


def _codes(cells: list[str], lookup: dict[str, int]) -> np.ndarray:
    """``cells`` as codes into ``lookup`` ({value: code}, extended with new values in order of appearance)."""
    for value in dict.fromkeys(cells):
        lookup.setdefault(value, len(lookup))
    return np.fromiter(map(lookup.__getitem__, cells), dtype=np.int32, count=len(cells))


def parse_table(stream: TextIO | str, source: str, keep: Collection[str] | None = None) -> RunsTable:
    """The ``runs.csv`` text of ``stream`` (a text stream or a str; ``source`` names it in messages) as a
    :class:`RunsTable` holding the columns of ``keep`` (default: all) and always regime, label and seed. A UTF-8 BOM
    is dropped. Raises ``ConfigError`` with one line naming the source, the line and the column for: missing columns,
    a record of another number of cells than the header, text or a non-finite value in a number column, a seed that
    is not a whole number, and a (regime, label, seed) given twice (which would pair one seed twice)."""
    stream = io.StringIO(stream) if isinstance(stream, str) else stream
    header: list[str] | None = None
    wanted: set[str] = set()
    parts: dict[str, list[Any]] = {}
    lookups: dict[str, dict[str, int]] = {}
    line = 2  # of the first record after the header
    for text in _blocks(stream):
        if header is None:
            header, text = _header(text.removeprefix("\ufeff"), source)  # a BOM would rename 'regime'
            wanted = set(header) if keep is None else (set(keep) | set(KEY)) & set(header)
            parts = {name: [] for name in wanted}
            lookups = {name: {} for name in wanted if name not in NUMBER_COLUMNS}
            _check_header(header, source)
        if not text:
            continue
        records, columns = parse_block(text, header, line, source, wanted)
        for name, values in columns.items():
            parts[name].append(_codes(values, lookups[name]) if name in lookups else values)
        line += records
    if header is None:  # not even a header: the file is empty (a write cut at its start, a full disk)
        raise ConfigError(f"{source} is empty: give a runs.csv written by 'tsla report --paired'")
    columns: dict[str, np.ndarray | TextColumn] = {}
    for name in parts:
        if name in lookups:
            codes = np.concatenate(parts[name]) if parts[name] else np.zeros(0, dtype=np.int32)
            columns[name] = TextColumn(codes, list(lookups[name]))
        else:
            dtype = np.int64 if name == "seed" else float
            columns[name] = np.concatenate(parts[name]) if parts[name] else np.zeros(0, dtype=dtype)
    table = RunsTable(header or [], columns, line - 2)
    _check_one_row_per_run(table, source)
    return table


def _check_one_row_per_run(table: RunsTable, source: str) -> None:
    """``ConfigError`` naming the first row (in the file's order) whose (regime, label, seed) an earlier row has."""
    if table.n_rows < 2:
        return
    regime, label = table.text("regime"), table.text("label")
    seed = table.numbers("seed")
    order = np.lexsort((seed, label.codes, regime.codes))  # stable: rows of one key stay in the file's order
    same = ((regime.codes[order[1:]] == regime.codes[order[:-1]]) & (label.codes[order[1:]] == label.codes[order[:-1]])
            & (seed[order[1:]] == seed[order[:-1]]))
    if not same.any():
        return
    row = int(order[1:][same].min())
    first = int(np.flatnonzero((regime.codes == regime.codes[row]) & (label.codes == label.codes[row])
                               & (seed == seed[row]))[0])
    raise ConfigError(f"{source} lines {first + 2} and {row + 2} are both regime {regime.values[regime.codes[row]]}, "
                      f"cell {label.values[label.codes[row]]}, seed {int(seed[row])}: keep one row per run (two would "
                      f"pair one seed twice)")


def read_table(path: Path, keep: Collection[str] | None = None) -> RunsTable:
    """The ``runs.csv`` file ``path`` as :func:`parse_table` reads it; ``ConfigError`` when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as stream:
            return parse_table(stream, str(path), keep)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read {path} ({reason}): give a runs.csv written by 'tsla report --paired'") from None


def parse_runs_csv(text: str, source: str) -> list[dict[str, Any]]:
    """The rows of a ``runs.csv``'s text, checked as :func:`parse_table` says, as dicts: the number columns as
    floats (None where empty), ``seed`` as an int, the rest as str."""
    return parse_table(text, source).rows()


def read_runs_csv(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``runs.csv`` file as :func:`parse_runs_csv` gives them; ``ConfigError`` when unreadable."""
    return read_table(path).rows()
