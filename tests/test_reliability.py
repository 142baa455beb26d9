"""Surviving a crash: SIGKILL mid-epoch and resume, SIGTERM saves a mid-epoch checkpoint, locks, --overwrite,
a full disk. Each is checked through what a user sees: exit codes, messages, files, identical final metrics."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tsla.cli import main
from tsla.errors import RunDirError
from tsla.training.rundir import RunLock

KEYS = ("train_loss", "train_onehot_loss", "train_top1", "test_loss", "test_top1", "test_ece")


def _argv(root, out):
    # 2,048 images in batches of 16: 128 steps an epoch, long enough to be interrupted inside one
    return ["train", "--data-root", str(root), "--train-subset", "2048", "--test-subset", "500", "--epochs", "3",
            "--milestones", "2", "--method", "tsla@1", "--batch-size", "16", "--device", "cpu", "--channels-last",
            "--out", str(out), "--no-progress"]


def _start(argv):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "tsla", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _wait_for_epochs(out, n, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        path = out / "metrics.jsonl"
        if path.is_file() and len(path.read_text().splitlines()) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run did not get there in time")


@pytest.fixture(scope="module")
def reference(fashion_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    torch.set_num_threads(1)
    try:
        assert main(_argv(fashion_root, out)) == 0
    finally:
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    return json.loads((out / "summary.json").read_text())["final"]


def test_sigkill_mid_epoch_then_resume_is_identical(fashion_root, tmp_path, reference):
    out = tmp_path / "run"
    proc = _start(_argv(fashion_root, out))
    _wait_for_epochs(out, 1, proc)
    time.sleep(0.3)  # into epoch 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "summary.json").exists() and (out / ".lock").exists()  # killed: its lock is stale
    resumed = _start([*_argv(fashion_root, out), "--resume"])
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert "taking over the stale lock" in stderr and "resuming" in stdout
    final = json.loads((out / "summary.json").read_text())["final"]
    for key in KEYS:
        assert final[key] == reference[key], key
    assert [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2]
    assert not (out / ".lock").exists()


def test_sigterm_saves_mid_epoch_and_resume_is_identical(fashion_root, tmp_path, reference):
    out = tmp_path / "run"
    proc = _start(_argv(fashion_root, out))
    _wait_for_epochs(out, 1, proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert stderr.count("\n") == 1 and stderr.startswith("tsla: error: stopped by SIGTERM in epoch 1 after step")
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["next_epoch"] == 1 and 0 < state["mid_epoch"]["step"] < 128
    resumed = _start([*_argv(fashion_root, out), "--resume"])
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert f"resuming {out} at epoch 1 step {state['mid_epoch']['step']}" in stdout
    final = json.loads((out / "summary.json").read_text())["final"]
    for key in KEYS:
        assert final[key] == reference[key], key


def test_a_live_lock_is_refused_and_a_stale_one_taken_over(tmp_path, capsys):
    # another process holds the lock: a child that takes it, reports, and sleeps
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from tsla.training.rundir import RunLock; "
         "lock = RunLock(Path(sys.argv[1])).__enter__(); print('held', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirError, match=f"in use by process {holder.pid}"):
            RunLock(tmp_path).__enter__()
    finally:
        holder.kill()  # SIGKILL: no cleanup, the file stays, but the kernel drops the lock
        holder.wait()
    assert (tmp_path / ".lock").exists()
    with RunLock(tmp_path):
        assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())
        assert f"stale lock {tmp_path / '.lock'} of process {holder.pid}" in capsys.readouterr().err
    assert not (tmp_path / ".lock").exists()


def test_overwrite_replaces_a_run_and_nothing_else(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--data-root", str(tiny_fashion), "--epochs", "1", "--batch-size", "20", "--device", "cpu",
            "--method", "lsr", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    (out / "notes.txt").write_text("mine")
    assert main([*argv, "--theta", "0.3"]) == 2
    assert "add --resume to continue it, --overwrite to replace it" in capsys.readouterr().err
    assert main([*argv, "--theta", "0.3", "--overwrite"]) == 0
    assert "theta: 0.3" in (out / "config.yaml").read_text() and (out / "notes.txt").read_text() == "mine"
    assert main([*argv, "--resume", "--overwrite"]) == 2


def test_full_disk_keeps_the_last_checkpoint(tiny_fashion, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real_save, calls = torch.save, []

    def fill_disk_on_second_save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fill_disk_on_second_save)
    argv = ["train", "--data-root", str(tiny_fashion), "--epochs", "3", "--batch-size", "20", "--device", "cpu",
            "--method", "lsr", "--out", str(out), "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "previous checkpoint is kept" in err
    monkeypatch.undo()
    assert torch.load(out / "checkpoint.pt", weights_only=True)["next_epoch"] == 1
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == [] and not (out / ".lock").exists()
    assert main([*argv, "--resume"]) == 0  # the run goes on from epoch 1 once there is space


def test_nonfinite_loss_exits_1_and_keeps_the_checkpoint(fashion_root, tmp_path, capsys, monkeypatch):
    import tsla.training.trainer

    # epoch 0 trains normally; in epoch 1 the step size explodes
    monkeypatch.setattr(tsla.training.trainer, "make_lr_schedule", lambda *a: (lambda epoch: 0.05 if epoch == 0 else 1e12))
    out = tmp_path / "run"
    code = main(["train", "--data-root", str(fashion_root), "--train-subset", "512", "--test-subset", "200",
                 "--epochs", "2", "--batch-size", "32", "--device", "cpu", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("tsla: error: the training loss became non-finite in epoch 1 by step")
    assert err.count("\n") == 1
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["next_epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--data-root", str(tiny_fashion), "--epochs", "1", "--batch-size", "20", "--device", "cpu",
            "--method", "lsr", "--out", str(out), "--no-progress"]
    assert main([*argv, "--dry-run"]) == 0
    from tsla.config import TrainConfig, config_text

    out.mkdir()
    cfg = TrainConfig(data_root=str(tiny_fashion), epochs=1, batch_size=20, device="cpu", method="lsr")
    (out / "config.yaml").write_text(config_text(cfg))  # what a run killed during epoch 0 leaves
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    assert "has no checkpoint yet" in capsys.readouterr().out
    assert (out / "summary.json").is_file()


def test_a_torch_file_that_is_no_tsla_checkpoint(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    torch.save({"weights": torch.ones(2)}, out / "checkpoint.pt")
    assert main(["train", "--data-root", str(tiny_fashion), "--out", str(out), "--resume"]) == 2
    assert "is not a tsla checkpoint" in capsys.readouterr().err
