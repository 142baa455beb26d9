"""``tsla train --tensorboard``: each epoch's record as TensorBoard scalars, written with TensorBoard's own
``SummaryWriter`` into RUN/tensorboard (an optional extra: ``pip install "tsla[tensorboard]"``).

The scalars are the numbers of the epoch's metrics.jsonl line, tagged by split: ``theta`` and ``lr``; ``train/loss``
(smoothed), ``train/onehot_loss`` (the paper's F) and ``train/top1``; ``test/`` and ``val/`` loss, accuracy and
calibration (``ece``, ``nll``, ``brier``); ``diag/`` diagnostics when measured. The x-axis is the epoch (from 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError

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
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(out / FOLDER), purge_step=start_epoch)

    def epoch(self, record: Mapping[str, Any]) -> None:
        step = int(record["epoch"])
        for key, value in record.items():
            if key not in _SKIP and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(tag(key), value, step)
        self.writer.flush()  # an interrupted run keeps every finished epoch

    def close(self) -> None:
        self.writer.close()
