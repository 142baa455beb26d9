"""The loss against torch's own cross-entropy and hand computations."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from tsla import LabelSmoothingCrossEntropy, label_smoothing_cross_entropy, label_smoothing_cross_entropy_parts


def _data(dtype, n=7, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(n, k, generator=g)).to(dtype)
    target = torch.randint(0, k, (n,), generator=g)
    return logits, target


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 1e-5)])
@pytest.mark.parametrize("theta", [0.0, 0.1, 0.4, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_uniform_prior_matches_torch_values_and_gradients(dtype, tol, theta, reduction):
    logits, target = _data(dtype)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = label_smoothing_cross_entropy(a, target, theta, reduction=reduction)
    ref = F.cross_entropy(b, target, label_smoothing=theta, reduction=reduction)
    torch.testing.assert_close(ours, ref, atol=tol, rtol=tol)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 1e-5)])
@pytest.mark.parametrize("theta", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_engine_path_matches_torch(dtype, tol, theta, reduction):
    """The trainer's path, two terms from one log-softmax then combined, against torch's own loss."""
    logits, target = _data(dtype, n=9, k=7)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = LabelSmoothingCrossEntropy(reduction=reduction)(a, target, theta)
    ref = F.cross_entropy(b, target, label_smoothing=theta, reduction=reduction)
    torch.testing.assert_close(ours, ref, atol=tol, rtol=tol)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=tol, rtol=tol)


@pytest.mark.parametrize("theta", [0.0, 0.3])
def test_probability_targets_match_torch(theta):
    logits, _ = _data(torch.float64)
    target = torch.softmax(torch.randn(7, 5, dtype=torch.float64), dim=1)
    ours = label_smoothing_cross_entropy(logits, target, theta)
    ref = F.cross_entropy(logits, target, label_smoothing=theta)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=1e-6)


def test_custom_prior_against_hand_computation():
    logits = torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64)
    prior = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    theta = 0.2
    z = math.log(math.exp(1.0) + math.exp(2.0) + math.exp(0.5))
    logp = [1.0 - z, 2.0 - z, 0.5 - z]
    label = [0.8 * 1 + 0.2 * 0.5, 0.2 * 0.25, 0.2 * 0.25]  # target class 0
    expected = -sum(y * lp for y, lp in zip(label, logp))
    got = label_smoothing_cross_entropy(logits, torch.tensor([0]), theta, prior=prior)
    assert abs(got.item() - expected) < 1e-12


def test_parts_equal_two_separate_cross_entropies():
    logits, target = _data(torch.float64, n=9, k=4)
    prior = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    parts = label_smoothing_cross_entropy_parts(logits, target, prior)
    torch.testing.assert_close(parts.onehot, F.cross_entropy(logits, target))
    torch.testing.assert_close(parts.prior, F.cross_entropy(logits, prior.expand(9, 4)))
    theta = 0.35
    combined = label_smoothing_cross_entropy(logits, target, theta, prior=prior)
    torch.testing.assert_close(combined, (1 - theta) * parts.onehot + theta * parts.prior)


def test_module_takes_theta_per_call_and_caches_nothing():
    logits, target = _data(torch.float64)
    loss = LabelSmoothingCrossEntropy()
    for theta in (0.4, 0.0, 0.4, 0.1):
        torch.testing.assert_close(loss(logits, target, theta), F.cross_entropy(logits, target, label_smoothing=theta))


def test_bf16_logits_reduce_in_float32():
    logits, target = _data(torch.float32, n=64, k=10)
    low = logits.bfloat16()
    got = label_smoothing_cross_entropy(low, target, 0.1)
    assert got.dtype == torch.float32
    ref = F.cross_entropy(low.float(), target, label_smoothing=0.1)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-6)
    prior = torch.linspace(1, 2, 10)
    prior = prior / prior.sum()
    lin = torch.nn.Linear(10, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = lin(logits)
        assert out.dtype == torch.bfloat16
        inside = label_smoothing_cross_entropy(out, target, 0.3, prior=prior)
        module = LabelSmoothingCrossEntropy(prior)(out, target, 0.3)
    # the same bf16 logits, smoothed label built by hand, cross-entropy in float32 outside autocast
    label = 0.7 * F.one_hot(target, 10).float() + 0.3 * prior
    reference = -(label * torch.log_softmax(out.float(), dim=1)).sum(dim=1).mean()
    for value in (inside, module):
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, reference, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"theta": -0.1}, "theta"),
        ({"theta": 1.5}, "theta"),
        ({"theta": float("nan")}, "theta"),
        ({"theta": 0.1, "prior": torch.tensor([0.5, 0.5])}, "prior"),
        ({"theta": 0.1, "prior": torch.tensor([1.2, -0.2, 0.0, 0.0, 0.0])}, "negative"),
        ({"theta": 0.1, "prior": torch.tensor([0.3, 0.3, 0.3, 0.05, 0.0])}, "sums to"),
    ],
)
def test_bad_theta_and_prior_raise_value_error(kwargs, message):
    logits, target = _data(torch.float32)
    with pytest.raises(ValueError, match=message):
        label_smoothing_cross_entropy(logits, target, **kwargs)


@pytest.mark.parametrize("bad", [-1, 5])
def test_target_outside_class_range(bad):
    logits, target = _data(torch.float32)
    target[2] = bad
    with pytest.raises(ValueError, match=f"class {bad}"):
        label_smoothing_cross_entropy(logits, target, 0.1)


def test_probability_rows_must_sum_to_one():
    logits, _ = _data(torch.float32)
    target = torch.full((7, 5), 0.25)
    with pytest.raises(ValueError, match="sum to 1"):
        label_smoothing_cross_entropy(logits, target, 0.1)


def test_module_rejects_bad_prior_at_construction():
    with pytest.raises(ValueError, match="sums to"):
        LabelSmoothingCrossEntropy(prior=torch.tensor([0.6, 0.6]))


# Regression tests for the four defects of issue 9 (each failed before the fix).
_INTEGER_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32]


def _three_paths(logits, target, theta):
    return {"function": lambda x: label_smoothing_cross_entropy(x, target, theta),
            "custom prior": lambda x: label_smoothing_cross_entropy(x, target, theta, prior=torch.full((5,), 0.2, dtype=torch.float64)),
            "module": lambda x: LabelSmoothingCrossEntropy()(x, target, theta)}


@pytest.mark.parametrize("dtype", _INTEGER_DTYPES)
@pytest.mark.parametrize("all_class_zero", [False, True])
def test_every_integer_target_dtype_gives_the_int64_result(dtype, all_class_zero):
    """uint8 targets gave a wrong loss for theta > 0 and NaN when every label was 0; int8/16/32 raised IndexError."""
    logits, target = _data(torch.float64)
    if all_class_zero:
        target = torch.zeros_like(target)
    for theta in (0.0, 0.1, 0.5):
        x = logits.clone().requires_grad_(True)
        ref = F.cross_entropy(x, target, label_smoothing=theta)  # int64: torch's reference
        ref_grad, = torch.autograd.grad(ref, x)
        for name, loss_fn in _three_paths(logits, target.to(dtype), theta).items():
            got = loss_fn(x)
            assert torch.isfinite(got), name
            torch.testing.assert_close(got, ref.detach(), atol=1e-12, rtol=1e-12, msg=name)
            torch.testing.assert_close(torch.autograd.grad(got, x)[0], ref_grad, atol=1e-12, rtol=1e-12, msg=name)


@pytest.mark.parametrize("dtype,k,row_sum", [(torch.bfloat16, 256, 2.0), (torch.float16, 1000, 1.9),
                                             (torch.bfloat16, 10, 1.1), (torch.float32, 1000, 1.001)])
def test_half_precision_rows_far_from_normalised_are_refused(dtype, k, row_sum):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, k, generator=g)
    target = (torch.softmax(torch.randn(8, k, generator=g), dim=1) * row_sum).to(dtype)
    with pytest.raises(ValueError, match="rows must sum to 1"):
        label_smoothing_cross_entropy(logits, target, 0.1)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_correctly_normalised_low_precision_rows_are_accepted(dtype):
    """Rows normalised in their own dtype (softmax, or divided by their sum) are off by a few rounding steps at most."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(16, 1000, generator=g)
    soft = torch.softmax(torch.randn(16, 1000, generator=g).to(dtype), dim=1)
    raw = torch.rand(16, 1000, generator=g).to(dtype)
    for target in (soft, raw / raw.sum(dim=1, keepdim=True)):
        got = label_smoothing_cross_entropy(logits, target, 0.1)
        torch.testing.assert_close(got, F.cross_entropy(logits, target.float(), label_smoothing=0.1))


def test_checks_do_not_warn_for_a_target_that_requires_grad():
    """A probability target with requires_grad=True printed torch's "Converting a tensor ... to a scalar" warning."""
    logits, _ = _data(torch.float64)
    target = torch.softmax(torch.randn(7, 5, dtype=torch.float64), dim=1).requires_grad_(True)
    prior = torch.full((5,), 0.2, dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        label_smoothing_cross_entropy(logits, target, 0.1)
        label_smoothing_cross_entropy(logits, target, 0.1, prior=prior)
        label_smoothing_cross_entropy_parts(logits, target)
        LabelSmoothingCrossEntropy(prior)(logits, target, 0.1)


def test_device_range_check_refuses_out_of_range_classes_but_not_ignore_index():
    """The range check that runs on GPUs (where kernels cannot raise a clear error), exercised here on CPU."""
    from tsla.losses.checks import check_target

    logits = torch.randn(2, 5, 3)
    target = torch.tensor([[0, 4, -100], [2, 3, 1]], dtype=torch.int32)
    assert check_target(logits, target, -100, range_check=True).dtype == torch.int64
    for bad in (5, -1):
        target[1, 2] = bad
        with pytest.raises(ValueError, match=f"class {bad}, outside"):
            check_target(logits, target, -100, range_check=True)
    target[1, 2] = 7
    with pytest.raises(ValueError, match="class -100, outside"):  # -100 is no longer the ignored index
        check_target(logits, target, 7, range_check=True)
    target[0, 2] = 0
    assert check_target(logits, target, 7, range_check=True).dtype == torch.int64  # 7 is ignore_index: fine


def test_autocast_with_weight_ignore_index_and_k_dim_inputs_stays_float32():
    g = torch.Generator().manual_seed(4)
    low = torch.randn(8, 10, 3, generator=g).bfloat16()
    target = torch.randint(0, 10, (8, 3), generator=g)
    target[::3, 1] = -100
    weight = 0.5 + torch.rand(10, generator=g)
    ref = F.cross_entropy(low.float(), target, weight=weight, label_smoothing=0.2)  # outside autocast, in float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = [label_smoothing_cross_entropy(low, target, 0.2, weight=weight),
               label_smoothing_cross_entropy(low, target, 0.2, prior=torch.full((10,), 0.1), weight=weight),
               LabelSmoothingCrossEntropy(weight=weight, theta=0.2, track_onehot=True)(low, target)]
    for value in got:
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, ref, atol=1e-6, rtol=1e-6)
