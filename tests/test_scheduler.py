"""SmoothingScheduler and the schedules' stored form: theta per epoch and per step against the closed forms, state
round-trips through torch.load(weights_only=True) and JSON, and the errors a user meets."""

import io
import json
import math

import pytest
import torch

import tsla
from tsla import schedules
from tsla.smoothing.scheduler import SmoothingScheduler


def _thetas(scheduler, n):
    out = []
    for _ in range(n):
        out.append(scheduler.get_last_theta())
        scheduler.step()
    return out


def test_per_epoch_theta_matches_the_closed_forms():
    # written out by hand: TSLA(3) at 0.4; linear and cosine from 0.3 to 0 at epoch 4
    two = _thetas(SmoothingScheduler(schedules.two_stage(0.4, 3)), 6)
    assert two == [0.4, 0.4, 0.4, 0.0, 0.0, 0.0]
    lin = _thetas(SmoothingScheduler(schedules.linear(0.3, 4)), 6)
    assert lin == pytest.approx([0.3, 0.225, 0.15, 0.075, 0.0, 0.0])
    cos = _thetas(SmoothingScheduler(schedules.cosine(0.3, 4)), 6)
    assert cos == pytest.approx([0.3, 0.15 * (1 + math.sqrt(0.5)), 0.15, 0.15 * (1 - math.sqrt(0.5)), 0.0, 0.0])


def test_construction_is_epoch_zero_and_step_advances_like_torch():
    scheduler = SmoothingScheduler(schedules.two_stage(0.2, 1))
    lr_scheduler = torch.optim.lr_scheduler.StepLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), 1)
    assert scheduler.last_epoch == lr_scheduler.last_epoch == 0
    assert scheduler.get_last_theta() == 0.2
    scheduler.step()
    assert scheduler.last_epoch == 1 and scheduler.get_last_theta() == 0.0


def test_per_step_theta_is_the_schedule_at_the_fractional_epoch():
    spe = 5
    two = SmoothingScheduler(schedules.two_stage(0.4, 3), steps_per_epoch=spe)
    values = _thetas(two, 4 * spe)
    # a whole drop epoch: smoothing for exactly 3 * 5 steps, as per epoch
    assert values == [0.4] * 15 + [0.0] * 5
    lin = SmoothingScheduler(schedules.linear(0.3, 2), steps_per_epoch=spe)
    values = _thetas(lin, 12)
    assert values == pytest.approx([0.3 * (1 - (k / 5) / 2) for k in range(10)] + [0.0, 0.0])
    assert lin.last_epoch == 12 and lin.epoch == pytest.approx(2.4)


def _roundtrip_torch(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("through", ["torch", "json"])
def test_state_round_trip_continues_exactly(through):
    def fresh():
        return SmoothingScheduler.auto_two_stage(0.3, window=1, tolerance=0.1, steps_per_epoch=2)

    def one_epoch(scheduler, epoch, loss):  # two steps, theta read before each, then the epoch's one-hot loss
        thetas = []
        for _ in range(2):
            thetas.append(scheduler.get_last_theta())
            scheduler.step()
        scheduler.auto.update(epoch, loss)
        return thetas

    losses = [2.0, 1.0, 0.95, 0.9, 0.85]  # falls 50%, then 5% (< 10%): the rule fires after epoch 2
    full, full_thetas = fresh(), []
    for epoch, loss in enumerate(losses):
        full_thetas += one_epoch(full, epoch, loss)
    cut, cut_thetas = fresh(), []
    for epoch, loss in enumerate(losses):
        if epoch == 3:  # save after epoch 2 (and its decision), load into a new object
            state = cut.state_dict()
            state = _roundtrip_torch(state) if through == "torch" else json.loads(json.dumps(state))
            cut = fresh()
            cut.load_state_dict(state)
        cut_thetas += one_epoch(cut, epoch, loss)
    assert full.switch_epoch == cut.switch_epoch == 3
    assert cut_thetas == full_thetas == [0.3] * 6 + [0.0] * 4
    assert cut.state_dict() == full.state_dict()
    rebuilt = SmoothingScheduler.from_state_dict(json.loads(json.dumps(full.state_dict())))
    assert rebuilt.state_dict() == full.state_dict() and rebuilt.get_last_theta() == 0.0


def test_state_holds_plain_values_only():
    scheduler = SmoothingScheduler(schedules.cosine(0.1, 3))
    state = scheduler.state_dict()
    assert state == {"format": 1, "schedule": {"kind": "cosine", "theta": 0.1, "end_epoch": 3}, "last_epoch": 0,
                     "steps_per_epoch": None, "auto": None}
    assert _roundtrip_torch(state) == state


@pytest.mark.parametrize("schedule", [schedules.none(), schedules.constant(0.1), schedules.two_stage(0.2, 4),
                                      schedules.linear(0.3, 5), schedules.cosine(0.4, 6),
                                      schedules.AutoTwoStage(0.1), schedules.AutoTwoStage(0.1, 7)])
def test_every_schedule_round_trips_and_says_where_smoothing_ends(schedule):
    stored = json.loads(json.dumps(schedule.to_dict()))
    assert schedules.from_dict(stored) == schedule == type(schedule).from_dict(stored)
    expected = {"constant": None, "two_stage": 4, "linear": 5, "cosine": 6}.get(stored["kind"], stored.get("switch_epoch"))
    assert schedule.switch_epoch == schedules.switch_epoch(schedule) == expected
    if expected is not None:  # theta is 0 from there on, and positive just before
        assert schedule(expected) == schedule(expected + 10) == 0.0 and schedule(expected - 1) > 0


def test_from_dict_errors_name_the_problem():
    with pytest.raises(ValueError, match="kind 'step' is unknown"):
        schedules.from_dict({"kind": "step", "theta": 0.1})
    with pytest.raises(ValueError, match="not a Linear"):
        schedules.Linear.from_dict({"kind": "cosine", "theta": 0.1, "end_epoch": 2})
    with pytest.raises(ValueError, match="takes the fields"):
        schedules.from_dict({"kind": "two_stage", "theta": 0.1})


def test_scheduler_errors():
    with pytest.raises(ValueError, match="steps_per_epoch=0"):
        SmoothingScheduler(schedules.constant(0.1), steps_per_epoch=0)
    with pytest.raises(ValueError, match="AutoTwoStage takes its switch epoch"):
        SmoothingScheduler(schedules.AutoTwoStage(0.1))
    with pytest.raises(ValueError, match="needs schedules.AutoTwoStage"):
        SmoothingScheduler(schedules.constant(0.1), auto=tsla.AutoSwitch("plateau", window=1, tolerance=0.1))
    saved = SmoothingScheduler(schedules.two_stage(0.1, 3)).state_dict()
    with pytest.raises(ValueError, match="build it as the saved run was built"):
        SmoothingScheduler(schedules.two_stage(0.1, 4)).load_state_dict(saved)
    with pytest.raises(ValueError, match="not a SmoothingScheduler state_dict"):
        SmoothingScheduler(schedules.two_stage(0.1, 3)).load_state_dict({"last_epoch": 2})
