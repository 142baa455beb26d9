"""TSLA and tsla-auto in a timm-style loop (timm's train.py shape: set_epoch beside mixup_off_epoch, Mixup with its
own label smoothing off, timm's CheckpointSaver), on synthetic tensors (a few seconds on a CPU).

    pip install "tsla[timm]"
    python examples/timm_loop.py

In timm's train.py: build train_loss_fn = SmoothingLoss(...) where it builds LabelSmoothingCrossEntropy, call
train_loss_fn.set_epoch(epoch) at the top of each epoch and train_loss_fn.end_epoch(epoch) before
saver.save_checkpoint, and use SmoothingCheckpointSaver(..., smoothing=train_loss_fn); on --resume, also
call saver.load_state_dict_from_checkpoint(args.resume). Evaluation keeps plain cross-entropy (validate_loss_fn).
"""

import tempfile

import torch
import torch.nn.functional as F
from timm.data import Mixup
from torch import nn

import tsla
from tsla.integrations.timm import SmoothingCheckpointSaver, SmoothingLoss

EPOCHS, MIXUP_OFF_EPOCH = 8, 6


def synthetic(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n examples of 20 features in 6 classes, the class read (noisily) from the first 6 features."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    return x, (x[:, :6] + 0.5 * torch.randn(n, 6, generator=g)).argmax(1)


def run(smoothing, folder: str) -> tsla.SmoothingScheduler:
    (x, y), (x_test, y_test) = synthetic(1024, 0), synthetic(512, 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 6))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train_loss_fn = SmoothingLoss(smoothing)
    # Mixup's own label smoothing off: the loss smooths the mixed targets by the schedule's theta
    mixup_fn = Mixup(mixup_alpha=0.2, label_smoothing=0.0, num_classes=6)
    saver = SmoothingCheckpointSaver(model=model, optimizer=optimizer, checkpoint_dir=folder, recovery_dir=folder,
                                     decreasing=True, smoothing=train_loss_fn)  # ranked by test loss
    for epoch in range(EPOCHS):
        train_loss_fn.set_epoch(epoch)
        theta = train_loss_fn.smoothing
        if epoch >= MIXUP_OFF_EPOCH:
            mixup_fn.mixup_enabled = False
        for batch in torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch)).split(64):
            inputs, targets = mixup_fn(x[batch], y[batch])  # probability targets
            loss = train_loss_fn(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        onehot = train_loss_fn.end_epoch(epoch)  # None for a fixed schedule
        with torch.no_grad():
            test_loss = F.cross_entropy(model(x_test), y_test).item()
        saver.save_checkpoint(epoch, metric=test_loss)
        extra = "" if onehot is None else f", one-hot train loss {onehot:.4f}"
        print(f"  epoch {epoch}: theta {theta:.2f}{extra}, test loss {test_loss:.4f}")
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    scheduler = train_loss_fn.scheduler
    print(f"  smoothing off from epoch {scheduler.switch_epoch}; test accuracy {accuracy:.3f}")
    return scheduler


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print("TSLA(4), theta 0.2:")
        run(tsla.schedules.two_stage(0.2, 4), tmp)
        # with Mixup the one-hot loss is taken against the mixed targets, so it is noisier: compare epoch to epoch
        print("tsla-auto, theta 0.2 (plateau rule: the one-hot loss fell < 5% over 1 epoch):")
        auto = run(tsla.SmoothingScheduler.auto_two_stage(0.2, window=1, tolerance=0.05), tmp)
        print(f"  reason: {auto.auto.reason}")
