"""A plain PyTorch loop with TSLA, tsla-auto and a per-step schedule: cut after 2 epochs with torch.save, resumed
with torch.load(weights_only=True), it ends exactly as the uninterrupted run (theta at every step, switch epoch,
weights), and theta follows the schedule's definition (tests/loops.py)."""

import pytest
import torch

import tsla
from tsla.integrations.pytorch import end_epoch
from tests import loops


def _train(kind, path, stop_after=None, resume=False):
    x, y = loops.data()
    net = loops.model()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    scheduler = loops.scheduler(kind)
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=True)
    start, thetas = 0, []
    if resume:
        saved = torch.load(path, weights_only=True)
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["smoothing"])
        start = saved["epoch"] + 1
    for epoch in range(start, loops.EPOCHS):
        order = torch.randperm(loops.N, generator=torch.Generator().manual_seed(epoch))  # data order by epoch
        for i in range(loops.STEPS):
            batch = order[i * loops.BATCH:(i + 1) * loops.BATCH]
            thetas.append(criterion.current_theta())
            loss = criterion(net(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler.steps_per_epoch:
                scheduler.step()
        end_epoch(scheduler, epoch, criterion)
        torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                    "smoothing": scheduler.state_dict(), "epoch": epoch}, path)
        if epoch + 1 == stop_after:
            break
    return net, scheduler, thetas


@pytest.mark.parametrize("kind", loops.KINDS)
def test_resumed_loop_equals_uninterrupted(kind, tmp_path):
    full_net, full_sched, full_thetas = _train(kind, tmp_path / "full.pt")
    _, _, first = _train(kind, tmp_path / "cut.pt", stop_after=loops.CUT)
    net, sched, rest = _train(kind, tmp_path / "cut.pt", resume=True)
    assert full_thetas == pytest.approx(loops.EXPECTED_THETAS[kind], abs=1e-12)
    assert first + rest == full_thetas
    assert sched.switch_epoch == full_sched.switch_epoch == loops.EXPECTED_SWITCH[kind]
    assert sched.state_dict() == full_sched.state_dict()  # tsla-auto: the same history and reason
    assert loops.same_weights(net, full_net)


def test_end_epoch_refuses_a_scheduler_out_of_step():
    scheduler = loops.scheduler("tsla")
    scheduler.step()
    with pytest.raises(ValueError, match="at epoch 1, not 0"):
        end_epoch(scheduler, 0)
    with pytest.raises(ValueError, match="needs each epoch's one-hot train loss"):
        end_epoch(loops.scheduler("auto"), 0)


def test_end_epoch_refuses_a_per_step_scheduler_whose_steps_per_epoch_is_wrong():
    scheduler = tsla.SmoothingScheduler(tsla.schedules.linear(0.3, 4), steps_per_epoch=5)  # the loader has 4 batches
    for _ in range(loops.STEPS):
        scheduler.step()
    with pytest.raises(ValueError, match="counted 4 optimizer steps by the end of epoch 0, but steps_per_epoch=5 "
                                         "means 5: build it with steps_per_epoch=4"):
        end_epoch(scheduler, 0)


def test_a_schedule_that_cannot_be_saved_is_refused_up_front():
    # before issue 21, a lambda was accepted and the first checkpoint failed ('function' object has no 'to_dict')
    with pytest.raises(ValueError, match=r"cannot be saved in a checkpoint \(no to_dict\(\)\): pass a "
                                         r"tsla.schedules schedule"):
        tsla.SmoothingScheduler(lambda epoch: 0.1 if epoch < 3 else 0.0)


def test_step_with_a_position_sets_it():
    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.3, 3))
    scheduler.step(3)  # the position a framework's counter gives: epoch 3, after TSLA(3)'s switch
    assert (scheduler.last_epoch, scheduler.get_last_theta()) == (3, 0.0)
    scheduler.step()
    assert scheduler.last_epoch == 4
    per_step = tsla.SmoothingScheduler(tsla.schedules.linear(0.3, 4), steps_per_epoch=4)
    per_step.step(6)  # 6 optimizer steps: epoch 1.5 of a decay to 0 at epoch 4
    assert per_step.get_last_theta() == pytest.approx(0.3 * (1 - 1.5 / 4))
    with pytest.raises(ValueError, match=r"step\(-1\): give the position as an integer >= 0"):
        scheduler.step(-1)
