"""Issue 30, item 13: a θ from NumPy (``np.linspace``), a NumPy epoch or an integral float from a tuner end up as plain
Python numbers in every state dict, so a checkpoint loads with ``torch.load(weights_only=True)`` and as JSON; an
epoch that is not whole (20.5) is refused in one line."""

import io
import json

import numpy as np
import pytest
import torch

import tsla
from tsla import schedules
from tsla.smoothing.auto_switch import AutoSwitch

THETA = np.linspace(0.1, 0.4, 4)[2]  # np.float64: a float subclass that weights-only loading refuses


def _weights_only_round_trip(obj):
    buffer = io.BytesIO()
    torch.save({"smoothing": obj}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)["smoothing"]


def _types(obj):
    """Every leaf type in a nest of dicts and lists."""
    if isinstance(obj, dict):
        return set().union(*map(_types, obj.values())) if obj else set()
    if isinstance(obj, list):
        return set().union(*map(_types, obj)) if obj else set()
    return {type(obj)}


@pytest.mark.parametrize("make", [
    lambda: schedules.two_stage(THETA, np.int64(3), after=np.float32(-0.25)),
    lambda: schedules.constant(THETA),
    lambda: schedules.reverse(THETA, np.int32(2)),
    lambda: schedules.linear(THETA, np.float64(5.0)),
    lambda: schedules.cosine(torch.tensor(0.3, dtype=torch.float64), 5),
])
def test_a_numpy_theta_gives_a_plain_state_that_loads_weights_only(make):
    scheduler = tsla.SmoothingScheduler(make())
    scheduler.last_epoch = np.int64(2)  # a framework's counter, as Lightning's or a NumPy loop's may be
    state = scheduler.state_dict()
    assert _types(state) <= {int, float, str, type(None)}
    loaded = _weights_only_round_trip(state)  # was: UnpicklingError (np.float64 / np.int64 not allowed)
    assert loaded == state and json.loads(json.dumps(state)) == state
    fresh = tsla.SmoothingScheduler(make())
    fresh.load_state_dict(loaded)
    assert fresh.get_last_theta() == scheduler.get_last_theta() == make()(2)


def test_the_stored_values_are_the_numbers_given():
    # the theta is kept to the last bit, only its type changes
    assert schedules.two_stage(THETA, 3).to_dict() == {"kind": "two_stage", "theta": 0.30000000000000004,
                                                       "drop_epoch": 3, "after": 0.0}
    assert type(schedules.two_stage(THETA, 3).theta) is float


def test_an_auto_switch_with_numpy_constants_and_metrics_saves_plain_numbers():
    switch = AutoSwitch("plateau", window=np.int64(2), tolerance=np.float64(0.01))
    scheduler = tsla.SmoothingScheduler(schedules.AutoTwoStage(THETA), auto=switch)
    for epoch, loss in enumerate(np.array([2.0, 1.0, 0.5])):
        scheduler.auto.update(np.int64(epoch), loss, val_top1=np.float32(0.5), val_nll=torch.tensor(0.7, dtype=torch.float64))
        scheduler.step()
    state = scheduler.state_dict()
    assert _types(state) <= {int, float, str, type(None)}
    assert _weights_only_round_trip(state) == state
    assert state["auto"]["params"] == {"window": 2, "tolerance": 0.01}
    assert state["auto"]["history"][1] == {"epoch": 1, "train_onehot_loss": 1.0, "val_top1": 0.5, "val_nll": 0.7}


def test_criteria_built_from_numpy_values_keep_a_loadable_state():
    scheduler = tsla.SmoothingScheduler(schedules.two_stage(THETA, np.int64(2)))
    for criterion in (tsla.LabelSmoothingCrossEntropy(theta=THETA), tsla.BinaryLabelSmoothingCrossEntropy(theta=THETA),
                      tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=True)):
        assert type(criterion.current_theta()) is float
        _weights_only_round_trip(criterion.state_dict())


@pytest.mark.parametrize("epoch", [20.0, np.float64(20.0), np.int64(20), torch.tensor(20)])
def test_an_integral_epoch_from_a_tuner_is_accepted(epoch):
    schedule = schedules.two_stage(0.4, epoch)  # was: "drop_epoch=20.0 is not an integer"
    assert schedule.drop_epoch == 20 and type(schedule.drop_epoch) is int
    assert (schedule(19), schedule(20)) == (0.4, 0.0)
    assert schedule == schedules.two_stage(0.4, 20)


@pytest.mark.parametrize("make, message", [
    (lambda: schedules.two_stage(0.4, 20.5), "drop_epoch=20.5 is not an integer"),
    (lambda: schedules.linear(0.4, np.float64(2.5)), r"end_epoch=np.float64\(2.5\) is not an integer"),
    (lambda: schedules.two_stage(0.4, float("inf")), "drop_epoch=inf is not an integer"),
    (lambda: tsla.SmoothingScheduler(schedules.constant(0.1), steps_per_epoch=2.5), "steps_per_epoch=2.5 must be"),
    (lambda: AutoSwitch("plateau", window=1.5, tolerance=0.01), "window=1.5 must be an integer >= 1"),
])
def test_an_epoch_that_is_not_whole_is_refused_in_one_line(make, message):
    with pytest.raises(ValueError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


def test_a_tuners_integral_window_is_accepted():
    assert AutoSwitch("plateau", window=3.0, tolerance=0.01).params["window"] == 3
