"""The train-mode estimator against plain autograd on a deep copy of the model, batch by batch, and against the
formulas of its docstring computed by hand in numpy; BatchNorm's running statistics must not move."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tsla.theory.minibatch_noise import minibatch_gradient_noise


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))


def test_against_autograd_and_the_formulas():
    model = _model()
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(5, 1, 8, 8, generator=g), torch.randint(0, 3, (5,), generator=g)) for _ in range(4)]
    before = copy.deepcopy(model.state_dict())
    model.eval()
    got = minibatch_gradient_noise(model, batches, theta=0.2)
    assert not model.training  # mode restored
    for k, v in model.state_dict().items():  # running statistics untouched
        assert torch.equal(v, before[k]), k

    rows = []
    for x, y in batches:  # reference: a fresh copy in train mode, two plain backward passes
        pair = []
        for kind in ("onehot", "prior"):
            ref = copy.deepcopy(model).train()
            logp = F.log_softmax(ref(x), 1)
            loss = F.nll_loss(logp, y) if kind == "onehot" else -logp.mean(1).mean()
            loss.backward()
            pair.append(torch.cat([p.grad.flatten() for p in ref.parameters()]).double().numpy())
        rows.append(pair)
    gy, gp = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    m = len(batches)
    G = gy.mean(0)
    s2 = ((gy - G) ** 2).sum(1).sum() / (m - 1)
    d = gp - gy
    s2d = ((d - d.mean(0)) ** 2).sum(1).sum() / (m - 1)
    assert got["batches"] == 4 and got["batch_size"] == 5
    assert got["sigma2_corrected"] == pytest.approx(s2, rel=1e-4)
    assert got["grad_norm2_corrected"] == pytest.approx(G @ G - s2 / m, rel=1e-4, abs=1e-6)
    assert got["bias2_corrected"] == pytest.approx(d.mean(0) @ d.mean(0) - s2d / m, rel=1e-4, abs=1e-6)
    # E h = grad F + theta b, so <grad F, E h> = ||grad F||^2 + theta <grad F, b>, each term corrected
    h = 0.8 * gy + 0.2 * gp
    cross = (G @ h.mean(0)) - ((gy - G) * (h - h.mean(0))).sum() / (m - 1) / m
    norm_h = h.mean(0) @ h.mean(0) - ((h - h.mean(0)) ** 2).sum() / (m - 1) / m
    if got["lsr_cosine"] is not None:
        assert got["lsr_cosine"] == pytest.approx(cross / np.sqrt(got["grad_norm2_corrected"] * norm_h), rel=1e-3)


def test_needs_two_batches():
    with pytest.raises(ValueError, match=">= 2 mini-batches"):
        minibatch_gradient_noise(_model(), [(torch.randn(3, 1, 8, 8), torch.zeros(3, dtype=torch.long))])
