"""Reliability, round two (issue 13): the data-loss race, silent wrong reports and resumes, each checked through
what a user sees (exit codes, messages, the files in the run folder)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import tsla.training.checkpoint as ckpt
from tsla.cli import main
from tsla.errors import RunDirError
from tsla.report import write_report

from .conftest import with_flags, write_idx
from .test_report import make_run


def _train(root, out, *extra):
    return with_flags(["train", "--data-root", str(root), "--epochs", "2", "--batch-size", "8", "--device", "cpu",
                       "--no-progress", "--out", str(out)], extra)  # extra replaces a value given here


def _rows(out):
    return [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]


# -- 1. two trainings racing into one fresh --out ------------------------------------------------------------------

# The first process stops inside data loading (after every check a run makes before it) until the test lets it go:
# before the fix its checks had passed without the lock, so a second run could train and finish there meanwhile.
_PAUSED = """
import sys, time
from pathlib import Path
import tsla.training.trainer as trainer
from tsla.cli import main
real, marker, go = trainer.build_data, Path(sys.argv[1]), Path(sys.argv[2])
def paused(*args, **kwargs):
    marker.touch()
    while not go.exists():
        time.sleep(0.05)
    return real(*args, **kwargs)
trainer.build_data = paused
sys.exit(main(sys.argv[3:]))
"""


def test_two_processes_racing_into_one_fresh_out_never_mix(tiny_fashion, tmp_path):
    out, marker, go = tmp_path / "run", tmp_path / "marker", tmp_path / "go"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-c", _PAUSED, str(marker), str(go), *_train(tiny_fashion, out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 120
        while not marker.exists():
            assert first.poll() is None and time.time() < deadline, first.communicate()
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "tsla", *_train(tiny_fashion, out)], capture_output=True,
                                text=True, env=env, timeout=300)
    finally:
        go.touch()
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert second.returncode == 2 and "is in use by process" in second.stderr, second.stderr
    assert second.stderr.count("\n") == 1
    assert _rows(out) == [0, 1]  # one run's epochs, once each
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final"]["epoch"] == 1


def test_a_run_refused_by_a_check_leaves_no_folder_behind(tmp_path, capsys):
    out = tmp_path / "fresh"
    assert main(_train(tmp_path / "nowhere", out)) == 2  # no data there
    assert "Fashion-MNIST not found" in capsys.readouterr().err
    assert not out.exists()


# -- 2. a report pools only runs of one experiment -------------------------------------------------------------------

def _edit_config(run: Path, **changes):
    summary = json.loads((run / "summary.json").read_text())
    summary["config"].update(changes)
    (run / "summary.json").write_text(json.dumps(summary))


def test_report_refuses_runs_of_different_experiments(tmp_path, capsys):
    make_run(tmp_path / "a", "lsr", 0, [0.5, 0.6])
    make_run(tmp_path / "b", "lsr", 1, [0.5, 0.6, 0.7, 0.8])  # 4 epochs, not 2
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tsla: error: these runs are not one experiment, they differ in epochs (epochs: 2 in ")
    assert err.count("\n") == 1 and not (tmp_path / "rep").exists()


@pytest.mark.parametrize("field, a, b", [("label_noise", 0.0, 0.4), ("val_size", None, 5000),
                                         ("label_noise_seed", 0, 1), ("keep_epochs", [], [3]),
                                         ("lr", 0.1, 0.05), ("prior", "uniform", "class-frequency")])
def test_every_field_that_defines_the_experiment_is_checked(tmp_path, field, a, b):
    _edit_config(make_run(tmp_path / "x", "lsr", 0, [0.5, 0.6]), **{field: a})
    _edit_config(make_run(tmp_path / "y", "tsla@1", 0, [0.5, 0.6]), **{field: b})
    if field == "keep_epochs":  # which checkpoints are kept changes no number: pooled
        assert write_report([tmp_path / "x", tmp_path / "y"], tmp_path / "rep")["labels"] == ["lsr", "tsla@1"]
        return
    with pytest.raises(RunDirError, match=f"differ in {field} "):
        write_report([tmp_path / "x", tmp_path / "y"], tmp_path / "rep")


def test_method_theta_seed_and_where_or_how_fast_may_differ(tmp_path):
    first = make_run(tmp_path / "x", "lsr", 0, [0.5, 0.6], theta=0.1)
    _edit_config(first, device="cpu", threads=1, workers=4, eval_batch_size=512, data_root="/a", download=False)
    second = make_run(tmp_path / "y", "tsla@1", 1, [0.5, 0.7], theta=0.2)
    _edit_config(second, device="cuda", threads=8, workers=0, eval_batch_size=64, data_root="/b", download=True)
    # a run from before label noise existed has no such key: it counts as the default, clean labels
    third = make_run(tmp_path / "z", "baseline", 0, [0.4, 0.5])
    _edit_config(third, label_noise=0.0)
    summary = write_report([tmp_path / "x", tmp_path / "y", tmp_path / "z"], tmp_path / "rep")
    assert summary["labels"] == ["baseline", "lsr", "tsla@1"]


def test_tsla_auto_rule_pools_with_runs_that_do_not_read_it_but_not_with_another_rule(tmp_path):
    # a tsla-auto cell trained later, with its own rule, joins LSR runs whose configs carry the default rule
    _edit_config(make_run(tmp_path / "x", "lsr", 0, [0.5, 0.6]), auto_rule="plateau", auto_rate=0.02)
    _edit_config(make_run(tmp_path / "y", "tsla-auto", 0, [0.5, 0.7]), auto_rule="phase-plateau", auto_rate=0.08)
    _edit_config(make_run(tmp_path / "z", "tsla-auto", 1, [0.5, 0.7]), auto_rule="phase-plateau", auto_rate=0.08)
    assert write_report([tmp_path / "x", tmp_path / "y", tmp_path / "z"], tmp_path / "rep")["labels"] == [
        "lsr", "tsla-auto"]
    # two tsla-auto runs with different rules are two experiments; the message names those two runs
    _edit_config(make_run(tmp_path / "w", "tsla-auto", 2, [0.5, 0.7]), auto_rule="phase-plateau", auto_rate=0.05)
    with pytest.raises(RunDirError, match=r"differ in auto_rate \(auto_rate: 0\.08 in .*y/tsla-auto-seed0, 0\.05 in .*w/tsla-auto-seed2\)"):
        write_report([tmp_path / d for d in "xyzw"], tmp_path / "rep2")


# -- 3. compare --out at a training run's folder --------------------------------------------------------------------

def test_compare_into_a_train_run_folder_is_refused(tiny_fashion, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(tiny_fashion, run, "--epochs", "1")) == 0
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    argv = ["compare", "--data-root", str(tiny_fashion), "--epochs", "1", "--methods", "lsr", "--device", "cpu",
            "--no-progress", "--out", str(run)]
    assert main(argv) == 2
    assert "is the folder of a training run (it holds config.yaml)" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before  # nothing written, nothing trained


# -- 4. a training set that cannot train ----------------------------------------------------------------------------

def test_train_subset_smaller_than_the_classes_is_refused(tiny_fashion, tmp_path, capsys):
    assert main(_train(tiny_fashion, tmp_path / "run", "--train-subset", "1")) == 2
    assert "--train-subset 1 is smaller than the 10 classes" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# -- 5. resume on other data ---------------------------------------------------------------------------------------

def _interrupted_run(root, out):
    """A finished 1-epoch run whose config says 2 epochs: its checkpoint is where a stopped run's would be."""
    assert main(_train(root, out, "--epochs", "1")) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["epochs"] = 2
    state = ckpt.load_checkpoint(out / "checkpoint.pt")
    state["config"]["epochs"] = 2
    ckpt.save_checkpoint(out / "checkpoint.pt", state)
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (out / "summary.json").unlink()


def test_resume_on_other_images_is_refused_and_on_a_copy_accepted(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "run"
    _interrupted_run(tiny_fashion, out)
    other = tmp_path / "other"
    shutil.copytree(tiny_fashion, other, ignore=shutil.ignore_patterns("run"))
    images = torch.randint(0, 256, (40, 28, 28), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    write_idx(other / "train-images-idx3-ubyte", images, compress=False)
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--data-root", str(other), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "the training images or labels found now differ from those" in err and err.count("\n") == 1
    assert _rows(out) == [0] and not (out / "summary.json").exists()
    same = tmp_path / "copy"  # identical files elsewhere: the same experiment
    shutil.copytree(tiny_fashion, same, ignore=shutil.ignore_patterns("run", "other", "copy"))
    assert main(["train", "--out", str(out), "--resume", "--data-root", str(same), "--no-progress"]) == 0
    assert _rows(out) == [0, 1]


# -- 6. a checkpoint damaged on disk ---------------------------------------------------------------------------------

def _same(a, b) -> bool:
    """Contents equal, compared independently of the checksum (torch.equal for tensors)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@pytest.fixture
def trained_checkpoint(tiny_fashion, tmp_path):
    out = tmp_path / "run"
    assert main(_train(tiny_fashion, out, "--epochs", "1")) == 0
    return out / "checkpoint.pt"


def test_damaged_weights_are_refused(trained_checkpoint):
    good = trained_checkpoint.read_bytes()
    state = torch.load(trained_checkpoint, weights_only=True)
    weight = max(state["model"].values(), key=lambda t: t.numel())  # the largest tensor's bytes, found in the file
    at = good.find(weight.reshape(-1).view(torch.uint8).numpy().tobytes()[:64])
    assert at > 0
    for damage in (lambda b: b[: at + 100] + bytes([b[at + 100] ^ 0x10]) + b[at + 101 :],  # one flipped bit
                   lambda b: b[:at] + bytes(4096) + b[at + 4096 :]):  # a zeroed 4 KiB block
        trained_checkpoint.write_bytes(damage(good))
        with pytest.raises(RunDirError, match="is damaged .its contents do not match its checksum"):
            ckpt.load_checkpoint(trained_checkpoint)


def test_every_byte_flip_is_refused_or_harmless(trained_checkpoint):
    good = trained_checkpoint.read_bytes()
    original = torch.load(trained_checkpoint, weights_only=True)
    refused = 0
    for at in range(0, len(good), max(1, len(good) // 60)):
        trained_checkpoint.write_bytes(good[:at] + bytes([good[at] ^ 0xFF]) + good[at + 1 :])
        try:
            state = ckpt.load_checkpoint(trained_checkpoint)
        except RunDirError:
            refused += 1
            continue
        assert _same(state, original), f"a flip at byte {at} loaded different contents"
    assert refused > 0


def test_a_checkpoint_of_random_bytes_or_text_is_one_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    for content in (b"just some text\n", os.urandom(5000), b"PK\x03\x04" + os.urandom(300)):
        path.write_bytes(content)
        with pytest.raises(RunDirError, match="is truncated or corrupt"):
            ckpt.load_checkpoint(path)


# -- 7. the thread count ---------------------------------------------------------------------------------------------

def test_thread_count_is_recorded_and_kept_on_resume(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "run"
    _interrupted_run(tiny_fashion, out)  # trained with --threads from the config default
    threads = yaml.safe_load((out / "config.yaml").read_text())["threads"]
    assert threads == torch.get_num_threads()
    other = threads + 1
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--threads", str(other), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"was trained with {threads} CPU thread(s), not {other}" in err and f"--threads {threads}" in err
    before = torch.get_num_threads()
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0  # keeps the run's own count
    assert torch.get_num_threads() == before  # and gives the caller's back
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["threads"] == threads and _rows(out) == [0, 1]


def test_training_runs_on_the_recorded_thread_count(tiny_fashion, tmp_path, monkeypatch):
    seen = []
    import tsla.training.engine

    real = tsla.training.engine.train_one_epoch

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr("tsla.training.trainer.train_one_epoch", spy)
    assert main(_train(tiny_fashion, tmp_path / "run", "--threads", "1")) == 0
    assert seen == [1, 1]
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["threads"] == 1


# -- Ctrl-C while tsla starts ----------------------------------------------------------------------------------------

_INTERRUPT_AT_IMPORT = """
import builtins, os, signal
real = builtins.__import__
def interrupting(name, *args, **kwargs):
    if name == "torch" and not getattr(interrupting, "done", False):
        interrupting.done = True  # a real SIGINT, as Ctrl-C sends, while tsla imports torch
        os.kill(os.getpid(), signal.SIGINT)
    return real(name, *args, **kwargs)
builtins.__import__ = interrupting
import tsla.cli
"""


def _default_sigint() -> None:
    """In the child, before it starts: SIGINT as a terminal's Ctrl-C finds it. A shell starts a background job (``cmd
    &`` in a script, nohup, some CI runners) with SIGINT ignored, and a child inherits that: Python then installs no
    KeyboardInterrupt handler and the signal would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_while_importing_is_one_line():
    done = subprocess.run([sys.executable, "-c", _INTERRUPT_AT_IMPORT], capture_output=True, text=True, timeout=120,
                          preexec_fn=_default_sigint)
    assert done.returncode in (130, -2), done  # killed by SIGINT, as Python exits on an unhandled Ctrl-C
    assert done.stderr == "tsla: interrupted while starting; nothing was written\n"
