"""timm: SmoothingLoss with set_epoch against timm's and torch's own losses (and the stale-confidence trap it
avoids), Mixup's smoothing reproduced from unsmoothed mixed targets, and a timm-style loop with TSLA and tsla-auto
cut after 2 epochs by timm's CheckpointSaver and resumed with timm's resume_checkpoint: it ends exactly as the
uninterrupted run (theta at every step, switch epoch, weights; tests/loops.py)."""

import pytest
import torch
import torch.nn.functional as F

from tsla import schedules
from tests import loops

timm = pytest.importorskip("timm", reason="install the extra: pip install 'tsla[timm]'")
from timm.data.mixup import mixup_target  # noqa: E402
from timm.loss import LabelSmoothingCrossEntropy as TimmLabelSmoothing  # noqa: E402
from timm.models import resume_checkpoint  # noqa: E402
from tsla.integrations.timm import SmoothingCheckpointSaver, SmoothingLoss  # noqa: E402


def test_set_epoch_is_exact_where_timms_own_loss_is_not():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(16, 5, generator=g), torch.randint(0, 5, (16,), generator=g)
    loss = SmoothingLoss(schedules.two_stage(0.4, 2))
    loss.set_epoch(1)
    assert loss.smoothing == 0.4
    torch.testing.assert_close(loss(logits, target), TimmLabelSmoothing(0.4)(logits, target))
    loss.set_epoch(2)  # TSLA: plain cross-entropy from epoch 2
    torch.testing.assert_close(loss(logits, target), F.cross_entropy(logits, target))
    # the trap: timm's loss with .smoothing set to 0 keeps confidence 0.6 and returns 0.6 x NLL
    trap = TimmLabelSmoothing(0.4)
    trap.smoothing = 0.0
    torch.testing.assert_close(trap(logits, target), 0.6 * F.cross_entropy(logits, target))
    with pytest.raises(AttributeError, match="call set_epoch"):
        loss.smoothing = 0.0


def test_mixup_targets_smoothed_by_the_loss_equal_mixups_own_smoothing():
    g = torch.Generator().manual_seed(1)
    logits, target = torch.randn(8, 10, generator=g), torch.randint(0, 10, (8,), generator=g)
    mixed_plain = mixup_target(target, 10, lam=0.7, smoothing=0.0)
    mixed_smoothed = mixup_target(target, 10, lam=0.7, smoothing=0.1)
    expected = (-mixed_smoothed * F.log_softmax(logits, -1)).sum(-1).mean()  # timm's SoftTargetCrossEntropy
    torch.testing.assert_close(SmoothingLoss(schedules.constant(0.1))(logits, mixed_plain), expected)


def _train(kind, folder, stop_after=None, resume=False):
    folder.mkdir(exist_ok=True)  # timm's train.py makes its output folder itself
    x, y = loops.data()
    model = loops.model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    train_loss_fn = SmoothingLoss(loops.scheduler(kind))
    saver = SmoothingCheckpointSaver(model=model, optimizer=optimizer, checkpoint_dir=str(folder),
                                     recovery_dir=str(folder), smoothing=train_loss_fn.scheduler)
    start, thetas = 0, []
    if resume:
        start = resume_checkpoint(model, str(folder / "last.pth.tar"), optimizer, log_info=False)
        saver.load_state_dict_from_checkpoint(str(folder / "last.pth.tar"))
    for epoch in range(start, loops.EPOCHS):
        train_loss_fn.set_epoch(epoch)
        order = torch.randperm(loops.N, generator=torch.Generator().manual_seed(epoch))
        for i in range(loops.STEPS):
            batch = order[i * loops.BATCH:(i + 1) * loops.BATCH]
            thetas.append(train_loss_fn.smoothing)
            loss = train_loss_fn(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        train_loss_fn.end_epoch(epoch)
        saver.save_checkpoint(epoch)
        if epoch + 1 == stop_after:
            break
    return model, train_loss_fn.scheduler, thetas


@pytest.mark.parametrize("kind", ["tsla", "auto"])
def test_resumed_timm_loop_equals_uninterrupted(kind, tmp_path):
    full, full_sched, full_thetas = _train(kind, tmp_path / "full")
    _, _, first = _train(kind, tmp_path / "cut", stop_after=loops.CUT)
    model, sched, rest = _train(kind, tmp_path / "cut", resume=True)
    assert full_thetas == loops.EXPECTED_THETAS[kind]
    assert first + rest == full_thetas
    assert sched.switch_epoch == full_sched.switch_epoch == loops.EXPECTED_SWITCH[kind]
    assert sched.state_dict() == full_sched.state_dict()
    assert loops.same_weights(model, full)
