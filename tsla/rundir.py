"""Run directories: what counts as a run, a lock against two trainings in one folder, and --overwrite."""

from __future__ import annotations

import os
import shutil
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
    shutil.rmtree(out / "checkpoints", ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``RUN/.lock`` holding "pid host" while a training runs there; removed on exit.

    A lock whose process is gone (same host) is stale and taken over with a note; a live one, or one from another
    host, is refused with a message naming the holder and how to clear it.
    """

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK
        self.held = False

    def __enter__(self) -> "RunLock":
        me = f"{os.getpid()} {socket.gethostname()}"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._handle_existing()
                continue
            with os.fdopen(fd, "w") as f:
                f.write(me + "\n")
            self.held = True
            return self
        raise RunDirError(f"cannot take the lock {self.path}: another process keeps creating it")

    def _handle_existing(self) -> None:
        try:
            pid_text, host = self.path.read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            pid, host = -1, "?"
        if host == socket.gethostname() and pid > 0 and not _alive(pid):
            print(f"tsla: removing stale lock {self.path} of process {pid}, which is gone", file=sys.stderr)
            self.path.unlink(missing_ok=True)
            return
        if host == socket.gethostname() and pid == os.getpid():
            raise RunDirError(f"{self.path.parent} is already being trained by this process")
        raise RunDirError(
            f"{self.path.parent} is in use by process {pid} on {host}: wait for it, or delete {self.path} if that "
            f"process no longer runs"
        )

    def __exit__(self, *exc) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
