"""Binary and multi-label label smoothing: ``binary_cross_entropy_with_logits`` against t * (1 - theta) + theta / 2.

Each output is its own two-class problem, smoothed towards (1/2, 1/2) as timm and Keras do. Binary cross-entropy is
linear in the target too, so the loss splits exactly as the multi-class one does:

    BCE(t_LS) = (1 - theta) * BCE(t) + theta * BCE(1/2)

with torch's ``weight`` (multiplying each element's loss), ``pos_weight`` (multiplying the positive part, broadcast
along the last dimension) and reductions (the mean divides by the number of elements, weighted or not).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checked_once import CheckedTensors, check_values as read_values
from .checks import check_reduction, check_theta
from .compiled_theta import compiled_theta, theta_for_call
from .cross_entropy import combine
from .onehot_tracking import OneHotTracking
from .terms import LossParts, full_precision


_CHECKED = CheckedTensors()  # weights whose values passed (read again only after an in-place change)


def _as_weight(name: str, tensor) -> torch.Tensor:
    """``tensor`` as a floating-point tensor; ``ValueError`` naming ``name`` for anything else (a string, ...)."""
    try:
        tensor = torch.as_tensor(tensor)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a floating-point tensor, got {type(tensor).__name__}") from None
    if not tensor.dtype.is_floating_point:
        raise ValueError(f"{name} must be a floating-point tensor, got {tensor.dtype}")
    return tensor


def _nonnegative(name: str):
    """A value check for ``weight`` / ``pos_weight``: every entry finite and >= 0. torch takes a negative one and
    returns a negative loss (training would maximise it), a NaN one and returns NaN; the multi-class loss refuses
    both for its class weights, and so does this one."""
    def check(tensor: torch.Tensor) -> None:
        if not tensor.numel() or _CHECKED.seen(tensor):
            return
        values = tensor.detach()
        if not bool(torch.stack([values.min() >= 0, torch.isfinite(values).all()]).all()):  # one sync
            bad = values[~(torch.isfinite(values) & (values >= 0))].flatten()[0]
            raise ValueError(f"{name} contains {float(bad):g}: every {name} must be finite and >= 0")
        _CHECKED.add(tensor)

    return check


def _check_broadcast(name: str, tensor: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor | None:
    if tensor is None:
        return None
    tensor = _as_weight(name, tensor)
    try:
        fits = torch.broadcast_shapes(tensor.shape, logits.shape) == logits.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}, which does not broadcast to the logits' "
                         f"{tuple(logits.shape)}: give one value per class (the last dimension) or per element")
    read_values(_nonnegative(name), tensor)
    return tensor


def check_binary_inputs(logits: torch.Tensor, target: torch.Tensor, check_values: bool = True) -> torch.Tensor:
    """Return ``target`` in the logits' (full-precision) dtype after checking it: a tensor of the logits' shape with
    every entry in [0, 1] (bool and integer 0/1 targets are converted). ``check_values=False`` skips the value
    check, which costs a device synchronisation. Raises ``ValueError`` naming the problem."""
    if not isinstance(logits, torch.Tensor) or not logits.dtype.is_floating_point:
        raise ValueError(f"logits must be a floating-point torch.Tensor, got "
                         f"{logits.dtype if isinstance(logits, torch.Tensor) else type(logits).__name__}")
    if not isinstance(target, torch.Tensor):
        raise ValueError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if target.shape != logits.shape:
        raise ValueError(f"target has shape {tuple(target.shape)} but the logits {tuple(logits.shape)}: binary and "
                         f"multi-label targets give one value in [0, 1] per logit")
    if target.dtype.is_complex:
        raise ValueError(f"target must be real, got {target.dtype}")
    target = target.to(full_precision(logits).dtype)
    if check_values and target.numel() and not torch.compiler.is_compiling():
        lo, hi = torch.stack(torch.aminmax(target.detach())).tolist()  # one sync; NaN fails both tests
        if not (lo >= 0 and hi <= 1):
            bad = lo if not lo >= 0 else hi
            raise ValueError(f"target contains {bad:g}, outside [0, 1]: binary and multi-label targets are "
                             f"probabilities of the positive class (0 or 1 for hard labels)")
    return target


def _bce(x: torch.Tensor, target: torch.Tensor, weight, pos_weight, reduction: str) -> torch.Tensor:
    w = None if weight is None else weight.to(device=x.device, dtype=x.dtype)
    pw = None if pos_weight is None else pos_weight.to(device=x.device, dtype=x.dtype)
    return F.binary_cross_entropy_with_logits(x, target, weight=w, pos_weight=pw, reduction=reduction)


def _smoothed(logits, target, theta, weight, pos_weight, reduction) -> torch.Tensor:
    """BCE against t * (1 - theta) + theta / 2 on checked inputs (``theta`` a float or a 0-dim tensor)."""
    x = full_precision(logits)
    if isinstance(theta, torch.Tensor):
        theta = theta.to(device=x.device, dtype=x.dtype)
        target = target * (1 - theta) + theta / 2
    elif theta != 0.0:
        target = target * (1.0 - theta) + theta / 2
    return _bce(x, target, weight, pos_weight, reduction)


def _parts(logits, target, weight, pos_weight, reduction) -> LossParts:
    x = full_precision(logits)
    return LossParts(_bce(x, target, weight, pos_weight, reduction),
                     _bce(x, torch.full_like(x, 0.5), weight, pos_weight, reduction))


def binary_label_smoothing_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    theta: float,
    weight: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
    reduction: str = "mean",
    *,
    allow_negative: bool = False,
) -> torch.Tensor:
    """``F.binary_cross_entropy_with_logits(logits, target * (1 - theta) + theta / 2, weight, pos_weight=...)``.

    Args:
        logits: unnormalised scores of any shape, one per binary decision (multi-label: (N, C)).
        target: the logits' shape, each entry in [0, 1] (hard 0/1 labels or probabilities; bool and integer
            tensors are converted).
        theta: smoothing strength in [0, 1]: every target moves theta of the way towards 1/2.
        weight, pos_weight, reduction: as in torch (``pos_weight`` broadcast along the last dimension).
        allow_negative: also accept theta in [-1, 0), negative smoothing (targets pushed away from 1/2, beyond
            [0, 1]), as :func:`tsla.label_smoothing_cross_entropy` does.

    The loss is computed in float32 (float64 for float64 logits). Raises ``ValueError`` for theta outside [0, 1]
    (a negative one without ``allow_negative``), a
    target of another shape or with an entry outside [0, 1], a weight or pos_weight that does not broadcast, is not a
    floating-point tensor, or has a negative or non-finite entry, or an unknown reduction.
    """
    compiled = compiled_theta(theta, None)
    theta = compiled if compiled is not None else check_theta(theta, allow_negative)
    check_reduction(reduction)
    target = check_binary_inputs(logits, target)
    weight = _check_broadcast("weight", weight, logits)
    pos_weight = _check_broadcast("pos_weight", pos_weight, logits)
    return _smoothed(logits, target, theta, weight, pos_weight, reduction)


class BinaryLabelSmoothingCrossEntropy(OneHotTracking, nn.Module):
    """Module form of :func:`binary_label_smoothing_cross_entropy`: a two-argument criterion for binary and
    multi-label classifiers, with the same theta order as :class:`tsla.LabelSmoothingCrossEntropy` (an explicit
    ``theta=`` argument, else ``scheduler.get_last_theta()`` read at the call, else the attribute ``theta``; inside
    ``torch.compile`` the scheduler's ``theta_tensor``), and the same one-hot tracking: with ``track_onehot=True``
    every call with gradients enabled adds the unsmoothed BCE(t) to running sums, and ``pop_onehot_mean()`` returns
    it over everything since the last pop (the mean over elements). ``parts(logits, target)`` returns
    ``LossParts(BCE(t), BCE(1/2))``. ``check_targets=False`` skips the per-call value check of the targets (a device
    synchronisation on a GPU). ``allow_negative=True`` accepts theta in [-1, 0) from any source.
    """

    weight: torch.Tensor | None
    pos_weight: torch.Tensor | None

    def __init__(self, theta: float | None = None, scheduler=None, track_onehot: bool = False, *,
                 weight: torch.Tensor | None = None, pos_weight: torch.Tensor | None = None,
                 reduction: str = "mean", check_targets: bool = True, allow_negative: bool = False) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        weight = None if weight is None else _as_weight("weight", weight)
        pos_weight = None if pos_weight is None else _as_weight("pos_weight", pos_weight)
        for name, tensor in (("weight", weight), ("pos_weight", pos_weight)):
            if tensor is not None:  # the values here, the shape against the logits at each call
                read_values(_nonnegative(name), tensor)
        if scheduler is not None and not callable(getattr(scheduler, "get_last_theta", None)):
            raise ValueError(f"scheduler={scheduler!r} has no get_last_theta() method: pass a tsla.SmoothingScheduler "
                             f"or any object with one")
        self.register_buffer("weight", weight, persistent=False)
        self.register_buffer("pos_weight", pos_weight, persistent=False)
        self.allow_negative = bool(allow_negative)
        self.theta = None if theta is None else check_theta(theta, self.allow_negative)
        self.scheduler = scheduler
        self.track_onehot = track_onehot
        self.check_targets = check_targets

    def current_theta(self, theta: float | None = None) -> float | torch.Tensor:
        """The theta a call would use now; raises ``ValueError`` when there is none or it is outside [0, 1]."""
        return theta_for_call(theta, self.scheduler, self.theta, self.allow_negative,
                              "BinaryLabelSmoothingCrossEntropy")

    def _inputs(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = check_binary_inputs(logits, target, self.check_targets)
        _check_broadcast("weight", self.weight, logits)
        _check_broadcast("pos_weight", self.pos_weight, logits)
        return target

    def parts(self, logits: torch.Tensor, target: torch.Tensor) -> LossParts:
        """``LossParts(BCE(t), BCE(1/2))``, reduced; with ``track_onehot`` (and gradients enabled) BCE(t) is also
        accumulated."""
        parts = _parts(logits, self._inputs(logits, target), self.weight, self.pos_weight, self.reduction)
        if self.track_onehot and torch.is_grad_enabled():
            total = parts.onehot.detach().double()
            total = total * logits.numel() if self.reduction == "mean" else total.sum()
            self._add_onehot_totals(torch.stack([total, total.new_tensor(float(logits.numel()))]))
        return parts

    def forward(self, logits: torch.Tensor, target: torch.Tensor, theta: float | None = None) -> torch.Tensor:
        theta = self.current_theta(theta)
        if self.track_onehot and torch.is_grad_enabled():
            return combine(self.parts(logits, target), theta, self.allow_negative)
        return _smoothed(logits, self._inputs(logits, target), theta, self.weight, self.pos_weight, self.reduction)

    def extra_repr(self) -> str:
        extra = "".join(f", {name}" for name in ("weight", "pos_weight") if getattr(self, name) is not None)
        return f"reduction={self.reduction!r}{extra}"


__all__ = ["BinaryLabelSmoothingCrossEntropy", "binary_label_smoothing_cross_entropy", "check_binary_inputs"]
