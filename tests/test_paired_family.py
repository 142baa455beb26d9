"""Holm's family is never smaller than the contrasts asked for, and no verdict rests on an overflow (issue 30,
items 2 and 6): a declared contrast that cannot be computed is refused; a default one stays in the table with a
note and counts in Holm; differences of ±1e308 and an absurd --margin are refused in one line."""

import csv

import pytest

from tsla.cli import main
from tsla.report.runs_csv import RUN_COLUMNS


def _runs_csv(path, cells):
    """``cells``: {label: {seed: (test_top1, test_top1_at_best_val)}} of one regime 'r', theta 0.1; None: empty."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(RUN_COLUMNS)
        for label, seeds in cells.items():
            method = label.split("-theta")[0]
            for seed, (last, best) in seeds.items():
                row = {"regime": "r", "label": label, "method": method, "theta": 0.1, "switch_epoch": "", "seed": seed,
                       "val_top1": "", "test_top1": "" if last is None else last, "test_nll": 0.3, "test_ece": 1.0,
                       "train_top1": 99.0, "train_onehot_loss": 0.1, "epochs": 5, "commit": "abc",
                       "best_val_epoch": 3, "test_top1_at_best_val": "" if best is None else best,
                       "noise_memorised_final": "", "label_noise_type": "none"}
                writer.writerow([row[c] for c in RUN_COLUMNS])
    return path


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _one_line(capsys):
    err = capsys.readouterr().err
    assert err.startswith("tsla: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# six seeds: lsr - baseline is +1 point at every seed, so its exact sign-flip p is 2 / 2^6 = 0.03125 by hand
SEEDS = range(6)
CELLS = {"baseline": {s: (90.0, 90.0) for s in SEEDS},
         "lsr-theta0.1": {s: (91.0, 91.0) for s in SEEDS},
         "tsla@3-theta0.1": {s: (91.0 + s, None) for s in SEEDS}}  # no best-validation value at any seed


def test_a_declared_contrast_without_a_value_is_refused(tmp_path, capsys):
    """It was dropped: Holm ran over the one left, 0.031 'a > b' instead of 0.0625 'undecided'."""
    path = _runs_csv(tmp_path / "runs.csv", CELLS)
    argv = ["report", "--runs-csv", str(path), "--measure", "best-val", "--contrasts",
            "tsla@3-theta0.1:lsr-theta0.1,lsr-theta0.1:baseline"]
    assert main(argv) == 2
    err = _one_line(capsys)
    assert "--contrasts tsla@3-theta0.1:lsr-theta0.1: in regime r no seed the two cells share has a value of " \
           "test_top1_at_best_val in both" in err
    assert not (tmp_path / "contrasts.csv").exists()


def test_a_default_contrast_without_a_value_stays_in_the_table_and_in_holm(tmp_path):
    path = _runs_csv(tmp_path / "runs.csv", CELLS)
    assert main(["report", "--runs-csv", str(path), "--measure", "best-val"]) == 0
    rows = {(r["a"], r["b"]): r for r in _read(tmp_path / "contrasts.csv")}
    assert set(rows) == {("tsla@3-theta0.1", "lsr-theta0.1"), ("lsr-theta0.1", "baseline")}
    empty = rows[("tsla@3-theta0.1", "lsr-theta0.1")]
    assert empty["n_pairs"] == "0" and empty["verdict"] == "not computed: no shared seed has test_top1_at_best_val"
    done = rows[("lsr-theta0.1", "baseline")]
    assert float(done["p_raw"]) == pytest.approx(2 / 64)
    assert float(done["p_holm"]) == pytest.approx(2 * 2 / 64)  # a family of two, by hand
    assert done["verdict"] == "undecided"


def test_a_default_contrast_whose_cells_share_no_seed_is_noted(tmp_path):
    cells = {"baseline": {s + 6: (90.0, 90.0) for s in SEEDS}, "lsr-theta0.1": {s: (91.0, 91.0) for s in SEEDS},
             "tsla@3-theta0.1": {s: (92.0, 92.0) for s in SEEDS}}
    path = _runs_csv(tmp_path / "runs.csv", cells)
    assert main(["report", "--runs-csv", str(path)]) == 0
    rows = {(r["a"], r["b"]): r for r in _read(tmp_path / "contrasts.csv")}
    assert rows[("lsr-theta0.1", "baseline")]["verdict"] == "not computed: the cells share no seed"
    assert float(rows[("tsla@3-theta0.1", "lsr-theta0.1")]["p_holm"]) == pytest.approx(2 * 2 / 64)


@pytest.mark.parametrize("a, b", [(1e308, -1e308), (1e200, 0.0)])
def test_overflowing_differences_are_refused(tmp_path, capsys, a, b):
    """1e308 - (-1e308) is inf (and 1e200 squared overflows): the report said 'a > b' with p = 0."""
    cells = {"lsr-theta0.1": {s: (a if s == 0 else 91.0, 91.0) for s in SEEDS},
             "baseline": {s: (b if s == 0 else 90.0, 90.0) for s in SEEDS}}
    path = _runs_csv(tmp_path / "runs.csv", cells)
    assert main(["report", "--runs-csv", str(path)]) == 2
    assert "contrast lsr-theta0.1:baseline in regime r: a per-seed difference of test_top1 is" in _one_line(capsys)
    assert not (tmp_path / "contrasts.csv").exists()


def test_an_absurd_margin_is_refused(tmp_path, capsys):
    path = _runs_csv(tmp_path / "runs.csv", CELLS)
    assert main(["report", "--runs-csv", str(path), "--margin", "1e308"]) == 2
    assert "--margin 1e+308 is more than 100 percentage points" in _one_line(capsys)
    assert main(["report", "--runs-csv", str(path), "--margin", "100"]) == 0  # the widest meaningful margin
