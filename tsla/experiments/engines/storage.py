"""Shared storage: the driver writes a marker with a fresh token into the output folder, and every task checks it
sees that very marker before it trains, so a node that mounts another (or no) file system at that path stops the
job with one line instead of training into a folder nobody reads."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from ...errors import RunDirError
from ...training.checkpoint import atomic_write_text

MARKER = ".tsla-storage"


def write_marker(out: Path) -> str:
    """Write ``out/.tsla-storage`` with a new token and return the token. Raises ``RunDirError`` when ``out`` is
    not writable."""
    token = uuid.uuid4().hex
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / MARKER, token + "\n")
    except OSError as exc:
        raise RunDirError(f"cannot write to {out} ({exc.strerror or exc}): choose a writable --out") from None
    return token


def check_marker(out: Path, token: str) -> None:
    """Raise ``RunDirError`` unless ``out/.tsla-storage`` holds ``token``: this process (a Ray worker, perhaps on
    another node) does not see the folder the driver writes to."""
    try:
        seen = (out / MARKER).read_text().strip()
    except OSError:
        seen = None
    if seen != token:
        raise RunDirError(f"the worker on {socket.gethostname()} does not see --out {out} as the driver wrote it "
                          f"({MARKER} {'is missing' if seen is None else 'holds another token'}): put --out on "
                          f"storage every node mounts at the same path (NFS, a cluster file system); nothing trained")
