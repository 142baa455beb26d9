"""Lightning with TSLA, tsla-auto and a per-step schedule: stopped after 2 epochs by Lightning's ModelCheckpoint,
resumed with trainer.fit(ckpt_path=...), it ends exactly as the uninterrupted fit (theta at every step, switch epoch,
weights), and theta follows the schedule's definition (tests/loops.py)."""

import pytest
import torch

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

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.thetas.append(self.criterion.current_theta())
        return self.criterion(self.net(x), y)

    def validation_step(self, batch, batch_idx):  # plain cross-entropy, as the callback's docstring asks
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _fit(kind, ckpt_dir, max_epochs, ckpt_path=None):
    x, y = loops.data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=loops.BATCH)
    scheduler = loops.scheduler(kind)
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=True)
    module = Tiny(criterion)
    saver = L.callbacks.ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=-1)
    trainer = L.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[SmoothingCallback(scheduler, criterion), saver])
    trainer.fit(module, loader, loader, ckpt_path=ckpt_path)  # validation each epoch: the checkpoint comes after it
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
    assert saved == full_sched.state_dict()


def test_auto_needs_a_tracking_loss():
    with pytest.raises(ValueError, match="track_onehot=True"):
        SmoothingCallback(loops.scheduler("auto"), tsla.LabelSmoothingCrossEntropy(theta=0.1))
