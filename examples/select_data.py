"""The task the three ``select_*`` examples share: classifying generated 1-D signals whose labels are partly wrong.

Four classes of waveform (sine, square, triangle, sawtooth), 64 samples each, with a random frequency (2 to 5
cycles), phase and amplitude, plus Gaussian noise. A fraction ``label_noise`` of the labels of *both* splits is
replaced by another class drawn uniformly: a user's validation labels come from the same source as the training
labels, so they are as noisy. Also here: the shuffling sampler whose order is a function of (seed, epoch) only,
so that a run branched or resumed at epoch S sees the batches an uninterrupted run sees, the tiny 1-D CNN the
examples train (no dropout, no batch norm: a run is a deterministic function of its seed on a CPU), and the
validation numbers they report.

Not an example by itself: ``select_plain_loop.py``, ``select_lightning.py`` and ``select_hf_trainer.py`` import it.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
from torch import nn

CLASSES = ("sine", "square", "triangle", "sawtooth")
LENGTH = 64  # samples per signal


def signals(n: int, seed: int, label_noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` signals of shape (1, LENGTH) and their labels in [0, 4), a fraction ``label_noise`` of them wrong.

    Raises ``ValueError`` for ``label_noise`` outside [0, 1)."""
    if not 0 <= label_noise < 1:
        raise ValueError(f"label_noise={label_noise!r} must be in [0, 1): the fraction of labels made wrong")
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, len(CLASSES), (n,), generator=g)
    cycles = 2 + 3 * torch.rand(n, 1, generator=g)
    phase = torch.rand(n, 1, generator=g)
    t = (torch.arange(LENGTH) / LENGTH * cycles + phase) % 1.0  # position in the current cycle, in [0, 1)
    waves = torch.stack([torch.sin(2 * math.pi * t), torch.where(t < 0.5, 1.0, -1.0),
                         1 - 4 * (t - 0.5).abs(), 2 * t - 1])  # (class, n, LENGTH)
    x = waves[y, torch.arange(n)] * (0.5 + torch.rand(n, 1, generator=g))
    x = x + 0.3 * torch.randn(n, LENGTH, generator=g)
    flip = torch.rand(n, generator=g) < label_noise
    other = (y + torch.randint(1, len(CLASSES), (n,), generator=g)) % len(CLASSES)  # a wrong class, uniformly
    return x.unsqueeze(1), torch.where(flip, other, y)


def split(n_train: int, n_val: int, label_noise: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                   torch.Tensor]:
    """A training and a validation split (x_train, y_train, x_val, y_val), each its own draw (seeds 0 and 1)."""
    return (*signals(n_train, 0, label_noise), *signals(n_val, 1, label_noise))


class EpochShuffle(torch.utils.data.Sampler):
    """A permutation of range(n) drawn from (seed, epoch) alone. ``set_epoch(e)`` (called by Lightning and by the
    Hugging Face Trainer before each epoch) selects epoch ``first_epoch + e``: a framework that counts a resumed
    run's epochs from 0 gets the order of the epoch the run is really at."""

    def __init__(self, n: int, seed: int, first_epoch: int = 0) -> None:
        self.n, self.seed, self.first_epoch = n, seed, first_epoch
        self.epoch = first_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = self.first_epoch + epoch

    def order(self) -> torch.Tensor:
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(100_003 * self.seed + self.epoch))

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return self.n


class SignalCNN(nn.Module):
    """Two convolutions, global average pooling and a linear layer: (N, 1, LENGTH) -> logits (N, 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(1, 16, 7, padding=3), nn.ReLU(), nn.MaxPool1d(2),
                                 nn.Conv1d(16, 32, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                                 nn.Linear(32, len(CLASSES)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def val_numbers(logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """``val_top1`` (fraction correct) and ``val_nll`` (mean plain cross-entropy, no smoothing), in float64."""
    logits = logits.double()
    return {"val_top1": (logits.argmax(1) == y).double().mean().item(),
            "val_nll": nn.functional.cross_entropy(logits, y).item()}
