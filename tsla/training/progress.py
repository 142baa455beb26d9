"""What a run prints: a progress bar per epoch on a terminal, one plain line per epoch otherwise.

Epochs are counted from 0 in everything a user reads (these lines, the schedule table, metrics.jsonl, the plots):
a run of 12 epochs has epochs 0-11, and ``tsla@S`` smooths its first S epochs, 0 to S-1, and none from epoch S on.
"""

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

        self._bar = tqdm(total=total_images, desc=f"epoch {epoch} of 0-{epochs - 1}", unit="img", leave=False,
                         file=self.stream)
        return self._bar.update

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def format_epoch(record: dict[str, Any], epochs: int) -> str:
    """One line summarising an epoch's metrics record."""
    return (
        f"epoch {record['epoch']:>3} of 0-{epochs - 1}  lr {record['lr']:.4g}  theta {record['theta']:.3f}  "
        f"train loss {record['train_loss']:.4f} (one-hot {record['train_onehot_loss']:.4f}) "
        f"top1 {100 * record['train_top1']:.2f}%  |  "
        + (f"val top1 {100 * record['val_top1']:.2f}%  |  " if "val_top1" in record else "")
        + (f"noisy labels memorised {100 * record['noise_memorised']:.1f}% corrected "
           f"{100 * record['noise_corrected']:.1f}%  |  " if "noise_memorised" in record else "")
        + (f"test loss {record['test_loss']:.4f} top1 {100 * record['test_top1']:.2f}% "
           f"top5 {100 * record['test_top5']:.2f}% ece {record['test_ece']:.3f}  |  " if "test_top1" in record else "")
        + f"{record['epoch_seconds']:.1f}s {record['train_images_per_second']:.0f} img/s"
    )


def describe_schedule(schedule: Callable[[int], float], epochs: int) -> str:
    """The smoothing a run applies, in words, epochs counted from 0: e.g. "theta 0.1 in epochs 0-5, then 0 from epoch
    6" for tsla@6, "theta 0 in every epoch (one-hot labels)" for the baseline. Read from the schedule's values, so
    it says what the run does whatever ``--theta`` was given."""
    from ..smoothing.schedules import AutoTwoStage

    if isinstance(schedule, AutoTwoStage) and schedule.switch_epoch is None:
        return f"theta {schedule.theta:g} until tsla-auto drops it to 0"
    values = [schedule(epoch) for epoch in range(epochs)]
    if all(v == 0 for v in values):
        return "theta 0 in every epoch (one-hot labels)"
    if all(v == values[0] for v in values):
        return f"theta {values[0]:g} in every epoch"
    switch = next(e for e in range(epochs) if values[e] != values[0])
    if all(v == values[switch] for v in values[switch:]):  # two stages: TSLA (ending on any theta), reverse@S
        span = "epoch 0" if switch == 1 else f"epochs 0-{switch - 1}"
        return f"theta {values[0]:g} in {span}, then {values[switch]:g} from epoch {switch}"
    off = next((e for e in range(epochs) if all(v == 0 for v in values[e:])), epochs)  # smoothing over from here
    end = f"0 from epoch {off}" if off < epochs else f"{values[-1]:.3g} in epoch {epochs - 1}"
    return f"theta {values[0]:g} in epoch 0, decaying to {end}"
