"""Binary / multi-label smoothing against torch's own F.binary_cross_entropy_with_logits on targets smoothed by hand,
t * (1 - theta) + theta / 2: values, gradients, weight, pos_weight, every reduction, the scheduler, the tracked
one-hot term and the refusals."""

import pytest
import torch
import torch.nn.functional as F

import tsla
from tsla import BinaryLabelSmoothingCrossEntropy, binary_label_smoothing_cross_entropy
from tsla.integrations.pytorch import end_epoch


def _batch(seed, shape=(6, 4), soft=False):
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(shape, generator=g, dtype=torch.float64)
    target = torch.rand(shape, generator=g, dtype=torch.float64)
    return logits, target if soft else (target > 0.5).double()


def _torch(logits, target, theta, **kw):
    return F.binary_cross_entropy_with_logits(logits, target * (1 - theta) + theta / 2, **kw)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", ["none", "weight", "pos_weight", "both"])
@pytest.mark.parametrize("shape,soft", [((6, 4), False), ((6, 4), True), ((7,), False), ((2, 3, 4), False)])
def test_values_and_gradients_equal_torch_on_smoothed_targets(reduction, weighted, shape, soft):
    logits, target = _batch(1, shape, soft)
    kw = {}
    if weighted in ("weight", "both"):
        kw["weight"] = torch.rand(shape[-1], dtype=torch.float64) + 0.5  # broadcast over the batch, as torch does
    if weighted in ("pos_weight", "both"):
        kw["pos_weight"] = torch.linspace(0.5, 3.0, shape[-1], dtype=torch.float64)
    module = BinaryLabelSmoothingCrossEntropy(reduction=reduction, **kw)
    tracked = BinaryLabelSmoothingCrossEntropy(reduction=reduction, track_onehot=True, **kw)
    for theta in (0.0, 0.1, 1.0):
        x = logits.clone().requires_grad_()
        ref = _torch(x, target, theta, reduction=reduction, **kw)
        ref_grad, = torch.autograd.grad(ref.sum(), x)
        for name, fn in (("function", lambda z: binary_label_smoothing_cross_entropy(z, target, theta,
                                                                                      reduction=reduction, **kw)),
                         ("module", lambda z: module(z, target, theta)),
                         ("module, tracking", lambda z: tracked(z, target, theta))):
            z = logits.clone().requires_grad_()
            got = fn(z)
            grad, = torch.autograd.grad(got.sum(), z)
            torch.testing.assert_close(got, ref, atol=1e-12, rtol=1e-12, msg=lambda m: f"{name}, {theta}: {m}")
            torch.testing.assert_close(grad, ref_grad, atol=1e-12, rtol=1e-12, msg=lambda m: f"{name}, {theta}: {m}")


def test_negative_theta_is_opt_in_and_pushes_targets_away_from_one_half():
    logits, target = _batch(9)
    expected = F.binary_cross_entropy_with_logits(logits, target * 1.2 - 0.1)  # theta = -0.2 by hand
    torch.testing.assert_close(binary_label_smoothing_cross_entropy(logits, target, -0.2, allow_negative=True),
                               expected)
    criterion = BinaryLabelSmoothingCrossEntropy(theta=-0.2, allow_negative=True, track_onehot=True)
    torch.testing.assert_close(criterion(logits, target), expected)


def test_float32_and_bool_targets():
    logits, target = _batch(2)
    x = logits.float()
    got = binary_label_smoothing_cross_entropy(x, target.bool(), 0.2)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, _torch(x, target.float(), 0.2))


def test_parts_split_exactly_into_the_hard_target_and_one_half():
    logits, target = _batch(3, soft=True)
    criterion = BinaryLabelSmoothingCrossEntropy(pos_weight=torch.tensor([1.0, 2.0, 0.5, 4.0]))
    parts = criterion.parts(logits, target)
    pw = criterion.pos_weight.double()
    torch.testing.assert_close(parts.onehot, F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw))
    torch.testing.assert_close(parts.prior, F.binary_cross_entropy_with_logits(
        logits, torch.full_like(logits, 0.5), pos_weight=pw))
    torch.testing.assert_close(tsla.losses.cross_entropy.combine(parts, 0.3), _torch(logits, target, 0.3,
                                                                                     pos_weight=pw))


def test_scheduler_theta_is_read_at_every_call():
    logits, target = _batch(4)
    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.2, 1))
    criterion = BinaryLabelSmoothingCrossEntropy(scheduler=scheduler)
    torch.testing.assert_close(criterion(logits, target), _torch(logits, target, 0.2))
    scheduler.step()  # epoch 1: one-hot targets
    torch.testing.assert_close(criterion(logits, target), F.binary_cross_entropy_with_logits(logits, target))
    criterion.theta = 0.5  # the scheduler comes first
    torch.testing.assert_close(criterion(logits, target), F.binary_cross_entropy_with_logits(logits, target))


def test_tracked_one_hot_term_is_the_mean_over_every_element_of_the_training_calls():
    (a, ta), (b, tb) = _batch(5, (6, 4)), _batch(6, (3, 4))
    criterion = BinaryLabelSmoothingCrossEntropy(theta=0.1, track_onehot=True)
    criterion(a, ta)
    criterion(b, tb)
    with torch.no_grad():  # evaluation: not counted
        criterion(10 * a, 1 - ta)
    expected = F.binary_cross_entropy_with_logits(torch.cat([a, b]), torch.cat([ta, tb])).item()
    assert criterion.pop_onehot_mean() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="no training call"):
        criterion.pop_onehot_mean()


def test_tsla_auto_hears_the_binary_one_hot_loss_through_the_adapter():
    # integrations/pytorch reads any criterion with track_onehot and pop_onehot_sums: the binary one included
    scheduler = tsla.SmoothingScheduler.auto_two_stage(0.1, window=2, tolerance=0.0)
    criterion = BinaryLabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=True)
    logits, target = _batch(7)
    criterion(logits, target)
    loss = end_epoch(scheduler, 0, criterion)
    assert loss == pytest.approx(F.binary_cross_entropy_with_logits(logits, target).item(), rel=1e-12)
    assert scheduler.auto.history[0]["train_onehot_loss"] == pytest.approx(loss)


@pytest.mark.parametrize("call,message", [
    (lambda x, t: binary_label_smoothing_cross_entropy(x, t + 1, 0.1), "target contains 2, outside [0, 1]"),
    (lambda x, t: binary_label_smoothing_cross_entropy(x, t - 0.5, 0.1), "target contains -0.5, outside [0, 1]"),
    (lambda x, t: binary_label_smoothing_cross_entropy(x, t * float("nan"), 0.1), "outside [0, 1]"),
    (lambda x, t: binary_label_smoothing_cross_entropy(x, t[:, :2], 0.1), "target has shape (6, 2)"),
    (lambda x, t: binary_label_smoothing_cross_entropy(x, t, 1.5), "theta=1.5 is outside [0, 1]"),
    (lambda x, t: binary_label_smoothing_cross_entropy(x, t, -0.1), "negative label smoothing is opt-in"),
    (lambda x, t: binary_label_smoothing_cross_entropy(x, t, -1.5, allow_negative=True), "outside [-1, 1]"),
    (lambda x, t: binary_label_smoothing_cross_entropy(x, t, 0.1, pos_weight=torch.ones(3)),
     "pos_weight has shape (3,), which does not broadcast"),
    (lambda x, t: binary_label_smoothing_cross_entropy(x, t, 0.1, reduction="avg"), "reduction='avg'"),
    (lambda x, t: BinaryLabelSmoothingCrossEntropy()(x, t), "no theta for this loss"),
    (lambda x, t: BinaryLabelSmoothingCrossEntropy(theta=2.0), "theta=2.0 is outside [0, 1]"),
    # torch weighs by a negative weight (a negative loss, which training would maximise) or a NaN one (a NaN loss)
    (lambda x, t: binary_label_smoothing_cross_entropy(x, t, 0.1, weight=-torch.ones(4)),
     "weight contains -1: every weight must be finite and >= 0"),
    (lambda x, t: binary_label_smoothing_cross_entropy(x, t, 0.1, pos_weight=torch.tensor([1.0, float("nan")] * 2)),
     "pos_weight contains nan: every pos_weight must be finite and >= 0"),
    (lambda x, t: BinaryLabelSmoothingCrossEntropy(theta=0.1, pos_weight=torch.full((4,), -2.0)),
     "pos_weight contains -2"),
    (lambda x, t: BinaryLabelSmoothingCrossEntropy(theta=0.1, weight="heavy"), "weight must be a floating-point "
     "tensor, got str"),
    (lambda x, t: binary_label_smoothing_cross_entropy(x, t, 0.1, weight="heavy"), "weight must be a floating-point "
     "tensor, got str"),
])
def test_bad_input_gets_one_clear_value_error(call, message):
    logits, target = _batch(8)
    with pytest.raises(ValueError) as info:
        call(logits, target)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_weight_made_negative_in_place_after_a_first_call_is_refused_at_the_next():
    logits, target = _batch(8)
    weight = torch.ones(4)
    criterion = BinaryLabelSmoothingCrossEntropy(theta=0.1, weight=weight)
    criterion(logits, target)
    weight[2] = -1.0  # the check read its values once; an in-place change makes it read them again
    with pytest.raises(ValueError, match="weight contains -1"):
        criterion(logits, target)
