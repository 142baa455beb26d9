"""LabelSmoothingCrossEntropy as a two-argument criterion: where theta comes from, and the tracked one-hot term,
each checked against torch's own F.cross_entropy."""

import pytest
import torch
import torch.nn.functional as F

from tsla import LabelSmoothingCrossEntropy


class _Scheduler:
    """Stands for any object with get_last_theta() (tsla.SmoothingScheduler in practice)."""

    def __init__(self, thetas):
        self.thetas, self.epoch = list(thetas), 0

    def get_last_theta(self):
        return self.thetas[self.epoch]

    def step(self):
        self.epoch += 1


def _batch(seed, n=6, k=5, dims=()):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn((n, k) + dims, generator=g, dtype=torch.float64)
    target = torch.randint(0, k, (n,) + dims, generator=g)
    return logits, target


def test_settable_theta_is_read_at_every_call():
    logits, target = _batch(0)
    criterion = LabelSmoothingCrossEntropy(theta=0.2)
    torch.testing.assert_close(criterion(logits, target), F.cross_entropy(logits, target, label_smoothing=0.2))
    criterion.theta = 0.0  # the TSLA switch: the next call is plain cross-entropy, no stale derived value
    torch.testing.assert_close(criterion(logits, target), F.cross_entropy(logits, target))
    criterion.theta = 0.7
    torch.testing.assert_close(criterion(logits, target), F.cross_entropy(logits, target, label_smoothing=0.7))


@pytest.mark.parametrize("prior", [None, torch.full((5,), 0.2, dtype=torch.float64)])
def test_scheduler_is_read_at_call_time_and_explicit_theta_wins(prior):
    logits, target = _batch(1)
    scheduler = _Scheduler([0.3, 0.3, 0.0])
    criterion = LabelSmoothingCrossEntropy(prior, theta=0.9, scheduler=scheduler)  # the scheduler beats .theta
    for _ in range(3):
        expected = F.cross_entropy(logits, target, label_smoothing=scheduler.get_last_theta())
        torch.testing.assert_close(criterion(logits, target), expected)
        scheduler.step()
    scheduler.epoch = 0
    torch.testing.assert_close(criterion(logits, target, theta=0.05),
                               F.cross_entropy(logits, target, label_smoothing=0.05))
    torch.testing.assert_close(criterion(logits, target, 0.0), F.cross_entropy(logits, target))


def test_missing_or_bad_theta_is_one_clear_error():
    logits, target = _batch(2)
    with pytest.raises(ValueError, match="no theta for this loss"):
        LabelSmoothingCrossEntropy()(logits, target)
    criterion = LabelSmoothingCrossEntropy(theta=0.1)
    criterion.theta = 1.5
    with pytest.raises(ValueError, match=r"theta=1.5 is outside \[0, 1\]"):
        criterion(logits, target)
    with pytest.raises(ValueError, match="theta=-0.5"):
        LabelSmoothingCrossEntropy(scheduler=_Scheduler([-0.5]))(logits, target)
    with pytest.raises(ValueError, match="get_last_theta"):
        LabelSmoothingCrossEntropy(scheduler=object())


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("prior", [None, torch.tensor([0.1, 0.2, 0.3, 0.15, 0.25], dtype=torch.float64)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_tracked_onehot_mean_equals_torch_over_the_whole_epoch(weighted, prior, reduction):
    """Three batches (token-shaped, with ignored positions): the popped mean is torch's unsmoothed loss over all of
    them at once, and the per-call loss and gradient are torch's smoothed loss (uniform prior) meanwhile."""
    weight = torch.tensor([1.0, 2.0, 0.5, 1.5, 3.0], dtype=torch.float64) if weighted else None
    criterion = LabelSmoothingCrossEntropy(prior, reduction, weight=weight, theta=0.1, track_onehot=True)
    batches = []
    for seed in range(3):
        logits, target = _batch(10 + seed, n=4, dims=(3,))
        target[0, seed] = -100
        batches.append((logits, target))
        a = logits.clone().requires_grad_(True)
        loss = criterion(a, target)
        if prior is None:
            b = logits.clone().requires_grad_(True)
            ref = F.cross_entropy(b, target, weight=weight, reduction=reduction, label_smoothing=0.1)
            torch.testing.assert_close(loss, ref)
            loss.sum().backward()
            ref.sum().backward()
            torch.testing.assert_close(a.grad, b.grad)
    with torch.no_grad():  # evaluation calls are not counted
        criterion(*_batch(99, n=4, dims=(3,)))
    logits = torch.cat([b[0] for b in batches])
    target = torch.cat([b[1] for b in batches])
    expected = F.cross_entropy(logits, target, weight=weight).item()
    assert abs(criterion.pop_onehot_mean() - expected) < 1e-12
    with pytest.raises(ValueError, match="no one-hot loss to report"):
        criterion.pop_onehot_mean()  # popped: the sums were reset


def test_tracked_onehot_with_probability_targets_and_via_parts():
    criterion = LabelSmoothingCrossEntropy(theta=0.4, track_onehot=True)
    logits_all, probs_all = [], []
    for seed in range(2):
        logits, _ = _batch(20 + seed)
        probs = torch.softmax(torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)), 1)
        criterion.parts(logits, probs)  # the engine's path counts too
        logits_all.append(logits)
        probs_all.append(probs)
    expected = F.cross_entropy(torch.cat(logits_all), torch.cat(probs_all)).item()
    assert abs(criterion.pop_onehot_mean() - expected) < 1e-12
    assert criterion.pop_onehot_sums().tolist() == [0.0, 0.0]


def test_untracked_loss_refuses_to_report_onehot():
    with pytest.raises(ValueError, match="track_onehot=True"):
        LabelSmoothingCrossEntropy(theta=0.1).pop_onehot_mean()
