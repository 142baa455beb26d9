"""Negative label smoothing (opt-in): the loss against a float64 hand formula, values and gradients."""

import pytest
import torch

import tsla
from tsla import LabelSmoothingCrossEntropy, label_smoothing_cross_entropy


def hand_loss(logits, target, theta, prior=None, weight=None, ignore_index=-100, reduction="mean"):
    """-sum_c w_c y_c log p_c with y = (1 - theta) onehot + theta prior, written out in float64."""
    n, k = logits.shape
    log_p = logits.double() - logits.double().exp().sum(dim=1, keepdim=True).log()
    prior = torch.full((k,), 1.0 / k, dtype=torch.float64) if prior is None else prior.double()
    w = torch.ones(k, dtype=torch.float64) if weight is None else weight.double()
    keep = target != ignore_index
    onehot = torch.zeros(n, k, dtype=torch.float64)
    onehot[keep, target[keep]] = 1.0
    y = (1 - theta) * onehot + theta * prior
    each = -(w * y * log_p).sum(dim=1) * keep
    if reduction == "none":
        return each
    if reduction == "sum":
        return each.sum()
    return each.sum() / (w[target.clamp(min=0)] * keep).sum()


@pytest.mark.parametrize("theta", [-0.2, -1.0, -0.05])
@pytest.mark.parametrize("custom_prior", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_negative_theta_matches_the_hand_formula_values_and_gradients(theta, custom_prior, weighted, reduction):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(9, 5, generator=g, dtype=torch.float64)
    target = torch.randint(0, 5, (9,), generator=g)
    target[2] = -100  # ignored
    prior = torch.tensor([0.1, 0.4, 0.2, 0.2, 0.1], dtype=torch.float64) if custom_prior else None
    weight = torch.tensor([1.0, 2.0, 0.5, 1.5, 3.0], dtype=torch.float64) if weighted else None
    z1 = logits.clone().requires_grad_()
    z2 = logits.clone().requires_grad_()
    got = label_smoothing_cross_entropy(z1, target, theta, prior, reduction, weight=weight, allow_negative=True)
    want = hand_loss(z2, target, theta, prior, weight, reduction=reduction)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    got.sum().backward()
    want.sum().backward()
    torch.testing.assert_close(z1.grad, z2.grad, rtol=1e-12, atol=1e-12)


def test_negative_theta_puts_more_than_one_on_the_true_class():
    # one position: the loss is -(1 - theta + theta/K) log p_y - (theta/K) sum_{c != y} log p_c
    z = torch.tensor([[2.0, 0.0, -1.0]], dtype=torch.float64)
    log_p = torch.log_softmax(z, dim=1)[0]
    theta = -0.3
    want = -(1.3 - 0.1) * log_p[0] + 0.1 * (log_p[1] + log_p[2])
    got = label_smoothing_cross_entropy(z, torch.tensor([0]), theta, allow_negative=True)
    assert abs(float(got) - float(want)) < 1e-12
    # torch's fused path would have ignored the sign: the result differs from plain cross-entropy
    assert abs(float(got) - float(torch.nn.functional.cross_entropy(z, torch.tensor([0])))) > 1e-3


def test_the_criterion_accepts_negative_theta_from_each_source():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 4, generator=g, dtype=torch.float64)
    target = torch.randint(0, 4, (6,), generator=g)
    want = hand_loss(logits, target, -0.25)
    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.4, 1, after=-0.25))
    scheduler.step()  # epoch 1: after the switch
    for criterion, kwargs in [(LabelSmoothingCrossEntropy(allow_negative=True), {"theta": -0.25}),
                              (LabelSmoothingCrossEntropy(theta=-0.25, allow_negative=True), {}),
                              (LabelSmoothingCrossEntropy(scheduler=scheduler, allow_negative=True), {}),
                              (LabelSmoothingCrossEntropy(scheduler=scheduler, allow_negative=True,
                                                          track_onehot=True), {})]:
        torch.testing.assert_close(criterion(logits, target, **kwargs), want, rtol=1e-12, atol=1e-12)


def test_negative_theta_is_refused_without_the_flag_and_below_minus_one_always():
    z, t = torch.randn(3, 4), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="allow_negative=True"):
        label_smoothing_cross_entropy(z, t, -0.1)
    with pytest.raises(ValueError, match="allow_negative=True"):
        LabelSmoothingCrossEntropy(theta=-0.1)
    with pytest.raises(ValueError, match="allow_negative=True"):
        LabelSmoothingCrossEntropy(scheduler=tsla.SmoothingScheduler(tsla.schedules.constant(-0.1)))(z, t)
    with pytest.raises(ValueError, match=r"outside \[-1, 1\]"):
        label_smoothing_cross_entropy(z, t, -1.5, allow_negative=True)
    with pytest.raises(ValueError, match=r"outside \[-1, 1\]"):
        LabelSmoothingCrossEntropy(allow_negative=True)(z, t, theta=-1.01)
