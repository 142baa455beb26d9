"""``runs.csv``, one row per finished run: its columns and how it is written (:mod:`.columns`, :mod:`.write`), and
how it is read back checked, block by block into columns, so that 10^6 rows take seconds and tens of MiB."""

from .columns import CONTRAST_KEYS, NUMBER_COLUMNS, REQUIRED_RUN_COLUMNS, RUN_COLUMNS
from .read import parse_runs_csv, parse_table, read_runs_csv, read_table
from .table import RunsTable, TextColumn
from .write import csv_text, write_csv

__all__ = ["CONTRAST_KEYS", "NUMBER_COLUMNS", "REQUIRED_RUN_COLUMNS", "RUN_COLUMNS", "RunsTable", "TextColumn",
           "csv_text", "parse_runs_csv", "parse_table", "read_runs_csv", "read_table", "write_csv"]
