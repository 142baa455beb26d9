"""tsla report --paired / --runs-csv refuse what would give a silent wrong verdict, write nothing until every check
has passed, and scale (issue 22, items 4, 8-10, 13-14)."""

import csv
import itertools
import os
import resource
import shutil
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

from tsla.cli import main
from tsla.report.runs_csv import REQUIRED_RUN_COLUMNS as RUN_COLUMNS
from tsla.report import stats
from tsla.report.stats import sign_flip_p

from .test_paired_report import FINAL, _read, _run


def _regime(root, scale=1.0):
    for method, values in FINAL.items():
        for seed, value in enumerate(values):
            name = f"{method}-seed{seed}" if method == "baseline" else f"{method}-theta0.1-seed{seed}"
            _run(root / name, method, 0.1, seed, value * scale)
    return root


def _runs_csv(path, rows, bom=False):
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(RUN_COLUMNS)
        for regime, label, seed, top1 in rows:
            method = label.split("-theta")[0]
            writer.writerow([regime, label, method, 0.1, "", seed, "", top1, 0.3, 1.0, 99.0, 0.1, 5, "abc"])
    return path


def _one_line(capsys):
    err = capsys.readouterr().err
    assert err.startswith("tsla: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_refused_contrast_leaves_the_earlier_report_whole(tmp_path, capsys):
    r1 = _regime(tmp_path / "r1")
    out = tmp_path / "evidence"
    assert main(["report", str(r1), "--paired", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r2 = _regime(tmp_path / "r2", 0.9)
    assert main(["report", str(r1), str(r2), "--paired", "--out", str(out), "--contrasts", "lsr-theta0.1:nothing"]) == 2
    assert "has no cell 'nothing'" in _one_line(capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # runs.csv not replaced by r1 + r2's rows


def _limited_file_size(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_leaves_the_earlier_report_whole(tmp_path):
    # a process whose files may not grow past 600 bytes: runs.csv (12 rows) fits no longer, as on a full disk
    r1 = _regime(tmp_path / "r1")
    out = tmp_path / "evidence"
    assert main(["report", str(r1), "--paired", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _regime(tmp_path / "r1" / "more", 0.95)  # more runs: the new runs.csv is longer
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", "import signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                           "from tsla.cli import main; sys.exit(main(sys.argv[1:]))", "report", str(r1), "--paired",
                           "--out", str(out)], capture_output=True, text=True, env=env,
                          preexec_fn=_limited_file_size(600), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "cannot write the paired report in" in proc.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_unwritable_out_is_one_line(tmp_path, capsys):
    r1 = _regime(tmp_path / "r1")
    (tmp_path / "afile").write_text("mine")
    assert main(["report", str(r1), "--paired", "--out", str(tmp_path / "afile")]) == 2
    assert "cannot write the paired report in" in _one_line(capsys)
    assert (tmp_path / "afile").read_text() == "mine"
    runs_csv = _runs_csv(tmp_path / "runs.csv", [("r", "lsr-theta0.1", 0, 90.0), ("r", "baseline", 0, 89.0)])
    assert main(["report", "--runs-csv", str(runs_csv), "--out", str(tmp_path / "afile")]) == 2
    assert "cannot write" in _one_line(capsys)


@pytest.mark.parametrize("value, message", [("nan", "is not finite"), ("inf", "is not finite"),
                                            ("-inf", "is not finite"), ("high", "is not a number")])
def test_non_finite_or_text_numbers_in_runs_csv_are_refused(tmp_path, capsys, value, message):
    rows = [("r", label, seed, 90.0 + seed) for label in ("lsr-theta0.1", "baseline") for seed in range(6)]
    rows[2] = ("r", "lsr-theta0.1", 2, value)
    path = _runs_csv(tmp_path / "runs.csv", rows)
    assert main(["report", "--runs-csv", str(path), "--out", str(tmp_path / "o")]) == 2
    err = _one_line(capsys)
    assert f"line 4: test_top1 = {value!r}" in err or f"line 4: test_top1 = {value}" in err
    assert message in err and not (tmp_path / "o" / "contrasts.csv").exists()


def test_a_duplicated_run_row_is_refused(tmp_path, capsys):
    rows = [("r", label, seed, 90.0 + seed) for label in ("lsr-theta0.1", "baseline") for seed in range(4)]
    path = _runs_csv(tmp_path / "runs.csv", rows + [("r", "baseline", 1, 50.0)])
    assert main(["report", "--runs-csv", str(path)]) == 2
    assert "lines 7 and 10 are both regime r, cell baseline, seed 1" in _one_line(capsys)


def test_a_declared_contrast_without_pairs_is_refused(tmp_path, capsys):
    # a and b share no seed; c - d is +1 at 5 seeds: alone, its p is 2/32 = 0.0625, not significant
    rows = [("r", "a-theta0.1", s, 90.0) for s in range(5)] + [("r", "b-theta0.1", s, 90.0) for s in range(5, 10)]
    rows += [("r", "c-theta0.1", s, 91.0 + s) for s in range(5)] + [("r", "d-theta0.1", s, 90.0 + s) for s in range(5)]
    path = _runs_csv(tmp_path / "runs.csv", rows)
    assert main(["report", "--runs-csv", str(path), "--contrasts", "a-theta0.1:b-theta0.1,c-theta0.1:d-theta0.1"]) == 2
    assert "the two cells share no seed" in _one_line(capsys)
    assert main(["report", "--runs-csv", str(path), "--contrasts", "c-theta0.1:d-theta0.1"]) == 0
    (row,) = _read(tmp_path / "contrasts.csv")
    assert float(row["p_holm"]) == pytest.approx(2 / 32) and row["verdict"] == "undecided"


def test_a_bom_and_spaces_in_contrast_names_are_read_as_meant(tmp_path, capsys):
    rows = [("r", label, seed, 90.0 + seed + (label == "lsr-theta0.1")) for label in ("lsr-theta0.1", "baseline")
            for seed in range(6)]
    plain = _runs_csv(tmp_path / "plain.csv", rows)
    bom = _runs_csv(tmp_path / "bom.csv", rows, bom=True)
    assert bom.read_bytes().startswith(b"\xef\xbb\xbf")
    spaced = " lsr-theta0.1 : baseline "
    assert main(["report", "--runs-csv", str(plain), "--out", str(tmp_path / "a"), "--contrasts", spaced]) == 0
    assert main(["report", "--runs-csv", str(bom), "--out", str(tmp_path / "b")]) == 0
    a, b = _read(tmp_path / "a" / "contrasts.csv"), _read(tmp_path / "b" / "contrasts.csv")
    assert a == b and a[0]["a"] == "lsr-theta0.1" and float(a[0]["mean_diff"]) == pytest.approx(1.0)


def test_an_infinite_margin_is_refused(tmp_path, capsys):
    path = _runs_csv(tmp_path / "runs.csv", [("r", "lsr-theta0.1", 0, 90.0), ("r", "baseline", 0, 89.0)])
    assert main(["report", "--runs-csv", str(path), "--margin", "inf"]) == 2
    assert "--margin must be > 0 and finite" in _one_line(capsys)


def test_regimes_of_one_folder_name_stay_apart_and_one_folder_twice_is_refused(tmp_path, capsys):
    clean, noisy = _regime(tmp_path / "a" / "r1"), _regime(tmp_path / "b" / "r1", 0.5)
    out = tmp_path / "evidence"
    assert main(["report", str(clean), str(noisy), "--paired", "--out", str(out)]) == 0
    runs = _read(out / "runs.csv")
    assert sorted({r["regime"] for r in runs}) == ["a/r1", "b/r1"]
    noisy_lsr = sorted(float(r["test_top1"]) for r in runs if r["regime"] == "b/r1" and r["label"] == "lsr-theta0.1")
    assert noisy_lsr == pytest.approx(sorted(50 * v for v in FINAL["lsr"]))  # 100 * 0.5 * value: not pooled
    capsys.readouterr()
    assert main(["report", str(clean), str(tmp_path / "a" / ".." / "a" / "r1"), "--paired", "--out", str(out)]) == 2
    assert "again: give each regime once" in _one_line(capsys)


def test_two_runs_of_one_cell_and_seed_in_a_regime_are_refused(tmp_path, capsys):
    r1 = _regime(tmp_path / "r1")
    shutil.copytree(r1 / "lsr-theta0.1-seed0", r1 / "copy-of-lsr-seed0")
    assert main(["report", str(r1), "--paired", "--out", str(tmp_path / "o")]) == 2
    err = _one_line(capsys)
    assert "copy-of-lsr-seed0" in err and "duplicate of" in err and "keep one run per cell and seed" in err


def _exact_p(d):
    """The sign-flip p by full enumeration, in chunks (an independent count)."""
    n, hits = len(d), 0
    observed = abs(np.mean(d))
    for first in itertools.product((1.0, -1.0), repeat=n - 12):
        rest = np.array(list(itertools.product((1.0, -1.0), repeat=12)))
        sums = rest @ np.asarray(d[n - 12:]) + np.dot(first, d[: n - 12])
        hits += int(np.count_nonzero(np.abs(sums) / n >= observed - 1e-12))
    return hits / 2**n


def test_the_monte_carlo_sign_flip_agrees_with_full_enumeration():
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.2, 0.5, 0.9):
        d = rng.normal(shift, 1.0, 20)
        exact, draws = _exact_p(d), stats.monte_carlo_draws(20)
        # stopped after 100 hits: about 10% relative error; else the full draw's binomial error
        assert abs(sign_flip_p(d) - exact) < max(0.4 * exact, 4 * np.sqrt(exact / draws) + 2 / draws), shift


def test_a_sign_flip_p_beyond_the_sample_is_hoeffdings_bound():
    d = np.full(40, 1.0)  # all 40 differences positive: exact p = 2 / 2^40, far below 1 / 2^16
    bound = 2 * np.exp(-(40.0 ** 2) / (2 * 40.0))
    assert sign_flip_p(d) == pytest.approx(bound) and 2 / 2**40 <= sign_flip_p(d) < 2**-16


def test_the_sign_flip_of_many_pairs_runs_in_bounded_memory_and_time():
    # a mean 3.1 standard errors from 0: p near 0.002, so every one of the 2^11 patterns is drawn (no early stop)
    d = np.random.default_rng(0).normal(3.1 / np.sqrt(200_000), 1.0, 200_000)
    tracemalloc.start()
    started = time.perf_counter()
    p = sign_flip_p(d)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert 0 < p < 0.01 and peak < 200 * 2**20 and seconds < 30  # the old draw asked for 2^16 x 200,000 floats (98 GiB)


def test_many_cells_and_seeds_are_grouped_once(tmp_path):
    # 200 LSR cells against one baseline, 200 seeds each: 40,200 rows, 200 contrasts (Monte Carlo, 200 pairs)
    rows = [("r", f"lsr-theta{t}", s, 90.0 + (s % 7) + t % 3) for t in range(200) for s in range(200)]
    rows += [("r", "baseline", s, 90.0 + (s % 5)) for s in range(200)]
    path = _runs_csv(tmp_path / "runs.csv", rows)
    started = time.perf_counter()
    assert main(["report", "--runs-csv", str(path)]) == 0
    assert time.perf_counter() - started < 60
    assert len(_read(tmp_path / "contrasts.csv")) == 200
