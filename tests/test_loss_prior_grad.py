"""The gradient with respect to a prior flows (issue 20, item 1): gradcheck in float64, and values and gradients
equal to a closed form computed independently of the loss's code."""

import warnings

import pytest
import torch

from tsla import LabelSmoothingCrossEntropy, label_smoothing_cross_entropy

from .test_loss_negative import hand_loss


def closed_form_grads(logits, target, theta, prior, weight, ignore_index=-100):
    """d mean-loss / d logits and d prior, written out: with y = (1 - theta) onehot + theta prior and D the kept
    positions' summed target weights, dL/dz_nc = keep_n ((sum_j w_j y_nj) p_nc - w_c y_nc) / D and
    dL/dprior_c = -theta sum_n keep_n w_c log p_nc / D."""
    n, k = logits.shape
    p = torch.softmax(logits.double(), dim=1)
    log_p = torch.log_softmax(logits.double(), dim=1)
    keep = (target != ignore_index).double()
    onehot = torch.zeros(n, k, dtype=torch.float64)
    kept = target != ignore_index
    onehot[kept, target[kept]] = 1.0
    y = (1 - theta) * onehot + theta * prior.double()
    w = weight.double()
    denominator = (w[target.clamp(min=0)] * keep).sum()
    d_logits = keep[:, None] * ((y * w).sum(dim=1, keepdim=True) * p - w * y) / denominator
    d_prior = -theta * (keep[:, None] * w * log_p).sum(dim=0) / denominator
    return d_logits, d_prior


CASES = [(0.3, False, False), (0.3, True, True), (-0.2, True, True), (1.0, False, True)]


@pytest.mark.parametrize("theta, weighted, ignored", CASES)
def test_gradcheck_with_respect_to_logits_and_prior(theta, weighted, ignored):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 4, (6,), generator=g)
    if ignored:
        target[1] = -100
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64, requires_grad=True)
    weight = torch.tensor([1.0, 0.5, 2.0, 1.5], dtype=torch.float64) if weighted else None

    def loss(z, q):
        return label_smoothing_cross_entropy(z, target, theta, prior=q, weight=weight, allow_negative=theta < 0)

    # eps 1e-7 keeps a perturbed prior summing to 1 within the check's tolerance (1e-6)
    assert torch.autograd.gradcheck(loss, (logits, prior), eps=1e-7, atol=1e-5)


@pytest.mark.parametrize("theta, weighted, ignored", CASES)
def test_values_and_gradients_equal_the_closed_form(theta, weighted, ignored):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 5, (7,), generator=g)
    if ignored:
        target[[0, 4]] = -100
    prior = torch.tensor([0.05, 0.15, 0.2, 0.25, 0.35], dtype=torch.float64, requires_grad=True)
    weight = torch.tensor([1.0, 0.5, 2.0, 1.5, 3.0], dtype=torch.float64) if weighted else torch.ones(5).double()
    kwargs = dict(weight=weight if weighted else None, allow_negative=theta < 0)
    value = label_smoothing_cross_entropy(logits, target, theta, prior=prior, **kwargs)
    torch.testing.assert_close(value, hand_loss(logits.detach(), target, theta, prior.detach(), kwargs["weight"]),
                               rtol=1e-12, atol=1e-12)
    d_logits, d_prior = torch.autograd.grad(value, (logits, prior))
    want_logits, want_prior = closed_form_grads(logits.detach(), target, theta, prior.detach(), weight)
    torch.testing.assert_close(d_logits, want_logits, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(d_prior, want_prior, rtol=1e-10, atol=1e-12)


def test_a_learned_prior_in_the_criterion_receives_its_gradient_without_warnings():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(8, 3, generator=g, dtype=torch.float64)
    target = torch.randint(0, 3, (8,), generator=g)
    prior = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checks read detached values: no warning about converting a grad tensor
        criterion = LabelSmoothingCrossEntropy(prior=prior, theta=0.4)
        criterion(logits, target).backward()
    _, want_prior = closed_form_grads(logits, target, 0.4, prior.detach(), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(prior.grad, want_prior, rtol=1e-10, atol=1e-12)


def test_a_bad_prior_that_requires_grad_gets_the_same_clear_error():
    bad = torch.tensor([0.5, 0.6, 0.1], requires_grad=True)
    with pytest.raises(ValueError, match="prior sums to 1.2, not 1"):
        label_smoothing_cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]), 0.1, prior=bad)
