"""``tsla compare --engine ray`` on a real local Ray (2 CPUs on 127.0.0.1, started once for the module): the same
numbers as ``--engine local``, a branch started from its trunk's kept checkpoint while the trunk trains on and with
its own θ, and a worker killed by SIGKILL in mid-run changing nothing."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import torch

from tsla.cli import main
from tsla.schedules import two_stage
from tsla.training.branch import kept_checkpoint

from .conftest import write_idx

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'tsla[ray]' (the test extra has it)")

TIMING = ("seconds", "per_second")  # wall-clock fields: the only ones two engines may differ in


def _import_trainer():
    import tsla.training.trainer  # noqa: F401

    time.sleep(1)  # held, so that the other call needs the second worker
    return os.getpid()


@pytest.fixture(scope="module")
def cluster():
    """A local Ray with 2 CPUs, used in this process by ``--engine ray`` and joined by subprocesses at its address."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False)
    # two workers that have imported the trainer, as on a cluster that has run a task before: a cold worker spends
    # seconds importing torch, long enough for a tiny trunk to end before its branch could start
    warm = ray.remote(num_cpus=1)(_import_trainer)
    assert len(set(ray.get([warm.remote(), warm.remote()]))) == 2
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A fake Fashion-MNIST: 96 training and 20 test images (random pixels, labels by index)."""
    root = tmp_path_factory.mktemp("fashion")
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 96), ("t10k", 20)):
        write_idx(root / f"{split}-images-idx3-ubyte", torch.randint(0, 256, (n, 28, 28), generator=g,
                                                                      dtype=torch.uint8), compress=False)
        write_idx(root / f"{split}-labels-idx1-ubyte", torch.arange(n) % 10, compress=False)
    return root


def _argv(data, out, methods, epochs):
    return ["compare", "--data-root", str(data), "--methods", methods, "--theta", "0.3", "--allow-negative",
            "--epochs", str(epochs), "--milestones", "2", "--batch-size", "16", "--threads", "1", "--device", "cpu",
            "--out", str(out), "--no-progress"]


def _records(run):
    return [{k: v for k, v in json.loads(line).items() if not k.endswith(TIMING)}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def _stamps(run, what):
    """The times RUN/train.log gives for lines 'task NAME: WHAT'."""
    lines = (run / "train.log").read_text().splitlines()
    return [datetime.fromisoformat(m.group(1)) for m in (re.match(r"\[(\S+)\] task (\S+): (.*)", line)
                                                          for line in lines) if m and f"{m.group(2)}: {m.group(3)}".startswith(what)]


RUNS = ("lsr-seed0", "tsla@2-seed0", "tsla@3-after-0.2-seed0")
METHODS = "lsr,tsla@2,tsla@3:theta_after=-0.2"


@pytest.fixture(scope="module")
def local(data, tmp_path_factory) -> Path:
    """The grid trained by ``--engine local``, the reference."""
    out = tmp_path_factory.mktemp("local") / "cmp"
    assert main(_argv(data, out, METHODS, 10)) == 0
    return out


def test_ray_trains_the_grid_as_local_does_branches_start_early_with_their_own_theta(cluster, data, local, tmp_path):
    remote = tmp_path / "ray"
    assert main(_argv(data, remote, METHODS, 10) + ["--engine", "ray", "--cpus-per-run", "1"]) == 0
    for name in RUNS:  # every number of every epoch, and the final summary, as the local engine computed them
        assert _records(remote / name) == _records(local / name), name
        summaries = [json.loads((d / name / "summary.json").read_text()) for d in (local, remote)]
        assert [s["final"]["test_top1"] for s in summaries] == [summaries[0]["final"]["test_top1"]] * 2
    # each branch trains with its own schedule after S, not the trunk's theta 0.3 stored in the checkpoint it read
    trunk = _records(remote / "lsr-seed0")
    assert [r["theta"] for r in trunk] == [0.3] * 10
    assert [r["theta"] for r in _records(remote / "tsla@2-seed0")] == [two_stage(0.3, 2)(e) for e in range(10)]
    assert [r["theta"] for r in _records(remote / "tsla@3-after-0.2-seed0")] == [0.3] * 3 + [-0.2] * 7
    assert _records(remote / "tsla@2-seed0")[:2] == trunk[:2]  # its first 2 epochs: the trunk's
    # the trunk ran as segments; each branch started once the trunk had kept its checkpoint at S, the first one while
    # the trunk trained on (the second waits for a free CPU: 2 CPUs, each run holds 1)
    trunk_run = remote / "lsr-seed0"
    paused2, paused3 = _stamps(trunk_run, "lsr-seed0@2: paused")[0], _stamps(trunk_run, "lsr-seed0@3: paused")[0]
    end = _stamps(trunk_run, "lsr-seed0: finished")[0]
    start2 = _stamps(remote / "tsla@2-seed0", "tsla@2-seed0: process")[0]
    start3 = _stamps(remote / "tsla@3-after-0.2-seed0", "tsla@3-after-0.2-seed0: process")[0]
    assert paused2 < start2 < end and paused3 < start3
    # the kept checkpoints the branches started from are still there once every branch has started (and after)
    assert kept_checkpoint(trunk_run, 2).is_file() and kept_checkpoint(trunk_run, 3).is_file()


def test_a_worker_killed_in_mid_run_is_retried_and_changes_nothing(cluster, data, local, tmp_path):
    out = tmp_path / "ray"
    trunk = out / "lsr-seed0"
    codes = []
    driver = threading.Thread(target=lambda: codes.append(main(_argv(data, out, METHODS, 10) + ["--engine", "ray"])))
    driver.start()
    killed, deadline = None, time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and driver.is_alive():
        log = trunk / "train.log"
        started = re.findall(r"task lsr-seed0: process (\d+)", log.read_text()) if log.is_file() else []
        metrics = trunk / "metrics.jsonl"
        done = len(metrics.read_text().splitlines()) if metrics.is_file() else 0
        if started and 4 <= done < 9:  # the trunk's last segment (epochs 3-9) is in mid-run
            killed = int(started[0])
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    driver.join(timeout=300)
    assert killed is not None, "the trunk's last segment ended before it could be killed"
    assert codes == [0]
    attempts = re.findall(r"task lsr-seed0: process (\d+)", (trunk / "train.log").read_text())
    assert len(attempts) == 2 and int(attempts[0]) == killed and int(attempts[1]) != killed  # Ray ran it again
    assert "resuming" in (trunk / "train.log").read_text().split(f"process {attempts[1]}")[1]
    for name in RUNS:
        assert _records(out / name) == _records(local / name), name


def test_the_driver_killed_and_run_again_gives_the_same_runs(cluster, data, local, tmp_path):
    """A driver joined to the cluster by --ray-address is SIGKILLed in mid-grid; Ray stops its tasks, and the same
    command run again resumes every run from its checkpoint, with the local engine's numbers."""
    out = tmp_path / "ray"
    argv = _argv(data, out, METHODS, 10) + ["--engine", "ray"]
    driver = subprocess.Popen([sys.executable, "-m", "tsla", *argv, "--ray-address", cluster],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics, deadline = out / "lsr-seed0" / "metrics.jsonl", time.monotonic() + 120
    while driver.poll() is None and time.monotonic() < deadline:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 4:  # the trunk's last segment is running
            driver.kill()
            break
        time.sleep(0.02)
    assert driver.wait(timeout=60) == -signal.SIGKILL, driver.stderr.read()[-2000:]
    assert not (out / "lsr-seed0" / "summary.json").exists()  # killed before the trunk finished
    assert main(argv) == 0
    assert "resuming" in (out / "lsr-seed0" / "train.log").read_text()
    for name in RUNS:
        assert _records(out / name) == _records(local / name), name


def test_a_task_that_does_not_see_out_stops_the_job_with_its_one_line(cluster, data, tmp_path):
    """The storage check run by a Ray worker: its RunDirError reaches the driver unwrapped (one line, exit code 2),
    and the task that waits for it never starts."""
    from tsla.config import build_config
    from tsla.errors import RunDirError
    from tsla.experiments.engines import Task
    from tsla.experiments.engines.ray_engine import RayEngine
    from tsla.experiments.engines.storage import write_marker
    from tsla.experiments.grid_tasks import Segment

    cfg = build_config(("t", {"epochs": 1, "data_root": str(data), "device": "cpu", "threads": 1}))
    out = tmp_path / "cmp"
    (out / "a").mkdir(parents=True)
    (out / "b").mkdir()
    write_marker(out)
    unseen = (out, "a token another file system holds")
    tasks = [Task("a", Segment(out / "a", cfg, None, None, unseen)),
             Task("b", Segment(out / "b", cfg, None, None, unseen), after=("a",))]
    with pytest.raises(RunDirError) as info:
        RayEngine().run(tasks)
    assert type(info.value) is RunDirError and info.value.exit_code == 2
    assert "does not see --out" in str(info.value) and "\n" not in str(info.value)
    assert list((out / "a").iterdir()) == [] and list((out / "b").iterdir()) == []  # nothing trained or written
