"""Cross-entropy against the smoothed label y_LS = (1 - theta) * y + theta * prior.

Cross-entropy is linear in the label, so the loss splits exactly into a one-hot term and a prior term:

    CE(y_LS, f) = (1 - theta) * CE(y, f) + theta * CE(prior, f)

`label_smoothing_cross_entropy_parts` returns both terms from one softmax; the training engine uses them to log the
one-hot training loss (the paper's objective F) at no extra cost. With the uniform prior the result equals
``torch.nn.functional.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
label_smoothing=theta)`` (the true class gets 1 - theta + theta/K; to rounding where the closed form of
:mod:`tsla.losses.closed_form` computes it, bit for bit where torch's kernel does), for every input shape torch
accepts: logits (N, K), (N, K, d1, ..., dk) or unbatched (K,); class indices (N, d1, ..., dk) or probabilities
shaped like the logits. The weighting and the mean's denominator are described in :mod:`tsla.losses.terms`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .checks import (check_ignore_index, check_logits, check_prior, check_prior_values, check_reduction,
                     check_target, check_theta, check_weight, check_weight_values, num_classes)
from . import closed_form
from .compiled_theta import theta_for_call
from .onehot_tracking import OneHotTracking
from .terms import LossParts, compute_parts, fused


def _checked(logits, target, prior, weight, ignore_index, reduction):
    """Check every input of the functional forms; return (target, prior, weight) ready for the computation."""
    check_reduction(reduction)
    check_ignore_index(ignore_index)
    check_logits(logits)
    k = num_classes(logits)
    target = check_target(logits, target, ignore_index, range_check=not logits.is_cpu)
    prior = None if prior is None else check_prior(prior, k)
    weight = None if weight is None else check_weight(weight, k)
    return target, prior, weight


def label_smoothing_cross_entropy_parts(
    logits: torch.Tensor,
    target: torch.Tensor,
    prior: torch.Tensor | None = None,
    reduction: str = "mean",
    *,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
) -> LossParts:
    """Return ``LossParts(onehot, prior)``: CE(target, logits) and CE(prior, logits), reduced, from one log-softmax.

    Arguments as in :func:`label_smoothing_cross_entropy`. ``combine(parts, theta)`` gives the smoothed loss.
    The log-softmax and the reduction run in float32 (or float64 if the logits are float64), also inside an autocast
    region, so bf16/fp16 logits lose no precision in the loss.

    Raises ``ValueError`` for a bad target, prior, weight, ignore_index or reduction.
    """
    target, prior, weight = _checked(logits, target, prior, weight, ignore_index, reduction)
    return compute_parts(logits, target, prior, weight, ignore_index, reduction)[0]


def combine(parts: LossParts, theta: float | torch.Tensor, allow_negative: bool = False) -> torch.Tensor:
    """(1 - theta) * onehot + theta * prior: the smoothed loss from its two terms (theta checked; negative only
    with ``allow_negative``; a 0-dim tensor theta, as under ``torch.compile``, is used as it is)."""
    if isinstance(theta, torch.Tensor):
        theta = theta.to(device=parts.onehot.device, dtype=parts.onehot.dtype)
        return parts.onehot + theta * (parts.prior - parts.onehot)
    theta = check_theta(theta, allow_negative)
    if theta == 0.0:
        return parts.onehot
    return (1.0 - theta) * parts.onehot + theta * parts.prior


def label_smoothing_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    theta: float,
    prior: torch.Tensor | None = None,
    reduction: str = "mean",
    *,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    allow_negative: bool = False,
) -> torch.Tensor:
    """Cross-entropy of ``logits`` against y_LS = (1 - theta) * onehot(target) + theta * prior.

    Args:
        logits: unnormalised scores, (N, K), (N, K, d1, ..., dk) or unbatched (K,).
        target: class indices in [0, K) of shape (N, d1, ..., dk) (() for unbatched logits), any integer dtype;
            or class probabilities with exactly the logits' shape, every row summing to 1.
        theta: smoothing strength in [0, 1]; 0 gives plain cross-entropy. With ``allow_negative=True`` also
            [-1, 0): negative label smoothing (Wei et al., ICML 2022), computed here, never by torch (whose
            ``label_smoothing`` silently ignores a negative value).
        prior: None for the uniform distribution 1/K, or a length-K probability tensor.
        reduction: "mean", "sum" or "none" (torch's meaning, including the weighted mean's denominator).
        weight: None, or one non-negative weight per class, as torch's ``weight``.
        ignore_index: class-index positions equal to it count nowhere (torch's default, -100).

    Raises:
        ValueError: theta outside [0, 1] (a negative theta without ``allow_negative``; theta < -1 always); a
            prior or weight of the wrong length, negative, (for a prior) not summing to 1; a target of the wrong shape
            or dtype or outside [0, K); probability targets whose rows do not sum to 1 or used with ignore_index >= 0.
    """
    theta = check_theta(theta, allow_negative)
    target, prior, weight = _checked(logits, target, prior, weight, ignore_index, reduction)
    return _smoothed(logits, target, theta, prior, weight, ignore_index, reduction)


def _smoothed(logits, target, theta, prior, weight, ignore_index, reduction) -> torch.Tensor:
    """The smoothed loss on checked inputs (theta already checked, of either sign): torch's fused kernel for the
    uniform prior and theta >= 0 on small logits (nothing is faster there), else the closed form where it applies,
    else torch's fused kernel (uniform, theta >= 0: torch ignores a negative one), else the two terms combined."""
    torch_theta = not isinstance(theta, torch.Tensor) and theta >= 0
    if prior is None and torch_theta and logits.numel() < closed_form.LARGE:
        return fused(logits, target, theta, weight, ignore_index, reduction)
    if closed_form.applies(logits, target, prior, weight):
        return closed_form.smoothed(logits, target, theta, prior, ignore_index, reduction)
    if prior is None and torch_theta:  # torch computes this itself: its fused kernel, with exactly its semantics
        return fused(logits, target, theta, weight, ignore_index, reduction)
    return combine(compute_parts(logits, target, prior, weight, ignore_index, reduction)[0], theta, True)  # checked


class LabelSmoothingCrossEntropy(OneHotTracking, nn.Module):
    """Module form of :func:`label_smoothing_cross_entropy`, usable as a two-argument criterion.

    ``criterion(logits, target)`` uses, in this order: an explicit ``theta=`` argument, else
    ``scheduler.get_last_theta()`` read at that call, else the settable attribute ``theta``; with none of them it
    raises ``ValueError``. Nothing derived from theta is stored, so a schedule changing theta between calls can never
    be served a stale value. ``parts(logits, target)`` returns ``LossParts``.

    With ``track_onehot=True`` every call made with gradients enabled (a training step; calls under
    ``torch.no_grad()``, as in evaluation, are not counted) adds the detached one-hot term to running sums without a
    device synchronisation: ``pop_onehot_mean()`` returns the one-hot loss F over everything since the last pop —
    the one-hot term as if all those batches were one batch under ``reduction="mean"`` — and resets the sums.

    ``allow_negative=True`` accepts theta in [-1, 0) from any of the three sources (negative label smoothing).

    The prior and the weight are checked here, and their values again at a call after an in-place change (an
    optimizer's step on a learned prior, say; not inside ``torch.compile``). ``check_targets=False`` skips the per-call
    range check of the targets, which costs a device synchronisation on a GPU; the trainer uses it there, its labels
    having been checked at load time.
    """

    prior: torch.Tensor | None
    weight: torch.Tensor | None

    def __init__(self, prior: torch.Tensor | None = None, reduction: str = "mean", check_targets: bool = True, *,
                 weight: torch.Tensor | None = None, ignore_index: int = -100, theta: float | None = None,
                 scheduler=None, track_onehot: bool = False, allow_negative: bool = False) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.ignore_index = check_ignore_index(ignore_index)
        if prior is not None:
            prior = torch.as_tensor(prior)
            prior = check_prior(prior if prior.dtype.is_floating_point else prior.float(), prior.numel())
        if weight is not None:
            weight = check_weight(weight, torch.as_tensor(weight).numel())
        if scheduler is not None and not callable(getattr(scheduler, "get_last_theta", None)):
            raise ValueError(f"scheduler={scheduler!r} has no get_last_theta() method: pass a tsla.SmoothingScheduler "
                             f"or any object with one")
        self.register_buffer("prior", prior, persistent=False)
        self.register_buffer("weight", weight, persistent=False)
        self.check_targets = check_targets
        self.allow_negative = bool(allow_negative)
        self.theta = None if theta is None else check_theta(theta, self.allow_negative)
        self.scheduler = scheduler
        self.track_onehot = track_onehot

    def current_theta(self, theta: float | None = None) -> float | torch.Tensor:
        """The theta a call would use now (see the class docstring for the order); raises ``ValueError``. Inside
        ``torch.compile`` a scheduler's ``theta_tensor`` (or a 0-dim tensor passed as ``theta``) is returned as it
        is, so that a new theta does not recompile (see :mod:`tsla.losses.compiled_theta`)."""
        return theta_for_call(theta, self.scheduler, self.theta, self.allow_negative, "LabelSmoothingCrossEntropy")

    def _inputs(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_logits(logits)
        k = num_classes(logits)
        compiling = torch.compiler.is_compiling()
        for name, tensor, check in (("prior", self.prior, check_prior_values),
                                    ("weight", self.weight, check_weight_values)):
            if tensor is not None:
                if tensor.numel() != k:
                    raise ValueError(f"the {name} has {tensor.numel()} classes but the logits have {k}")
                if not compiling:  # reads nothing unless the tensor changed in place since it was checked
                    check(tensor)
        if not self.check_targets and not target.dtype.is_floating_point:
            return target.long()
        return check_target(logits, target, self.ignore_index, range_check=not logits.is_cpu)

    def parts(self, logits: torch.Tensor, target: torch.Tensor) -> LossParts:
        """Both terms, reduced; with ``track_onehot`` (and gradients enabled) the one-hot term is also accumulated."""
        target = self._inputs(logits, target)
        track = self.track_onehot and torch.is_grad_enabled()
        parts, totals = compute_parts(logits, target, self.prior, self.weight, self.ignore_index, self.reduction,
                                      want_totals=track)
        if totals is not None:
            self._add_onehot_totals(totals)
        return parts

    def forward(self, logits: torch.Tensor, target: torch.Tensor, theta: float | None = None) -> torch.Tensor:
        theta = self.current_theta(theta)
        if self.track_onehot and torch.is_grad_enabled():
            return combine(self.parts(logits, target), theta, self.allow_negative)
        return _smoothed(logits, self._inputs(logits, target), theta, self.prior, self.weight, self.ignore_index,
                         self.reduction)

    def extra_repr(self) -> str:
        kind = "uniform" if self.prior is None else f"custom({self.prior.numel()} classes)"
        extra = "" if self.weight is None else ", weighted"
        extra += ", allow_negative=True" if self.allow_negative else ""
        return f"prior={kind}, reduction={self.reduction!r}, ignore_index={self.ignore_index}{extra}"


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
