"""tsla report with early-stopped measures and memorisation: runs.csv's new columns, --measure best-val, the plain
table's best-validation column and the memorisation panel, from run folders written by hand."""

import csv
import json

import matplotlib.image
import numpy as np
import pytest
import yaml

from tsla.cli import main
from tsla.report import collect_runs, format_markdown, summarize
from tsla.report.paired import REQUIRED_RUN_COLUMNS, RUN_COLUMNS
from tsla.report.plots import plot_curves

LAST = {"lsr": [0.60, 0.62, 0.61, 0.63], "tsla@3": [0.64, 0.65, 0.66, 0.64]}
AT_BEST = {"lsr": [0.70, 0.69, 0.72, 0.70], "tsla@3": [0.68, 0.70, 0.69, 0.69]}
BEST_EPOCH = {"lsr": 1, "tsla@3": 4}


def _run(folder, method, seed, best_val=True):
    folder.mkdir(parents=True)
    cfg = {"dataset": "fashion-mnist", "epochs": 5, "method": method, "theta": 0.4, "seed": seed,
           "label_noise": 0.4, "label_noise_type": "pair", "val_size": 100}
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    rows = [{"epoch": e, "val_top1": 0.5 + 0.01 * e, "train_onehot_loss": 1.0 / (e + 1),
             "noise_memorised": 0.1 * e + (0.05 if method == "lsr" else 0.0), "noise_corrected": 0.5 - 0.05 * e}
            for e in range(5)]
    rows[-1].update(test_top1=LAST[method][seed], test_nll=1.0, test_ece=0.1, train_top1=0.9)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"status": "finished", "method": method, "theta": 0.4, "seed": seed, "epochs": 5, "final": rows[-1],
               "best": {"test_top1": LAST[method][seed], "epoch": 4}, "git_commit": "abc", "config": cfg}
    if best_val:
        summary["best_val"] = {"epoch": BEST_EPOCH[method], "val_top1": 0.55, "val_nll": 1.2,
                               "test_top1": AT_BEST[method][seed], "test_nll": 1.1, "test_ece": 0.05}
    (folder / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def regime(tmp_path):
    root = tmp_path / "pair40"
    for method in LAST:
        for seed in range(4):
            _run(root / f"{method}-theta0.4-seed{seed}", method, seed)
    return root


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_runs_csv_carries_the_best_validation_measure_and_the_noise(regime, tmp_path):
    assert main(["report", str(regime), "--paired", "--out", str(tmp_path / "out")]) == 0
    runs = _read(tmp_path / "out" / "runs.csv")
    assert list(runs[0]) == list(RUN_COLUMNS)
    row = next(r for r in runs if r["label"] == "tsla@3-theta0.4" and r["seed"] == "2")
    assert row["best_val_epoch"] == "4" and float(row["test_top1_at_best_val"]) == pytest.approx(69.0)
    assert float(row["noise_memorised_final"]) == pytest.approx(40.0) and row["label_noise_type"] == "pair"


def test_measure_best_val_contrasts_the_early_stopped_test_top1(regime, tmp_path):
    out = tmp_path / "out"
    assert main(["report", str(regime), "--paired", "--measure", "best-val", "--out", str(out)]) == 0
    found = _read(out / "contrasts.csv")
    assert [(c["a"], c["b"], c["measure"]) for c in found] == [("tsla@3-theta0.4", "lsr-theta0.4", "best-val")]
    diffs = 100 * (np.array(AT_BEST["tsla@3"]) - np.array(AT_BEST["lsr"]))  # -2, +1, -3, -1
    assert float(found[0]["mean_diff"]) == pytest.approx(diffs.mean(), abs=1e-5)
    assert "at each run's best validation epoch" in (out / "paired.md").read_text()
    # the last-epoch measure of the same runs points the other way
    assert main(["report", str(regime), "--paired", "--out", str(tmp_path / "last")]) == 0
    last = _read(tmp_path / "last" / "contrasts.csv")[0]
    assert last["measure"] == "last"
    assert float(last["mean_diff"]) == pytest.approx(100 * np.mean(np.subtract(LAST["tsla@3"], LAST["lsr"])), abs=1e-5)
    # and contrasts.csv recomputes from runs.csv alone, byte for byte, for either measure
    assert main(["report", "--runs-csv", str(out / "runs.csv"), "--measure", "best-val", "--out",
                 str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "contrasts.csv").read_text() == (out / "contrasts.csv").read_text()


def test_runs_without_best_val_give_empty_cells_never_a_number(tmp_path, capsys):
    root = tmp_path / "old"
    for method in LAST:
        for seed in range(2):
            _run(root / f"{method}-theta0.4-seed{seed}", method, seed, best_val=False)
    out = tmp_path / "out"
    assert main(["report", str(root), "--paired", "--out", str(out)]) == 0
    runs = _read(out / "runs.csv")
    assert {(r["best_val_epoch"], r["test_top1_at_best_val"]) for r in runs} == {("", "")}
    capsys.readouterr()
    # no pair has the measure: refused, where it wrote an empty contrast table with exit 0 (issue 30, item 11)
    assert main(["report", str(root), "--paired", "--measure", "best-val", "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no run in {root} has a test_top1_at_best_val" in err
    assert err.strip().endswith("use --measure last")
    assert not (tmp_path / "none").exists()
    # recomputed from runs.csv, every default contrast stays in the table, noted (none vanishes)
    argv = ["report", "--runs-csv", str(out / "runs.csv"), "--measure", "best-val", "--out", str(tmp_path / "n")]
    assert main(argv) == 0
    noted = _read(tmp_path / "n" / "contrasts.csv")
    assert noted and {r["verdict"] for r in noted} == {"not computed: no shared seed has test_top1_at_best_val"}
    md = format_markdown(summarize(collect_runs([root], [])))
    assert "| 61.00 ± 1.41 | — | — |" in md  # lsr (0.60, 0.62): final top-1, then no best-val numbers
    # a runs.csv written before these columns: the last measure recomputes, best-val says what is missing
    old = tmp_path / "old.csv"
    with open(old, "w", newline="") as f:
        writer = csv.DictWriter(f, REQUIRED_RUN_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(runs)
    capsys.readouterr()
    assert main(["report", "--runs-csv", str(old), "--out", str(tmp_path / "o1")]) == 0
    assert main(["report", "--runs-csv", str(old), "--measure", "best-val", "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no test_top1_at_best_val column" in err


def test_the_plain_report_shows_the_last_and_the_best_validation_measure(regime):
    md = format_markdown(summarize(collect_runs([regime], [])))
    line = next(x for x in md.splitlines() if x.startswith("| tsla@3"))
    # final top-1 64.75 ± 0.96, top-1 at best val 69.00 ± 0.82, best val epoch 4.0
    assert "| 64.75 ± 0.96 | 69.00 ± 0.82 | 4.0 ± 0.0 |" in line


def test_curves_have_a_memorisation_panel_when_runs_logged_it(regime, tmp_path):
    runs = collect_runs([regime], [])
    plot_curves(runs, tmp_path / "memo.png", "val")
    for run in runs:
        for row in run.metrics:
            del row["noise_memorised"], row["noise_corrected"]
    plot_curves(runs, tmp_path / "plain.png", "val")
    memo, plain = matplotlib.image.imread(tmp_path / "memo.png"), matplotlib.image.imread(tmp_path / "plain.png")
    assert memo.shape[1] == pytest.approx(1.5 * plain.shape[1], abs=2)  # a third panel beside the two
    right = memo[:, 2 * memo.shape[1] // 3 + 10:, :3]  # the third panel: lsr's lines in C0, tsla@3's in C1
    for colour in ((0x1f, 0x77, 0xb4), (0xff, 0x7f, 0x0e)):
        assert (np.abs(right - np.array(colour) / 255).max(axis=2) < 0.02).sum() > 100
