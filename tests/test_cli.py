"""The command line as a user meets it: precedence, dry runs, and one-line errors for bad input."""

import subprocess
import sys

import pytest
import yaml

from tsla.cli import main
from tsla.config import TrainConfig
from tsla.errors import ConfigError


def _dry(capsys, *argv):
    assert main(["train", "--out", "unused", "--dry-run", *argv]) == 0
    text = capsys.readouterr().out
    config_part, table = text.split("\n\n", 1)
    return yaml.safe_load(config_part), table


def test_precedence_defaults_preset_yaml_flags(capsys, tmp_path):
    defaults, _ = _dry(capsys)
    assert defaults["epochs"] == TrainConfig().epochs
    preset, _ = _dry(capsys, "--preset", "cifar100-resnet18")
    assert preset["epochs"] == 200 and preset["milestones"] == [100, 150] and preset["model"] == "resnet18"
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("epochs: 50\nlr: 0.05\nmilestones: [25]\nmethod: tsla@40\n")
    layered, _ = _dry(capsys, "--preset", "cifar100-resnet18", "--config", str(cfg_file))
    assert layered["epochs"] == 50 and layered["lr"] == 0.05 and layered["batch_size"] == 128
    flags, table = _dry(capsys, "--preset", "cifar100-resnet18", "--config", str(cfg_file), "--epochs", "40",
                        "--method", "tsla@30", "--theta", "0.4")
    assert flags["epochs"] == 40 and flags["lr"] == 0.05 and flags["theta"] == 0.4
    # the theta schedule: 0.4 for epochs 0..29, 0 from 30; the lr drops at 25
    assert table.splitlines()[1:] == [
        "0-24        0.4000  0.05", "25-29       0.4000  0.005", "30-39       0.0000  0.005"]


def test_dry_run_touches_no_data(capsys, tmp_path):
    cfg, _ = _dry(capsys, "--dataset", "cifar100", "--data-root", str(tmp_path / "absent"))
    assert cfg["dataset"] == "cifar100"
    assert not (tmp_path / "absent").exists() and not (tmp_path / "unused").exists()


def test_every_preset_dry_runs(capsys):
    from tsla.experiments.presets import preset_names

    assert {"fashion-mnist", "fashion-mnist-replication", "cifar100-resnet18", "dogs-resnet50",
            "cub-resnet50"} <= set(preset_names())
    for name in preset_names():
        cfg, _ = _dry(capsys, "--preset", name)
        assert cfg["epochs"] >= 1


BAD = [
    (["--theta", "1.5"], "--theta 1.5 is outside [0, 1]"),
    (["--theta", "abc"], "argument --theta: invalid float value"),
    (["--method", "tsla@99"], "--method 'tsla@99'"),
    (["--method", "tsla@-1"], "--method 'tsla@-1'"),
    (["--method", "magic"], "--method 'magic' is unknown"),
    (["--preset", "imagenet"], "--preset 'imagenet' is unknown"),
    (["--model", "vgg"], "--model 'vgg' is unknown"),
    (["--dataset", "mnist"], "--dataset 'mnist' is unknown"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--batch-size", "x"], "argument --batch-size: invalid int value"),
    (["--milestones", "5,500"], "--milestones: 500"),
    (["--amp", "fp8"], "--amp 'fp8' is unknown"),
    (["--pretrained"], "--pretrained is available for resnet50 only"),
    (["--lr-schedule", "cosine", "--milestones", "3"], "--milestones applies to --lr-schedule step only"),
    (["--device", "tpu"], "--device 'tpu' is not supported"),
    (["--lr", "nan"], "--lr is nan: give a finite number"),
    (["--bogus-flag"], "unrecognized arguments: --bogus-flag"),
]


@pytest.mark.parametrize("argv,message", BAD)
def test_bad_input_gives_one_line_and_exit_2(capsys, argv, message):
    assert main(["train", "--out", "unused", "--dry-run", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tsla: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_yaml_errors_name_the_file(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1,\n")
    assert main(["train", "--out", "x", "--dry-run", "--config", str(bad)]) == 2
    assert "bad.yaml is not valid YAML" in capsys.readouterr().err
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("epochz: 3\n")
    assert main(["train", "--out", "x", "--dry-run", "--config", str(unknown)]) == 2
    assert "unknown key 'epochz'" in capsys.readouterr().err
    typed = tmp_path / "typed.yaml"
    typed.write_text("epochs: ten\n")
    assert main(["train", "--out", "x", "--dry-run", "--config", str(typed)]) == 2
    assert "--epochs (epochs: 'ten') has the wrong type" in capsys.readouterr().err
    exponent = tmp_path / "exponent.yaml"
    exponent.write_text("lr: 1e-3\nweight_decay: 5e-4\n")  # YAML 1.1 reads these as strings
    assert main(["train", "--out", "x", "--dry-run", "--config", str(exponent)]) == 0
    printed = yaml.safe_load(capsys.readouterr().out.split("\n\n")[0])
    assert printed["lr"] == 0.001 and printed["weight_decay"] == 0.0005


def test_missing_data_is_one_line_and_nothing_written(capsys, tmp_path):
    out = tmp_path / "run"
    code = main(["train", "--out", str(out), "--data-root", str(tmp_path / "empty"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Fashion-MNIST not found" in err and err.count("\n") == 1
    assert not out.exists()


def test_a_users_config_file_in_out_is_not_overwritten(capsys, tiny_fashion, tmp_path):
    out = tmp_path / "exp"
    out.mkdir()
    mine = out / "config.yaml"
    mine.write_text("epochs: 1\nmethod: lsr\nmodel: resnet8\n")
    code = main(["train", "--config", str(mine), "--data-root", str(tiny_fashion), "--out", str(out)])
    assert code == 2 and "already holds a run or a config.yaml" in capsys.readouterr().err
    assert mine.read_text() == "epochs: 1\nmethod: lsr\nmodel: resnet8\n"


def test_resume_without_checkpoint(capsys, tmp_path):
    assert main(["train", "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def test_config_error_names_flag():
    with pytest.raises(ConfigError, match="--train-subset must be >= 1"):
        TrainConfig(train_subset=0)


def test_python_dash_m_and_console_script_agree():
    a = subprocess.run([sys.executable, "-m", "tsla", "presets"], capture_output=True, text=True, timeout=120)
    assert a.returncode == 0 and "cifar100-resnet18" in a.stdout and "fashion-mnist" in a.stdout
    b = subprocess.run([sys.executable, "-m", "tsla", "train", "--out", "x", "--dry-run", "--theta", "2"],
                       capture_output=True, text=True, timeout=120)
    assert b.returncode == 2 and b.stderr.strip().startswith("tsla: error: --theta 2.0 is outside")


def test_preset_values_as_documented(capsys):
    cifar, table = _dry(capsys, "--preset", "cifar100-resnet18")
    assert (cifar["epochs"], cifar["batch_size"], cifar["lr"], cifar["momentum"], cifar["weight_decay"]) == (
        200, 128, 0.1, 0.9, 5e-4)
    assert cifar["milestones"] == [100, 150] and cifar["dataset"] == "cifar100" and cifar["model"] == "resnet18"
    for name in ("dogs-resnet50", "cub-resnet50"):
        cfg, _ = _dry(capsys, "--preset", name)
        assert (cfg["model"], cfg["image_size"], cfg["epochs"], cfg["batch_size"]) == ("resnet50", 224, 90, 64)
        assert cfg["lr"] == 0.1 and cfg["milestones"] == [40, 80] and cfg["weight_decay"] == 1e-4
        tuned, _ = _dry(capsys, "--preset", name, "--pretrained")
        assert tuned["lr"] == 0.01 and tuned["pretrained"] is True
        explicit, _ = _dry(capsys, "--preset", name, "--pretrained", "--lr", "0.003")
        assert explicit["lr"] == 0.003


def test_output_read_by_a_reader_that_stops_early_is_no_traceback():
    # `tsla presets | head -1`: the reader goes away before tsla writes (its end is closed before torch is imported)
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "tsla", "presets"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in err and "Broken pipe" not in err, err
