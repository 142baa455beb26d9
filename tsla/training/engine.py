"""One epoch of training and one evaluation, each returning a dict of averaged metrics.

Sums (of losses and correct counts) are accumulated on the device and divided once at the end of the epoch, so the
loop never waits on the device except where a non-finite loss must be caught.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..report.calibration import ECE_BINS, calibration_sums, expected_calibration_error
from ..distributed import all_reduce_sum, any_rank
from ..errors import TrainingError
from ..losses.cross_entropy import LabelSmoothingCrossEntropy, combine

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class StepContext:
    """What a training or evaluation step needs, passed as one object."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: LabelSmoothingCrossEntropy
    device: torch.device
    amp: str | None = None
    channels_last: bool = False
    scaler: torch.amp.GradScaler | None = None
    raw_model: nn.Module | None = None
    """The model without its DistributedDataParallel wrapper (for state dicts and diagnostics); None: ``model``."""
    distributed: bool = False
    """Under torchrun: decisions that end an epoch (a non-finite loss) are agreed across ranks."""

    @property
    def module(self) -> nn.Module:
        return self.raw_model if self.raw_model is not None else self.model

    def autocast(self):
        """The autocast context for ``amp`` on this device; a no-op when amp is off."""
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=AMP_DTYPES[self.amp])

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images


def _correct_topk(logits: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """Number of rows whose target is among the k largest logits (k capped at the number of classes)."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return (top == targets[:, None]).any(dim=1).sum()


@dataclass
class EpochProgressState:
    """Where a stopped epoch stands: the next step to run and the sums so far (plain floats, for a checkpoint)."""

    step: int = 0
    loss_sum: float = 0.0
    onehot_sum: float = 0.0
    correct: float = 0.0
    seen: int = 0
    seconds: float = 0.0


def train_one_epoch(
    ctx: StepContext,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    theta: float,
    epoch: int,
    on_step: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    carry: EpochProgressState | None = None,
) -> dict[str, Any]:
    """Train for one pass over ``batches`` with smoothing strength ``theta``.

    Returns ``train_loss`` (the smoothed loss that was minimised), ``train_onehot_loss`` (the one-hot cross-entropy
    of the same forward passes: the paper's objective F), ``train_top1``, ``train_images``, ``train_seconds`` and
    ``train_images_per_second``, all averaged over images. ``carry`` continues an epoch stopped earlier (``batches``
    then starts at ``carry.step``). When ``should_stop()`` turns true after a step, the epoch stops there and the
    result is ``{"stopped": EpochProgressState}`` instead. Raises ``TrainingError`` naming the epoch and step when
    the loss stops being finite.
    """
    ctx.model.train()
    carry = carry or EpochProgressState()
    check_every = 1 if ctx.device.type == "cpu" else 25  # a finiteness check syncs a GPU: not on every step there
    sums = torch.tensor([carry.loss_sum, carry.onehot_sum, carry.correct], device=ctx.device, dtype=torch.float64)
    seen = carry.seen
    start = time.perf_counter()
    step = carry.step - 1
    for step, (images, targets) in enumerate(batches, carry.step):
        with ctx.autocast():
            logits = ctx.model(ctx.prepare(images))
        parts = ctx.loss_fn.parts(logits, targets)
        loss = combine(parts, theta, ctx.loss_fn.allow_negative)
        ctx.optimizer.zero_grad(set_to_none=True)
        if ctx.scaler is not None:
            ctx.scaler.scale(loss).backward()
            ctx.scaler.step(ctx.optimizer)
            ctx.scaler.update()
        else:
            loss.backward()
            ctx.optimizer.step()
        n = targets.shape[0]
        seen += n
        correct = (logits.detach().argmax(dim=1) == targets).sum()
        sums += torch.stack([loss.detach().double() * n, parts.onehot.detach().double() * n, correct.double()])
        if step % check_every == 0 and _nonfinite(sums[0], ctx):
            _raise_nonfinite(epoch, step)
        if on_step is not None:
            on_step(n)
        if should_stop is not None and should_stop():
            loss_sum, onehot_sum, n_correct, seen = _reduced(sums, seen)
            seconds = carry.seconds + time.perf_counter() - start
            return {"stopped": EpochProgressState(step + 1, loss_sum, onehot_sum, n_correct, int(seen), seconds)}
    if _nonfinite(sums[0], ctx):
        _raise_nonfinite(epoch, step)
    seconds = carry.seconds + time.perf_counter() - start
    loss_sum, onehot_sum, n_correct, seen = _reduced(sums, seen)
    seen = max(int(seen), 1)
    return {
        "train_loss": loss_sum / seen,
        "train_onehot_loss": onehot_sum / seen,
        "train_top1": n_correct / seen,
        "train_images": seen,
        "train_seconds": seconds,
        "train_images_per_second": seen / seconds if seconds > 0 else 0.0,
    }


def _reduced(sums: torch.Tensor, seen: int) -> list[float]:
    """[loss, onehot, correct, images] summed over all ranks (as they are, in a single process)."""
    return all_reduce_sum(torch.cat([sums, sums.new_tensor([float(seen)])])).tolist()


def _nonfinite(value: torch.Tensor, ctx: StepContext) -> bool:
    """Whether ``value`` is NaN or infinite, on any rank (so that every rank stops at the same step)."""
    bad = not bool(torch.isfinite(value))
    return any_rank(bad, ctx.device) if ctx.distributed else bad


def _raise_nonfinite(epoch: int, step: int) -> None:
    raise TrainingError(
        f"the training loss became non-finite in epoch {epoch} by step {step}: lower --lr or turn off --amp fp16; "
        f"the last good checkpoint is kept"
    )


@torch.no_grad()
def evaluate(ctx: StepContext, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             labelings: int = 1, keep: list | None = None) -> dict[str, Any]:
    """Plain (unsmoothed) cross-entropy, accuracy and calibration over ``batches``, with the model in eval mode.

    Returns ``test_loss`` (= ``test_nll``, the mean negative log-likelihood), ``test_top1``, ``test_top5``
    (fractions in [0, 1]), ``test_ece`` (15 equal-width bins), ``test_brier`` (mean over images of
    sum_k (p_k - y_k)^2), ``test_images``, and ``test_calibration``: the per-bin sums behind the ECE (lists),
    for reliability diagrams. Targets of shape (N, 2) hold two labellings of the same images (the validation split's
    labels with and without simulated noise): with ``labelings=2`` the metrics are those of column 0, and
    ``second_labels`` holds the same dict for column 1, from the same forward pass (every rank passes the same
    ``labelings``: the sums are reduced across ranks per labelling). ``keep``, a list, receives each batch's
    (float32 logits, targets) on the CPU (this rank's batches only), for temperature scaling.
    """
    model = ctx.module  # not the DDP wrapper: ranks evaluate different numbers of batches, with no collectives
    model.eval()
    sums = [_EvalSums(ctx.device) for _ in range(labelings)]
    for images, targets in batches:
        with ctx.autocast():
            logits = model(ctx.prepare(images))
        logits = logits.float()
        if keep is not None:
            keep.append((logits.cpu(), targets.cpu()))
        columns = targets.unbind(1) if labelings > 1 else (targets,)
        for acc, labels in zip(sums, columns):
            acc.add(logits, labels)
    metrics = sums[0].result()
    if len(sums) > 1:
        metrics["second_labels"] = sums[1].result()
    return metrics


class _EvalSums:
    """The sums behind :func:`evaluate`'s metrics for one labelling, accumulated on the device."""

    def __init__(self, device: torch.device) -> None:
        zero = torch.zeros((), device=device, dtype=torch.float64)
        self.loss_sum, self.top1, self.top5, self.seen = zero.clone(), zero.clone(), zero.clone(), 0
        self.calib = {k: torch.zeros(ECE_BINS, device=device, dtype=torch.float64)
                      for k in ("bin_count", "bin_confidence", "bin_correct")}
        self.calib["brier"] = zero.clone()

    def add(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        self.loss_sum += F.cross_entropy(logits, targets, reduction="sum").double()
        self.top1 += _correct_topk(logits, targets, 1)
        self.top5 += _correct_topk(logits, targets, 5)
        for key, value in calibration_sums(logits, targets).items():
            self.calib[key] += value
        self.seen += targets.shape[0]

    def result(self) -> dict[str, Any]:
        loss_sum = self.loss_sum
        totals = all_reduce_sum(torch.stack([loss_sum, self.top1.double(), self.top5.double(),
                                             loss_sum.new_tensor(float(self.seen))]))
        loss_sum, top1, top5, seen = totals[0], totals[1], totals[2], max(int(totals[3]), 1)
        calib = self.calib
        for key in calib:
            all_reduce_sum(calib[key])
        bins = {k: calib[k].tolist() for k in ("bin_count", "bin_confidence", "bin_correct")}
        nll = float(loss_sum) / seen
        return {
            "test_loss": nll,
            "test_nll": nll,
            "test_top1": float(top1) / seen,
            "test_top5": float(top5) / seen,
            "test_ece": expected_calibration_error(**bins),
            "test_brier": float(calib["brier"]) / seen,
            "test_images": seen,
            "test_calibration": bins,
        }


def evaluate_split(ctx: StepContext, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], prefix: str,
                   second_prefix: str | None = None, keep: list | None = None) -> dict[str, Any]:
    """:func:`evaluate` on another split (the validation set), its keys renamed ``test_*`` -> ``<prefix>*``; the
    per-bin calibration lists are left out. With (N, 2) targets, column 1's metrics are added as
    ``<second_prefix>*`` (e.g. ``val_clean_top1`` beside the noisy ``val_top1``)."""
    metrics = evaluate(ctx, batches, 1 if second_prefix is None else 2, keep)
    second = metrics.pop("second_labels", None)
    metrics.pop("test_calibration")
    out = {prefix + key[len("test_"):]: value for key, value in metrics.items()}
    if second is not None and second_prefix is not None:
        second.pop("test_calibration")
        out.update({second_prefix + key[len("test_"):]: value for key, value in second.items()})
    return out
