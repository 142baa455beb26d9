"""Run directories: what counts as a run, a lock against two trainings in one folder, and --overwrite."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import stat
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .best_val import BEST_WEIGHTS
from .checkpoint import CHECKPOINT, CONFIG, METRICS, SUMMARY
from ..config import TrainConfig, config_text
from ..errors import ConfigError, RunDirError

LOCK = ".lock"
RUN_FILES = (CHECKPOINT, METRICS, SUMMARY, CONFIG, BEST_WEIGHTS)  # best.pt too: a stale one passed for the new run's


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
    """Delete the files a run wrote in ``out`` (for --overwrite); anything else in the folder is left alone.

    A link is removed as a link (``unlink`` never follows one); a ``checkpoints`` folder that is a link is refused
    (``RunDirError``) before anything is deleted: its files belong to wherever it points, perhaps another run."""
    kept = out / "checkpoints"
    if kept.is_symlink():
        raise RunDirError(f"{kept} is a link to {os.readlink(kept)}: --overwrite deletes nothing outside {out}; "
                          f"remove the link (or replace it by a folder) and run again")
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
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

    ``.lock`` is opened with ``O_NOFOLLOW`` and must be a regular file with one link: a planted symbolic or hard link
    is refused, never written through. The holder removes the file before it releases the lock; a process that opened
    the old file meanwhile finds, once it gets the lock, that the path no longer names the file it locked, and starts
    again on the new one, so two processes never hold the lock at once.
    """

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK
        self.fd: int | None = None

    def _open(self) -> int:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                raise RunDirError(f"{self.path} is not a regular file (a link, a folder or a device): remove it, "
                                  f"tsla writes its lock there") from None
            raise
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(fd)
            raise RunDirError(f"{self.path} is not a regular file of its own (a link, a pipe or a device): remove "
                              f"it, tsla writes its lock there")
        return fd

    def __enter__(self) -> "RunLock":
        while True:
            fd = self._open()
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
            try:
                now = os.lstat(self.path)
            except FileNotFoundError:
                now = None
            mine = os.fstat(fd)
            if now is not None and (now.st_ino, now.st_dev) == (mine.st_ino, mine.st_dev):
                break
            os.close(fd)  # the file was removed (and perhaps created anew) by the previous holder: lock the new one
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
            # removed while still held: a waiter that opened this file re-checks the path after locking (above)
            self.path.unlink(missing_ok=True)
            os.close(self.fd)  # releases the flock
            self.fd = None


def check_out_path(text: str, flag: str = "--out") -> Path:
    """The output folder a user named, refused early (``ConfigError``) when it is empty (which would write into the
    current directory) or has a component longer than the file system allows (255 bytes on most)."""
    if not text.strip():
        raise ConfigError(f"{flag} is empty: name a folder for the results, e.g. {flag} runs/first")
    path = Path(text)
    for part in path.parts:
        if len(os.fsencode(part)) > 255:
            raise ConfigError(f"{flag}: the name {part[:40]}... is {len(os.fsencode(part))} bytes long, more than "
                              f"the 255 a file system allows: choose a shorter name")
    return path


@contextmanager
def claim_run_dir(out: Path, primary: bool = True) -> Iterator[None]:
    """Create ``out`` and hold its :class:`RunLock` for the block, BEFORE any check of what the folder holds.

    Checking first and locking later let two trainings started into one fresh folder at the same moment both pass
    the "already holds a run" check and then write into each other's files. On the way out the lock is released, and
    a folder this call created is removed again if it is still empty (a run refused by a check, or stopped by bad
    data, leaves nothing behind). Non-primary ranks of a distributed run neither create nor lock. Raises
    ``RunDirError`` when the folder cannot be created or is in use.
    """
    if not primary:
        yield
        return
    try:
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        lock = RunLock(out).__enter__()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise RunDirError(f"cannot write to {out} ({reason}): choose a writable --out") from None
    try:
        yield
    finally:
        lock.__exit__()
        if created:
            try:
                out.rmdir()  # only if empty: nothing of a run is ever removed here
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    raise
