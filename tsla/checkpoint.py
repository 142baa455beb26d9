"""Checkpoints and run-directory files, written atomically: a temporary file in the same folder, flushed to disk,
then renamed over the old one, so a crash mid-write never loses the last good copy."""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import RunDirError

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CONFIG = "config.yaml"


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode()))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` atomically."""
    _atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary pickles). Raises ``RunDirError`` naming the file
    when it is missing, truncated or corrupt."""
    if not path.is_file():
        raise RunDirError(f"no checkpoint at {path}: --resume needs a run started with the same --out")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, OSError, ValueError) as exc:
        raise RunDirError(f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}): start the run afresh") from None
    needed = ("format", "next_epoch", "model", "optimizer", "config", "history", "best", "wall_seconds")
    if not isinstance(state, dict) or any(key not in state for key in needed):
        raise RunDirError(f"{path} is not a tsla checkpoint (or one of an older format): start the run afresh")
    return state


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_metrics(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace the metrics file with ``records``, one JSON line each (atomically)."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))
