"""Parity with torch.nn.functional.cross_entropy(..., label_smoothing=theta), values and gradients, float64.

The matrix: index or probability targets x class weights x ignore_index x reduction x shape ((N, K), K-dimensional
(N, K, d1, d2), unbatched (K,)) x theta in {0, 0.1, 1}, through every entry point: the function, the parts combined,
the module, and the function with a custom prior equal to the uniform one (the non-fused path).
"""

import pytest
import torch
import torch.nn.functional as F

from tsla import LabelSmoothingCrossEntropy, label_smoothing_cross_entropy, label_smoothing_cross_entropy_parts
from tsla.losses.cross_entropy import combine, uniform_prior

K = 5
SHAPES = {"(N, K)": (6, K), "(N, K, d1, d2)": (3, K, 2, 4), "(K,)": (K,)}
WEIGHT = torch.tensor([0.5, 2.0, 1.0, 3.0, 0.25], dtype=torch.float64)


def _inputs(shape, kind, ignore_index, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(SHAPES[shape], generator=g, dtype=torch.float64)
    if kind == "probabilities":
        return logits, torch.softmax(torch.randn(logits.shape, generator=g, dtype=torch.float64), dim=0 if shape == "(K,)" else 1)
    if shape == "(K,)":
        return logits, torch.tensor(3)
    index_shape = logits.shape[:1] + logits.shape[2:]
    target = torch.arange(torch.Size(index_shape).numel()).remainder(K).reshape(index_shape)  # every class occurs
    target = target[torch.randperm(target.shape[0], generator=g)]
    if ignore_index == -100:
        target.view(-1)[::4] = -100  # every fourth position ignored (class ignore_index=2 occurs on its own)
    return logits, target


def _entry_points(ignore_index, weight, reduction):
    kw = {"weight": weight, "ignore_index": ignore_index}
    module = LabelSmoothingCrossEntropy(reduction=reduction, **kw)
    tracked = LabelSmoothingCrossEntropy(reduction=reduction, track_onehot=True, **kw)
    prior_module = LabelSmoothingCrossEntropy(uniform_prior(K), reduction, **kw)
    return {
        "function": lambda x, t, th: label_smoothing_cross_entropy(x, t, th, reduction=reduction, **kw),
        "parts + combine": lambda x, t, th: combine(label_smoothing_cross_entropy_parts(
            x, t, reduction=reduction, **kw), th),
        "module": lambda x, t, th: module(x, t, th),
        "module, tracking the one-hot term": lambda x, t, th: tracked(x, t, th),
        "function, custom prior = uniform": lambda x, t, th: label_smoothing_cross_entropy(
            x, t, th, prior=uniform_prior(K), reduction=reduction, **kw),
        "module, custom prior = uniform": lambda x, t, th: prior_module(x, t, th),
    }


@pytest.mark.parametrize("shape", list(SHAPES))
# torch refuses ignore_index >= 0 with probability targets: see test_refuses_what_torch_refuses...
@pytest.mark.parametrize("kind,ignore_index", [("indices", -100), ("indices", 2), ("probabilities", -100)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_values_and_gradients_equal_torch(shape, kind, ignore_index, weighted, reduction):
    logits, target = _inputs(shape, kind, ignore_index)
    weight = WEIGHT if weighted else None
    for theta in (0.0, 0.1, 1.0):
        ref_x = logits.clone().requires_grad_(True)
        ref = F.cross_entropy(ref_x, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                              label_smoothing=theta)
        ref_grad, = torch.autograd.grad(ref.sum(), ref_x)
        for name, loss_fn in _entry_points(ignore_index, weight, reduction).items():
            x = logits.clone().requires_grad_(True)
            got = loss_fn(x, target, theta)
            assert got.shape == ref.shape, (name, theta)
            torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-6, msg=lambda m: f"{name}, theta={theta}: {m}")
            grad, = torch.autograd.grad(got.sum(), x)
            torch.testing.assert_close(grad, ref_grad, atol=1e-6, rtol=1e-6,
                                       msg=lambda m: f"{name}, theta={theta}, gradient: {m}")


@pytest.mark.parametrize("weighted", [False, True])
def test_a_batch_with_every_position_ignored(weighted):
    """torch: 0 for "sum", NaN for "mean" (0/0); tsla gives the same, with and without a custom prior."""
    logits, _ = _inputs("(N, K)", "indices", -100)
    target = torch.full((6,), -100)
    weight = WEIGHT if weighted else None
    for reduction in ("sum", "mean", "none"):
        ref = F.cross_entropy(logits, target, weight=weight, reduction=reduction, label_smoothing=0.1)
        for name, loss_fn in _entry_points(-100, weight, reduction).items():
            torch.testing.assert_close(loss_fn(logits, target, 0.1), ref, equal_nan=True, msg=name)


def _refused_inputs():
    x = torch.randn(4, K, dtype=torch.float64)
    probs = torch.softmax(x, dim=1)
    return [
        ("ignore_index with probabilities", x, probs, {"ignore_index": 0}, "ignore_index=0"),
        ("weight of the wrong length", x, torch.tensor([0, 1, 2, 3]), {"weight": torch.ones(3, dtype=torch.float64)},
         "weight has"),
        ("2-D weight", x, torch.tensor([0, 1, 2, 3]), {"weight": torch.ones(1, K, dtype=torch.float64)},
         "weight has shape"),
        ("index target of the wrong length", x, torch.tensor([0, 1, 2]), {}, "target has shape"),
        ("K-dim target of the wrong shape", torch.randn(2, K, 3, dtype=torch.float64), torch.zeros(2, 4).long(), {},
         "target has shape"),
        ("float class indices", x, torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64), {}, "integer tensor"),
        ("integer probabilities", x, torch.zeros(4, K, dtype=torch.long), {}, "must be floating point"),
        ("0-d logits", torch.tensor(1.0, dtype=torch.float64), torch.tensor(0), {}, "logits have shape"),
        ("integer logits", torch.zeros(4, K, dtype=torch.long), torch.tensor([0, 1, 2, 3]), {}, "floating point"),
        ("class out of range", x, torch.tensor([0, 1, K, 3]), {}, f"class {K}"),
        ("negative class", x, torch.tensor([0, -1, 2, 3]), {}, "class -1"),
        ("ignore_index not an integer", x, torch.tensor([0, 1, 2, 3]), {"ignore_index": 1.5}, "ignore_index=1.5"),
    ]


@pytest.mark.parametrize("case", _refused_inputs(), ids=lambda c: c[0])
def test_refuses_what_torch_refuses_with_one_clear_value_error(case):
    _, logits, target, kwargs, message = case
    with pytest.raises(Exception):
        F.cross_entropy(logits, target, label_smoothing=0.1, **kwargs)
    calls = [lambda: label_smoothing_cross_entropy(logits, target, 0.1, **kwargs),
             lambda: label_smoothing_cross_entropy(logits, target, 0.1, prior=uniform_prior(K), **kwargs),
             lambda: label_smoothing_cross_entropy_parts(logits, target, **kwargs),
             lambda: LabelSmoothingCrossEntropy(**kwargs)(logits, target, 0.1)]
    for call in calls:
        with pytest.raises(ValueError, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("theta", [0.0, 0.3, 1.0])
def test_custom_prior_with_weight_and_ignore_index_against_the_smoothed_label_built_by_hand(reduction, theta):
    """K-dimensional index targets, a non-uniform prior, class weights and ignored positions: the loss is torch's
    cross-entropy against y_LS = (1 - theta) onehot + theta prior, built by hand as probabilities, with the ignored
    positions dropped and the mean divided by the kept positions' class weights (torch's index-target mean)."""
    logits, target = _inputs("(N, K, d1, d2)", "indices", -100, seed=3)
    prior = torch.tensor([0.05, 0.4, 0.15, 0.3, 0.1], dtype=torch.float64)
    keep = target != -100
    safe = target.masked_fill(~keep, 0)
    y_ls = (1 - theta) * F.one_hot(safe, K).movedim(-1, 1).double() + theta * prior.view(1, K, 1, 1)
    per_position = F.cross_entropy(logits, y_ls, weight=WEIGHT, reduction="none") * keep
    expected = {"none": per_position, "sum": per_position.sum(),
                "mean": per_position.sum() / WEIGHT[safe][keep].sum()}[reduction]
    for loss_fn in (lambda x: label_smoothing_cross_entropy(x, target, theta, prior, reduction, weight=WEIGHT),
                    lambda x: LabelSmoothingCrossEntropy(prior, reduction, weight=WEIGHT)(x, target, theta)):
        torch.testing.assert_close(loss_fn(logits), expected, atol=1e-12, rtol=1e-12)
