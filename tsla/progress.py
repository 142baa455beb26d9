"""What a run prints: a progress bar per epoch on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
from typing import Any, Callable, TextIO


class EpochProgress:
    """Shows training progress within an epoch (a tqdm bar when ``stream`` is a terminal, nothing otherwise)."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.bar_enabled = enabled and self.stream.isatty()
        self._bar = None

    def start(self, epoch: int, epochs: int, total_images: int) -> Callable[[int], None] | None:
        if not self.bar_enabled:
            return None
        from tqdm import tqdm

        self._bar = tqdm(total=total_images, desc=f"epoch {epoch + 1}/{epochs}", unit="img", leave=False, file=self.stream)
        return self._bar.update

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def format_epoch(record: dict[str, Any], epochs: int) -> str:
    """One line summarising an epoch's metrics record."""
    return (
        f"epoch {record['epoch'] + 1:>3}/{epochs}  lr {record['lr']:.4g}  theta {record['theta']:.3f}  "
        f"train loss {record['train_loss']:.4f} (one-hot {record['train_onehot_loss']:.4f}) "
        f"top1 {100 * record['train_top1']:.2f}%  |  "
        + (f"val top1 {100 * record['val_top1']:.2f}%  |  " if "val_top1" in record else "")
        + (f"test loss {record['test_loss']:.4f} top1 {100 * record['test_top1']:.2f}% "
           f"top5 {100 * record['test_top5']:.2f}% ece {record['test_ece']:.3f}  |  " if "test_top1" in record else "")
        + f"{record['epoch_seconds']:.1f}s {record['train_images_per_second']:.0f} img/s"
    )
