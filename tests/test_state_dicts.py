"""SmoothingScheduler, AutoSwitch and timm's saver check a whole state before changing anything, and raise
ValueError for every bad state (issue 22, item 12)."""

import copy
import math

import pytest

import tsla
from tsla.schedules import AutoTwoStage, two_stage
from tsla.smoothing.auto_switch import AutoSwitch


def _auto_scheduler():
    scheduler = tsla.SmoothingScheduler(AutoTwoStage(0.2), auto=AutoSwitch("plateau", window=1, tolerance=0.01))
    for epoch, loss in enumerate([2.0, 1.0, 0.999]):
        scheduler.auto.update(epoch, loss)
        scheduler.step()
    return scheduler


def _fresh_auto_scheduler():
    return tsla.SmoothingScheduler(AutoTwoStage(0.2), auto=AutoSwitch("plateau", window=1, tolerance=0.01))


@pytest.mark.parametrize("last_epoch", [2.7, 1e300, float("nan"), True, -1, "3", 2**60])
def test_a_bad_last_epoch_is_refused_and_nothing_changes(last_epoch):
    good = _auto_scheduler().state_dict()
    target = _fresh_auto_scheduler()
    before = copy.deepcopy(target.state_dict())
    with pytest.raises(ValueError):
        target.load_state_dict({**good, "last_epoch": last_epoch})
    assert target.state_dict() == before  # the switch's history was not loaded either


def _with_auto(**changes):
    state = _auto_scheduler().state_dict()
    state["auto"] = {**state["auto"], **changes}
    return state


@pytest.mark.parametrize("changes, message", [
    ({"history": [], "switch_epoch": 3}, "does not follow an epoch of its history"),
    ({"switch_epoch": 7}, "does not follow an epoch of its history"),
    ({"switch_epoch": 2.5}, "is not an integer"),
    ({"history": [{"epoch": 0, "train_onehot_loss": math.nan}]}, "not finite"),
    ({"history": [{"epoch": 0, "train_onehot_loss": 1.0}, {"epoch": 2, "train_onehot_loss": 0.9}], "switch_epoch": None},
     "must follow each other"),
    ({"history": [{"epoch": 0.5, "train_onehot_loss": 1.0}], "switch_epoch": None}, "an integer >= 0"),
    ({"history": [{"epoch": 0}], "switch_epoch": None}, "'train_onehot_loss'"),
    ({"history": "epochs"}, "not a list"),
    ({"reason": 3}, "not a string"),
])
def test_a_bad_switch_state_is_refused_and_nothing_changes(changes, message):
    target = _fresh_auto_scheduler()
    before = copy.deepcopy(target.state_dict())
    with pytest.raises(ValueError, match=message):
        target.load_state_dict(_with_auto(**changes))
    assert target.state_dict() == before
    alone = AutoSwitch("plateau", window=1, tolerance=0.01)
    with pytest.raises(ValueError, match=message):
        alone.load_state_dict(_with_auto(**changes)["auto"])
    assert alone.history == [] and alone.switch_epoch is None


def test_a_window_of_zero_epochs_is_refused():
    with pytest.raises(ValueError, match="window=0 must be an integer >= 1"):
        AutoSwitch("plateau", window=0, tolerance=0.01)


@pytest.mark.parametrize("schedule", [{"kind": "two-stage"}, "two_stage", None, {"kind": "nothing"}])
def test_a_bad_schedule_in_the_state_is_a_value_error(schedule):
    target = tsla.SmoothingScheduler(two_stage(0.1, 3))
    state = {**target.state_dict(), "schedule": schedule}
    with pytest.raises(ValueError):
        target.load_state_dict(state)


def test_a_good_state_still_loads_exactly():
    source = _auto_scheduler()
    target = _fresh_auto_scheduler()
    target.load_state_dict(source.state_dict())
    assert target.state_dict() == source.state_dict() and target.switch_epoch == 3


def test_timms_saver_changes_nothing_when_the_smoothing_state_is_bad(tmp_path):
    pytest.importorskip("timm")
    import torch

    from tsla.integrations.timm import SmoothingCheckpointSaver

    model = torch.nn.Linear(2, 2)
    scheduler = _fresh_auto_scheduler()
    saver = SmoothingCheckpointSaver(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                     checkpoint_dir=str(tmp_path), smoothing=scheduler)
    good = {"checkpoint_files": [], "best_epoch": 4, "best_metric": 0.9, "pending": (4, 0.9),
            "tsla_smoothing": _auto_scheduler().state_dict()}
    for bad in ({**good, "tsla_smoothing": {**good["tsla_smoothing"], "last_epoch": 2.7}},
                {**good, "checkpoint_files": 5}, {**good, "pending": "later"}):
        with pytest.raises(ValueError):
            saver.load_state_dict(bad)
        assert saver.best_metric is None and saver.best_epoch is None and scheduler.auto.history == []
    saver.load_state_dict(good)
    assert saver.best_epoch == 4 and scheduler.switch_epoch == 3


def test_timms_saver_changes_nothing_when_the_pending_onehot_state_is_bad(tmp_path):
    pytest.importorskip("timm")
    import torch

    from tsla.integrations.timm import SmoothingCheckpointSaver, SmoothingLoss

    model = torch.nn.Linear(2, 2)
    scheduler = _fresh_auto_scheduler()
    loss = SmoothingLoss(scheduler)
    saver = SmoothingCheckpointSaver(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                     checkpoint_dir=str(tmp_path), smoothing=loss)
    good = {"checkpoint_files": [], "best_epoch": 4, "best_metric": 0.9, "pending": (4, 0.9),
            "tsla_smoothing": _auto_scheduler().state_dict(), "tsla_onehot_pending": {"epoch": 4, "sums": [3.0, 6.0]}}
    for pending in ({"epoch": 4, "sums": [float("nan"), 6.0]}, {"epoch": 4, "sums": [1.0, 2.0, 3.0]},
                    {"epoch": "four", "sums": [3.0, 6.0]}, [3.0, 6.0]):
        with pytest.raises(ValueError, match="tsla_onehot_pending"):
            saver.load_state_dict({**good, "tsla_onehot_pending": pending})
        # refused before anything changed: timm's bookkeeping, the scheduler and the loss's sums
        assert saver.best_metric is None and scheduler.auto.history == []
        assert loss.pending_state(4)["sums"] == [0.0, 0.0]
    saver.load_state_dict(good)
    assert saver.best_epoch == 4 and loss.pending_state(4)["sums"] == [3.0, 6.0]
