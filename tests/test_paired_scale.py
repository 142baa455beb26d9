"""The paired report at scale (issue 22): runs.csv is read by column in bounded memory, read the same whatever the
blocks it is cut into, and its contrasts are the numbers a hand computation gives."""

import csv
import io
import itertools
import json
import math
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tsla.errors import ConfigError
from tsla.report.paired import RUN_COLUMNS, contrasts_from_csv
from tsla.report.runs_csv import NUMBER_COLUMNS, read_runs_csv

ROOT = Path(__file__).resolve().parent.parent


def _generated(path, n_cells, n_seeds):
    """A runs.csv of n_cells LSR cells against one baseline (n_cells - 1 default contrasts), n_seeds seeds each."""
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        f.write(",".join(RUN_COLUMNS) + "\n")
        for c in range(n_cells):
            label, method, theta = ("baseline", "baseline", 0) if c == 0 else (f"lsr-theta{c}", "lsr", c)
            top1 = 90 + rng.normal(0, 0.3, n_seeds) + (c % 3) * 0.1
            f.write("".join(f"r,{label},{method},{theta},,{s},{t:.4f},{t:.4f},0.3,1.5,99.5,0.05,40,abc,3,{t:.4f},,"
                            f"none\n" for s, t in enumerate(top1.tolist())))
    return path


def test_contrasts_from_a_runs_csv_of_60000_rows_take_bounded_memory(tmp_path):
    # the row-by-row reader held every cell as a str and every row as a dict: a peak of 120 MiB here (2.6 GiB for
    # 10^6 rows); by column, in blocks of BLOCK_CHARS characters, 19 MiB, most of it one block being parsed
    path = _generated(tmp_path / "runs.csv", 60, 1000)
    tracemalloc.start()
    try:
        found = contrasts_from_csv(path, None, 0.5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(found) == 59 and all(row["n_pairs"] == 1000 for row in found)
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_reading_and_pairing_take_a_block_beyond_8_bytes_per_row_and_column(tmp_path):
    from tsla.report.pairing import group_table, paired_differences
    from tsla.report.runs_csv import CONTRAST_KEYS, read_table

    path = _generated(tmp_path / "runs.csv", 60, 1000)
    tracemalloc.start()
    try:
        table = read_table(path, keep=(*CONTRAST_KEYS, "test_top1"))
        cells = group_table(table)["r"]
        diffs = [paired_differences(cells[label], cells["baseline"], table.numbers("test_top1")) for label in cells]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert set(table.columns) == {*CONTRAST_KEYS, "test_top1"} and table.n_rows == 60_000
    assert len(diffs) == 60 and all(d.size == 1000 for d in diffs) and not diffs[0].any()
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB"  # 18 MiB here: the columns take 1.6 MiB, the rest is a block


def _reference_rows(path):
    """runs.csv read the plain way: the csv module, float() per number cell, None where empty."""
    body = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8").removeprefix("\ufeff"))))
    header = body[0]
    rows = []
    for cells in body[1:]:
        row = {}
        for name, cell in zip(header, cells):
            if name in NUMBER_COLUMNS:
                row[name] = None if not cell.strip() else float(cell)
            else:
                row[name] = cell
        row["seed"] = int(row["seed"])
        rows.append(row)
    return rows


def _awkward(path):
    """Rows the fast path must hand over: quoted cells with commas and line breaks, non-ASCII, blanks in number
    cells, spaces around numbers, a CRLF line end; between them many plain rows."""
    rng = np.random.default_rng(1)
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(RUN_COLUMNS)
        for i in range(3000):
            labels = ["lsr-theta0.1", "baseline", "tsla@5-theta0.1", "a,b", "two\nlines", "régime"]
            label = labels[i % 6 if i % 97 == 0 else i % 3]
            top1 = "" if i % 41 == 0 else f" {90 + rng.normal():.5f} " if i % 53 == 0 else repr(90 + rng.normal())
            row = ["r1" if i % 2 else "r2", label, label.split("-")[0], 0.1, "" if i % 5 else 7, i // 6, top1, top1,
                   0.3, 1.2, 99, 0.05, 5, "abc", "" if i % 7 else 3, top1, "", "none"]
            writer.writerow(row)
            if i == 1500:
                f.write("r9,crlf,lsr,0.1,,1,90,90,0.3,1.2,99,0.05,5,abc,,90,,none\r\n")
    return path


@pytest.mark.parametrize("block_chars", [97, 4096, 1 << 20])
def test_the_columns_are_what_the_csv_module_reads_however_the_file_is_cut(tmp_path, monkeypatch, block_chars):
    path = _awkward(tmp_path / "runs.csv")
    monkeypatch.setattr("tsla.report.runs_csv.read.BLOCK_CHARS", block_chars)
    assert read_runs_csv(path) == _reference_rows(path)


def test_the_fast_path_takes_plain_blocks_and_hands_over_the_rest(tmp_path, monkeypatch):
    # a check that the fast path is used at all (else the test above proves nothing about it)
    from tsla.report.runs_csv import blocks

    taken = []
    fast = blocks._fast
    monkeypatch.setattr(blocks, "_fast", lambda *a: taken.append(fast(*a) is not None) or fast(*a))
    monkeypatch.setattr("tsla.report.runs_csv.read.BLOCK_CHARS", 4096)
    read_runs_csv(_awkward(tmp_path / "runs.csv"))
    assert any(taken) and not all(taken)


def test_a_bad_cell_in_a_later_block_is_named_by_its_line_in_the_file(tmp_path, monkeypatch):
    path = _generated(tmp_path / "runs.csv", 5, 1000)
    lines = path.read_text().splitlines(keepends=True)
    monkeypatch.setattr("tsla.report.runs_csv.read.BLOCK_CHARS", 2048)
    (tmp_path / "nan.csv").write_text("".join(lines[:3700] + [lines[3700].replace(",40,", ",nan,")] + lines[3701:]))
    with pytest.raises(ConfigError, match=r"nan.csv line 3701: epochs = nan is not finite"):
        contrasts_from_csv(tmp_path / "nan.csv", None, 0.5)
    (tmp_path / "dup.csv").write_text("".join(lines + [lines[12]]))
    with pytest.raises(ConfigError, match=r"dup.csv lines 13 and 5002 are both regime r, cell baseline, seed 11:"):
        contrasts_from_csv(tmp_path / "dup.csv", None, 0.5)


def _t_quantile(p, df):
    """Student's t quantile in closed form, for 2 and 4 degrees of freedom (Shaw 2006), not through scipy."""
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    alpha = 4 * p * (1 - p)
    q = math.cos(math.acos(math.sqrt(alpha)) / 3) / math.sqrt(alpha)
    return math.copysign(2 * math.sqrt(q - 1), p - 0.5)


def _exact_sign_flip(d):
    observed = abs(sum(d))
    hits = sum(abs(sum(s * x for s, x in zip(signs, d))) >= observed - 1e-9
               for signs in itertools.product((1, -1), repeat=len(d)))
    return hits / 2 ** len(d)


def test_contrasts_from_a_runs_csv_are_the_hand_computed_ones(tmp_path):
    # A has seeds 0-4, B seeds 1-6 with seed 3's test_top1 empty, C seeds 1, 2, 4, 5, 6: A - B pairs seeds 1, 2, 4
    # (3 pairs), B - C seeds 1, 2, 4, 5, 6 (5 pairs); the rows are given out of order
    a = {0: 91.0, 1: 90.5, 2: 91.2, 3: 90.0, 4: 90.9}
    b = {1: 90.1, 2: 90.3, 3: None, 4: 90.2, 5: 89.9, 6: 90.6}
    c = {1: 89.8, 2: 90.4, 4: 89.6, 5: 89.0, 6: 90.1}
    rows = [("A-theta0.1", s, v) for s, v in a.items()] + [("B-theta0.1", s, v) for s, v in b.items()]
    rows += [("C-theta0.1", s, v) for s, v in c.items()]
    rows = rows[::2] + rows[1::2]
    with open(tmp_path / "runs.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(RUN_COLUMNS)
        for label, seed, top1 in rows:
            value = "" if top1 is None else top1
            writer.writerow(["r", label, label[0], 0.1, "", seed, 90, value, 0.3, 1.0, 99, 0.1, 5, "abc", 4, value, "",
                             "none"])
    found = contrasts_from_csv(tmp_path / "runs.csv", [[("A-theta0.1", "B-theta0.1"), ("B-theta0.1", "C-theta0.1")]],
                               0.5)
    for row, (x, y) in zip(found, ((a, b), (b, c))):
        d = [x[s] - y[s] for s in sorted(set(x) & set(y)) if x[s] is not None and y[s] is not None]
        n, mean = len(d), sum(d) / len(d)
        sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
        half = _t_quantile(0.975, n - 1) * sd / math.sqrt(n)
        assert row["n_pairs"] == n and row["mean_diff"] == pytest.approx(mean, abs=1e-12)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((mean - half, mean + half), abs=1e-9)
        assert row["p_raw"] == pytest.approx(_exact_sign_flip(d), abs=1e-12)
    p = sorted((r["p_raw"], i) for i, r in enumerate(found))  # Holm over the family of two, by hand
    holm = {p[0][1]: min(1, 2 * p[0][0])}
    holm[p[1][1]] = max(holm[p[0][1]], min(1, p[1][0]))
    assert [r["p_holm"] for r in found] == pytest.approx([holm[0], holm[1]])
    assert [r["n_pairs"] for r in found] == [3, 5]


def test_the_benchmark_writes_its_table(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_paired", "--rows", "2000", "--case", "2", "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert (row["cells"], row["seeds"], row["contrasts"], row["exit"]) == (4, 500, 3, 0)
    assert row["peak_rss_kib"] >= row["import_rss_kib"] > 0 and row["seconds"] > 0
    assert "| few cells, many seeds | 2,000 | 4 x 500 | 3 |" in (tmp_path / "results.md").read_text()
