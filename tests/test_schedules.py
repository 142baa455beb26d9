"""Schedules: values at s-1, s, s+1 against the definitions, and method-string parsing."""

import math

import pytest

from tsla import schedules
from tsla.smoothing import methods
from tsla.errors import ConfigError


def test_two_stage_drops_exactly_at_s():
    sched = schedules.two_stage(0.4, 30)
    assert [sched(e) for e in (0, 29, 30, 31)] == [0.4, 0.4, 0.0, 0.0]
    # TSLA(30) smooths for exactly 30 epochs
    assert sum(1 for e in range(100) if sched(e) > 0) == 30


def test_none_and_constant():
    assert all(schedules.none()(e) == 0.0 for e in range(5))
    assert all(schedules.constant(0.2)(e) == 0.2 for e in range(5))


def test_linear_and_cosine_around_end():
    lin, cos = schedules.linear(0.4, 10), schedules.cosine(0.4, 10)
    assert lin(0) == pytest.approx(0.4)
    assert lin(9) == pytest.approx(0.4 * (1 - 9 / 10))
    assert lin(10) == 0.0 and lin(11) == 0.0
    assert lin(5) == pytest.approx(0.2)
    assert cos(0) == pytest.approx(0.4)
    assert cos(5) == pytest.approx(0.2)
    assert cos(9) == pytest.approx(0.4 * 0.5 * (1 + math.cos(math.pi * 0.9)))
    assert cos(10) == 0.0 and cos(11) == 0.0


def test_schedules_are_pure():
    sched = schedules.two_stage(0.1, 3)
    first = [sched(e) for e in (5, 0, 2, 3, 0)]
    assert first == [sched(e) for e in (5, 0, 2, 3, 0)] == [0.0, 0.1, 0.1, 0.0, 0.1]


@pytest.mark.parametrize(
    "method,expected",
    [
        ("baseline", [0.0, 0.0, 0.0]),
        ("lsr", [0.3, 0.3, 0.3]),
        ("tsla@1", [0.3, 0.0, 0.0]),
        ("tsla@0", [0.0, 0.0, 0.0]),
        ("linear@2", [0.3, 0.15, 0.0]),
        ("cosine@2", [0.3, 0.15, 0.0]),
    ],
)
def test_parse_method(method, expected):
    sched = methods.parse_method(method, 0.3, epochs=3)
    assert [sched(e) for e in range(3)] == pytest.approx(expected)


@pytest.mark.parametrize("method", ["foo", "tsla", "tsla@x", "tsla@-1", "tsla@11", "lsr@3", "linear@0"])
def test_parse_method_rejects(method):
    with pytest.raises(ConfigError, match="--method"):
        methods.parse_method(method, 0.1, epochs=10)


def test_table_shows_switch():
    table = methods.format_table(schedules.two_stage(0.1, 2), 4)
    assert table.splitlines()[1:] == ["0-1         0.1000", "2-3         0.0000"]


def test_lr_schedules_against_formulas():
    from tsla.training.lr_schedule import make_lr_schedule

    step = make_lr_schedule("step", 0.1, 200, (100, 150), 0.1)
    assert [step(e) for e in (0, 99, 100, 149, 150, 199)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    cos = make_lr_schedule("cosine", 0.2, 10, (), 0.1)
    assert cos(0) == pytest.approx(0.2) and cos(5) == pytest.approx(0.1)
    assert cos(9) == pytest.approx(0.2 * 0.5 * (1 + math.cos(math.pi * 0.9)))
