"""Input checks for the loss: one ``ValueError`` naming the value for every input torch would refuse, and more.

Shapes follow ``torch.nn.functional.cross_entropy``: logits (N, K), (N, K, d1, ..., dk) or unbatched (K,); a target
with exactly the logits' shape holds class probabilities, any other target holds class indices of shape
(N, d1, ..., dk) (or () for unbatched logits). The checks never warn (they read detached values) and, on CPU, never
synchronise more than once per call.
"""

from __future__ import annotations

import math

import torch

from .checked_once import CheckedTensors, check_values

REDUCTIONS = ("mean", "sum", "none")


def check_theta(theta: float, allow_negative: bool = False) -> float:
    """Return ``theta`` as a float; raise ``ValueError`` unless it is a number in [0, 1].

    With ``allow_negative`` (negative label smoothing, Wei et al. 2022) theta may also lie in [-1, 0): the label
    (1 - theta) * onehot + theta * prior then puts more than 1 on the true class and negative mass elsewhere.
    theta < -1 is refused always.
    """
    try:
        value = float(theta)
    except (TypeError, ValueError):
        raise ValueError(f"theta={theta!r} is not a number: pass a smoothing strength between 0 and 1") from None
    if allow_negative and -1.0 <= value < 0.0:
        return value
    if not (0.0 <= value <= 1.0):  # also rejects NaN
        if -1.0 <= value < 0.0:
            raise ValueError(f"theta={theta!r} is negative: negative label smoothing is opt-in, pass "
                             f"allow_negative=True (theta in [-1, 0))")
        lowest = -1 if allow_negative else 0
        raise ValueError(f"theta={theta!r} is outside [{lowest}, 1]: pass a smoothing strength between {lowest} and 1")
    return value


def check_reduction(reduction: str) -> str:
    """Return ``reduction``; raise ``ValueError`` unless it is "mean", "sum" or "none"."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}: choose one of {', '.join(REDUCTIONS)}")
    return reduction


def check_ignore_index(ignore_index: int) -> int:
    """Return ``ignore_index``; raise ``ValueError`` unless it is an integer (torch's default is -100)."""
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise ValueError(f"ignore_index={ignore_index!r} must be an integer class index (torch's default is -100)")
    return ignore_index


def _distribution_problem(name: str, values: torch.Tensor) -> str | None:
    """The first negative or non-finite entry of a 1-D tensor, described; None if there is none."""
    bad = torch.nonzero(~torch.isfinite(values) | (values < 0)).flatten()
    if bad.numel():
        i = int(bad[0])
        return f"{name}[{i}] = {float(values[i]):g} is negative or not finite"
    return None


_CHECKED_PRIORS = CheckedTensors()
_CHECKED_WEIGHTS = CheckedTensors()


def check_prior_values(prior: torch.Tensor) -> None:
    """Raise ``ValueError`` if an entry of the 1-D ``prior`` is negative or not finite, or the entries do not sum
    to 1 within 1e-6. A prior that passed is not read again until it changes in place (see
    :class:`tsla.losses.checked_once.CheckedTensors`)."""
    if _CHECKED_PRIORS.seen(prior):
        return
    values = prior.detach()
    lowest, total = torch.stack([values.min(), values.double().sum().to(values.dtype)]).tolist()  # one sync
    if not (lowest >= 0 and math.isfinite(total) and abs(total - 1.0) <= 1e-6):
        problem = _distribution_problem("prior", values)
        if problem:
            raise ValueError(f"{problem}: every class probability must be >= 0")
        total = float(values.double().sum())
        raise ValueError(f"prior sums to {total:.8g}, not 1 (tolerance 1e-6): normalise it first")
    _CHECKED_PRIORS.add(prior)


def check_prior(prior: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return ``prior`` as a 1-D tensor after checking it is a distribution over ``num_classes`` classes.

    Raises ``ValueError`` if its length differs from ``num_classes``, an entry is negative or not finite, or the
    entries do not sum to 1 within 1e-6. The values are read detached, once per tensor until it changes in place,
    outside a compiled graph and not under ``torch.export`` (:mod:`tsla.losses.checked_once`). The prior itself is
    returned as given, so a prior that requires grad (a learned prior) keeps its place in the autograd graph.
    """
    prior = torch.as_tensor(prior)
    if prior.dim() != 1 or prior.numel() != num_classes:
        raise ValueError(
            f"prior has shape {tuple(prior.shape)} but the model has {num_classes} classes: "
            f"give one probability per class"
        )
    check_values(check_prior_values, prior)
    return prior


def check_weight_values(weight: torch.Tensor) -> None:
    """Raise ``ValueError`` if an entry of the 1-D floating-point ``weight`` is negative or not finite. A weight that
    passed is not read again until it changes in place (see :class:`tsla.losses.checked_once.CheckedTensors`)."""
    if not weight.numel() or _CHECKED_WEIGHTS.seen(weight):
        return
    values = weight.detach()
    lowest, total = torch.stack([values.min(), values.sum()]).tolist()  # one sync
    if not (lowest >= 0 and math.isfinite(total)):
        raise ValueError(f"{_distribution_problem('weight', values)}: class weights must be finite and >= 0")
    _CHECKED_WEIGHTS.add(weight)


def check_weight(weight: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return ``weight``, detached, after checking it holds one finite, non-negative floating-point weight per class.

    Unlike torch, the weight's dtype need not match the logits' (it is converted); torch accepts negative weights,
    tsla refuses them. Raises ``ValueError`` naming the problem. The values are read as a prior's are (see
    :func:`check_prior`).
    """
    weight = torch.as_tensor(weight)
    if weight.dim() != 1 or weight.numel() != num_classes:
        raise ValueError(f"weight has shape {tuple(weight.shape)} but the logits have {num_classes} classes: "
                         f"give one weight per class")
    if not weight.dtype.is_floating_point:
        raise ValueError(f"weight must be a floating-point tensor, got {weight.dtype}")
    check_values(check_weight_values, weight)
    return weight.detach()


def check_logits(logits: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``logits`` is a floating-point tensor of shape (K,), (N, K) or (N, K, d1, ...)."""
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() == 0:
        raise ValueError("logits have shape (): expected (N, K), (N, K, d1, ..., dk) or unbatched (K,)")
    if not logits.dtype.is_floating_point:
        raise ValueError(f"logits must be floating point, got {logits.dtype}")


def num_classes(logits: torch.Tensor) -> int:
    """K: the size of the class dimension (dimension 1, or 0 for unbatched logits)."""
    return logits.shape[0] if logits.dim() == 1 else logits.shape[1]


def is_probability_target(logits: torch.Tensor, target: torch.Tensor) -> bool:
    """torch's rule: a target with exactly the logits' shape holds class probabilities."""
    return target.shape == logits.shape


def _row_sum_tolerance(dtype: torch.dtype) -> float:
    # A correctly normalised row, summed exactly (float64), is off by a few rounding steps of its own dtype at most:
    # measured < 0.5 eps for bf16/fp16 rows normalised in their own dtype (K = 1000), 7 eps for a float32 softmax at
    # K = 100,000. 4 eps for half precision (bf16: 0.031, fp16: 0.0039); 1e-5 for float32/float64.
    return max(4 * torch.finfo(dtype).eps, 1e-5)


def _check_probabilities(target: torch.Tensor, class_dim: int) -> None:
    if not target.dtype.is_floating_point:
        raise ValueError(f"a target shaped like the logits holds class probabilities and must be floating point, "
                         f"got {target.dtype}; class indices have the logits' shape without the class dimension")
    if target.numel() == 0:
        return
    t = target.detach()
    sums = t.double().sum(dim=class_dim)
    lowest, worst = torch.stack([t.double().min(), (sums - 1).abs().max()]).tolist()  # one sync; NaN propagates
    if not (lowest >= 0 and math.isfinite(worst)):
        raise ValueError("probability target has a negative or non-finite entry: each row must be a distribution")
    tol = _row_sum_tolerance(target.dtype)
    if worst > tol:
        raise ValueError(f"probability target rows must sum to 1; a row is off by {worst:.3g} "
                         f"(tolerance {tol:.2g} for {target.dtype})")


def bad_class(target: torch.Tensor, num_classes: int, ignore_index: int) -> ValueError:
    """The ``ValueError`` for class indices outside [0, K) that are not ``ignore_index``."""
    wrong = target[(target != ignore_index) & ((target < 0) | (target >= num_classes))]
    shown = f"class {wrong[0].item()}" if wrong.numel() else "a class"
    return ValueError(f"target contains {shown}, outside [0, {num_classes}) and not ignore_index={ignore_index}: "
                      f"labels must index the logits")


def check_target(logits: torch.Tensor, target: torch.Tensor, ignore_index: int, range_check: bool) -> torch.Tensor:
    """Check ``target`` against ``logits`` (already checked) and return it ready for the loss.

    Class indices of any integer dtype (uint8, int8, int16, int32, int64) are accepted and returned as int64, so
    they give exactly the int64 result (torch itself accepts only int64 and uint8). Probability targets are returned
    unchanged after checking that every entry is finite and >= 0 and every row sums to 1 (see
    ``_row_sum_tolerance``); they cannot be combined with ``ignore_index >= 0`` (torch refuses that too). With
    ``range_check``, class indices are checked to lie in [0, K) or equal ``ignore_index`` (a device
    synchronisation; on CPU the loss kernels raise for such indices themselves, and that error is translated).
    """
    if (not range_check and type(target) is torch.Tensor and target.dtype == torch.int64 and target.dim() == 1
            and logits.dim() == 2 and target.shape[0] == logits.shape[0]):
        return target  # the common batch, decided in a few attribute reads: nothing below would change it
    if not isinstance(target, torch.Tensor):
        raise ValueError(f"target must be a torch.Tensor, got {type(target).__name__}")
    k = num_classes(logits)
    if is_probability_target(logits, target):
        if ignore_index >= 0:
            raise ValueError(f"ignore_index={ignore_index} cannot be used with probability targets "
                             f"(torch refuses it too): leave it at -100")
        _check_probabilities(target, 0 if logits.dim() == 1 else 1)
        return target
    expected = () if logits.dim() == 1 else (logits.shape[0],) + tuple(logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"target has shape {tuple(target.shape)}; logits of shape {tuple(logits.shape)} need class "
                         f"indices of shape {expected} or probabilities of shape {tuple(logits.shape)}")
    if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
        raise ValueError(f"class-index target must be an integer tensor, got {target.dtype} "
                         f"(probabilities must have the logits' shape {tuple(logits.shape)})")
    target = target.long()
    if range_check and target.numel():
        valid = target != ignore_index
        lo, hi = torch.stack(torch.aminmax(torch.where(valid, target, 0))).tolist()  # one sync
        if lo < 0 or hi >= k:
            raise bad_class(target, k, ignore_index)
    return target
