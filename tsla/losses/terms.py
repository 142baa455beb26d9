"""The computation behind the loss, on inputs already checked by :mod:`tsla.losses.checks`.

With class weights w (all 1 when none are given), prior pi and the smoothed label y_LS = (1 - theta) y + theta pi,
each position's loss is -sum_c w_c y_LS,c log p_c, which splits exactly into

    onehot = -sum_c w_c y_c log p_c          (class indices: w_y * -log p_y, torch's nll_loss)
    prior  = -sum_c w_c pi_c log p_c

With pi uniform this is torch's ``cross_entropy(weight=w, label_smoothing=theta)`` term for term. Positions whose
class index equals ``ignore_index`` contribute 0 to both. The mean divides both sums by the same denominator torch
uses: sum of w_y over the kept positions for class indices (their count without weights), the number of positions
for probability targets. A mean over no kept position is NaN, as in torch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from . import closed_form, torch_call
from .checks import bad_class, num_classes


class LossParts(NamedTuple):
    """The two label terms of the smoothed cross-entropy, each already reduced."""

    onehot: torch.Tensor
    """CE(y, f): (weighted) cross-entropy against the unsmoothed target."""
    prior: torch.Tensor
    """CE(prior, f): (weighted) cross-entropy against the smoothing distribution."""


def full_precision(logits: torch.Tensor) -> torch.Tensor:
    """float64 logits stay float64; every other dtype is computed in float32."""
    return logits if logits.dtype == torch.float64 else logits.float()


def _out_of_range(error: Exception) -> bool:
    # CPU kernels raise IndexError("Target 7 is out of bounds.") or a RuntimeError saying the same
    return isinstance(error, IndexError) or "out of bounds" in str(error)


def _nll(log_probs, target, weight, ignore_index, reduction, k) -> torch.Tensor:
    try:
        return F.nll_loss(log_probs, target, weight=weight, ignore_index=ignore_index, reduction=reduction)
    except (IndexError, RuntimeError) as error:
        if _out_of_range(error):
            raise bad_class(target, k, ignore_index) from None
        raise


def fused(logits: torch.Tensor, target: torch.Tensor, theta: float, weight: torch.Tensor | None, ignore_index: int,
          reduction: str) -> torch.Tensor:
    """The uniform-prior loss: exactly torch's fused ``F.cross_entropy(..., label_smoothing=theta)``."""
    x = full_precision(logits)
    if target.is_floating_point():
        target = target.to(x.dtype)
    w = None if weight is None else weight.to(device=x.device, dtype=x.dtype)
    try:
        return torch_call.cross_entropy(x, target, w, ignore_index, reduction, theta)
    except (IndexError, RuntimeError) as error:
        if not target.is_floating_point() and _out_of_range(error):
            raise bad_class(target, num_classes(logits), ignore_index) from None
        raise


def _contract(log_probs: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
    """-sum_c coeff_c log p_c at every position: shape (N, d1, ..., dk)."""
    if log_probs.dim() == 2:
        return -torch.mv(log_probs, coeff)
    return -(log_probs.movedim(1, -1) @ coeff)


def _reduce(values: torch.Tensor, reduction: str, denominator) -> torch.Tensor:
    if reduction == "none":
        return values
    total = values.sum()
    return total if reduction == "sum" else total / denominator


def compute_parts(logits: torch.Tensor, target: torch.Tensor, prior: torch.Tensor | None,
                  weight: torch.Tensor | None, ignore_index: int, reduction: str,
                  want_totals: bool = False) -> tuple[LossParts, torch.Tensor | None]:
    """``(LossParts, totals)``: both terms from one log-softmax, reduced; ``totals`` (only with ``want_totals``)
    is a detached float64 tensor [sum of the one-hot term over kept positions, the mean's denominator].

    The log-softmax and the reductions run in float32 (float64 for float64 logits), outside autocast, so bf16/fp16
    logits lose no precision in the loss. Raises ``ValueError`` for a class index outside [0, K) (CPU kernels).
    (N, K) logits of at least ``closed_form.LARGE`` entries with class indices and no weight take the closed form
    of :mod:`tsla.losses.closed_form`; smaller ones stay on this path, so the trainer's numbers at the presets'
    shapes (K = 10 or 100 at batch 128, 120 or 200 at batch 64) are bit for bit those of earlier versions.
    """
    if closed_form.applies(logits, target, prior, weight) and logits.numel() >= closed_form.LARGE:
        (onehot, prior_term), totals = closed_form.parts(logits, target, prior, ignore_index, reduction, want_totals)
        return LossParts(onehot, prior_term), totals
    if torch.is_autocast_enabled(logits.device.type):  # autocast would run the prior's product in bf16/fp16
        with torch.autocast(device_type=logits.device.type, enabled=False):
            return compute_parts(logits, target, prior, weight, ignore_index, reduction, want_totals)
    if logits.dim() == 1:  # unbatched (K,): a batch of one; "none" then gives a 0-d tensor, as torch does
        parts, totals = compute_parts(logits.unsqueeze(0), target.unsqueeze(0), prior, weight, ignore_index,
                                      reduction, want_totals)
        return (LossParts(parts.onehot[0], parts.prior[0]) if reduction == "none" else parts), totals
    k = logits.shape[1]
    log_probs = F.log_softmax(full_precision(logits), dim=1)
    dtype, device = log_probs.dtype, log_probs.device
    w = None if weight is None else weight.to(device=device, dtype=dtype)
    if prior is None and w is None:
        prior_each = -log_probs.mean(dim=1)
    else:
        coeff = prior.to(device=device, dtype=dtype) if prior is not None else torch.full((k,), 1.0 / k, dtype=dtype,
                                                                                          device=device)
        prior_each = _contract(log_probs, coeff if w is None else coeff * w)
    if target.is_floating_point():
        t = target.to(dtype)
        if w is not None:
            t = t * w.view((1, k) + (1,) * (log_probs.dim() - 2))
        onehot_each = -(t * log_probs).sum(dim=1)
        positions = onehot_each.numel()
        parts = LossParts(_reduce(onehot_each, reduction, positions), _reduce(prior_each, reduction, positions))
        totals = None
        if want_totals:
            totals = torch.stack([onehot_each.detach().sum().double(),
                                  torch.tensor(float(positions), dtype=torch.float64, device=device)])
        return parts, totals
    keep = target != ignore_index
    prior_each = prior_each.masked_fill(~keep, 0.0)
    if not want_totals:
        onehot = _nll(log_probs, target, w, ignore_index, reduction, k)
        denominator = None
        if reduction == "mean":
            denominator = keep.sum() if w is None else (w[target.masked_fill(~keep, 0)] * keep).sum()
        return LossParts(onehot, _reduce(prior_each, reduction, denominator)), None
    # tracking: the one-hot sum and the mean's denominator are needed whatever the reduction
    onehot_each = _nll(log_probs, target, w, ignore_index, "none", k)
    denominator = keep.sum() if w is None else (w[target.masked_fill(~keep, 0)] * keep).sum()
    parts = LossParts(_reduce(onehot_each, reduction, denominator), _reduce(prior_each, reduction, denominator))
    return parts, torch.stack([onehot_each.detach().sum().double(), denominator.detach().double()])
