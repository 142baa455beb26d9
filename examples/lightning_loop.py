"""TSLA and tsla-auto in Lightning, on synthetic tensors (well under a minute on a CPU).

    pip install "tsla[lightning]"
    python examples/lightning_loop.py

The SmoothingCallback keeps theta at Lightning's epoch and stores the scheduler (and tsla-auto's history and
decision) in Lightning's checkpoints, so trainer.fit(..., ckpt_path=...) resumes exactly. Validation uses plain
cross-entropy.
"""

import tempfile

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from torch import nn

import tsla
from tsla.integrations.lightning import SmoothingCallback


def synthetic(n: int, seed: int) -> torch.utils.data.TensorDataset:
    """n examples of 20 features in 5 classes, the class read (noisily) from the first 5 features."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    return torch.utils.data.TensorDataset(x, (x[:, :5] + 0.5 * torch.randn(n, 5, generator=g)).argmax(1))


class Classifier(L.LightningModule):
    def __init__(self, criterion: tsla.LabelSmoothingCrossEntropy) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 5))
        self.criterion = criterion  # reads theta from the scheduler at every call

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.criterion(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self.net(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def run(scheduler: tsla.SmoothingScheduler, folder: str) -> None:
    torch.manual_seed(0)
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=True)
    model = Classifier(criterion)
    thetas = []
    record = L.callbacks.LambdaCallback(on_train_epoch_start=lambda *_: thetas.append(scheduler.get_last_theta()))
    trainer = L.Trainer(max_epochs=8, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=folder,
                        callbacks=[SmoothingCallback(scheduler, criterion), record])
    train = torch.utils.data.DataLoader(synthetic(1024, 0), batch_size=64, shuffle=True)
    trainer.fit(model, train, torch.utils.data.DataLoader(synthetic(512, 1), batch_size=512))
    print(f"  theta per epoch: {', '.join(f'{t:.2f}' for t in thetas)}")
    print(f"  smoothing off from epoch {scheduler.switch_epoch}; "
          f"validation accuracy {trainer.callback_metrics['val_acc']:.3f}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print("TSLA(4), theta 0.2:")
        run(tsla.SmoothingScheduler(tsla.schedules.two_stage(0.2, 4)), tmp + "/tsla")
        print("tsla-auto, theta 0.2 (plateau rule: the one-hot loss fell < 5% over 2 epochs):")
        auto = tsla.SmoothingScheduler.auto_two_stage(0.2, window=2, tolerance=0.05)
        run(auto, tmp + "/auto")
        print(f"  reason: {auto.auto.reason}")
