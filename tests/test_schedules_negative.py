"""TSLA ending on any theta (theta_after), the reverse order (reverse@S), and the --allow-negative opt-in:
schedules at s-1, s, s+1, and through the command line (metrics.jsonl, the schedule table, the banner)."""

import json

import pytest

from tsla import schedules
from tsla.smoothing import methods
from tsla.cli import main
from tsla.errors import ConfigError


def test_two_stage_ends_on_the_given_theta():
    tsla = schedules.two_stage(0.4, 5, after=-0.2)
    assert [tsla(4), tsla(5), tsla(6)] == [0.4, -0.2, -0.2]
    assert tsla(4.999) == 0.4  # per-step epochs: the switch is at the epoch boundary
    assert tsla.switch_epoch == 5
    paper = schedules.two_stage(0.4, 5)  # the default is the paper's TSLA: one-hot after the switch
    assert [paper(4), paper(5), paper(6)] == [0.4, 0.0, 0.0]


def test_reverse_is_one_hot_first_then_theta():
    wei = schedules.reverse(-0.2, 5)
    assert [wei(0), wei(4), wei(5), wei(6)] == [0.0, 0.0, -0.2, -0.2]
    assert wei.switch_epoch == 5
    parsed = methods.parse_method("reverse@5", -0.2, 10, allow_negative=True)
    assert parsed == wei and [parsed(4), parsed(5), parsed(6)] == [0.0, -0.2, -0.2]
    assert methods.parse_method("tsla@5", 0.4, 10, theta_after=-0.2, allow_negative=True) == \
        schedules.two_stage(0.4, 5, after=-0.2)


def test_schedules_round_trip_and_older_stored_tsla_reads_as_one_hot_after():
    for schedule in (schedules.two_stage(0.4, 5, after=-0.2), schedules.reverse(-0.3, 2)):
        assert schedules.from_dict(json.loads(json.dumps(schedule.to_dict()))) == schedule
    old = schedules.from_dict({"kind": "two_stage", "theta": 0.1, "drop_epoch": 3})  # stored before `after` existed
    assert old(3) == 0.0 and old == schedules.two_stage(0.1, 3)


def test_negative_theta_needs_the_opt_in_and_never_goes_below_minus_one():
    with pytest.raises(ConfigError, match="--theta -0.2 is negative.*--allow-negative"):
        methods.parse_method("lsr", -0.2, 10)
    with pytest.raises(ConfigError, match="--theta-after -0.2 is negative.*--allow-negative"):
        methods.parse_method("tsla@5", 0.4, 10, theta_after=-0.2)
    with pytest.raises(ConfigError, match=r"--theta -1.5 is outside \[-1, 1\]"):
        methods.parse_method("lsr", -1.5, 10, allow_negative=True)
    with pytest.raises(ConfigError, match="--theta-after 0.2 applies to tsla@S only"):
        methods.parse_method("lsr", 0.4, 10, theta_after=0.2)
    with pytest.raises(ValueError, match=r"after=-2 is outside \[-1, 1\]"):
        schedules.two_stage(0.4, 5, after=-2)


@pytest.mark.parametrize("call, message", [
    (lambda: schedules.reverse(-0.2, "3"), "start_epoch='3' is not an integer"),  # was a bare '<' TypeError
    (lambda: schedules.reverse(-0.2, 1.5), "start_epoch=1.5 is not an integer"),
    (lambda: schedules.reverse(-0.2, True), "start_epoch=True is not an integer"),
    (lambda: schedules.two_stage(0.4, float("nan"), after=-0.2), "drop_epoch=nan is not an integer"),  # no 1st stage
    (lambda: schedules.two_stage(0.4, -1), "drop_epoch=-1 is negative"),
    (lambda: schedules.linear(0.4, 0), "end_epoch=0 is below 1"),
])
def test_a_schedules_epoch_is_a_whole_number_or_one_value_error_naming_it(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value) and "\n" not in str(info.value)


def _train(root, out, *extra):
    return ["train", "--data-root", str(root), "--train-subset", "16", "--test-subset", "10", "--epochs", "3",
            "--batch-size", "8", "--device", "cpu", "--no-progress", "--out", str(out), *extra]


def _thetas(run):
    return [json.loads(line)["theta"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_cli_tsla_ending_on_negative_theta_logs_the_sign(tiny_fashion, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(tiny_fashion, run, "--method", "tsla@1", "--theta", "0.3", "--theta-after", "-0.2",
                       "--allow-negative")) == 0
    assert _thetas(run) == [0.3, -0.2, -0.2]
    out = capsys.readouterr().out
    assert "theta 0.3 in epoch 0, then -0.2 from epoch 1" in out  # the banner
    assert "1-2         -0.2000" in out  # the schedule table
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["theta_after"] == -0.2 and summary["config"]["allow_negative"] is True


def test_cli_reverse_order_and_the_refusals(tiny_fashion, tmp_path, capsys):
    run = tmp_path / "wei"
    assert main(_train(tiny_fashion, run, "--method", "reverse@2", "--theta", "-0.25", "--allow-negative")) == 0
    assert _thetas(run) == [0.0, 0.0, -0.25]
    capsys.readouterr()
    assert main(_train(tiny_fashion, tmp_path / "no", "--method", "reverse@2", "--theta", "-0.25")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--theta -0.25 is negative" in err and "--allow-negative" in err
    assert main(_train(tiny_fashion, tmp_path / "no2", "--method", "lsr", "--theta-after", "-0.2",
                       "--allow-negative")) == 2
    assert "applies to tsla@S only" in capsys.readouterr().err
    assert not (tmp_path / "no").exists() and not (tmp_path / "no2").exists()
