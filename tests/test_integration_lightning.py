"""Lightning with TSLA, tsla-auto and a per-step schedule: stopped after 2 epochs by Lightning's ModelCheckpoint,
resumed with trainer.fit(ckpt_path=...), it ends exactly as the uninterrupted fit (theta at every step, switch epoch,
weights), and theta follows the schedule's definition (tests/loops.py).

Step checkpoints (issue 21): cut on an epoch's last batch, the resumed fit equals the uninterrupted one; cut inside an
epoch, Lightning itself replays batches (its dataloader is not resumable), so the resumed fit is compared with
Lightning's own control run without tsla (torch's loss at theta written out by hand), cut and resumed the same way.
"""

import pytest
import torch
import torch.nn.functional as F

import tsla
from tests import loops

L = pytest.importorskip("lightning.pytorch", reason="install the extra: pip install 'tsla[lightning]'")
from tsla.integrations.lightning import SmoothingCallback  # noqa: E402


class Tiny(L.LightningModule):
    def __init__(self, criterion):
        super().__init__()
        self.net = loops.model()
        self.criterion = criterion
        self.thetas = []
        self.onehots = []  # (epoch, torch's plain cross-entropy of the batch): F, computed independently

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self.thetas.append(self.theta())
        self.onehots.append((self.trainer.current_epoch, F.cross_entropy(logits.detach(), y).item()))
        return self.loss(logits, y)

    def theta(self):
        return self.criterion.current_theta()

    def loss(self, logits, y):
        return self.criterion(logits, y)

    def validation_step(self, batch, batch_idx):  # plain cross-entropy, as the callback's docstring asks
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


class Control(Tiny):
    """No tsla: torch's own loss at theta written out from the schedule's definition, indexed by Lightning's step."""

    def __init__(self, kind):
        super().__init__(None)
        self.kind = kind

    def theta(self):
        return loops.EXPECTED_THETAS[self.kind][self.trainer.global_step]

    def loss(self, logits, y):
        return F.cross_entropy(logits, y, label_smoothing=self.theta())


def _fit(kind, ckpt_dir, max_epochs=loops.EPOCHS, ckpt_path=None, cut_step=None, control=False, **trainer_kw):
    """Fit; with ``cut_step``, stop after that optimizer step, where a step checkpoint (last.ckpt) is written."""
    x, y = loops.data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=loops.BATCH)
    scheduler = loops.scheduler(kind)
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=True)
    module = Control(kind) if control else Tiny(criterion)
    saver = L.callbacks.ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=-1,
                                        every_n_train_steps=cut_step)
    callbacks = [saver] if control else [SmoothingCallback(scheduler, criterion), saver]
    trainer = L.Trainer(max_epochs=max_epochs, max_steps=cut_step or -1, accelerator="cpu", devices=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=callbacks, **trainer_kw)
    trainer.fit(module, loader, loader, ckpt_path=ckpt_path)  # validation each epoch: the checkpoint comes after it
    module.trainer_ = trainer
    return module, scheduler


@pytest.mark.parametrize("kind", loops.KINDS)
def test_resumed_fit_equals_uninterrupted(kind, tmp_path):
    full, full_sched = _fit(kind, tmp_path / "full", loops.EPOCHS)
    first, _ = _fit(kind, tmp_path / "cut", loops.CUT)
    rest, sched = _fit(kind, tmp_path / "cut", loops.EPOCHS, ckpt_path=str(tmp_path / "cut" / "last.ckpt"))
    assert full.thetas == pytest.approx(loops.EXPECTED_THETAS[kind], abs=1e-12)
    assert first.thetas + rest.thetas == full.thetas
    assert sched.switch_epoch == full_sched.switch_epoch == loops.EXPECTED_SWITCH[kind]
    assert sched.state_dict() == full_sched.state_dict()
    assert loops.same_weights(rest.net, full.net)
    # Lightning's checkpoint holds the scheduler's state as plain values, readable with weights_only=True
    saved = torch.load(tmp_path / "cut" / "last.ckpt", weights_only=True)["callbacks"]["tsla.SmoothingCallback"]
    assert saved.pop("onehot_pending") == [0.0, 0.0]  # saved after the epoch's report: nothing in progress
    assert saved == full_sched.state_dict()


def test_auto_needs_a_tracking_loss():
    with pytest.raises(ValueError, match="track_onehot=True"):
        SmoothingCallback(loops.scheduler("auto"), tsla.LabelSmoothingCrossEntropy(theta=0.1))


@pytest.mark.parametrize("kind", loops.KINDS)
def test_step_checkpoint_on_an_epochs_last_batch_resumes_exactly(kind, tmp_path):
    # Lightning resumes such a checkpoint straight into the next epoch, without on_train_epoch_start: before issue 21
    # that whole epoch trained at the previous epoch's theta (cut at 12: epoch 3 at 0.3 instead of 0)
    full, full_sched = _fit(kind, tmp_path / "full")
    first, _ = _fit(kind, tmp_path / "cut", cut_step=3 * loops.STEPS)  # the last batch of epoch 2
    rest, sched = _fit(kind, tmp_path / "cut", ckpt_path=str(tmp_path / "cut" / "last.ckpt"))
    assert first.thetas + rest.thetas == full.thetas == pytest.approx(loops.EXPECTED_THETAS[kind], abs=1e-12)
    assert sched.switch_epoch == full_sched.switch_epoch == loops.EXPECTED_SWITCH[kind]
    assert sched.state_dict() == full_sched.state_dict()
    assert loops.same_weights(rest.net, full.net)


@pytest.mark.parametrize("kind", loops.KINDS)
def test_step_checkpoint_inside_an_epoch_matches_lightnings_own_control(kind, tmp_path):
    cut = loops.STEPS + 2  # two batches into epoch 1
    first, _ = _fit(kind, tmp_path / "cut", cut_step=cut)
    rest, sched = _fit(kind, tmp_path / "cut", ckpt_path=str(tmp_path / "cut" / "last.ckpt"))
    control_first, _ = _fit(kind, tmp_path / "control", cut_step=cut, control=True)
    control_rest, _ = _fit(kind, tmp_path / "control", ckpt_path=str(tmp_path / "control" / "last.ckpt"),
                           control=True)
    assert first.thetas + rest.thetas == pytest.approx(control_first.thetas + control_rest.thetas, abs=1e-12)
    assert loops.same_weights(rest.net, control_rest.net)
    assert sched.switch_epoch == loops.EXPECTED_SWITCH[kind]
    if kind == "auto":  # epoch 1's record is F over all its batches, those before the cut included
        epoch1 = [f for e, f in first.onehots + rest.onehots if e == 1]
        assert len(epoch1) == loops.STEPS
        assert sched.auto.history[1]["train_onehot_loss"] == pytest.approx(sum(epoch1) / len(epoch1), rel=1e-6)


def test_theta_and_the_onehot_loss_are_logged(tmp_path):
    module, _ = _fit("tsla", tmp_path, max_epochs=4)
    logged = module.trainer_.callback_metrics
    assert logged["smoothing_theta"].item() == 0.0  # epoch 3, after TSLA(3)'s switch
    last = [f for e, f in module.onehots if e == 3]
    assert logged["train_onehot_loss"].item() == pytest.approx(sum(last) / len(last), rel=1e-5)


def test_a_wrong_steps_per_epoch_is_refused_with_lightnings_count(tmp_path):
    x, y = loops.data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=loops.BATCH)
    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.3, 2), steps_per_epoch=5)
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False, accumulate_grad_batches=3,
                        callbacks=[SmoothingCallback(scheduler, criterion)])
    with pytest.raises(ValueError, match=r"steps_per_epoch=5, but this Trainer takes 2 optimizer steps per epoch "
                                         r"\(4 batches, accumulate_grad_batches=3\): build it with steps_per_epoch=2"):
        trainer.fit(Tiny(criterion), loader)


class KeepsHparams(Tiny):
    def __init__(self, criterion):
        super().__init__(criterion)
        self.save_hyperparameters()  # stores the criterion: before issue 21, every checkpoint became unloadable


def test_a_criterion_stored_by_save_hyperparameters_is_refused_before_any_checkpoint(tmp_path):
    x, y = loops.data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=loops.BATCH)
    scheduler = loops.scheduler("tsla")
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path,
                        callbacks=[SmoothingCallback(scheduler, criterion),
                                   L.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt")])
    with pytest.raises(ValueError, match=r"stored 'criterion' \(a LabelSmoothingCrossEntropy\).*"
                                         r"self.save_hyperparameters\(ignore=\['criterion'\]\)"):
        trainer.fit(KeepsHparams(criterion), loader)
    assert not (tmp_path / "ckpt").exists()


class _HandNegative(Tiny):
    """torch's probability-target cross-entropy on y = (1 - theta) onehot + theta / K, theta from the criterion."""

    def loss(self, logits, y):
        theta = self.theta()
        return F.cross_entropy(logits, (1 - theta) * F.one_hot(y, loops.CLASSES).float() + theta / loops.CLASSES)


def test_a_negative_theta_schedule_works_through_the_callback_with_allow_negative_only(tmp_path):
    # Lightning's adapter builds no loss: the flag is the criterion's, which the callback reads as any other
    x, y = loops.data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=loops.BATCH)
    modules = {}
    for name, allow in [("tsla", True), ("hand", True), ("refused", False)]:
        scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.3, 1, after=-0.2))
        hand = name == "hand"  # its criterion only gives theta: the loss is written out by hand
        criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=not hand, allow_negative=allow)
        modules[name] = (_HandNegative if hand else Tiny)(criterion)
        trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                            enable_model_summary=False, enable_checkpointing=False,
                            callbacks=[SmoothingCallback(scheduler, None if hand else criterion)],
                            default_root_dir=str(tmp_path))
        if allow:
            trainer.fit(modules[name], loader)
        else:
            with pytest.raises(ValueError, match=r"theta=-0.2 is negative: negative label smoothing is opt-in, "
                                                 r"pass allow_negative=True"):
                trainer.fit(modules[name], loader)
    assert modules["tsla"].thetas == [0.3] * loops.STEPS + [-0.2] * loops.STEPS
    for a, b in zip(modules["tsla"].parameters(), modules["hand"].parameters()):
        torch.testing.assert_close(a, b)
