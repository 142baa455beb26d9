"""Requests ``tsla select`` used to refuse wrongly, or to refuse naming the wrong thing: the same thetas in another
order (refused with "use another --out"), a preset's own --method checked against a shorter run (named --method
'tsla@6', a flag select has not), theta_after from a --config file (the message named --method 'lsr'), and a flag
given twice (the last one silently won)."""

import json

from tsla.cli import main

from .test_select import _argv, _fake_fashion


def test_the_same_thetas_in_another_order_reuse_every_run(tmp_path, capsys):
    data = _fake_fashion(tmp_path / "data")
    out = tmp_path / "sel"
    assert main(_argv(data, out, "--seeds", "0", "--thetas", "0.1,0.4", "--switch-at", "1")) == 0
    first = json.loads((out / "selection.json").read_text())
    before = {p: p.read_text() for p in out.glob("*/metrics.jsonl")}
    capsys.readouterr()
    assert main(_argv(data, out, "--seeds", "0", "--thetas", "0.4,0.1", "--switch-at", "1")) == 0, \
        capsys.readouterr().err
    again = json.loads((out / "selection.json").read_text())
    assert {p: p.read_text() for p in out.glob("*/metrics.jsonl")} == before  # nothing trained again
    assert again["chosen"] == first["chosen"]
    key = lambda c: (c["method"], c["theta"], c["switch_epoch"])  # noqa: E731
    assert sorted((key(c), c["score"]) for c in again["candidates"]) == \
        sorted((key(c), c["score"]) for c in first["candidates"])


def test_a_presets_own_method_is_not_checked_against_a_shorter_select(capsys):
    # fashion-mnist's preset trains tsla@6; select's candidates set their own method, so --epochs 3 is fine
    argv = ["select", "--preset", "fashion-mnist", "--epochs", "3", "--milestones", "1,2", "--thetas", "0.1",
            "--val-size", "100", "--dry-run"]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "tsla@1-seed0: tsla@1" in printed and "tsla@2-seed0: tsla@2" in printed and "tsla@6" not in printed


def test_theta_after_from_a_config_file_is_refused_naming_the_file(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("theta_after: -0.2\nallow_negative: true\n")
    argv = ["select", "--config", str(tmp_path / "c.yaml"), "--thetas", "0.1", "--switch-at", "1", "--epochs", "3",
            "--val-size", "10", "--dry-run"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"theta_after -0.2 in config file {tmp_path / 'c.yaml'}: tsla select's final " \
        "thetas are candidates of their own" in err and "pass --theta-after 0,-0.2" in err, err


def test_a_flag_given_twice_is_refused_naming_it(capsys):
    argv = ["select", "--thetas", "0.1,0.2", "--switch-at", "1", "--epochs", "3", "--val-size", "10", "--thetas",
            "0.4", "--dry-run"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tsla: error: argument --thetas: given twice (--thetas 0.1,0.2, then --thetas 0.4)"), err
    assert main(["train", "--dry-run", "--augment", "--no-augment"]) == 2
    assert "argument --augment/--no-augment: given twice (--augment, then --no-augment)" in capsys.readouterr().err


def test_run_select_from_python_refuses_theta_after_in_a_layer_naming_it(tmp_path):
    """One check for the CLI and the library (it was two, with two messages): a layer's list names its source."""
    import pytest

    from tsla.errors import ConfigError
    from tsla.experiments.select import run_select

    layers = [("my preset", {"theta_after": [0, -0.2], "val_size": 10, "epochs": 3})]
    with pytest.raises(ConfigError, match=r"theta_after 0,-0\.2 in my preset: .* pass --theta-after 0,-0\.2$"):
        run_select(layers, [0.1], [1], [0], tmp_path / "out", dry_run=True)
    assert not (tmp_path / "out").exists()
