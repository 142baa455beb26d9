"""Messages that name what the user gave and a remedy that works (issue 22, misleading messages)."""

import yaml

from tsla.cli import main

from .test_errors_doc import _interrupted_run


def test_resume_without_config_yaml_takes_the_checkpoints_config(tiny_fashion, tmp_path, capsys):
    # the old message advised "resume with the run's own config.yaml", the very file that was missing
    run = tmp_path / "run"
    _interrupted_run(tiny_fashion, run)
    (run / "config.yaml").unlink()
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["epochs"] == 2  # written again, from the checkpoint
    assert "resuming" in capsys.readouterr().out


def test_branching_from_a_source_that_has_not_yet_kept_the_epoch_says_so(tiny_fashion, tmp_path, capsys):
    # the source will keep epoch 2 (--keep-epochs 2) but has not got there: "train it with --keep-epochs 2" was wrong
    source = tmp_path / "lsr"
    source.mkdir()
    (source / "config.yaml").write_text(yaml.safe_dump({"data_root": str(tiny_fashion), "epochs": 3,
                                                         "method": "lsr", "keep_epochs": [2]}))
    assert main(["train", "--branch-from", str(source), "--at-epoch", "2", "--method", "tsla@2", "--out",
                 str(tmp_path / "b"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "keeps it once it has trained 2 epochs, and it has not yet" in err and "--keep-epochs 2" not in err
