"""The loss, forward + backward, against torch's F.cross_entropy(label_smoothing=theta)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tsla import LabelSmoothingCrossEntropy, label_smoothing_cross_entropy
from tsla.loss import combine

from .timing import alternate

SHAPES = [(128, 10), (128, 100), (256, 1000)]
THETA = 0.1


def run(repeats: int = 9, inner: int = 200) -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(0)
    for n, k in SHAPES:
        logits = torch.randn(n, k, generator=g, requires_grad=True)
        target = torch.randint(0, k, (n,), generator=g)
        prior = torch.rand(k, generator=g, dtype=torch.float64)
        prior = (prior / prior.sum()).float()

        def torch_loss():
            F.cross_entropy(logits, target, label_smoothing=THETA).backward()

        def ours_uniform():
            label_smoothing_cross_entropy(logits, target, THETA).backward()

        def ours_prior():
            label_smoothing_cross_entropy(logits, target, THETA, prior=prior).backward()

        uniform_module, prior_module = LabelSmoothingCrossEntropy(), LabelSmoothingCrossEntropy(prior)

        def engine_uniform():  # what the trainer runs: both terms from one log-softmax, then combined
            combine(uniform_module.parts(logits, target), THETA).backward()

        def engine_prior():
            combine(prior_module.parts(logits, target), THETA).backward()

        cases = (("uniform prior", ours_uniform, 1.05), ("custom prior", ours_prior, 1.2),
                 ("engine path (parts + combine), uniform", engine_uniform, 1.05),
                 ("engine path (parts + combine), custom prior", engine_prior, 1.2))
        for name, fn, goal in cases:
            r = alternate(fn, torch_loss, repeats=repeats, inner=inner)
            rows.append({"benchmark": "loss fwd+bwd vs F.cross_entropy(label_smoothing)", "case": f"{name}, ({n}, {k})",
                         "ratio": r["ratio"], "goal": f"<= {goal}", "met": r["ratio"] <= goal,
                         "ours_us": 1e6 * r["candidate_s"], "torch_us": 1e6 * r["reference_s"]})
    return rows
