"""``SmoothingScheduler.load_position``: the position of a saved scheduler with the caller's θ and S (issue 28 item 5,
population-based training swapping θ), checked against the schedules' definitions."""

import json

import pytest

import tsla
from tsla.schedules import constant, linear, two_stage


def _at(theta, s, epoch):
    """TSLA(S) by its definition: θ for the epochs before S, 0 from S on."""
    return theta if epoch < s else 0.0


def test_the_position_is_taken_and_theta_and_s_are_the_callers():
    donor = tsla.SmoothingScheduler(two_stage(0.1, 6))
    for _ in range(4):
        donor.step()
    state = json.loads(json.dumps(donor.state_dict()))  # as a tuner stores it
    mutated = tsla.SmoothingScheduler(two_stage(0.4, 5))
    mutated.load_position(state)
    assert mutated.last_epoch == 4
    assert mutated.get_last_theta() == _at(0.4, 5, 4) == 0.4  # not the donor's 0.1
    assert mutated.theta_tensor.item() == 0.4
    mutated.step()
    assert mutated.get_last_theta() == _at(0.4, 5, 5) == 0.0  # the caller's S, not the donor's 6
    assert mutated.state_dict()["schedule"] == two_stage(0.4, 5).to_dict()
    # the documented load_state_dict still refuses another schedule: it continues a run as it was built
    with pytest.raises(ValueError, match="build it as the saved run was built"):
        tsla.SmoothingScheduler(two_stage(0.4, 5)).load_state_dict(state)


def test_any_schedule_may_take_a_position_per_step():
    donor = tsla.SmoothingScheduler(constant(0.2), steps_per_epoch=10)
    donor.step(35)
    taker = tsla.SmoothingScheduler(linear(0.3, 7), steps_per_epoch=10)
    taker.load_position(donor.state_dict())
    assert taker.last_epoch == 35 and taker.get_last_theta() == pytest.approx(0.3 * (1 - 3.5 / 7))


def test_a_switch_keeps_its_own_state():
    donor = tsla.SmoothingScheduler(two_stage(0.1, 3))
    donor.step(2)
    auto = tsla.SmoothingScheduler.auto_two_stage(0.3)
    auto.load_position(donor.state_dict())
    assert auto.last_epoch == 2 and auto.switch_epoch is None and auto.get_last_theta() == 0.3


@pytest.mark.parametrize("change,message", [
    ({"steps_per_epoch": 10}, r"the saved position counts optimizer steps \(10 per epoch\), this scheduler epochs"),
    ({"last_epoch": 2.5}, r"last_epoch=2.5 is not an integer"),
    ({"last_epoch": -1}, r"last_epoch=-1 is not an integer"),
    ({"format": 7}, r"not a SmoothingScheduler state_dict"),
    ({"last_epoch": None, "drop": "last_epoch"}, r"lacks 'last_epoch'"),
])
def test_a_position_that_cannot_be_taken_is_refused_and_nothing_changes(change, message):
    state = tsla.SmoothingScheduler(two_stage(0.1, 6)).state_dict()
    state.update({k: v for k, v in change.items() if k != "drop"})
    if "drop" in change:
        del state[change["drop"]]
    taker = tsla.SmoothingScheduler(two_stage(0.4, 5))
    taker.step(3)
    with pytest.raises(ValueError, match=message):
        taker.load_position(state)
    assert taker.last_epoch == 3 and taker.get_last_theta() == 0.4
