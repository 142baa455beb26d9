"""Memorisation instruments: how much of its (noisy) training labels a model reproduces, measured per epoch.

One pass over the training images in order, not augmented, with the model in eval mode (as the test set is
evaluated), counting each image's top-1 prediction against its given label and its clean label:

- ``train_eval_top1``: the fraction predicted as the given label (the labels trained on, noisy or not);
- ``train_clean_top1``: the fraction predicted as the clean label (with ``--label-noise`` only);
- ``noise_memorised``: of the images whose label was flipped, the fraction predicted as the given, wrong label;
- ``noise_corrected``: of those, the fraction predicted as the true label (both with at least one flipped image).

With a validation set, ``gen_gap = train_eval_top1 - val_top1`` needs no clean labels (the trainer adds it).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from ..distributed import all_reduce_sum
from .engine import StepContext


@torch.no_grad()
def memorisation(ctx: StepContext, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], noisy: bool) -> dict[str, Any]:
    """The fractions above over ``batches`` of (images, (B, 2) labels: given, clean), summed over all ranks.
    ``noisy``: the labels were corrupted by ``--label-noise``, so the clean-label fractions are reported."""
    model = ctx.module
    model.eval()
    # images, predicted as given, predicted as clean, flipped, flipped predicted as given, flipped predicted as clean
    sums = torch.zeros(6, device=ctx.device, dtype=torch.float64)
    for images, labels in batches:
        with ctx.autocast():
            logits = model(ctx.prepare(images))
        pred = logits.float().topk(1, dim=1).indices[:, 0]  # as evaluate()'s top-1
        given, clean = labels[:, 0], labels[:, 1]
        flipped = given != clean
        sums += torch.stack([
            torch.tensor(float(labels.shape[0]), device=ctx.device, dtype=torch.float64),
            (pred == given).sum().double(), (pred == clean).sum().double(), flipped.sum().double(),
            (flipped & (pred == given)).sum().double(), (flipped & (pred == clean)).sum().double(),
        ])
    images, as_given, as_clean, flips, memorised, corrected = all_reduce_sum(sums).tolist()
    out: dict[str, Any] = {"train_eval_top1": as_given / max(images, 1.0)}
    if noisy:
        out["train_clean_top1"] = as_clean / max(images, 1.0)
        if flips > 0:
            out["noise_memorised"] = memorised / flips
            out["noise_corrected"] = corrected / flips
    return out
