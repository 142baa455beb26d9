"""Learning-rate schedules: pure functions ``epoch -> lr`` (epochs counted from 0, lr set once per epoch)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class StepLR:
    """lr * gamma ** (number of milestones <= epoch): e.g. milestones (100, 150) divide by 10 at epochs 100 and 150."""

    lr: float
    milestones: tuple[int, ...]
    gamma: float = 0.1

    def __call__(self, epoch: int) -> float:
        return self.lr * self.gamma ** sum(1 for m in self.milestones if epoch >= m)


@dataclass(frozen=True)
class CosineLR:
    """lr * (1 + cos(pi * epoch / epochs)) / 2: from lr at epoch 0 towards 0 at the end of training."""

    lr: float
    epochs: int

    def __call__(self, epoch: int) -> float:
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))


def make_lr_schedule(kind: str, lr: float, epochs: int, milestones: tuple[int, ...], gamma: float) -> StepLR | CosineLR:
    """The schedule ``--lr-schedule`` names ('step' or 'cosine')."""
    if kind == "step":
        return StepLR(lr, tuple(milestones), gamma)
    if kind == "cosine":
        return CosineLR(lr, epochs)
    raise ValueError(f"--lr-schedule {kind!r} is unknown: choose step or cosine")
