"""The gradient-noise estimator against the closed form (linear softmax) and against plain autograd, one example at
a time (a small ResNet with BatchNorm)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tsla.diagnostics import gradient_noise, per_example_gradients
from tsla.models import build_model


def _by_definition(gy, gp, theta):
    """The quantities straight from their definitions, two passes, numpy float64."""
    G = gy.mean(0)
    sigma2 = np.mean(np.sum((gy - G) ** 2, axis=1))
    dsig = np.mean(np.sum((gp - G) ** 2, axis=1))
    h = (1 - theta) * gy + theta * gp
    return {
        "grad_norm2": float(G @ G),
        "sigma2": sigma2,
        "delta_sigma2": dsig,
        "delta": dsig / sigma2,
        "theta_star": 1 / (1 + dsig / sigma2),
        "lsr_floor": 2 * dsig / (1 + dsig / sigma2),
        "lsr_variance": np.mean(np.sum((h - G) ** 2, axis=1)),
        "lsr_bound": 2 * (1 - theta) ** 2 * sigma2 + 2 * theta**2 * dsig,
        "lsr_variance_ratio": np.mean(np.sum((h - G) ** 2, axis=1)) / sigma2,
    }


@pytest.mark.parametrize("custom_prior", [False, True])
def test_linear_softmax_closed_form(custom_prior):
    g = torch.Generator().manual_seed(0)
    n, d, k = 37, 6, 4
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=g)
    model = torch.nn.Linear(d, k).double()
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64) if custom_prior else None
    # closed form: for CE against a label q, dW = (p - q) x^T and db = p - q
    W, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    X = x.numpy()
    logits = X @ W.T + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(k)[y.numpy()]
    yhat = np.full(k, 1 / k) if prior is None else prior.numpy()

    def grads(q):
        r = p - q
        return np.concatenate([(r[:, :, None] * X[:, None, :]).reshape(n, -1), r], axis=1)  # weight then bias

    expected = _by_definition(grads(onehot), grads(np.broadcast_to(yhat, (n, k))), 0.3)
    got = gradient_noise(model, x, y, prior=prior, theta=0.3, batch_size=8)
    assert got["n"] == n and got["num_params"] == k * d + k
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_resnet_against_autograd_one_example_at_a_time():
    torch.manual_seed(0)
    model = build_model("resnet8", num_classes=10, in_channels=1)
    model.train()
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        for _ in range(3):
            model(torch.randn(16, 1, 12, 12))
    x = torch.randn(10, 1, 12, 12)
    y = torch.randint(0, 10, (10,))
    model.eval()
    rows = []
    for i in range(10):
        pair = []
        for kind in ("onehot", "prior"):
            model.zero_grad()
            logp = F.log_softmax(model(x[i : i + 1]), dim=1)[0]
            loss = -logp[y[i]] if kind == "onehot" else -logp.mean()
            loss.backward()
            pair.append(torch.cat([q.grad.flatten() for q in model.parameters()]).double())
        rows.append(torch.stack(pair))
    reference = torch.stack(rows)
    model.train()  # gradient_noise must switch to eval itself, and switch back
    per_example = per_example_gradients(model.eval(), x, y, None)
    model.train()
    torch.testing.assert_close(per_example, reference, rtol=1e-4, atol=1e-6)
    expected = _by_definition(reference[:, 0].numpy(), reference[:, 1].numpy(), 0.1)
    got = gradient_noise(model, x, y, theta=0.1, batch_size=3)
    assert model.training
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-4), key


def test_bad_input():
    model = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match="theta"):
        gradient_noise(model, torch.randn(4, 3), torch.zeros(4, dtype=torch.long), theta=2.0)
    with pytest.raises(ValueError, match="at least one"):
        gradient_noise(model, torch.randn(0, 3), torch.zeros(0, dtype=torch.long))
