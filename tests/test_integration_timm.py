"""timm: SmoothingLoss with set_epoch against timm's and torch's own losses (and the stale-confidence trap it
avoids), Mixup's smoothing reproduced from unsmoothed mixed targets, and a timm-style loop with TSLA and tsla-auto
cut after 2 epochs by timm's CheckpointSaver and resumed with timm's resume_checkpoint: it ends exactly as the
uninterrupted run (theta at every step, switch epoch, weights; tests/loops.py).

Issue 21: a recovery checkpoint (train.py's --recovery-interval) is resumed by timm at the next epoch, the rest of the
cut epoch skipped by timm itself, so the tsla-auto run is compared with the same cut of TSLA(3), the fixed schedule its
rule names; theta per update with step_update; the guards (plain CheckpointSaver, Mixup's own smoothing, a wrong
steps_per_epoch); summary() for timm's summary.csv."""

import pytest
import torch
import torch.nn.functional as F

import tsla
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


def _train(kind, folder, stop_after=None, resume=False, recovery_at=None, resume_from="last.pth.tar", saver_cls=None,
           per_update=False, saver_gets="loss"):
    """A timm-style loop. ``recovery_at=(epoch, batch)``: a recovery checkpoint after that batch, then stop."""
    folder.mkdir(exist_ok=True)  # timm's train.py makes its output folder itself
    x, y = loops.data()
    model = loops.model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    train_loss_fn = SmoothingLoss(loops.scheduler(kind))
    kwargs = dict(model=model, optimizer=optimizer, checkpoint_dir=str(folder), recovery_dir=str(folder))
    if saver_cls is None:
        smoothing = train_loss_fn if saver_gets == "loss" else train_loss_fn.scheduler  # the scheduler: before issue 21
        saver = SmoothingCheckpointSaver(**kwargs, smoothing=smoothing)
    else:
        saver = saver_cls(**kwargs)
    start, thetas, onehots = 0, [], []
    if resume:
        start = resume_checkpoint(model, str(folder / resume_from), optimizer, log_info=False)
        saver.load_state_dict_from_checkpoint(str(folder / resume_from))
    for epoch in range(start, loops.EPOCHS):
        train_loss_fn.set_epoch(epoch)
        order = torch.randperm(loops.N, generator=torch.Generator().manual_seed(epoch))
        for i in range(loops.STEPS):
            batch = order[i * loops.BATCH:(i + 1) * loops.BATCH]
            thetas.append(train_loss_fn.smoothing)
            logits = model(x[batch])
            onehots.append((epoch, F.cross_entropy(logits.detach(), y[batch]).item()))
            loss = train_loss_fn(logits, y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if per_update:
                train_loss_fn.step_update(num_updates=epoch * loops.STEPS + i + 1)  # timm's num_updates
            if (epoch, i) == recovery_at:
                saver.save_recovery(epoch, batch_idx=i)
                return model, train_loss_fn, thetas, onehots
        train_loss_fn.end_epoch(epoch)
        saver.save_checkpoint(epoch)
        if epoch + 1 == stop_after:
            break
    return model, train_loss_fn, thetas, onehots


@pytest.mark.parametrize("kind,saver_gets", [("tsla", "loss"), ("auto", "loss"), ("auto", "scheduler")])
def test_resumed_timm_loop_equals_uninterrupted(kind, saver_gets, tmp_path):
    full, full_loss, full_thetas, _ = _train(kind, tmp_path / "full", saver_gets=saver_gets)
    _, _, first, _ = _train(kind, tmp_path / "cut", stop_after=loops.CUT, saver_gets=saver_gets)
    model, loss, rest, _ = _train(kind, tmp_path / "cut", resume=True, saver_gets=saver_gets)
    assert full_thetas == loops.EXPECTED_THETAS[kind]
    assert first + rest == full_thetas
    assert loss.scheduler.switch_epoch == full_loss.scheduler.switch_epoch == loops.EXPECTED_SWITCH[kind]
    assert loss.scheduler.state_dict() == full_loss.scheduler.state_dict()
    assert loops.same_weights(model, full)


def test_a_recovery_checkpoint_after_an_epochs_last_update_resumes_exactly(tmp_path):
    # written after the last update of epoch 1, before end_epoch: timm resumes at epoch 2 and nothing is skipped, so
    # the resumed tsla-auto run equals the uninterrupted one, epoch 1's record (from the saved sums) included
    full, full_loss, full_thetas, _ = _train("auto", tmp_path / "full")
    cut = dict(recovery_at=(1, loops.STEPS - 1), resume_from=f"recovery-1-{loops.STEPS - 1}.pth.tar")
    _, _, first, _ = _train("auto", tmp_path / "cut", **cut)
    model, loss, rest, _ = _train("auto", tmp_path / "cut", resume=True, **cut)
    assert first + rest == full_thetas == loops.EXPECTED_THETAS["auto"]
    assert loss.scheduler.state_dict() == full_loss.scheduler.state_dict()
    assert loops.same_weights(model, full)


def test_tsla_auto_resumes_from_a_recovery_checkpoint(tmp_path):
    # timm resumes recovery-1-1 at epoch 2 (the rest of epoch 1 skipped by timm itself); before issue 21 tsla-auto
    # crashed there ("told epoch 2 after epoch 0")
    cut = dict(recovery_at=(1, 1), resume_from="recovery-1-1.pth.tar")
    _, _, first, first_f = _train("auto", tmp_path / "auto", **cut)
    model, loss, rest, rest_f = _train("auto", tmp_path / "auto", resume=True, **cut)
    _, _, control_first, _ = _train("tsla", tmp_path / "tsla", **cut)
    control, control_loss, control_rest, _ = _train("tsla", tmp_path / "tsla", resume=True, **cut)
    assert first + rest == control_first + control_rest  # theta at every update, as TSLA(3)'s
    assert loss.scheduler.switch_epoch == control_loss.scheduler.switch_epoch == 3
    assert loops.same_weights(model, control)
    # epoch 1's record: F over its two updates before the cut, from torch's own loss
    epoch1 = [f for e, f in first_f if e == 1]
    assert len(epoch1) == 2
    assert loss.scheduler.auto.history[1]["train_onehot_loss"] == pytest.approx(sum(epoch1) / 2, rel=1e-6)


def test_tsla_auto_with_timms_plain_checkpoint_saver_is_refused_on_resume(tmp_path):
    _train("auto", tmp_path, stop_after=loops.CUT, saver_cls=timm.utils.CheckpointSaver)
    with pytest.raises(ValueError, match=r"tsla-auto has recorded no epoch but set_epoch\(2\) starts epoch 2.*"
                                         r"timm's plain CheckpointSaver does not save it"):
        _train("auto", tmp_path, resume=True, saver_cls=timm.utils.CheckpointSaver)


def test_theta_per_update_follows_step_update(tmp_path):
    _, loss, thetas, onehots = _train("step", tmp_path, per_update=True)
    assert thetas == pytest.approx(loops.EXPECTED_THETAS["step"], abs=1e-12)
    # summary(): theta now and F of the last epoch, from torch's own loss
    last = [f for e, f in onehots if e == loops.EPOCHS - 1]
    assert loss.summary() == {"smoothing_theta": 0.0, "train_onehot_loss": pytest.approx(sum(last) / len(last),
                                                                                          rel=1e-6)}


def test_a_wrong_steps_per_epoch_is_refused_with_timms_update_count():
    loss = SmoothingLoss(tsla.SmoothingScheduler(schedules.linear(0.3, 4), steps_per_epoch=5))
    loss.set_epoch(0)
    for n in range(1, loops.STEPS + 1):
        loss.step_update(n)
    with pytest.raises(ValueError, match="steps_per_epoch=5, but timm counted 4 updates by the start of epoch 1: "
                                         "build it with steps_per_epoch=4"):
        loss.set_epoch(1)
    forgotten = SmoothingLoss(tsla.SmoothingScheduler(schedules.linear(0.3, 4), steps_per_epoch=4))
    forgotten.set_epoch(0)
    with pytest.raises(ValueError, match=r"no step_update\(num_updates\) during epoch 0"):
        forgotten.set_epoch(1)


def test_mixups_own_smoothing_is_refused():
    from timm.data import Mixup

    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(8, 3, 4, 4, generator=g), torch.randint(0, 10, (8,), generator=g)
    logits = torch.randn(8, 10, generator=g)
    loss = SmoothingLoss(schedules.two_stage(0.1, 2))
    _, smoothed = Mixup(mixup_alpha=1.0, num_classes=10)(x, y)  # timm's default label_smoothing=0.1
    with pytest.raises(ValueError, match=r"Mixup\(label_smoothing=...\) smoothed them already.*label_smoothing=0.0"):
        loss(logits, smoothed)
    _, plain = Mixup(mixup_alpha=1.0, num_classes=10, label_smoothing=0.0)(x, y)
    assert torch.isfinite(SmoothingLoss(schedules.two_stage(0.1, 2))(logits, plain))


def test_a_negative_theta_schedule_works_through_the_loss_with_allow_negative_only():
    g = torch.Generator().manual_seed(3)
    logits, target = torch.randn(16, 5, generator=g), torch.randint(0, 5, (16,), generator=g)
    schedule = schedules.two_stage(0.3, 1, after=-0.2)  # TSLA ending on negative smoothing
    loss = SmoothingLoss(schedule, allow_negative=True)
    for epoch, theta in [(0, 0.3), (1, -0.2), (2, -0.2)]:
        loss.set_epoch(epoch)
        assert loss.smoothing == theta and loss.summary()["smoothing_theta"] == theta  # the sign kept
        # torch's probability-target cross-entropy, -sum_c y_c log p_c, on y = (1 - theta) onehot + theta / K
        labels = (1 - theta) * F.one_hot(target, 5).float() + theta / 5
        z, z_ref = logits.clone().requires_grad_(), logits.clone().requires_grad_()
        got, want = loss(z, target), F.cross_entropy(z_ref, labels)
        torch.testing.assert_close(got, want)
        got.backward()
        want.backward()
        torch.testing.assert_close(z.grad, z_ref.grad)
        loss.end_epoch(epoch)
    refusing = SmoothingLoss(schedule)
    refusing.set_epoch(0)
    refusing(logits, target)
    refusing.set_epoch(1)
    with pytest.raises(ValueError, match=r"theta=-0.2 is negative: negative label smoothing is opt-in, pass "
                                         r"allow_negative=True"):
        refusing(logits, target)
