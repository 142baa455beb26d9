"""First-run polish (issue 14): what a new user reads in the first ten minutes says what the run does."""

import json
import os
import re
from pathlib import Path

import pytest

from tsla.cli import main
from tsla.training.progress import describe_schedule
from tsla.report import write_report
from tsla.smoothing.methods import parse_method

from .test_report import make_run

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "figures"


def _train(root, out, method, theta="0.3", epochs="3"):
    return ["train", "--data-root", str(root), "--epochs", epochs, "--method", method, "--theta", theta,
            "--batch-size", "8", "--device", "cpu", "--no-progress", "--out", str(out)]


def _metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_banner_and_log_agree_with_what_was_trained(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train(tiny_fashion, out, "tsla@2")) == 0
    log = capsys.readouterr().out
    rows = _metrics(out)
    # the banner's switch epoch is the first epoch metrics.jsonl records without smoothing (epochs from 0)
    first_off = next(r["epoch"] for r in rows if r["theta"] == 0.0)
    assert first_off == 2 and [r["theta"] for r in rows] == [0.3, 0.3, 0.0]
    assert f"tsla: tsla@2: theta 0.3 in epochs 0-{first_off - 1}, then 0 from epoch {first_off};" in log
    # one numbering: each log line names the epoch metrics.jsonl calls it, with the theta it recorded
    lines = re.findall(r"^epoch +(\d+) of 0-2 .* theta (\d\.\d+)", log, flags=re.M)
    assert [(int(e), float(t)) for e, t in lines] == [(r["epoch"], r["theta"]) for r in rows]
    # and the schedule table printed before training uses the same numbers: epochs 0-1 smoothed, 2 not
    assert re.search(r"^0-1 +0\.3000", log, flags=re.M) and re.search(r"^2 +0\.0000", log, flags=re.M)


def test_the_baseline_banner_says_theta_0(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train(tiny_fashion, out, "baseline", epochs="1")) == 0
    log = capsys.readouterr().out
    assert "tsla: baseline: theta 0 in every epoch (one-hot labels);" in log and "0.3" not in log.splitlines()[0]
    assert [r["theta"] for r in _metrics(out)] == [0.0]


@pytest.mark.parametrize("method, expected", [
    ("lsr", "theta 0.2 in every epoch"),
    ("tsla@1", "theta 0.2 in epoch 0, then 0 from epoch 1"),
    ("tsla@0", "theta 0 in every epoch (one-hot labels)"),
    ("tsla@12", "theta 0.2 in every epoch"),  # S = the run length: it never drops
    ("linear@4", "theta 0.2 in epoch 0, decaying to 0 from epoch 4"),  # 0.2 * (1 - e/4) is 0 at e = 4
    ("tsla-auto", "theta 0.2 until tsla-auto drops it to 0"),
])
def test_schedule_descriptions(method, expected):
    assert describe_schedule(parse_method(method, 0.2, 12), 12) == expected


def test_dry_run_needs_no_out_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--preset", "fashion-mnist", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "method: tsla@6" in out and re.search(r"^0-5 +0\.1000", out, flags=re.M)
    assert main(["compare", "--preset", "fashion-mnist", "--methods", "lsr,tsla@6", "--dry-run"]) == 0
    assert "OUT/tsla@6-seed0: tsla@6, theta 0.1, seed 0" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_shortened_preset_names_milestones_that_work(capsys):
    assert main(["train", "--preset", "cifar100-resnet18", "--epochs", "10", "--dry-run"]) == 2
    err = capsys.readouterr().err
    suggested = re.search(r"--milestones (\S+) \(or", err).group(1)
    assert suggested == "5,7"
    # the suggestion is accepted (with a method that fits the shorter run)
    assert main(["train", "--preset", "cifar100-resnet18", "--epochs", "10", "--milestones", suggested,
                 "--method", "tsla@5", "--dry-run"]) == 0


def test_report_paths_are_relative_to_the_report_folder(tmp_path):
    root = tmp_path / "cmp"
    make_run(root, "lsr", 0, [0.5, 0.6])
    make_run(root, "tsla@1", 0, [0.5, 0.7])
    write_report([root])
    saved = json.loads((root / "summary.json").read_text())
    assert saved["run_paths"] == ["lsr-seed0", "tsla@1-seed0"]
    assert sorted(r["path"] for r in saved["runs"]) == ["lsr-seed0", "tsla@1-seed0"]
    write_report([root], tmp_path / "elsewhere" / "report")
    saved = json.loads((tmp_path / "elsewhere" / "report" / "summary.json").read_text())
    assert saved["run_paths"] == ["../../cmp/lsr-seed0", "../../cmp/tsla@1-seed0"]


@pytest.mark.parametrize("name", ["replication-summary.json", "theory-auto-summary.json"])
def test_committed_summaries_hold_no_machine_paths(name):
    saved = json.loads((FIGURES / name).read_text())
    paths = saved["run_paths"] + [r["path"] for r in saved["runs"]]
    assert paths and not any(os.path.isabs(p) for p in paths)
    assert all(re.fullmatch(r"(\.\./replication/)?[\w@.-]+-seed\d", p) for p in paths), paths
