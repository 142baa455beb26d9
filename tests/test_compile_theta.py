"""A compiled step whose criterion reads theta from a per-step SmoothingScheduler compiles once (twice with one-hot
tracking: its running sums start as None), however often theta moves; checked with torch's own compile counter, the
values against eager torch losses at each step's theta."""

import io
import json

import pytest
import torch
import torch.nn.functional as F
from torch._dynamo.testing import CompileCounter

import tsla

STEPS = 10


def _setup(seed=0, outputs=4):
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Linear(8, outputs).double()
    x = torch.randn(16, 8, generator=g, dtype=torch.float64)
    return model, x


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("track", [False, True])
def test_a_theta_moving_every_step_does_not_recompile(track):
    model, x = _setup()
    y = torch.randint(0, 4, (16,), generator=torch.Generator().manual_seed(1))
    scheduler = tsla.SmoothingScheduler(tsla.schedules.linear(0.4, 1), steps_per_epoch=STEPS)  # a new theta each step
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=track)
    counter = CompileCounter()
    step = torch.compile(lambda inputs, labels: criterion(model(inputs), labels), backend=counter)
    thetas, onehot = [], []
    for _ in range(STEPS):
        theta = scheduler.get_last_theta()
        loss = step(x, y)
        loss.backward()
        torch.testing.assert_close(loss, F.cross_entropy(model(x), y, label_smoothing=theta))
        thetas.append(theta)
        onehot.append(F.cross_entropy(model(x), y).item())
        scheduler.step()
    assert len(set(thetas)) == STEPS
    assert counter.frame_count <= (2 if track else 1), counter.frame_count
    if track:
        assert criterion.pop_onehot_mean() == pytest.approx(sum(onehot) / STEPS, rel=1e-12)


def test_the_binary_criterion_compiles_once_too():
    model, x = _setup(outputs=3)
    t = (torch.rand(16, 3, generator=torch.Generator().manual_seed(2)) > 0.5).double()
    scheduler = tsla.SmoothingScheduler(tsla.schedules.cosine(0.3, 1), steps_per_epoch=STEPS)
    criterion = tsla.BinaryLabelSmoothingCrossEntropy(scheduler=scheduler)
    counter = CompileCounter()
    step = torch.compile(lambda inputs, labels: criterion(model(inputs), labels), backend=counter)
    for _ in range(STEPS):
        theta = scheduler.get_last_theta()
        torch.testing.assert_close(step(x, t), F.binary_cross_entropy_with_logits(model(x), t * (1 - theta) + theta / 2))
        scheduler.step()
    assert counter.frame_count == 1


def test_theta_tensor_follows_every_way_of_moving_the_scheduler():
    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.2, 2))
    tensor = scheduler.theta_tensor
    assert tensor.dim() == 0 and tensor.item() == 0.2
    scheduler.step()
    scheduler.step()  # epoch 2: dropped
    assert tensor.item() == 0.0 and scheduler.theta_tensor is tensor
    scheduler.last_epoch = 1  # as the Lightning and timm adapters set it
    assert tensor.item() == 0.2
    scheduler.last_epoch = -1  # allowed as before; only asking for theta there is an error
    with pytest.raises(ValueError, match="epoch=-1 is negative"):
        scheduler.get_last_theta()
    scheduler.last_epoch = 1
    other = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.2, 2))
    other.theta_tensor  # read once
    other.load_state_dict(json.loads(json.dumps(scheduler.state_dict())))
    other.step()
    assert other.theta_tensor.item() == 0.0 and isinstance(other.get_last_theta(), float)


def test_the_state_dict_stays_plain_numbers():
    scheduler = tsla.SmoothingScheduler(tsla.schedules.linear(0.3, 4), steps_per_epoch=5)
    scheduler.step()
    state = scheduler.state_dict()
    assert not any(isinstance(v, torch.Tensor) for v in state.values())
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True) == state == json.loads(json.dumps(state))


def test_a_python_float_theta_compiles_again_for_each_value():
    """What docs/integrations.md says of a criterion given theta as a float (not through a scheduler): one graph per
    value. The other side of the test above; if torch stops specialising floats, the doc must change."""
    model, x = _setup()
    y = torch.randint(0, 4, (16,), generator=torch.Generator().manual_seed(1))
    criterion = tsla.LabelSmoothingCrossEntropy(theta=0.4)
    counter = CompileCounter()
    step = torch.compile(lambda inputs, labels: criterion(model(inputs), labels), backend=counter)
    for k in range(4):
        criterion.theta = 0.4 * (1 - k / 4)
        torch.testing.assert_close(step(x, y), F.cross_entropy(model(x), y, label_smoothing=criterion.theta))
    assert counter.frame_count == 4
