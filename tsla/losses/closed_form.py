"""The smoothed cross-entropy in closed form with a hand-written backward: the fast path for (N, K) logits and class
indices, used by the function, the module and the engine's two-term path.

With z the logits of one position, y its class, pi the prior and lse = log sum_c exp(z_c):

    onehot = lse - z_y        prior = lse - <pi, z>        smoothed = lse - (1 - theta) z_y - theta <pi, z>

(exact for a prior summing to 1), and the gradient of a * onehot + b * prior with respect to z is
(a + b) softmax(z) - a e_y - b pi. One softmax serves both directions: the forward reads
lse = max(z) - log(max softmax(z)) from it (the largest probability is 1 / sum_c exp(z_c - max z) >= 1/K, so it
never underflows) and the backward reuses it. torch's own smoothing path evaluates exp twice (log_softmax forward
and backward) and adds the gradients of its two terms in separate passes, which is what makes this path faster.

The backward is once-differentiable: a second derivative through it raises torch's error; the general path
(:func:`tsla.losses.terms.compute_parts`) serves what this one does not (see :func:`applies`).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from . import torch_call
from .checks import bad_class

LARGE = 1 << 16
"""Logits with at least this many entries take the autograd functions below. On smaller ones, where a few
microseconds of Python per operation dominate, torch's own kernels cost less: the smoothed loss goes to torch's
probability-target cross-entropy (:func:`smoothed`), the two terms to the general path (:func:`parts` is not used)."""


def applies(logits: torch.Tensor, target: torch.Tensor, prior: torch.Tensor | None,
            weight: torch.Tensor | None) -> bool:
    """True where the closed form computes exactly the loss: (N, K) floating-point logits, class indices, no class
    weights, a prior without gradient, outside ``torch.compile`` (whose own fusion does better on plain ops)."""
    return (logits.dim() == 2 and logits.numel() > 0 and weight is None and not target.is_floating_point()
            and (prior is None or not prior.requires_grad) and not torch.compiler.is_compiling())


def _terms(z: torch.Tensor, target: torch.Tensor, prior: torch.Tensor | None):
    """softmax(z), lse, z_y and <pi, z> per row (z_y first: a refused index costs nothing else)."""
    zy = z.gather(1, target.unsqueeze(1)).squeeze(1)
    p = torch.softmax(z, 1)
    # the largest probability sits at the largest logit (softmax is monotone); two reductions without indices cost a
    # tenth of one max(dim) with indices (aten::max was a quarter of the whole forward + backward)
    lse = z.amax(1) - p.amax(1).log_()
    zp = z.mean(1) if prior is None else torch.mv(z, prior)
    return p, lse, zy, zp


def _reduce(each: torch.Tensor, keep: torch.Tensor | None, reduction: str, denominator) -> torch.Tensor:
    if keep is not None:
        each = each * keep
    if reduction == "none":
        return each
    total = each.sum()
    return total if reduction == "sum" else total / denominator


def _row_scale(grad: torch.Tensor, keep: torch.Tensor | None, reduction: str, denominator) -> torch.Tensor:
    """The incoming gradient per position, the mean's division included: (1, 1) where every position has the same (a
    reduced loss with no position ignored), else an (N, 1) column, 0 at ignored positions."""
    if reduction == "mean":
        grad = grad / denominator
    column = grad.unsqueeze(1) if reduction == "none" else grad.reshape(1, 1)
    return column if keep is None else column * keep.unsqueeze(1)


def _logits_grad(p: torch.Tensor, target: torch.Tensor, prior: torch.Tensor | None, s_onehot: torch.Tensor,
                 s_prior: torch.Tensor) -> torch.Tensor:
    """(s_onehot + s_prior) softmax - s_onehot e_y - s_prior pi, with s_onehot and s_prior from :func:`_row_scale`.
    With one scale for every position, one vectorised pass over the (N, K) entries: ``addcmul`` of a contiguous
    (1, K) row (measured here at 0.64-0.77x the time of a product then a subtraction; with a broadcast (1, 1) or
    (N, 1) first argument instead, torch falls back to a scalar loop: 4-5x slower at (256, 1000)); otherwise two
    passes (a product, then the prior's term)."""
    n, k = p.shape
    total = s_onehot + s_prior
    if total.shape[0] == 1:
        row = (s_prior / -k).expand(1, k).contiguous() if prior is None else s_prior * -prior
        grad = torch.addcmul(row, p, total)
    else:
        grad = p * total
        if prior is None:
            grad.sub_(s_prior / k)
        else:
            grad.addr_(s_prior.squeeze(1), prior, alpha=-1)
    return grad.scatter_add_(1, target.unsqueeze(1), (-s_onehot).expand(n, 1))


class _Smoothed(torch.autograd.Function):
    """(1 - theta) * onehot + theta * prior, reduced; inputs checked and prepared by :func:`smoothed`."""

    @staticmethod
    def forward(ctx, z, target, prior, keep, theta, reduction, denominator):
        p, lse, zy, zp = _terms(z, target, prior)
        each = lse - (1.0 - theta) * zy - theta * zp
        ctx.save_for_backward(p, target, prior, keep)
        ctx.theta, ctx.reduction, ctx.denominator = theta, reduction, denominator
        return _reduce(each, keep, reduction, denominator)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        p, target, prior, keep = ctx.saved_tensors
        s = _row_scale(grad, keep, ctx.reduction, ctx.denominator)
        return _logits_grad(p, target, prior, (1.0 - ctx.theta) * s, ctx.theta * s), None, None, None, None, None, None


class _Parts(torch.autograd.Function):
    """The one-hot and prior terms, each reduced; inputs checked and prepared by :func:`parts`."""

    @staticmethod
    def forward(ctx, z, target, prior, keep, reduction, denominator):
        p, lse, zy, zp = _terms(z, target, prior)
        ctx.save_for_backward(p, target, prior, keep)
        ctx.reduction, ctx.denominator = reduction, denominator
        return _reduce(lse - zy, keep, reduction, denominator), _reduce(lse - zp, keep, reduction, denominator)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_onehot, grad_prior):
        p, target, prior, keep = ctx.saved_tensors
        s_onehot = _row_scale(grad_onehot, keep, ctx.reduction, ctx.denominator)
        s_prior = _row_scale(grad_prior, keep, ctx.reduction, ctx.denominator)
        return _logits_grad(p, target, prior, s_onehot, s_prior), None, None, None, None, None


def _prepared(logits, target, prior, ignore_index, masked):
    """(z, target, prior, keep, denominator): float32/float64 logits, the target with ignored positions pointing at
    class 0, ``keep`` (None when nothing can be ignored) and the mean's denominator."""
    z = logits if logits.dtype == torch.float64 else logits.float()
    if prior is not None:
        prior = prior.to(device=z.device, dtype=z.dtype)
    if not masked:
        return z, target, prior, None, target.shape[0]
    keep = target != ignore_index
    denominator = keep.sum().to(z.dtype)
    return z, target.masked_fill(~keep, 0), prior, keep, denominator


def _run(compute, logits: torch.Tensor, target: torch.Tensor, ignore_index: int):
    """``compute(masked)``. On CPU the first try assumes no position is ignored and skips the mask: ``gather`` and
    ``scatter_add_`` themselves refuse -100 or any index outside [0, K), so nothing goes unnoticed. A class
    ``ignore_index`` inside [0, K), another device or a refusal takes the masked way; an index still refused there
    is outside [0, K) and gets tsla's ``ValueError``."""
    k = logits.shape[1]
    if torch.is_autocast_enabled(logits.device.type):  # autocast would run the prior's product in bf16/fp16
        with torch.autocast(device_type=logits.device.type, enabled=False):
            return _run(compute, logits, target, ignore_index)
    if logits.is_cpu and not 0 <= ignore_index < k:
        try:
            return compute(False)
        except (IndexError, RuntimeError) as error:
            if "out of bounds" not in str(error):
                raise
    try:
        return compute(True)
    except (IndexError, RuntimeError) as error:
        if "out of bounds" in str(error):
            raise bad_class(target, k, ignore_index) from None
        raise


def _soft_labels(logits, target, theta, prior, ignore_index, reduction, masked):
    """Small logits: y_LS built as a matrix (theta * pi in every row, 1 - theta added at y; zero rows at ignored
    positions) and given to torch's own probability-target kernel, which costs less there than torch's
    label-smoothing path; the mean divides by the kept positions, as torch does for class indices."""
    z = logits if logits.dtype == torch.float64 else logits.float()
    n, k = z.shape
    if isinstance(theta, torch.Tensor):
        theta = theta.to(device=z.device, dtype=z.dtype)
        row = (theta / k).expand(k) if prior is None else prior.to(device=z.device, dtype=z.dtype) * theta
        top = (1 - theta).expand(n, 1)
    else:
        row = z.new_full((k,), theta / k) if prior is None else prior.to(device=z.device, dtype=z.dtype) * theta
        top = z.new_full((n, 1), 1.0 - theta)
    keep = target != ignore_index if masked else None
    index = target if keep is None else target.masked_fill(~keep, 0)
    # scatter_add out of place copies the broadcast row into a fresh (n, k) matrix and adds 1 - theta at y: one
    # pass, where a repeat then an in-place scatter_add_ make two
    labels = row.expand(n, k).scatter_add(1, index.unsqueeze(1), top)
    if keep is None:
        return torch_call.cross_entropy(z, labels, None, -100, reduction)
    labels.mul_(keep.unsqueeze(1))
    if reduction == "none":
        return torch_call.cross_entropy(z, labels, None, -100, "none")
    total = torch_call.cross_entropy(z, labels, None, -100, "sum")
    return total if reduction == "sum" else total / keep.sum()


def smoothed(logits: torch.Tensor, target: torch.Tensor, theta, prior: torch.Tensor | None, ignore_index: int,
             reduction: str) -> torch.Tensor:
    """The smoothed loss, reduced, for inputs where :func:`applies`; ``theta`` a float or a 0-dim tensor."""
    def compute(masked):
        if logits.numel() < LARGE:
            return _soft_labels(logits, target, theta, prior, ignore_index, reduction, masked)
        z, t, q, keep, denominator = _prepared(logits, target, prior, ignore_index, masked)
        return _Smoothed.apply(z, t, q, keep, theta, reduction, denominator)
    return _run(compute, logits, target, ignore_index)


def parts(logits: torch.Tensor, target: torch.Tensor, prior: torch.Tensor | None, ignore_index: int,
          reduction: str, want_totals: bool = False):
    """``((onehot, prior), totals)`` as :func:`tsla.losses.terms.compute_parts` returns them, for inputs where
    :func:`applies` with at least ``LARGE`` entries (smaller ones keep the general path, so the trainer's numbers at
    the presets' shapes stay bit for bit those of earlier versions)."""
    def compute(masked):
        z, t, q, keep, denominator = _prepared(logits, target, prior, ignore_index, masked)
        terms = _Parts.apply(z, t, q, keep, reduction, denominator)
        if not want_totals:
            return terms, None
        count = (target != ignore_index).sum() if masked else target.shape[0]
        count = torch.as_tensor(count, dtype=torch.float64, device=logits.device)
        total = terms[0].detach().double()
        if reduction == "mean":  # a batch with every position ignored adds 0, not its NaN mean
            total = torch.where(count > 0, total * count, 0.0)
        return terms, torch.stack([total.sum(), count])
    return _run(compute, logits, target, ignore_index)
