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


def test_a_run_stopped_by_sigterm_under_jobs_is_reported_as_stopped_not_failed(tiny_fashion, tmp_path, monkeypatch):
    import io
    import subprocess
    import sys

    import pytest

    from tsla.config import TrainConfig
    from tsla.errors import TrainingError
    from tsla.experiments import grid_jobs as compare  # the subprocess machinery of tsla compare

    def launch(pending, free, running, log):  # each run's process exits as tsla does after saving on SIGTERM
        while pending and free:
            run, _, _ = pending.pop(0)
            running.append((subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(143)"]), run, free.pop(0)))

    monkeypatch.setattr(compare, "_launch", launch)
    log = io.StringIO()
    cfg = TrainConfig(data_root=str(tiny_fashion), epochs=1)
    with pytest.raises(TrainingError, match="stopped by a signal after saving a checkpoint"):
        compare._run_in_processes([(tmp_path / "cmp" / "lsr-seed0", cfg, None)], 1, log)
    assert "stopped by SIGTERM, checkpoint saved" in log.getvalue() and "FAILED" not in log.getvalue()
