"""The paper's quantities, measured: gradient noise sigma^2, the ratio delta, theta* = 1/(1+delta) and the LSR floor.

Over a fixed set of n examples, with per-example gradients g_i(y) of the one-hot loss and g_i(yhat) of the
prior-label loss, and G = (1/n) sum_i g_i(y) (the one-hot gradient of the set, standing in for grad F):

    grad_norm2    = ||G||^2
    sigma2        = (1/n) sum_i ||g_i(y) - G||^2
    delta_sigma2  = (1/n) sum_i ||g_i(yhat) - G||^2,      delta = delta_sigma2 / sigma2
    theta_star    = 1 / (1 + delta)                        (minimises the LSR variance bound)
    lsr_floor     = 2 delta sigma2 / (1 + delta)           (the bound at theta*: where SGD with LSR stalls on F)
    lsr_variance  = (1/n) sum_i ||(1-theta) g_i(y) + theta g_i(yhat) - G||^2
    lsr_bound     = 2 (1-theta)^2 sigma2 + 2 theta^2 delta_sigma2
    lsr_variance_ratio = lsr_variance / sigma2             (< 1: smoothing reduced the gradient variance)

The sums are accumulated in float64 in one pass over chunks of examples (||a - G||^2 expanded into
||a||^2 - 2 a.G + ||G||^2), so memory stays bounded by the chunk size times the parameter count.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, jacrev, vmap


def _flat(grads: dict[str, torch.Tensor], n: int) -> torch.Tensor:
    """Per-example gradients {name: (n, 2, *shape)} -> (n, 2, P) float64."""
    return torch.cat([g.reshape(n, 2, -1) for g in grads.values()], dim=2).double()


def per_example_gradients(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, prior: torch.Tensor | None
) -> torch.Tensor:
    """(n, 2, P): for each example, the gradient of its one-hot loss and of its prior-label loss w.r.t. every
    trainable parameter (flattened in ``named_parameters`` order). The model must be in the mode the caller wants."""
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    def losses(p, x, y):
        logits = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        log_probs = F.log_softmax(logits if logits.dtype == torch.float64 else logits.float(), dim=1)[0]
        weights = torch.full_like(log_probs, 1.0 / log_probs.numel()) if prior is None else prior.to(log_probs)
        onehot = -log_probs.gather(0, y.reshape(1))[0]  # gather, not log_probs[y]: indexing by a tensor breaks vmap
        return torch.stack([onehot, -(log_probs * weights).sum()])

    grads = vmap(jacrev(losses), in_dims=(None, 0, 0))(params, inputs, targets)
    return _flat(grads, inputs.shape[0])


def gradient_noise(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    prior: torch.Tensor | None = None,
    theta: float | None = None,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Measure the module docstring's quantities on the examples (``inputs``, ``targets``: class indices).

    The model is put in eval mode for the measurement (BatchNorm uses its running statistics, so each example's
    gradient depends on that example alone, as the definitions assume) and restored to its mode afterwards.
    ``prior`` is None (uniform) or a length-K distribution; with ``theta`` the result also has ``lsr_variance`` and
    ``lsr_bound``. ``batch_size`` examples are differentiated at once (memory ~ 32 bytes x parameters per example);
    None picks as many as fit in about 1 GB, at most 32 (ResNet-8: 32; ResNet-18: 2; ResNet-50: 1).
    Raises ``ValueError`` for empty inputs or a theta outside [0, 1].
    """
    n = inputs.shape[0]
    if n == 0:
        raise ValueError("gradient_noise needs at least one example")
    if theta is not None and not (0.0 <= theta <= 1.0):
        raise ValueError(f"theta={theta} is outside [0, 1]")
    if batch_size is None:
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        batch_size = max(1, min(32, int(1e9 // (32 * max(params, 1)))))
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        sum_y = sum_p = None
        sq_y = sq_p = dot = 0.0
        for s in range(0, n, batch_size):
            g = per_example_gradients(model, inputs[s : s + batch_size], targets[s : s + batch_size], prior)
            gy, gp = g[:, 0], g[:, 1]
            sum_y = gy.sum(0) if sum_y is None else sum_y + gy.sum(0)
            sum_p = gp.sum(0) if sum_p is None else sum_p + gp.sum(0)
            sq_y += float((gy * gy).sum())
            sq_p += float((gp * gp).sum())
            dot += float((gy * gp).sum())
    finally:
        model.train(was_training)
    G = sum_y / n
    mean_p = sum_p / n
    g2 = float(G @ G)
    sigma2 = sq_y / n - g2
    delta_sigma2 = sq_p / n - 2 * float(mean_p @ G) + g2
    delta = delta_sigma2 / sigma2 if sigma2 > 0 else float("inf")
    out: dict[str, Any] = {
        "n": n,
        "num_params": int(G.numel()),
        "grad_norm2": g2,
        "sigma2": sigma2,
        "delta_sigma2": delta_sigma2,
        "delta": delta,
        "theta_star": 1.0 / (1.0 + delta),
        "lsr_floor": 2.0 * delta_sigma2 / (1.0 + delta),
    }
    if theta is not None:
        a, b = 1.0 - theta, theta
        mean_h = a * G + b * mean_p
        sq_h = a * a * sq_y + 2 * a * b * dot + b * b * sq_p
        out["lsr_variance"] = sq_h / n - 2 * float(mean_h @ G) + g2
        out["lsr_bound"] = 2 * a * a * sigma2 + 2 * b * b * delta_sigma2
        out["lsr_variance_ratio"] = out["lsr_variance"] / sigma2 if sigma2 > 0 else float("nan")
    out["seconds"] = time.perf_counter() - start
    return out
