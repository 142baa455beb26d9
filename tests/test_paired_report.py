"""tsla report --paired: the files a user reads (runs.csv, contrasts.csv, speed.csv, paired.md), from run folders
written by hand, and contrasts.csv recomputed from runs.csv alone."""

import csv
import json

import numpy as np
import pytest
import yaml
from scipy import stats

from tsla.cli import main
from tsla.report.paired import CONTRAST_COLUMNS, RUN_COLUMNS

FINAL = {"lsr": [0.901, 0.897, 0.905, 0.899], "tsla@3": [0.906, 0.899, 0.911, 0.903], "baseline": [0.9, 0.893, 0.9, 0.9]}


def _run(folder, method, theta, seed, final_top1):
    folder.mkdir(parents=True)
    cfg = {"dataset": "fashion-mnist", "epochs": 5, "method": method, "theta": theta, "seed": seed}
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    # validation curve: rises 0.80, 0.84, ... ; TSLA reaches LSR's final validation value one epoch earlier
    offset = 0.04 if method == "tsla@3" else 0.0
    rows = [{"epoch": e, "val_top1": min(0.80 + 0.04 * e + offset, 0.99), "train_onehot_loss": 1.0 / (e + 1)}
            for e in range(5)]
    rows[-1].update(test_top1=final_top1, test_nll=0.3, test_ece=0.01, train_top1=0.99)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"status": "finished", "method": method, "theta": theta, "seed": seed, "epochs": 5,
               "final": rows[-1], "best": {"test_top1": final_top1, "epoch": 4}, "git_commit": "abc123",
               "config": cfg}
    (folder / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def regime(tmp_path):
    root = tmp_path / "r1"
    for method, values in FINAL.items():
        for seed, value in enumerate(values):
            name = f"{method}-seed{seed}" if method == "baseline" else f"{method}-theta0.1-seed{seed}"
            _run(root / name, method, 0.1, seed, value)
    return root


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_paired_report_writes_the_tables_a_user_reads(regime, tmp_path, capsys):
    out = tmp_path / "evidence"
    assert main(["report", str(regime), "--paired", "--out", str(out),
                 "--contrasts", "tsla@3-theta0.1:lsr-theta0.1;lsr-theta0.1:baseline"]) == 0
    assert "tsla@3-theta0.1 | lsr-theta0.1 | 4 |" in capsys.readouterr().out
    runs = _read(out / "runs.csv")
    assert list(runs[0]) == list(RUN_COLUMNS) and len(runs) == 12
    row = next(r for r in runs if r["label"] == "tsla@3-theta0.1" and r["seed"] == "2")
    assert float(row["test_top1"]) == pytest.approx(91.1) and row["regime"] == "r1" and row["commit"] == "abc123"
    found = _read(out / "contrasts.csv")
    assert list(found[0]) == list(CONTRAST_COLUMNS)
    first = found[0]
    diffs = 100 * (np.array(FINAL["tsla@3"]) - np.array(FINAL["lsr"]))
    ci = stats.ttest_rel(100 * np.array(FINAL["tsla@3"]), 100 * np.array(FINAL["lsr"])).confidence_interval()
    assert float(first["mean_diff"]) == pytest.approx(diffs.mean(), abs=1e-5)
    assert (float(first["ci_low"]), float(first["ci_high"])) == pytest.approx((ci.low, ci.high), abs=1e-4)
    assert float(first["p_raw"]) == pytest.approx(2 / 16)  # all four differences positive: 2 of 16 sign patterns
    speed = _read(out / "speed.csv")
    assert [(r["a"], float(r["mean_diff"])) for r in speed] == [("tsla@3-theta0.1", -1.0)]  # one epoch earlier
    assert (out / "paired.md").read_text().startswith("# Paired analysis")


def test_contrasts_recompute_from_runs_csv_alone(regime, tmp_path):
    assert main(["report", str(regime), "--paired", "--out", str(tmp_path / "a")]) == 0
    assert main(["report", "--runs-csv", str(tmp_path / "a" / "runs.csv"), "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a" / "contrasts.csv").read_text() == (tmp_path / "b" / "contrasts.csv").read_text()


def test_paired_report_input_errors_are_one_line(regime, tmp_path, capsys):
    assert main(["report", str(regime), "--paired", "--contrasts", "tsla@3-theta0.1:lsr-theta0.4",
                 "--out", str(tmp_path / "x")]) == 2
    assert "has no cell 'lsr-theta0.4'" in capsys.readouterr().err
    assert main(["report", str(regime), "--paired", "--margin", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--margin must be > 0" in capsys.readouterr().err


def test_curves_with_more_than_ten_cells_give_each_its_own_colour(tmp_path, monkeypatch):
    # a study regime has 13 cells; matplotlib's default cycle has 10 colours, so cells 0 and 10 used to look alike
    from matplotlib.colors import to_hex

    from tsla.report import plots
    from tsla.report.collect import collect_runs
    from .test_report import make_run

    for i in range(12):
        make_run(tmp_path / "grid", "lsr", 0, [0.5, 0.6], theta=round(0.05 * (i + 1), 2),
                 name=f"lsr-theta{i}-seed0")
    seen = []
    real = plots._colour

    def recording(index, many):
        colour = real(index, many)
        seen.append(to_hex(colour))
        return colour

    monkeypatch.setattr(plots, "_colour", recording)
    plots.plot_curves(collect_runs([tmp_path / "grid"]), tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert len(seen) == 12 and len(set(seen)) == 12
