"""The train-mode estimator: the gradient noise of the objective SGD actually descends.

SGD does not descend the eval-mode loss on clean images that :func:`tsla.theory.gradient_noise.gradient_noise` measures: it
follows mini-batch gradients of the loss on *augmented* images with BatchNorm in *train* mode (each batch normalised
by its own statistics), so a batch gradient is not a mean of independent per-example gradients. Here the unit is the
mini-batch: m independent batches of size b, drawn as the run draws them, give gradients g_j (one-hot loss) and p_j
(prior-label loss) of the batch-mean losses; F_b = E over batches of the batch loss, grad F_b = E g_j. With the
simple-random design over independent batches (:mod:`tsla.theory.gram_estimators`, infinite population):

    sigma2_corrected      = (1/(m-1)) sum_j ||g_j - Gbar||^2        sigma_b^2, the batch-gradient variance (unbiased)
    grad_norm2_corrected  = ||Gbar||^2 - sigma_b^2 / m               ||grad F_b||^2 (unbiased)
    bias2_corrected, lsr_cosine, one_step_* ...                       as in tsla.theory.gradient_noise, per batch of b

(one_step_* with sgd_batch 1: the unit already is the run's batch). No per-example gradients are needed: the cost
is 2m backward passes. BatchNorm's running statistics are left untouched (the forward pass runs on copies of the
buffers), and no global random state is consumed.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from .gradient_noise import estimates, gram


def batch_gradients(
    model: nn.Module, images: torch.Tensor, targets: torch.Tensor, prior: torch.Tensor | None
) -> torch.Tensor:
    """(2, P): the gradients of the batch-mean one-hot loss and of the batch-mean prior-label loss, with the model
    in whatever mode it is in, on copies of its buffers (running statistics unchanged)."""
    names = [k for k, v in model.named_parameters() if v.requires_grad]
    params = dict(model.named_parameters())
    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    logits = functional_call(model, (params, buffers), (images,))
    log_probs = F.log_softmax(logits if logits.dtype == torch.float64 else logits.float(), dim=1)
    weights = (torch.full_like(log_probs[0], 1.0 / log_probs.shape[1]) if prior is None else prior.to(log_probs))
    onehot = F.nll_loss(log_probs, targets)
    smooth = -(log_probs * weights).sum(1).mean()
    wrt = [params[k] for k in names]
    gy = torch.autograd.grad(onehot, wrt, retain_graph=True)
    gp = torch.autograd.grad(smooth, wrt)
    flat = lambda gs: torch.cat([g.reshape(-1) for g in gs])  # noqa: E731
    return torch.stack([flat(gy), flat(gp)]).detach()


def minibatch_gradient_noise(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    prior: torch.Tensor | None = None,
    theta: float | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """The module docstring's quantities from ``batches`` (independent draws of (images, class indices), already
    augmented and on the model's device), with the model in train mode, restored to its mode afterwards.

    Raises ``ValueError`` for fewer than 2 batches or a theta outside [0, 1].
    """
    if theta is not None and not (0.0 <= theta <= 1.0):
        raise ValueError(f"theta={theta} is outside [0, 1]")
    start = time.perf_counter()
    was_training = model.training
    model.train()
    units, sizes = [], []
    try:
        for images, targets in batches:
            units.append(batch_gradients(model, images, targets, prior).cpu())
            sizes.append(int(targets.shape[0]))
    finally:
        model.train(was_training)
    if len(units) < 2:
        raise ValueError(f"the train-mode estimator needs >= 2 mini-batches (got {len(units)})")
    out = estimates(gram(torch.stack(units)), None, None, theta, 1, bootstrap, seed)
    out.update({"batches": len(units), "batch_size": max(sizes), "seconds": time.perf_counter() - start})
    return out
