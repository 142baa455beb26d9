"""Cross-entropy against the smoothed label y_LS = (1 - theta) * y + theta * prior.

Cross-entropy is linear in the label, so the loss splits exactly into a one-hot term and a prior term:

    CE(y_LS, f) = (1 - theta) * CE(y, f) + theta * CE(prior, f)

`label_smoothing_cross_entropy_parts` returns both terms from one ``log_softmax``; the training engine uses them to log
the one-hot training loss (the paper's objective F) at no extra cost. With the uniform prior the result equals
``torch.nn.functional.cross_entropy(logits, target, label_smoothing=theta)`` (the true class gets 1 - theta + theta/K).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

_REDUCTIONS = ("mean", "sum", "none")


class LossParts(NamedTuple):
    """The two label terms of the smoothed cross-entropy, each already reduced."""

    onehot: torch.Tensor
    """CE(y, f): cross-entropy against the (unsmoothed) target."""
    prior: torch.Tensor
    """CE(prior, f): cross-entropy against the smoothing distribution."""


def check_theta(theta: float) -> float:
    """Return ``theta`` as a float; raise ``ValueError`` unless it is a number in [0, 1]."""
    value = float(theta)
    if not (0.0 <= value <= 1.0):  # also rejects NaN
        raise ValueError(f"theta={theta!r} is outside [0, 1]: pass a smoothing strength between 0 and 1")
    return value


def check_prior(prior: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return ``prior`` as a 1-D tensor after checking it is a distribution over ``num_classes`` classes.

    Raises ``ValueError`` if its length differs from ``num_classes``, an entry is negative or not finite, or the
    entries do not sum to 1 within 1e-6.
    """
    prior = torch.as_tensor(prior)
    if prior.dim() != 1 or prior.numel() != num_classes:
        raise ValueError(
            f"prior has shape {tuple(prior.shape)} but the model has {num_classes} classes: "
            f"give one probability per class"
        )
    lowest, total = torch.stack([prior.min(), prior.double().sum().to(prior.dtype)]).tolist()  # one sync
    if lowest >= 0 and math.isfinite(total) and abs(total - 1.0) <= 1e-6:
        return prior
    bad = torch.nonzero(~torch.isfinite(prior) | (prior < 0)).flatten()
    if bad.numel():
        i = int(bad[0])
        raise ValueError(f"prior[{i}] = {float(prior[i]):g} is negative or not finite: every class probability must be >= 0")
    total = float(prior.double().sum())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"prior sums to {total:.8g}, not 1 (tolerance 1e-6): normalise it first")
    return prior


# ignore_index for torch's losses: a class index no real target holds, so that every out-of-range target raises
_NEVER = torch.iinfo(torch.int64).min


def _bad_class(target: torch.Tensor, num_classes: int) -> ValueError:
    bad = target[(target < 0) | (target >= num_classes)][0].item()
    return ValueError(f"target contains class {bad}, outside [0, {num_classes}): labels must index the logits")


def _check_target(target: torch.Tensor, num_classes: int, batch: int, range_check: bool = True) -> None:
    """Check a target's type and shape; with ``range_check``, also that class indices lie in [0, K) (a device
    synchronisation: on CPU the loss kernels raise for such indices themselves, and that error is translated)."""
    if target.dim() == 1:
        if target.dtype.is_floating_point or target.dtype == torch.bool:
            raise ValueError(f"class-index target must be an integer tensor, got {target.dtype}")
        if target.shape[0] != batch:
            raise ValueError(f"target has {target.shape[0]} entries but logits have {batch} rows")
        if range_check and target.numel():
            lo, hi = torch.aminmax(target)
            if int(lo) < 0 or int(hi) >= num_classes:
                raise _bad_class(target, num_classes)
    elif target.dim() == 2:
        if not target.dtype.is_floating_point:
            raise ValueError(f"probability target must be floating point, got {target.dtype}")
        if tuple(target.shape) != (batch, num_classes):
            raise ValueError(
                f"probability target has shape {tuple(target.shape)}, expected {(batch, num_classes)} like the logits"
            )
        if not torch.isfinite(target).all() or (target < 0).any():
            raise ValueError("probability target has a negative or non-finite entry: each row must be a distribution")
        tol = max(1e-6, num_classes * torch.finfo(target.dtype).eps)
        sums = target.sum(dim=1)
        worst = float((sums - 1).abs().max()) if batch else 0.0
        if worst > tol:
            raise ValueError(f"probability target rows must sum to 1; a row is off by {worst:.3g} (tolerance {tol:.1g})")
    else:
        raise ValueError(f"target must be class indices (N,) or probabilities (N, K), got shape {tuple(target.shape)}")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def label_smoothing_cross_entropy_parts(
    logits: torch.Tensor,
    target: torch.Tensor,
    prior: torch.Tensor | None = None,
    reduction: str = "mean",
) -> LossParts:
    """Return ``LossParts(onehot, prior)``: CE(target, logits) and CE(prior, logits), reduced.

    ``logits`` is (N, K); ``target`` is class indices (N,) or probabilities (N, K); ``prior`` is None for the
    uniform distribution or a length-K tensor. The log-softmax and the reduction run in float32 (or float64 if the
    logits are float64), also inside an autocast region, so bf16/fp16 logits lose no precision in the loss.

    Raises ``ValueError`` for a bad target, prior or reduction.
    """
    _check_logits(logits, reduction)
    _check_target(target, logits.shape[1], logits.shape[0], range_check=logits.device.type != "cpu")
    if prior is not None:
        prior = check_prior(prior, logits.shape[1])
    return _parts(logits, target, prior, reduction)


def _check_logits(logits: torch.Tensor, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}: choose one of {', '.join(_REDUCTIONS)}")
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, K), got shape {tuple(logits.shape)}")


def _full_precision(logits: torch.Tensor) -> torch.Tensor:
    return logits if logits.dtype == torch.float64 else logits.float()


def _parts(logits: torch.Tensor, target: torch.Tensor, prior: torch.Tensor | None, reduction: str) -> LossParts:
    """The computation behind :func:`label_smoothing_cross_entropy_parts`, with its inputs already checked."""
    if torch.is_autocast_enabled(logits.device.type):  # autocast would run the prior's product in bf16/fp16
        with torch.autocast(device_type=logits.device.type, enabled=False):
            return _parts(logits, target, prior, reduction)
    log_probs = F.log_softmax(_full_precision(logits), dim=1)
    if target.dim() == 1:
        try:
            onehot = F.nll_loss(log_probs, target, reduction=reduction, ignore_index=_NEVER)
        except (IndexError, RuntimeError):
            raise _bad_class(target, logits.shape[1]) from None
    else:
        onehot = _reduce(-(target.to(log_probs.dtype) * log_probs).sum(dim=1), reduction)
    if prior is None:
        if reduction == "mean":  # the mean over rows of each row's mean = the mean of all entries
            prior_term = -log_probs.mean()
        else:
            prior_term = _reduce(-log_probs.mean(dim=1), reduction)
    else:
        prior_term = _reduce(-torch.mv(log_probs, prior.to(device=log_probs.device, dtype=log_probs.dtype)), reduction)
    return LossParts(onehot, prior_term)


def combine(parts: LossParts, theta: float) -> torch.Tensor:
    """(1 - theta) * onehot + theta * prior: the smoothed loss from its two terms (theta checked)."""
    theta = check_theta(theta)
    if theta == 0.0:
        return parts.onehot
    return (1.0 - theta) * parts.onehot + theta * parts.prior


def label_smoothing_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    theta: float,
    prior: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy of ``logits`` against y_LS = (1 - theta) * onehot(target) + theta * prior.

    Args:
        logits: (N, K) unnormalised scores.
        target: class indices (N,) in [0, K), or probabilities (N, K) whose rows sum to 1.
        theta: smoothing strength in [0, 1]; 0 gives plain cross-entropy.
        prior: None for the uniform distribution 1/K, or a length-K probability tensor.
        reduction: "mean", "sum" or "none".

    Raises:
        ValueError: theta outside [0, 1]; a prior of the wrong length, negative, or not summing to 1;
            a target outside [0, K); probability targets whose rows do not sum to 1.
    """
    theta = check_theta(theta)
    if prior is not None or target.dim() != 1:
        return combine(label_smoothing_cross_entropy_parts(logits, target, prior, reduction), theta)
    # uniform prior, class indices: exactly torch's fused loss (y_LS puts 1 - theta + theta/K on the true class)
    _check_logits(logits, reduction)
    _check_target(target, logits.shape[1], logits.shape[0], range_check=logits.device.type != "cpu")
    try:
        return F.cross_entropy(_full_precision(logits), target, reduction=reduction, label_smoothing=theta,
                               ignore_index=_NEVER)
    except (IndexError, RuntimeError):
        raise _bad_class(target, logits.shape[1]) from None


class LabelSmoothingCrossEntropy(nn.Module):
    """Module form of :func:`label_smoothing_cross_entropy`; theta is passed on every call.

    Nothing derived from theta is stored, so a schedule that changes theta between calls can never be served a stale
    value. ``forward(logits, target, theta)`` returns the loss; ``parts(logits, target)`` returns ``LossParts``.

    The prior is checked once, here. ``check_targets=False`` skips the per-call range check of the targets, which
    costs a device synchronisation on a GPU; the trainer uses it there, its labels having been checked at load time.
    """

    prior: torch.Tensor | None

    def __init__(self, prior: torch.Tensor | None = None, reduction: str = "mean", check_targets: bool = True) -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction={reduction!r}: choose one of {', '.join(_REDUCTIONS)}")
        if prior is not None:
            prior = torch.as_tensor(prior)
            if not prior.dtype.is_floating_point:
                prior = prior.float()
            check_prior(prior, prior.numel())
        self.register_buffer("prior", prior, persistent=False)
        self.reduction = reduction
        self.check_targets = check_targets

    def parts(self, logits: torch.Tensor, target: torch.Tensor) -> LossParts:
        _check_logits(logits, self.reduction)
        if self.prior is not None and self.prior.numel() != logits.shape[1]:
            raise ValueError(f"the prior has {self.prior.numel()} classes but the logits have {logits.shape[1]}")
        if self.check_targets:
            _check_target(target, logits.shape[1], logits.shape[0], range_check=logits.device.type != "cpu")
        return _parts(logits, target, self.prior, self.reduction)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, theta: float) -> torch.Tensor:
        return combine(self.parts(logits, target), theta)

    def extra_repr(self) -> str:
        kind = "uniform" if self.prior is None else f"custom({self.prior.numel()} classes)"
        return f"prior={kind}, reduction={self.reduction!r}"


def uniform_prior(num_classes: int) -> torch.Tensor:
    """The uniform distribution over ``num_classes`` classes (float64)."""
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes} must be >= 1")
    return torch.full((num_classes,), 1.0 / num_classes, dtype=torch.float64)


__all__ = [
    "LossParts",
    "LabelSmoothingCrossEntropy",
    "check_prior",
    "check_theta",
    "combine",
    "label_smoothing_cross_entropy",
    "label_smoothing_cross_entropy_parts",
    "uniform_prior",
]
