"""What a rerun of ``tsla select`` reuses must be what it claims: finished runs trained on the data found now (their
fingerprints), candidate metrics equal to the checksummed checkpoint history, the chosen runs' own best.pt, a
selection.json that answers this request, and a cost line that counts the epochs the runs actually trained."""

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
import torch

from tsla.cli import main

from .conftest import write_idx
from .test_select import _fake_fashion

EPOCHS = 4


def _argv(data: Path, out: Path, *extra: str) -> list[str]:
    """A small select: baseline, LSR(0.4) and TSLA(1) at seed 0, 4 epochs (each flag given once)."""
    return ["select", "--data-root", str(data), "--train-subset", "100", "--val-size", "60", "--epochs", str(EPOCHS),
            "--milestones", "2", "--lr", "0.05", "--batch-size", "20", "--thetas", "0.4", "--switch-at", "1",
            "--seeds", "0", "--no-augment", "--threads", "1", "--device", "cpu", "--out", str(out), "--no-progress",
            *extra]


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """One finished select (its folder, selection.json); tests work on copies."""
    base = tmp_path_factory.mktemp("reuse")
    data = _fake_fashion(base / "data")
    out = base / "sel"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(_argv(data, out)) == 0
    return out, json.loads((out / "selection.json").read_text())


@pytest.fixture
def again(first, tmp_path):
    """A copy of the first select's folder and a fresh copy of its data (same bytes, another path)."""
    out = tmp_path / "sel"
    shutil.copytree(first[0], out)
    return out, _fake_fashion(tmp_path / "data")


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("tsla: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_rerun_on_the_same_data_elsewhere_reuses_every_run(first, again, capsys):
    out, data = again
    assert main(_argv(data, out)) == 0
    assert json.loads((out / "selection.json").read_text()) == first[1]
    assert capsys.readouterr().out.count("finished, skipped") == 3


def test_a_rerun_on_other_training_images_is_refused(again, capsys):
    """Finished runs were skipped unchecked: scores and test numbers came from the old images, exit 0."""
    out, data = again
    write_idx(data / "train-images-idx3-ubyte", torch.randint(0, 256, (300, 28, 28)), compress=False)
    before = (out / "selection.json").read_bytes()
    assert main(_argv(data, out)) == 2
    err = _one_error(capsys)
    assert "the training images or labels found now differ from those" in err and "baseline-seed0" in err
    assert (out / "selection.json").read_bytes() == before  # refused before anything changed


def test_a_rerun_on_other_test_images_is_refused(again, capsys):
    out, data = again
    write_idx(data / "t10k-images-idx3-ubyte", torch.randint(0, 256, (100, 28, 28)), compress=False)
    assert main(_argv(data, out)) == 2
    assert "the test or validation images or labels found now differ" in _one_error(capsys)


@pytest.mark.parametrize("damage", ["edit", "remove"])
def test_metrics_that_differ_from_the_checkpoint_are_never_scored(again, capsys, damage):
    """An edited value changed the choice, a removed line scored an earlier epoch; both exit 0 before."""
    out, data = again
    path = out / "tsla@1-seed0" / "metrics.jsonl"
    lines = path.read_text().splitlines()
    if damage == "edit":
        record = json.loads(lines[-1])
        record["val_top1"] = 1.0
        lines[-1] = json.dumps(record)
    else:
        lines = lines[:-1]
    path.write_text("\n".join(lines) + "\n")
    assert main(_argv(data, out)) == 2
    err = _one_error(capsys)
    assert str(path) in err and "checksummed checkpoint" in err and "--resume" in err


def test_another_runs_best_pt_is_not_tested_as_the_choice(again, capsys):
    out, data = again
    names = ["baseline-seed0", "lsr-seed0", "tsla@1-seed0"]
    originals = {name: (out / name / "best.pt").read_bytes() for name in names}
    for name, other in zip(names, names[1:] + names[:1]):  # each run gets the next one's best.pt
        (out / name / "best.pt").write_bytes(originals[other])
    assert main(_argv(data, out, "--at", "best-val")) == 2
    assert "best.pt is not this run's best-validation weights" in _one_error(capsys)


def test_a_selection_of_another_request_is_moved_aside_and_the_new_one_records_its_request(again, capsys):
    out, data = again
    before = (out / "selection.json").read_bytes()
    (out / "selection-earlier-1.json").write_text("a file of the user's")  # never overwritten
    assert main(_argv(data, out, "--at", "last")) == 0  # the fixture's request scored at best-val, the default
    assert (out / "selection-earlier-1.json").read_text() == "a file of the user's"
    assert (out / "selection-earlier-2.json").read_bytes() == before
    new = json.loads((out / "selection.json").read_text())
    assert new["request"] == {"thetas": [0.4], "switch_at": [1], "seeds": [0], "criterion": "val_top1",
                              "at": "last", "halving": False, "theta_after": [], "rule": "best-mean"}
    assert f"moved {out / 'selection.json'} to {out / 'selection-earlier-2.json'}: it answers another request (its " \
           f"at differs)" in capsys.readouterr().out


def test_a_refused_request_leaves_the_earlier_selection_where_it_was(again, capsys):
    """A request refused before anything is trained (another --lr than the runs there) changes nothing."""
    out, data = again
    before = (out / "selection.json").read_bytes()
    argv = _argv(data, out, "--at", "best-val")
    argv[argv.index("--lr") + 1] = "0.1"
    assert main(argv) == 2
    assert "use another --out" in _one_error(capsys)
    assert (out / "selection.json").read_bytes() == before and not (out / "selection-earlier-1.json").exists()


def test_the_cost_line_counts_what_the_runs_trained(again, capsys):
    """TSLA(1) whose trunk kept no checkpoint after epoch 1 trains from epoch 0: 4 epochs, not the plan's 3."""
    out, data = again
    shutil.rmtree(out / "tsla@1-seed0")
    shutil.rmtree(out / "lsr-seed0" / "checkpoints")
    assert main(_argv(data, out)) == 0
    printed = capsys.readouterr().out
    assert "training from epoch 0" in printed
    # by hand: baseline 4 + LSR 4 + TSLA(1) trained from epoch 0, 4 = 12, against 3 x 4 = 12 independent
    assert "cost: 12 epochs trained (prefix-shared branches) against 12 for independent runs (100%)" in printed
    sel = json.loads((out / "selection.json").read_text())
    assert (sel["epochs_trained"], sel["epochs_independent"]) == (12, 12)


def test_the_first_cost_line_counts_the_branch(first):
    # by hand: baseline 4 + LSR 4 + TSLA(1) from epoch 1, 3 = 11
    assert (first[1]["epochs_trained"], first[1]["epochs_independent"]) == (11, 12)


def test_a_paired_report_on_a_select_folder_is_refused_not_empty(first, tmp_path, capsys):
    """Its candidates were never tested: the report wrote an empty contrast table, every contrast gone, exit 0."""
    out = first[0]
    assert main(["report", str(out), "--paired", "--out", str(tmp_path / "paired")]) == 2
    err = _one_error(capsys)
    assert f"no run in {out} has a test_top1 (tsla select's candidates are never tested)" in err
    assert "its selection.json holds the test numbers of the choice" in err
    assert not (tmp_path / "paired").exists()


def test_a_halving_rerun_on_edited_metrics_or_other_images_is_refused(tmp_path, capsys):
    """--halving reuses finished runs and runs paused at a milestone (a stopped family) as they are: both were
    reused unchecked on other images, and the halving decision read a paused run's edited metrics."""
    from .test_select_halving import _halving_argv

    data, out = _fake_fashion(tmp_path / "data"), tmp_path / "sel"
    argv = _halving_argv(data, out)  # three families: LSR(1.0)'s stops at the milestone (epoch 4)
    assert main(argv) == 0
    paused = next(run for run in out.glob("*-seed0") if len((run / "metrics.jsonl").read_text().splitlines()) == 4)
    capsys.readouterr()
    original = (paused / "metrics.jsonl").read_text()
    lines = original.splitlines()
    record = json.loads(lines[3])
    record["val_top1"] = 1.0  # the score its family had at the milestone: it would now be kept
    (paused / "metrics.jsonl").write_text("\n".join([*lines[:3], json.dumps(record)]) + "\n")
    assert main(argv) == 2
    assert f"{paused / 'metrics.jsonl'} line 4 differs from epoch 3" in _one_error(capsys)
    (paused / "metrics.jsonl").write_text(original)
    write_idx(data / "train-images-idx3-ubyte", torch.randint(0, 256, (300, 28, 28)), compress=False)
    assert main(argv) == 2
    assert "the training images or labels found now differ from those" in _one_error(capsys)
