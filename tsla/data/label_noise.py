"""Symmetric label noise on the training labels, drawn once from a recorded seed.

``round(p * N)`` training images, chosen uniformly at random, get a label drawn uniformly from the K - 1 *other*
classes, so exactly that fraction of the training labels is wrong (the usual "symmetric noise" of the label-noise
literature, with the flip forced to change the class). The draw depends on (labels, p, seed) alone: every method and
every training seed of a study sees the same noisy labels. Validation and test labels are never touched.
"""

from __future__ import annotations

import torch


def symmetric_noise(targets: torch.Tensor, fraction: float, num_classes: int, seed: int) -> torch.Tensor:
    """A copy of ``targets`` (int64, values in [0, K)) with ``round(fraction * N)`` labels moved to another class.

    Raises ``ValueError`` for a fraction outside [0, 1) or fewer than two classes with noise asked for.
    """
    if not (0.0 <= fraction < 1.0):
        raise ValueError(f"label noise fraction {fraction} is outside [0, 1)")
    noisy = targets.clone().long()
    flips = round(fraction * noisy.numel())
    if flips == 0:
        return noisy
    if num_classes < 2:
        raise ValueError("label noise needs at least two classes")
    gen = torch.Generator().manual_seed(1_000_033 * seed + 29)
    chosen = torch.randperm(noisy.numel(), generator=gen)[:flips]
    # an offset in 1..K-1 added modulo K is a uniform draw over the other classes
    offset = torch.randint(1, num_classes, (flips,), generator=gen)
    noisy[chosen] = (noisy[chosen].cpu() + offset).remainder(num_classes).to(noisy.device)
    return noisy
