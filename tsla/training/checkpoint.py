"""Checkpoints and run-directory files, written atomically: a temporary file in the same folder, flushed to disk,
then renamed over the old one, so a crash mid-write never loses the last good copy.

A checkpoint also carries a SHA-256 of its contents (``checksum``: every tensor's dtype, shape and bytes and every
other value, walked in a fixed order), checked on loading: a file damaged on disk after it was written (a flipped
byte, a zeroed block) is refused instead of resuming from damaged weights. The file stays a plain
``torch.save`` dictionary that ``torch.load(..., weights_only=True)`` reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import RunDirError

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


def atomic_copy(source: Path, path: Path) -> None:
    """Copy ``source`` to ``path`` through a temporary file and a rename: a kill mid-copy leaves no cut file."""
    with open(source, "rb") as src:
        _atomic_write(path, lambda f: shutil.copyfileobj(src, f, 1 << 20))


CHECKSUM = "checksum"
# the fields of tsla.training.engine.EpochProgressState, a checkpoint's mid_epoch (tested to stay in step)
MID_EPOCH_FIELDS = {"step", "loss_sum", "onehot_sum", "correct", "seen", "seconds"}
# checkpoints from this format on must carry a checksum (format 1 predates it and is loaded unchecked)
CHECKSUM_FORMAT = 2


def _digest(value: Any, h: "hashlib._Hash") -> None:
    """Feed ``value`` into ``h`` in a fixed order: type tags keep e.g. 1, 1.0, "1" and [1] apart."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        h.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            h.update(repr(key).encode())
            _digest(value[key], h)
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}".encode())
        for item in value:
            _digest(item, h)
    else:
        h.update(f"V{type(value).__name__}:{value!r};".encode())


def state_checksum(state: dict[str, Any]) -> str:
    """SHA-256 (hex) of a checkpoint dictionary's contents, leaving out its own ``checksum`` entry."""
    h = hashlib.sha256()
    _digest({k: v for k, v in state.items() if k != CHECKSUM}, h)
    return h.hexdigest()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus its ``checksum``) with ``torch.save`` atomically."""
    state = {**state, CHECKSUM: state_checksum(state)}
    _atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary pickles) and check its checksum. Raises
    ``RunDirError`` naming the file when it is missing, truncated, corrupt, damaged or not a tsla checkpoint."""
    if not path.is_file():
        raise RunDirError(f"no checkpoint at {path}: --resume needs a run started with the same --out")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - damaged bytes make torch.load raise almost any type (KeyError,
        # IndexError, UnicodeDecodeError, zipfile/pickle errors, ...), varying with torch's version: all mean one thing
        raise RunDirError(f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}): start the run "
                          f"afresh") from None
    needed = ("format", "next_epoch", "model", "optimizer", "config", "history", "best", "wall_seconds")
    if not isinstance(state, dict) or any(key not in state for key in needed):
        raise RunDirError(f"{path} is not a tsla checkpoint (or one of an older format): start the run afresh")
    stored = state.get(CHECKSUM)
    if stored is None and isinstance(state["format"], int) and state["format"] < CHECKSUM_FORMAT:
        return state  # written before checkpoints carried a checksum
    if stored != state_checksum(state):
        raise RunDirError(f"checkpoint {path} is damaged (its contents do not match its checksum): start the run "
                          f"afresh, or restore the file from a backup")
    _check_fields(state, path)
    return state


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _best_val_ok(best: Any) -> bool:
    """None (no validation set) or an epoch, its validation top-1 and NLL, and the weights of that epoch."""
    if best is None:
        return True
    return (isinstance(best, dict) and set(best) == {"epoch", "val_top1", "val_nll", "model"}
            and isinstance(best["epoch"], int) and not isinstance(best["epoch"], bool) and best["epoch"] >= -1
            and _number(best["val_top1"]) and _number(best["val_nll"]) and isinstance(best["model"], dict)
            and all(isinstance(v, torch.Tensor) for v in best["model"].values()))


def _check_fields(state: dict[str, Any], path: Path) -> None:
    """Refuse (``RunDirError``) a checkpoint whose entries have the wrong types, e.g. edited by hand with its
    checksum recomputed: resuming from it would end in a traceback deep inside the trainer."""
    config, mid = state["config"], state.get("mid_epoch")
    threads = config.get("threads") if isinstance(config, dict) else None
    checks = {
        "config": isinstance(config, dict),
        "config.threads": threads is None or (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1),
        "next_epoch": isinstance(state["next_epoch"], int) and not isinstance(state["next_epoch"], bool)
        and state["next_epoch"] >= 0,
        "history": isinstance(state["history"], list) and all(isinstance(r, dict) for r in state["history"]),
        "best": isinstance(state["best"], dict) and set(state["best"]) <= {"test_top1", "epoch"}
        and all(_number(v) for v in state["best"].values()),
        "wall_seconds": _number(state["wall_seconds"]),
        "best_val": _best_val_ok(state.get("best_val")),
        "mid_epoch": mid is None or (isinstance(mid, dict) and set(mid) == MID_EPOCH_FIELDS
                                     and all(_number(v) for v in mid.values())),
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise RunDirError(f"checkpoint {path} has an invalid {bad[0]} entry (edited by hand?): start the run afresh, "
                          f"or restore the file from a backup")


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_metrics(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace the metrics file with ``records``, one JSON line each (atomically)."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))
