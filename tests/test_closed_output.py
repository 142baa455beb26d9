"""Standard output that stops taking text — a reader that closes the pipe (``tsla train | head -1``, ``tsla select |
grep -m1 ^chosen``) or a full disk (``> /dev/full``) — ends the printing, never the work: the run still trains every
epoch and writes summary.json, select still tests its choice and writes selection.json. A closed pipe exits as the
command would have; a full disk is one line and exit 1, no traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

from .test_select import _argv, _fake_fashion

ROOT = Path(__file__).resolve().parents[1]


def _env():
    # unbuffered: every line reaches the pipe when printed, so the reader's close comes before the later lines
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def _train_argv(data, out):
    return [sys.executable, "-m", "tsla", "train", "--data-root", str(data), "--train-subset", "100", "--epochs", "3",
            "--batch-size", "20", "--threads", "1", "--device", "cpu", "--no-progress", "--out", str(out)]


def _read_until(proc, prefix):
    """Read stdout lines until one starts with ``prefix`` (as ``grep -m1 ^prefix``), then close our end."""
    for line in proc.stdout:
        if line.startswith(prefix):
            break
    proc.stdout.close()


def test_train_piped_into_head_trains_every_epoch(tmp_path):
    data = _fake_fashion(tmp_path / "data")
    proc = subprocess.Popen(_train_argv(data, tmp_path / "run"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(), cwd=ROOT)
    _read_until(proc, "")  # head -1
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0, err
    assert "Traceback" not in err and err == "", err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs"] == 3
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [0, 1, 2]


def test_select_piped_into_grep_tests_the_choice_and_writes_selection_json(tmp_path):
    data = _fake_fashion(tmp_path / "data")
    out = tmp_path / "sel"
    argv = [sys.executable, "-m", "tsla", *_argv(data, out, "--seeds", "0")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    _read_until(proc, "chosen")
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0 and err == "", err
    sel = json.loads((out / "selection.json").read_text())
    assert 0 <= sel["test"]["test_top1"] <= 1 and len(sel["test"]["per_seed"]) == 1


def test_train_into_a_full_disk_trains_and_says_so_in_one_line(tmp_path):
    data = _fake_fashion(tmp_path / "data")
    with open("/dev/full", "w") as full:
        done = subprocess.run(_train_argv(data, tmp_path / "run"), stdout=full, stderr=subprocess.PIPE, text=True,
                              env=_env(), cwd=ROOT, timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("tsla: error: cannot write standard output (No space left on device)")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "finished"


def test_a_listing_into_a_closed_pipe_still_ends_quietly_with_exit_0():
    proc = subprocess.Popen([sys.executable, "-m", "tsla", "presets"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    _read_until(proc, "")
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and err == "", err
