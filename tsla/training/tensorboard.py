"""``tsla train --tensorboard``: each epoch's record as TensorBoard scalars, written with TensorBoard's own
``SummaryWriter`` into RUN/tensorboard (an optional extra: ``pip install "tsla[tensorboard]"``).

The scalars are the numbers of the epoch's metrics.jsonl line, tagged by split: ``theta`` and ``lr``; ``train/loss``
(smoothed), ``train/onehot_loss`` (the paper's F) and ``train/top1``; ``test/`` and ``val/`` loss, accuracy and
calibration (``ece``, ``nll``, ``brier``); ``diag/`` diagnostics when measured. The x-axis is the epoch (from 0).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, RunDirError, TrainingError

FOLDER = "tensorboard"
_SKIP = {"epoch", "next_lr", "epoch_seconds", "switch_epoch"}
_SPLITS = ("train_", "test_", "val_", "diag_")


def require_tensorboard() -> None:
    """Raise ``ConfigError`` in one line naming the extra when TensorBoard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError("--tensorboard needs TensorBoard, which is not installed: pip install \"tsla[tensorboard]\" "
                          "(or leave --tensorboard out)") from None


def check_folder(out: Path) -> None:
    """Refuse, before anything is written, an ``out``/tensorboard that TensorBoard cannot write into: a file, or a
    link that leads nowhere. Raises ``RunDirError`` naming it."""
    folder = Path(out) / FOLDER
    if folder.is_symlink() and not folder.exists():
        raise RunDirError(f"{folder} is a link to {os.readlink(folder)}, which does not exist: create that folder, "
                          f"remove the link, or leave --tensorboard out")
    if folder.exists() and not folder.is_dir():
        raise RunDirError(f"{folder} is a file, not a folder: --tensorboard writes its event files there; move the "
                          f"file away or leave --tensorboard out")


def _cannot_write(folder: Path, exc: OSError) -> TrainingError:
    return TrainingError(f"cannot write TensorBoard's events in {folder} ({exc.strerror or exc}): free some disk "
                         f"space and resume (the last checkpoint is kept), or resume without --tensorboard")


def tag(key: str) -> str:
    """A metrics.jsonl key as a TensorBoard tag: ``train_onehot_loss`` -> ``train/onehot_loss``."""
    for prefix in _SPLITS:
        if key.startswith(prefix):
            return f"{prefix[:-1]}/{key[len(prefix):]}"
    return key


class TensorBoardLog:
    """Writes each epoch's record. Events an earlier process wrote in the folder from ``start_epoch`` on are purged
    (TensorBoard's ``purge_step``): on a resume an epoch trained again after a cut appears once, and a fresh or
    ``--overwrite`` run (``start_epoch`` 0) hides an earlier run's curves."""

    def __init__(self, out: Path, start_epoch: int = 0) -> None:
        """Raises ``RunDirError`` for a folder that is a file or a broken link, ``TrainingError`` when it cannot be
        written (a full or read-only disk)."""
        require_tensorboard()
        check_folder(out)
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(out) / FOLDER
        try:
            self.writer = SummaryWriter(str(self.folder), purge_step=start_epoch)
        except OSError as exc:
            raise _cannot_write(self.folder, exc) from None

    def epoch(self, record: Mapping[str, Any]) -> None:
        """Write one epoch's scalars. Raises ``TrainingError`` when they cannot be written."""
        step = int(record["epoch"])
        try:
            for key, value in record.items():
                if key not in _SKIP and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(tag(key), value, step)
            self.writer.flush()  # an interrupted run keeps every finished epoch
        except OSError as exc:
            raise _cannot_write(self.folder, exc) from None

    def close(self) -> None:
        """Raises ``TrainingError`` when the last events cannot be written."""
        try:
            self.writer.close()
        except OSError as exc:
            raise _cannot_write(self.folder, exc) from None
