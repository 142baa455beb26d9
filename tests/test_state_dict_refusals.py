"""Every state-dict load that promises ``ValueError`` keeps that promise for a state that is not one: None, a number,
an empty mapping, a mapping missing a part or with a part of the wrong type, and a cut or damaged JSON file. Before,
these raised KeyError, TypeError, AttributeError or JSONDecodeError. A refused load changes nothing."""

import pytest
import torch

import tsla
from tsla import schedules
from tsla.smoothing.auto_switch import AutoSwitch
from tsla.training.best_val import BestVal

from . import loops

_SCHEDULER = tsla.SmoothingScheduler(schedules.two_stage(0.1, 3)).state_dict()
_AUTO = AutoSwitch("plateau").state_dict()
NOT_STATES = [None, 5, "state", [], {}]


@pytest.mark.parametrize("state", NOT_STATES + [
    {"format": 1}, {**_SCHEDULER, "schedule": 5}, {**_SCHEDULER, "auto": 5}, {**_SCHEDULER, "auto": {"format": 1}}])
def test_scheduler_from_state_dict_refuses_with_value_error(state):
    with pytest.raises(ValueError, match="state_dict|schedule"):
        tsla.SmoothingScheduler.from_state_dict(state)


@pytest.mark.parametrize("state", NOT_STATES + [
    {"format": 1, "history": []}, {**_AUTO, "params": 5}, {**_AUTO, "params": {1: 2}}, {**_AUTO, "rule": 5}])
def test_auto_switch_from_state_dict_refuses_with_value_error(state):
    with pytest.raises(ValueError, match="AutoSwitch state_dict"):
        AutoSwitch.from_state_dict(state)


@pytest.mark.parametrize("data", [None, 5, "two_stage", [("kind", "constant"), ("theta", 0.1)]])
def test_a_stored_schedule_that_is_not_a_mapping_is_refused(data):
    with pytest.raises(ValueError, match="a stored schedule is a mapping with a 'kind'"):
        schedules.from_dict(data)


@pytest.mark.parametrize("state", NOT_STATES + [{"epoch": "best", "val_top1": 0.5, "val_nll": 1.0, "model": {}},
                                                {"epoch": 1, "val_top1": 0.5, "val_nll": 1.0, "model": 5}])
def test_best_val_from_state_refuses_with_value_error(state):
    with pytest.raises(ValueError, match="not a BestVal state"):
        BestVal.from_state(state)


def test_best_val_from_state_reads_back_its_state_dict():
    kept = BestVal(3, 0.75, 0.5, {"w": torch.ones(2)})
    back = BestVal.from_state(kept.state_dict())
    assert (back.epoch, back.val_top1, back.val_nll) == (3, 0.75, 0.5) and torch.equal(back.model["w"], torch.ones(2))


def test_the_lightning_callback_refuses_a_bad_state_and_loads_nothing():
    pytest.importorskip("lightning")
    from tsla.integrations.lightning import SmoothingCallback

    scheduler = loops.scheduler("tsla")
    callback = SmoothingCallback(scheduler, tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=True))
    for bad in (None, 5, {**scheduler.state_dict(), "onehot_pending": [None, 1.0]},
                {**scheduler.state_dict(), "onehot_pending": 5}):
        with pytest.raises(ValueError):
            callback.load_state_dict(bad)
    moved = {**scheduler.state_dict(), "last_epoch": 2, "onehot_pending": ["x", 1.0]}
    with pytest.raises(ValueError, match="onehot_pending"):
        callback.load_state_dict(moved)
    assert scheduler.last_epoch == 0  # the scheduler's part was not loaded either


@pytest.mark.parametrize("content", [b'{"format": 1, "schedule": {"kind": "two_st', b"\xff\xfe garbage", b"[1, 2]"])
def test_the_hf_trainer_refuses_a_cut_or_damaged_state_file_in_one_line(tmp_path, content):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from tsla.integrations.hf import STATE_FILE, SmoothingTrainer

    from .test_integration_hf import Tiny, _args

    (tmp_path / "checkpoint-4").mkdir()
    (tmp_path / "checkpoint-4" / STATE_FILE).write_bytes(content)
    trainer = SmoothingTrainer(model=Tiny(), args=_args(tmp_path), train_dataset=[{"x": torch.zeros(8),
                               "labels": torch.tensor(0)}], smoothing=loops.scheduler("tsla"))
    with pytest.raises(ValueError, match=f"{STATE_FILE} (cannot be read|holds a list)") as info:
        trainer.train(resume_from_checkpoint=str(tmp_path / "checkpoint-4"))
    assert "\n" not in str(info.value)
