"""tsla train --tensorboard (issue 21): each epoch's theta, lr, losses (F included), accuracy and calibration as
TensorBoard scalars, read back with TensorBoard's own EventAccumulator and compared with the run's metrics.jsonl and
with theta written out from the schedule's definition; a resume purges the epochs trained again. Skipped without the
extra (pip install "tsla[tensorboard]"); its refusal without TensorBoard is row 81 of docs/errors.md."""

import json

import pytest

from tsla.cli import main

pytest.importorskip("tensorboard", reason="install the extra: pip install 'tsla[tensorboard]'")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

TAGS = {"theta": "theta", "lr": "lr", "train/loss": "train_loss", "train/onehot_loss": "train_onehot_loss",
        "test/top1": "test_top1", "test/ece": "test_ece", "test/nll": "test_nll"}


def _scalars(run):
    """tag -> [(epoch, value), ...] in the order TensorBoard shows them (a step written twice appears twice)."""
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _train(data, run, epochs=3, *extra):
    argv = ["train", "--data-root", str(data), "--epochs", str(epochs), "--method", "tsla@2", "--theta", "0.1",
            "--out", str(run), "--no-progress", "--device", "cpu", "--tensorboard", *extra]
    assert main(argv) == 0


def test_each_epoch_is_written_as_the_metrics_say(tiny_fashion, tmp_path):
    run = tmp_path / "run"
    _train(tiny_fashion, run)
    scalars = _scalars(run)
    assert scalars["theta"] == [(0, pytest.approx(0.1)), (1, pytest.approx(0.1)), (2, 0.0)]  # TSLA(2) at 0.1
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for tag, key in TAGS.items():
        assert scalars[tag] == [(r["epoch"], pytest.approx(r[key], rel=1e-6)) for r in records], tag


def test_an_overwritten_run_hides_the_earlier_curves(tiny_fashion, tmp_path):
    run = tmp_path / "run"
    _train(tiny_fashion, run)
    _train(tiny_fashion, run, 2, "--overwrite")
    assert [step for step, _ in _scalars(run)["theta"]] == [0, 1]  # not 0, 1, 2, 0, 1
