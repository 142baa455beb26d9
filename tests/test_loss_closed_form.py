"""The fast paths of the loss (tsla.losses.closed_form) against independent computations: torch's
F.cross_entropy(label_smoothing=theta) for the uniform prior, torch's cross-entropy with probability targets built
by hand as (1 - theta) * onehot + theta * prior for a custom one. Both paths: logits of LARGE entries or more take
the autograd functions, smaller ones torch's own kernels (the smoothed loss) or the general path (the two terms).
The grid moves the threshold to reach either path with tiny logits; the other tests use real sizes on both sides."""

import pytest
import torch
import torch.nn.functional as F

from tsla import LabelSmoothingCrossEntropy, label_smoothing_cross_entropy, label_smoothing_cross_entropy_parts
from tsla.losses import closed_form
from tsla.losses.cross_entropy import combine

SIZES = {"large": (closed_form.LARGE // 64 + 3, 64), "small": (9, 7)}


@pytest.fixture(params=["autograd functions", "torch kernels"])
def path(request, monkeypatch):
    """Tiny logits through either fast path."""
    monkeypatch.setattr(closed_form, "LARGE", 0 if request.param == "autograd functions" else 1 << 30)
    return "small"


def _inputs(size, ignored, seed=0):
    g = torch.Generator().manual_seed(seed)
    n, k = SIZES[size]
    logits = 4 * torch.randn(n, k, generator=g, dtype=torch.float64)
    target = torch.randint(0, k, (n,), generator=g)
    if ignored == "-100":
        target[::5] = -100
    prior = torch.rand(k, generator=g, dtype=torch.float64) + 0.1
    return logits, target, prior / prior.sum()


def _by_hand(logits, target, theta, prior, ignore_index, reduction):
    """-sum_c y_LS,c log p_c with y_LS built explicitly, torch's probability-target cross-entropy; ignored rows
    dropped, the mean over the kept ones."""
    keep = target != ignore_index
    onehot = F.one_hot(target.clamp(min=0), logits.shape[1]).double()
    y = (1 - theta) * onehot + theta * prior
    each = F.cross_entropy(logits, y, reduction="none") * keep
    return {"none": each, "sum": each.sum(), "mean": each.sum() / keep.sum()}[reduction]


@pytest.mark.parametrize("ignored,ignore_index", [("none", -100), ("-100", -100), ("class 2", 2)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("prior_kind", ["uniform", "custom"])
def test_values_and_gradients_against_independent_computations(path, ignored, ignore_index, reduction, prior_kind):
    logits, target, prior = _inputs(path, ignored)
    module = LabelSmoothingCrossEntropy(None if prior_kind == "uniform" else prior, reduction,
                                        ignore_index=ignore_index, allow_negative=True)
    for theta in (0.0, 0.3, 1.0, -0.2):  # -0.2: negative smoothing (opt-in), which torch's kernel would ignore
        x = logits.clone().requires_grad_()
        if prior_kind == "uniform" and theta < 0:
            k = logits.shape[1]
            ref = _by_hand(x, target, theta, torch.full((k,), 1.0 / k, dtype=torch.float64), ignore_index, reduction)
        elif prior_kind == "uniform":
            ref = F.cross_entropy(x, target, ignore_index=ignore_index, reduction=reduction, label_smoothing=theta)
        else:
            ref = _by_hand(x, target, theta, prior, ignore_index, reduction)
        ref_grad, = torch.autograd.grad(ref.sum(), x)
        q = None if prior_kind == "uniform" else prior
        paths = {
            "function": lambda z: label_smoothing_cross_entropy(z, target, theta, q, reduction,
                                                                ignore_index=ignore_index, allow_negative=True),
            "parts + combine": lambda z: combine(label_smoothing_cross_entropy_parts(
                z, target, q, reduction, ignore_index=ignore_index), theta, allow_negative=True),
            "module": lambda z: module(z, target, theta),
        }
        for name, fn in paths.items():
            z = logits.clone().requires_grad_()
            got = fn(z)
            grad, = torch.autograd.grad(got.sum(), z)
            torch.testing.assert_close(got, ref, atol=1e-10, rtol=1e-10, msg=lambda m: f"{name}, {theta}: {m}")
            torch.testing.assert_close(grad, ref_grad, atol=1e-12, rtol=1e-10, msg=lambda m: f"{name}, {theta}: {m}")


def test_each_part_is_its_own_cross_entropy(path):
    logits, target, prior = _inputs(path, "-100", seed=1)
    x = logits.clone().requires_grad_()
    parts = label_smoothing_cross_entropy_parts(x, target, prior)
    (parts.onehot + 2 * parts.prior).backward()
    z = logits.clone().requires_grad_()
    onehot = F.cross_entropy(z, target)
    prior_term = _by_hand(z, target, 1.0, prior, -100, "mean")
    (onehot + 2 * prior_term).backward()
    torch.testing.assert_close(parts.onehot, onehot)
    torch.testing.assert_close(parts.prior, prior_term)
    torch.testing.assert_close(x.grad, z.grad)


@pytest.mark.parametrize("size", list(SIZES))
def test_float32_logits_stay_float32_and_match_torch(size):
    logits, target, _ = _inputs(size, "none", seed=2)
    x = logits.float().requires_grad_()
    got = label_smoothing_cross_entropy(x, target, 0.1)
    got.backward()
    assert got.dtype == torch.float32 and x.grad.dtype == torch.float32
    z = logits.float().requires_grad_()
    ref = F.cross_entropy(z, target, label_smoothing=0.1)
    ref.backward()
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x.grad, z.grad, atol=1e-7, rtol=1e-4)


@pytest.mark.parametrize("size", list(SIZES))
def test_huge_logit_gaps_stay_finite(size):
    # a very confident wrong prediction: softmax(z)_y underflows to 0 in float32, the loss must not become inf
    logits, target, _ = _inputs(size, "none", seed=3)
    x = logits.float()
    x[torch.arange(x.shape[0]), (target + 1) % x.shape[1]] = 200.0
    got = label_smoothing_cross_entropy(x, target, 0.1)
    torch.testing.assert_close(got, F.cross_entropy(x.double(), target, label_smoothing=0.1).float())


def test_tracked_one_hot_term_skips_a_batch_with_every_position_ignored(path):
    logits, target, prior = _inputs(path, "none", seed=4)
    criterion = LabelSmoothingCrossEntropy(prior, theta=0.2, track_onehot=True)
    criterion(logits, target)
    criterion(logits, torch.full_like(target, -100))  # NaN mean, adds nothing to the sums
    assert criterion.pop_onehot_mean() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-12)


@pytest.mark.parametrize("bad", [-1, 7, 1000])
def test_a_class_outside_the_range_is_one_value_error(path, bad):
    logits, target, prior = _inputs(path, "none", seed=5)
    target[3] = bad
    for q in (None, prior):
        with pytest.raises(ValueError, match=f"target contains class {bad}, outside"):
            label_smoothing_cross_entropy(logits, target, 0.1, q)


def test_second_derivatives_are_refused_by_torch_on_the_large_path(monkeypatch):
    # documented limitation of the hand-written backward (docs/performance.md)
    monkeypatch.setattr(closed_form, "LARGE", 0)
    logits, target, _ = _inputs("small", "none")
    x = logits.clone().requires_grad_()
    grad, = torch.autograd.grad(label_smoothing_cross_entropy(x, target, 0.1), x, create_graph=True)
    with pytest.raises(RuntimeError):
        grad.sum().backward()
