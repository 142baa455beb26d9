"""The weights evaluate_run tests (and so tsla select's choice) must be the run's own: another run's best.pt or
checkpoint.pt copied in, a best.pt without its checksum, and a best.pt left behind by --overwrite are refused with
one line naming the file; a metrics.jsonl that differs from the checksummed history is refused where it is scored."""

import json
import re
import shutil

import pytest
import torch

from tsla.cli import main
from tsla.config import TrainConfig
from tsla.errors import RunDirError
from tsla.training.checkpoint import load_checkpoint
from tsla.training.evaluate_run import evaluate_run
from tsla.training.run_binding import checked_history
from tsla.training.trainer import train


def _cfg(root, **kw):
    base = dict(dataset="fashion-mnist", data_root=str(root), model="resnet8", epochs=2, batch_size=8, val_size=10,
                device="cpu", threads=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def two_runs(tiny_fashion, tmp_path):
    """Two finished runs with best-validation weights, seeds 0 and 1 (so their weights differ)."""
    runs = []
    for seed in (0, 1):
        run = tmp_path / f"run{seed}"
        train(_cfg(tiny_fashion, seed=seed), run, progress_bar=False)
        runs.append(run)
    return runs


def test_another_runs_best_pt_is_refused(two_runs):
    mine, other = two_runs
    own = evaluate_run(mine, "best-val")["test_top1"]  # the run's own best.pt is accepted
    assert 0 <= own <= 1
    shutil.copy(other / "best.pt", mine / "best.pt")
    with pytest.raises(RunDirError, match=r"best.pt is not this run's best-validation weights .*--resume") as info:
        evaluate_run(mine, "best-val")
    assert "\n" not in str(info.value) and str(mine / "best.pt") in str(info.value)
    assert main(["train", "--out", str(mine), "--resume", "--no-progress"]) == 0  # the remedy it names
    assert evaluate_run(mine, "best-val")["test_top1"] == own


def test_another_runs_checkpoint_is_refused(two_runs):
    mine, other = two_runs
    shutil.copy(other / "checkpoint.pt", mine / "checkpoint.pt")
    for weights in ("final", "best-val"):
        with pytest.raises(RunDirError, match=r"checkpoint.pt is not this run's checkpoint: it was trained with "
                                              r"seed=1"):
            evaluate_run(mine, weights)


def test_a_best_pt_without_its_checksum_is_refused(two_runs):
    """Zeroed weights saved without a checksum were loaded unchecked and tested (10 % top-1)."""
    run = two_runs[0]
    state = torch.load(run / "best.pt", weights_only=True)
    state.pop("checksum")
    state["model"] = {k: torch.zeros_like(v) for k, v in state["model"].items()}
    torch.save(state, run / "best.pt")
    with pytest.raises(RunDirError, match="best.pt is truncated or corrupt, or lacks its checksum"):
        evaluate_run(run, "best-val")


def test_overwrite_leaves_no_best_pt_of_the_earlier_run(tiny_fashion, tmp_path):
    """--overwrite without --val-size: the earlier run's best.pt was left and evaluate_run(RUN, 'best-val') tested it
    as the new run's."""
    run = tmp_path / "run"
    train(_cfg(tiny_fashion), run, progress_bar=False)
    assert (run / "best.pt").is_file()
    train(_cfg(tiny_fashion, val_size=None, epochs=1), run, progress_bar=False, overwrite=True)
    assert not (run / "best.pt").exists()
    with pytest.raises(RunDirError, match="best.pt is missing"):
        evaluate_run(run, "best-val")


def test_a_best_pt_put_back_beside_a_run_without_validation_is_refused(tiny_fashion, tmp_path):
    run, kept = tmp_path / "run", tmp_path / "kept.pt"
    train(_cfg(tiny_fashion), run, progress_bar=False)
    shutil.copy(run / "best.pt", kept)
    train(_cfg(tiny_fashion, val_size=None, epochs=1), run, progress_bar=False, overwrite=True)
    shutil.copy(kept, run / "best.pt")
    with pytest.raises(RunDirError, match="its checkpoint has no best-validation epoch"):
        evaluate_run(run, "best-val")


@pytest.mark.parametrize("damage", ["edit", "remove", "cut"])
def test_metrics_that_differ_from_the_checksummed_history_are_refused(two_runs, damage):
    run = two_runs[0]
    state = load_checkpoint(run / "checkpoint.pt")
    assert checked_history(run, state) == state["history"]  # untouched: the same records
    lines = (run / "metrics.jsonl").read_text().splitlines()
    if damage == "edit":
        record = json.loads(lines[0])
        record["val_top1"] = 1.0
        lines[0] = json.dumps(record)
    elif damage == "remove":
        lines = lines[:-1]
    else:
        lines[-1] = lines[-1][:20]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    expected = {"edit": "line 1 differs from epoch 0", "remove": "has 1 epoch line(s), the run's checksummed "
                "checkpoint 2", "cut": "line 2 differs from epoch 1"}[damage]
    with pytest.raises(RunDirError, match=re.escape(expected)):
        checked_history(run, state)
    # the remedy the message gives writes the file again from the checkpoint
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert checked_history(run, load_checkpoint(run / "checkpoint.pt")) == state["history"]
