"""The gradient-noise estimator against the closed form (linear softmax), against plain autograd one example at a
time (a small ResNet with BatchNorm), and, by Monte Carlo over many draws from a population whose quantities are
computed exactly, for unbiasedness under the sampling design it is told."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tsla.theory.gradient_noise import gradient_noise, per_example_gradients
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
    got = gradient_noise(model, x, y, theta=0.1, stratified=False, batch_size=3)
    assert model.training
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-4), key


def test_bad_input():
    model = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match="theta"):
        gradient_noise(model, torch.randn(4, 3), torch.zeros(4, dtype=torch.long), theta=2.0)
    with pytest.raises(ValueError, match="at least one"):
        gradient_noise(model, torch.randn(0, 3), torch.zeros(0, dtype=torch.long))


# --- unbiasedness: a linear softmax population whose true quantities are computed exactly ---------------------------

N_PER_CLASS, K_CLASSES, DIM = 60, 4, 5


def _population():
    """240 examples in 4 well-separated classes (the between-class spread of the gradients is large, which is what
    makes v1's correction over-subtract), a fixed linear model, and the exact per-example gradients."""
    g = torch.Generator().manual_seed(1)
    means = 3.0 * torch.randn(K_CLASSES, DIM, generator=g, dtype=torch.float64)
    y = torch.arange(K_CLASSES).repeat_interleave(N_PER_CLASS)
    x = means[y] + torch.randn(len(y), DIM, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(DIM, K_CLASSES).double()
    with torch.no_grad():
        model.weight.copy_(0.3 * torch.randn(K_CLASSES, DIM, generator=g, dtype=torch.float64))
        model.bias.zero_()
    p = torch.softmax(model(x), 1).detach()

    def grads(q):  # CE against label q: dW = (p - q) x^T, db = p - q
        r = p - q
        return torch.cat([(r[:, :, None] * x[:, None, :]).reshape(len(y), -1), r], 1)

    gy = grads(torch.eye(K_CLASSES, dtype=torch.float64)[y])
    gp = grads(torch.full((len(y), K_CLASSES), 1.0 / K_CLASSES, dtype=torch.float64))
    mu_y, mu_p = gy.mean(0), gp.mean(0)
    truth = {
        "grad_norm2_corrected": float(mu_y @ mu_y),
        "sigma2_corrected": float(((gy - mu_y) ** 2).sum(1).mean()),
        "delta_sigma2_corrected": float(((gp - mu_y) ** 2).sum(1).mean()),
        "bias2_corrected": float((mu_p - mu_y) @ (mu_p - mu_y)),
    }
    return model, x, y, truth


def _monte_carlo(stratified, draws=200, per_class=4):
    model, x, y, truth = _population()
    g = torch.Generator().manual_seed(2)
    rows = []
    for _ in range(draws):
        if stratified:  # per_class examples of each class, without replacement
            idx = torch.cat([c * N_PER_CLASS + torch.randperm(N_PER_CLASS, generator=g)[:per_class]
                             for c in range(K_CLASSES)])
            population = [N_PER_CLASS] * K_CLASSES
        else:
            idx = torch.randperm(len(y), generator=g)[: per_class * K_CLASSES]
            population = len(y)
        d = gradient_noise(model, x[idx], y[idx], stratified=stratified, population=population, batch_size=64)
        d["v1_grad_norm2_unbiased"] = d["grad_norm2"] - d["sigma2"] / (d["n"] - 1)
        rows.append(d)
    return rows, truth


def _mean_and_se(rows, key):
    v = np.array([r[key] for r in rows])
    return v.mean(), v.std(ddof=1) / np.sqrt(len(v))


@pytest.fixture(scope="module")
def stratified_draws():
    return _monte_carlo(True)


@pytest.mark.parametrize("stratified", [True, False])
def test_corrected_estimates_are_unbiased_under_their_design(stratified, stratified_draws):
    rows, truth = stratified_draws if stratified else _monte_carlo(False)
    for key, value in truth.items():
        mean, se = _mean_and_se(rows, key)
        assert abs(mean - value) < 4 * se, (key, mean, value, se)


def test_v1_correction_is_biased_on_stratified_draws(stratified_draws):
    """The check that would have caught v1: ||G||^2 - sigma^2/(n-1) over-subtracts on a class-balanced draw."""
    rows, truth = stratified_draws
    mean, se = _mean_and_se(rows, "v1_grad_norm2_unbiased")
    assert mean < truth["grad_norm2_corrected"] - 10 * se, (mean, truth["grad_norm2_corrected"], se)


def test_count_sketch_keeps_the_estimates_unbiased():
    """When the gradients do not fit max_bytes they are count-sketched: over sketch seeds the corrected estimates
    average to the exact ones (inner products are unbiased under the sketch, and the estimates are linear in them)."""
    model, x, y, _ = _population()
    idx = torch.cat([c * N_PER_CLASS + torch.arange(6) for c in range(K_CLASSES)])
    kw = dict(stratified=True, population=[N_PER_CLASS] * K_CLASSES, theta=0.2)
    exact = gradient_noise(model, x[idx], y[idx], **kw)
    assert exact["sketch_dim"] is None
    rows = [gradient_noise(model, x[idx], y[idx], max_bytes=24 * 2 * 8 * 8, seed=s, **kw) for s in range(150)]
    assert rows[0]["sketch_dim"] == 8 < exact["num_params"]
    for key in ("grad_norm2_corrected", "bias2_corrected", "sigma2_corrected"):
        mean, se = _mean_and_se(rows, key)
        assert abs(mean - exact[key]) < 4 * se, (key, mean, exact[key], se)


def test_bootstrap_intervals_bracket_the_estimate_and_the_truth():
    """One stratified draw of 8 per class: each interval holds its own estimate (the shift to the bootstrap world's
    truth; unshifted, the resampled corrected estimates centre s^2/n higher) and here the exact population value."""
    model, x, y, truth = _population()
    idx = torch.cat([c * N_PER_CLASS + torch.arange(8) for c in range(K_CLASSES)])
    d = gradient_noise(model, x[idx], y[idx], theta=0.2, population=[N_PER_CLASS] * K_CLASSES, bootstrap=100)
    for key in ("grad_norm2_corrected", "sigma2_corrected", "bias2_corrected"):
        assert d[f"{key}_lo"] <= d[key] <= d[f"{key}_hi"], key
        assert d[f"{key}_lo"] <= truth[key] <= d[f"{key}_hi"], key
