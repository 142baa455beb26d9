"""Issue 30, items 13 and 15: a run that ends before its switch epoch says so once (Lightning's EarlyStopping, Hugging
Face's EarlyStoppingCallback, a plain loop that breaks early), a run that ends after it says nothing, and a switch
epoch beyond the run's known length (max_epochs, num_train_epochs, max_steps) is warned about when training starts
(a warning, as a framework run may be cut on purpose and resumed with more epochs)."""

import warnings

import pytest
import torch

import tsla
from tests import loops
from tsla.integrations.pytorch import end_epoch, warn_if_before_switch

BEFORE = "before epoch 3 where TwoStage(theta=0.3, drop_epoch=3, after=0.0) switches to theta 0"


def _before_switch(record):
    return [w for w in record if issubclass(w.category, UserWarning) and BEFORE in str(w.message)]


def _plain_loop(stop_after):
    """A plain loop with its own early stopping: breaks after epoch ``stop_after``; returns the last epoch trained."""
    x, y = loops.data()
    model, scheduler = loops.model(), loops.scheduler("tsla")
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for epoch in range(loops.EPOCHS):
        for i in range(0, loops.N, loops.BATCH):
            optimizer.zero_grad()
            criterion(model(x[i:i + loops.BATCH]), y[i:i + loops.BATCH]).backward()
            optimizer.step()
        end_epoch(scheduler, epoch, criterion)
        if epoch == stop_after:
            break
    return scheduler, epoch


@pytest.mark.parametrize("stop_after, warned", [(1, 1), (2, 1), (3, 0), (4, 0)])
def test_a_plain_loop_stopped_before_the_switch_is_told_once(stop_after, warned):
    scheduler, last = _plain_loop(stop_after)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert warn_if_before_switch(scheduler, last) == bool(warned)
    found = _before_switch(record)
    assert len(found) == warned  # epoch 2 is TSLA(3)'s last smoothed epoch: stopping there never switched
    if warned:
        assert f"training ended in epoch {stop_after} (counted from 0)" in str(found[0].message)
        assert "\n" not in str(found[0].message)


def test_a_switch_planned_at_the_runs_end_is_not_warned_about_at_the_end():
    scheduler, last = _plain_loop(stop_after=None)  # all 5 epochs of TSLA(3): switched
    short = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.3, 5))  # TSLA(5) in 5 epochs: LSR, as tsla train allows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_if_before_switch(scheduler, last, planned_epochs=5) is False
        assert warn_if_before_switch(short, 4, planned_epochs=5) is False
    with pytest.warns(UserWarning, match="training ended in epoch 2 .* before epoch 5"):  # stopped early: told
        assert warn_if_before_switch(short, 2) is True


def test_tsla_auto_and_a_constant_theta_have_no_switch_to_miss():
    for scheduler in (loops.scheduler("auto"), tsla.SmoothingScheduler(tsla.schedules.constant(0.3))):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert warn_if_before_switch(scheduler, 0) is False


# ---- Lightning ----------------------------------------------------------------------------------------------------


def _lightning(max_epochs, early_stop, schedule=None):
    L = pytest.importorskip("lightning.pytorch", reason="install the extra: pip install 'tsla[lightning]'")
    from tests.test_integration_lightning import Tiny
    from tsla.integrations.lightning import SmoothingCallback

    class Rising(Tiny):
        def validation_step(self, batch, batch_idx):  # a monitored value that only gets worse: EarlyStopping fires
            self.log("rising", float(self.current_epoch))

    x, y = loops.data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=loops.BATCH)
    scheduler = tsla.SmoothingScheduler(schedule or tsla.schedules.two_stage(0.3, 3))
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler)
    callbacks = [SmoothingCallback(scheduler, criterion)]
    if early_stop:
        callbacks.append(L.callbacks.EarlyStopping(monitor="rising", mode="min", patience=0))
    trainer = L.Trainer(max_epochs=max_epochs, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=callbacks)
    module = Rising(criterion)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer.fit(module, loader, loader)
    return trainer, module, record


def test_lightning_early_stopping_before_the_switch_warns_once():
    trainer, module, record = _lightning(max_epochs=loops.EPOCHS, early_stop=True)
    assert trainer.current_epoch == 2  # epochs 0 and 1 trained: patience 0 stops at the first worse value
    assert max(module.thetas) == min(module.thetas) == 0.3  # it never trained at theta 0
    found = _before_switch(record)
    assert len(found) == 1 and "training ended in epoch 1" in str(found[0].message)
    assert "Trainer(min_epochs=4)" in str(found[0].message)


def test_lightning_run_past_the_switch_says_nothing():
    trainer, module, record = _lightning(max_epochs=loops.EPOCHS, early_stop=False)
    assert module.thetas[-1] == 0.0 and not _before_switch(record)


def test_lightning_warns_at_the_start_of_a_run_shorter_than_the_switch_and_only_then():
    # a warning, not an error: a fit cut on purpose may be resumed with a larger max_epochs
    short = "TwoStage(theta=0.3, drop_epoch=6, after=0.0) switches at epoch 6, but this run trains 5 epochs " \
            "(Trainer(max_epochs=5)): it will end before the switch"
    trainer, module, record = _lightning(max_epochs=5, early_stop=False, schedule=tsla.schedules.two_stage(0.3, 6))
    messages = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
    assert sum(short in m for m in messages) == 1
    assert not any("training ended in epoch" in m for m in messages)  # said once, at the start
    trainer, module, record = _lightning(max_epochs=5, early_stop=False, schedule=tsla.schedules.two_stage(0.3, 5))
    assert not any("switch" in str(w.message) for w in record)  # S == max_epochs: LSR throughout, as tsla train allows


# ---- Hugging Face ----------------------------------------------------------------------------------------------


def _hf(tmp_path, early_stop, schedule=None, **args):
    transformers = pytest.importorskip("transformers", reason="install the extra: pip install 'tsla[hf]'")
    pytest.importorskip("accelerate", reason="install the extra: pip install 'tsla[hf]'")
    from tests.test_integration_hf import Tiny, _args, _dataset
    from tsla.integrations.hf import SmoothingTrainer

    evaluations = []

    def rising(prediction):  # a metric that only gets worse: EarlyStoppingCallback fires
        evaluations.append(1)
        return {"rising": float(len(evaluations))}

    stop = dict(eval_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="rising",
                greater_is_better=False) if early_stop else {}
    scheduler = tsla.SmoothingScheduler(schedule or tsla.schedules.two_stage(0.3, 3))
    trainer = SmoothingTrainer(model=Tiny(), args=_args(tmp_path, **stop, **args), train_dataset=_dataset(),
                               eval_dataset=_dataset(), compute_metrics=rising, smoothing=scheduler,
                               callbacks=[transformers.EarlyStoppingCallback(early_stopping_patience=1)]
                               if early_stop else None)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer.train()
    return trainer, record


def test_hf_early_stopping_before_the_switch_warns_once(tmp_path):
    trainer, record = _hf(tmp_path, early_stop=True)
    assert trainer.state.global_step == 2 * loops.STEPS  # epochs 0 and 1 trained, then stopped
    found = _before_switch(record)
    assert len(found) == 1 and "training ended in epoch 1" in str(found[0].message)


def test_hf_run_past_the_switch_says_nothing(tmp_path):
    trainer, record = _hf(tmp_path, early_stop=False)
    assert trainer.state.global_step == loops.EPOCHS * loops.STEPS and not _before_switch(record)


def test_hf_warns_at_the_start_of_a_run_shorter_than_the_switch(tmp_path):
    trainer, record = _hf(tmp_path / "a", early_stop=False, schedule=tsla.schedules.two_stage(0.3, 6))
    messages = [str(w.message) for w in record if issubclass(w.category, UserWarning)]
    assert sum("switches at epoch 6, but this run trains 5 epochs (num_train_epochs=5)" in m for m in messages) == 1
    assert not any("training ended in epoch" in m for m in messages)
    trainer, record = _hf(tmp_path / "b", early_stop=False, schedule=tsla.schedules.two_stage(0.3, 2), max_steps=3)
    assert sum("trains 1 epoch (max_steps=3)" in str(w.message) for w in record) == 1
