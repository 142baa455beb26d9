"""Run directories: what counts as a run, a lock against two trainings in one folder, and --overwrite."""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from pathlib import Path

from .checkpoint import CHECKPOINT, CONFIG, METRICS, SUMMARY
from .config import TrainConfig, config_text
from .errors import RunDirError

LOCK = ".lock"
RUN_FILES = (CHECKPOINT, METRICS, SUMMARY, CONFIG)


def has_run(out: Path, cfg: TrainConfig | None = None) -> bool:
    """Whether ``out`` holds something a fresh run would overwrite: a checkpoint, metrics, a summary, or a
    config.yaml other than the one this run would write (a user's own file, or another run's)."""
    if any((out / name).exists() for name in (CHECKPOINT, METRICS, SUMMARY)):
        return True
    config = out / CONFIG
    if not config.exists():
        return False
    return cfg is None or config.read_text() != config_text(cfg)


def is_finished(out: Path) -> bool:
    return (out / SUMMARY).is_file()


def clear_run(out: Path) -> None:
    """Delete the files a run wrote in ``out`` (for --overwrite); anything else in the folder is left alone."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    kept = out / "checkpoints"
    if kept.is_dir():
        for path in kept.glob("epoch-*.pt"):
            path.unlink()
        if not any(kept.iterdir()):
            kept.rmdir()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """An exclusive ``flock`` on ``RUN/.lock`` while a training runs there; the file records "pid host".

    The kernel releases the lock when the process ends, however it ends, so a lock left by a killed run is stale by
    construction: the next run takes it over (and says so). A lock held by a live process is refused with a message
    naming it. (``flock`` is local to a machine; on a network file system, use one machine per run directory.)
    """

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            os.close(fd)
            pid, host = (holder + ["?", "?"])[:2]
            raise RunDirError(
                f"{self.path.parent} is in use by process {pid} on {host}: wait for it to finish (or stop it); "
                f"two trainings cannot share a run directory"
            ) from None
        previous = os.pread(fd, 200, 0).decode(errors="replace").split()
        if len(previous) == 2 and previous[0].isdigit() and int(previous[0]) != os.getpid():
            gone = previous[1] != socket.gethostname() or not _alive(int(previous[0]))
            if gone:
                print(f"tsla: taking over the stale lock {self.path} of process {previous[0]}, which is gone",
                      file=sys.stderr)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)  # releases the flock
            self.fd = None
