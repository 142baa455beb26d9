"""The paper's quantities, measured: the one-hot gradient noise sigma^2, the ratio delta, theta* = 1/(1+delta), the
LSR floor, and what is needed to judge them: ||grad F||^2 and the LSR bias, corrected for the sampling design.

Population: the training set; F = mean one-hot loss over it, F_yhat = mean loss against the prior label yhat.
For a unit i (an example here; a mini-batch in :mod:`tsla.theory.minibatch_noise`) g_i = gradient of its one-hot loss,
p_i = gradient of its prior-label loss, h_i = (1 - theta) g_i + theta p_i (the LSR gradient). Population means:
grad F = E g, grad F_yhat = E p, bias b = grad F_yhat - grad F, so E h = grad F + theta b.

Corrected keys (unbiased under the sampling design of :mod:`tsla.theory.gram_estimators`; ratios consistent):

    grad_norm2_corrected      ||grad F||^2
    sigma2_corrected          sigma^2 = E||g - grad F||^2                    (per unit)
    delta_sigma2_corrected    E||p - grad F||^2,  delta_corrected = its ratio to sigma^2
    theta_star_corrected      1 / (1 + delta_corrected)
    bias2_corrected           ||grad F_yhat - grad F||^2 = ||b||^2
    lsr_variance_corrected    E||h - grad F||^2                               (the paper's LSR variance)
    lsr_variance_ratio_scaled lsr_variance_corrected / ((1 - theta)^2 sigma^2) (1: no reduction beyond the rescale)
    lsr_cosine                <grad F, E h> / (||grad F|| ||E h||)
    one_step_onehot           ||grad F||^4 / E||g_b||^2       best one-step decrease of F with the one-hot gradient
    one_step_lsr              <grad F, E h>^2 / E||h_b||^2    and with the LSR one, at its best step (times 2L: the
    one_step_gain             one_step_lsr / one_step_onehot  smoothness constant cancels in the gain)

where g_b, h_b average b = ``sgd_batch`` units (E||g_b||^2 = ||grad F||^2 + sigma^2 / b). With ``bootstrap`` > 0 the
main ones get 95% percentile intervals ``<key>_lo``/``<key>_hi`` (units resampled within strata).

Plug-in keys over the n sampled units with the plain mean G (v1's, meanings unchanged; biased as estimates of the
population quantities — ||G||^2 overstates ||grad F||^2 by the sampling variance of G):

    grad_norm2    = ||G||^2
    sigma2        = (1/n) sum_i ||g_i - G||^2
    delta_sigma2  = (1/n) sum_i ||p_i - G||^2,      delta = delta_sigma2 / sigma2
    theta_star    = 1 / (1 + delta)
    lsr_floor     = 2 delta sigma2 / (1 + delta)           (the bound at theta*)
    lsr_variance  = (1/n) sum_i ||h_i - G||^2
    lsr_bound     = 2 (1-theta)^2 sigma2 + 2 theta^2 delta_sigma2
    lsr_variance_ratio = lsr_variance / sigma2             (mostly the (1 - theta)^2 rescale: see docs/theory.md)

Per-example gradients need the model in eval mode (BatchNorm's running statistics, so each example's gradient is
its own): this F is the eval-mode loss on un-augmented images. :mod:`tsla.theory.minibatch_noise` measures the F SGD
descends (train-mode BatchNorm on augmented mini-batches) instead.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, jacrev, vmap

from . import gram_estimators as ge
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


def gram(units: torch.Tensor, block: int = 8192) -> torch.Tensor:
    """K[i, a, j, b] = <u_i^a, u_j^b> in float64 for ``units`` (n, 2, D), computed in column blocks."""
    n, two, d = units.shape
    flat = units.reshape(n * two, d)
    K = torch.zeros(n * two, n * two, dtype=torch.float64)
    for s in range(0, d, block):
        chunk = flat[:, s : s + block].double()
        K += chunk @ chunk.T
    return K.reshape(n, two, n, two)


def estimates(
    K: torch.Tensor, strata: torch.Tensor | None, population: Sequence[int] | int | None, theta: float | None,
    sgd_batch: int = 1, bootstrap: int = 0, seed: int = 0,
) -> dict[str, Any]:
    """Plug-in and corrected keys (module docstring) from the Gram matrix K (n, 2, n, 2) of sampled units."""
    n = K.shape[0]
    Z, W, f = ge.design(strata, n, population)
    m = ge.moments(K, Z, W, f)
    diag = torch.einsum("iaib->ab", K) / n  # (1/n) sum_i <u_i^a, u_i^b>
    P = m[2]  # <G^a, G^b>
    g2 = float(P[0, 0])
    sigma2 = float(diag[0, 0]) - g2
    dsig = float(diag[1, 1]) - 2 * float(P[0, 1]) + g2
    delta = dsig / sigma2 if sigma2 > 0 else None
    out: dict[str, Any] = {
        "n": n, "grad_norm2": g2, "sigma2": sigma2, "delta_sigma2": dsig, "delta": delta,
        "theta_star": None if delta is None else 1.0 / (1.0 + delta),
        "lsr_floor": None if delta is None else 2.0 * dsig / (1.0 + delta),
    }
    if theta is not None:
        alpha = torch.tensor([1.0 - theta, theta], dtype=torch.float64)
        out["lsr_variance"] = float(alpha @ diag @ alpha) - 2 * float(alpha @ P[:, 0]) + g2
        out["lsr_bound"] = 2 * (1 - theta) ** 2 * sigma2 + 2 * theta**2 * dsig
        out["lsr_variance_ratio"] = out["lsr_variance"] / sigma2 if sigma2 > 0 else None
    out.update(ge.quantities(m, theta, sgd_batch))
    if bootstrap:
        out.update(ge.bootstrap(K, Z, W, f, theta, sgd_batch, bootstrap, seed))
    return out


def gradient_noise(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    prior: torch.Tensor | None = None,
    theta: float | None = None,
    stratified: bool = True,
    population: Sequence[int] | int | None = None,
    sgd_batch: int = 1,
    bootstrap: int = 0,
    seed: int = 0,
    batch_size: int | None = None,
    max_bytes: int = 1 << 30,
) -> dict[str, Any]:
    """Measure the module docstring's quantities on the examples (``inputs``, ``targets``: class indices).

    ``stratified`` True: the examples are a class-stratified draw without replacement (tsla's diagnostic set: a
    fixed number per class), and ``population`` the per-class counts of the population they were drawn from (None:
    classes weighted as in the sample, infinite population); False: a simple random draw, ``population`` the
    population size (None: with replacement). The corrected keys are unbiased only under the design stated.
    ``prior`` None (uniform) or a length-K distribution; ``theta`` adds the LSR keys; ``sgd_batch`` is b of the
    one-step keys; ``bootstrap`` resamples (seeded by ``seed``) give the intervals.

    The model is put in eval mode for the measurement and restored to its mode afterwards. ``batch_size`` examples
    are differentiated at once (None: about 1 GB of per-example gradients, at most 32). The n x 2 gradient vectors
    are kept for the Gram matrix when they fit in ``max_bytes``; otherwise they are count-sketched to fit
    (``sketch_dim`` says to what dimension; inner products stay unbiased, so do the corrected keys, with more noise).
    Raises ``ValueError`` for empty inputs, a theta outside [0, 1], or (stratified) a class with fewer than 2 examples.
    """
    n = inputs.shape[0]
    if n == 0:
        raise ValueError("gradient_noise needs at least one example")
    if theta is not None and not (0.0 <= theta <= 1.0):
        raise ValueError(f"theta={theta} is outside [0, 1]")
    if sgd_batch < 1:
        raise ValueError(f"sgd_batch={sgd_batch} must be >= 1")
    strata = targets if stratified else None
    ge.design(strata, n, population)  # fail before the expensive part
    params = [p for p in model.parameters() if p.requires_grad]
    num_params = sum(p.numel() for p in params)
    if batch_size is None:
        batch_size = max(1, min(32, int(1e9 // (32 * max(num_params, 1)))))
    dtype = torch.float64 if params and params[0].dtype == torch.float64 else torch.float32
    itemsize = torch.finfo(dtype).bits // 8
    dim = num_params if n * 2 * num_params * itemsize <= max_bytes else max(1, max_bytes // (n * 2 * itemsize))
    sketch = None
    if dim < num_params:  # count sketch: coordinate j goes to bucket h(j) with sign s(j); E<Su, Sv> = <u, v>
        gen = torch.Generator().manual_seed(seed + 1)
        sketch = (torch.randint(dim, (num_params,), generator=gen),
                  (torch.randint(2, (num_params,), generator=gen) * 2 - 1).to(dtype))
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    units = torch.zeros(n, 2, dim, dtype=dtype)
    try:
        for s in range(0, n, batch_size):
            g = per_example_gradients(model, inputs[s : s + batch_size], targets[s : s + batch_size], prior).cpu()
            g = g.to(dtype)
            if sketch is not None:
                g = torch.zeros(g.shape[0], 2, dim, dtype=dtype).index_add_(2, sketch[0], g * sketch[1])
            units[s : s + g.shape[0]] = g
    finally:
        model.train(was_training)
    out = estimates(gram(units), strata, population, theta, sgd_batch, bootstrap, seed)
    out.update({"num_params": num_params, "sketch_dim": None if sketch is None else dim,
                "stratified": stratified, "seconds": time.perf_counter() - start})
    return out
