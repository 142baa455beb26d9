"""One block of ``runs.csv`` records (whole lines of text) into columns, checked.

Two paths give the same columns: a fast one, numpy's C tokenizer over plain ASCII text (what ``tsla report
--paired`` writes: no quotes, no carriage returns), and a checked one, the csv module cell by cell, which words every
refusal. The fast path hands any block it is not sure of to the checked one (a cell it cannot read, a cell that may
have been cut, a non-finite value, a seed that is not whole, a blank line), so every refusal comes from one place.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from typing import Collection, Sequence

import numpy as np

from ...errors import ConfigError
from .columns import NUMBER_COLUMNS

NUMBER_WIDTH = 32  # bytes of a number cell the fast path reads; a cell that fills them all takes the checked path
SEED_LIMIT = 2.0**63  # seeds are stored as int64


def parse_block(text: str, header: Sequence[str], first_line: int, source: str,
                keep: Collection[str]) -> tuple[int, dict[str, np.ndarray | list[str]]]:
    """(records, columns) of ``text``, whole records of ``source`` whose first is on line ``first_line`` (a record is
    numbered as one line, the header being line 1). ``columns`` holds the columns of ``keep`` that the header has: a
    number column as float64 (NaN where empty), ``seed`` as int64, a text column as a list of str. Every number
    column is checked, kept or not. Raises ``ConfigError`` with one line naming ``source``, the line and the column
    for: a record with another number of cells than the header, text or a non-finite value in a number column, and
    a seed that is not a whole number."""
    index = {name: i for i, name in enumerate(header)}  # a name given twice: its last column, as a dict of rows had
    found = _fast(text, header, index, keep)
    return found if found is not None else _checked(text, header, index, first_line, source, keep)


def _fast(text: str, header: Sequence[str], index: dict[str, int],
          keep: Collection[str]) -> tuple[int, dict[str, np.ndarray | list[str]]] | None:
    """The block's columns by numpy's tokenizer, or None where the checked path must decide."""
    if not text or not text.isascii() or any(mark in text for mark in ('"', "\r", "\x00", "\n\n")) or text[0] == "\n":
        return None  # quotes, carriage returns, NULs and blank lines: the csv module's reading decides
    records = text.count("\n") + (not text.endswith("\n"))
    numbers = {i for name, i in index.items() if name in NUMBER_COLUMNS}
    texts = {i for name, i in index.items() if name in keep and i not in numbers}
    # number cells as bytes, kept text as str, the rest (dropped unread) as one byte
    fields = [(f"c{i}", f"S{NUMBER_WIDTH}" if i in numbers else "O" if i in texts else "S1")
              for i in range(len(header))]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns about lines without data; the count below catches them
            table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.dtype(fields), comments=None,
                               quotechar=None, ndmin=1, encoding="ascii")
    except ValueError:  # a record of another length, most likely: the checked path says which
        return None
    if table.shape != (records,):
        return None
    columns: dict[str, np.ndarray | list[str]] = {}
    for name, i in index.items():
        if i in texts:
            columns[name] = table[f"c{i}"].tolist()
        elif i in numbers:
            values = _numbers(table[f"c{i}"])
            if values is None or (name == "seed" and not _whole(values)):
                return None
            if name in keep:
                columns[name] = values.astype(np.int64) if name == "seed" else values
    return records, columns


def _numbers(cells: np.ndarray) -> np.ndarray | None:
    """Cells of dtype S{NUMBER_WIDTH} as floats (NaN where empty); None for a cell that is not a finite number or
    may have been cut (it fills every byte)."""
    empty = cells == b""
    filled = np.where(empty, b"nan", cells)  # contiguous, so its bytes can be looked at
    if filled.size and filled.view(np.uint8).reshape(filled.size, NUMBER_WIDTH)[:, -1].any():
        return None
    try:
        values = filled.astype(float)
    except ValueError:
        return None
    return values if np.isfinite(values[~empty]).all() else None


def _whole(seeds: np.ndarray) -> bool:
    return bool(np.all((seeds == np.floor(seeds)) & (np.abs(seeds) < SEED_LIMIT)))


def _checked(text: str, header: Sequence[str], index: dict[str, int], first_line: int, source: str,
             keep: Collection[str]) -> tuple[int, dict[str, np.ndarray | list[str]]]:
    """The block's columns by the csv module, every cell checked; raises as :func:`parse_block` says."""
    try:
        body = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ConfigError(f"cannot read {source} ({exc}): give a runs.csv written by 'tsla report --paired'") from None
    for line, cells in enumerate(body, first_line):
        if len(cells) != len(header):
            raise ConfigError(f"{source} line {line} has {len(cells)} cells, the header {len(header)}: a row was cut "
                              f"or joined; write runs.csv again with 'tsla report --paired'")
    columns: dict[str, np.ndarray | list[str]] = {}
    for name in NUMBER_COLUMNS:  # in this order, as before: the first bad column names the line
        if name in index:
            values = _checked_numbers([cells[index[name]] for cells in body], name, first_line, source)
            if name in keep or name == "seed":
                columns[name] = values
    if "seed" in index:
        seeds = columns["seed"]
        for line, seed in enumerate(seeds.tolist(), first_line):
            if math.isnan(seed) or seed != int(seed):
                shown = None if math.isnan(seed) else seed  # an empty seed reads None, as it always has
                raise ConfigError(f"{source} line {line}: seed = {shown!r} is not a whole number: every row needs its "
                                  f"seed")
            if abs(seed) >= SEED_LIMIT:
                raise ConfigError(f"{source} line {line}: seed = {seed!r} is too large: seeds are 64-bit integers")
        columns["seed"] = seeds.astype(np.int64)
        if "seed" not in keep:
            del columns["seed"]
    for name, i in index.items():
        if name in keep and name not in NUMBER_COLUMNS:
            columns[name] = [cells[i] for cells in body]
    return len(body), columns


def _checked_numbers(values: list[str], column: str, first_line: int, source: str) -> np.ndarray:
    """The cells as floats (NaN where empty); ``ConfigError`` naming the first bad line."""
    filled = [v.strip() or "nan" for v in values]  # empty cells: NaN
    try:
        numbers = np.asarray(filled, dtype=float)
    except ValueError:
        for line, text in enumerate(filled, first_line):
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
        raise ConfigError(f"{source} line {line + first_line}: {column} = {values[line].strip()} is not finite: a "
                          f"diverged run has no paired difference; drop its row (and its seed's other rows) or "
                          f"rerun it")
    numbers[empty] = np.nan
    return numbers.reshape(len(values))
