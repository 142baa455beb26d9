"""TSLA and tsla-auto in a plain PyTorch loop, on synthetic tensors (a few seconds on a CPU).

    python examples/plain_pytorch.py

Each run prints theta per epoch, where smoothing ended, and the test accuracy; the scheduler's state goes into the
checkpoint beside the model and optimizer, and loads back with torch.load(weights_only=True).
"""

import tempfile
from pathlib import Path

import torch
from torch import nn

import tsla
from tsla.integrations.pytorch import end_epoch, warn_if_before_switch

EPOCHS = 8


def synthetic(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n examples of 20 features in 5 classes, the class read (noisily) from the first 5 features."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    return x, (x[:, :5] + 0.5 * torch.randn(n, 5, generator=g)).argmax(1)


def run(scheduler: tsla.SmoothingScheduler, folder: Path) -> None:
    (x, y), (x_test, y_test) = synthetic(1024, 0), synthetic(512, 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 5))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=True)  # theta read at each call
    for epoch in range(EPOCHS):
        theta = scheduler.get_last_theta()
        for batch in torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch)).split(64):
            loss = criterion(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        onehot = end_epoch(scheduler, epoch, criterion)  # tsla-auto hears the one-hot loss; next epoch
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "smoothing": scheduler.state_dict(), "epoch": epoch}, folder / "checkpoint.pt")
        print(f"  epoch {epoch}: theta {theta:.2f}, one-hot train loss {onehot:.4f}")
    warn_if_before_switch(scheduler, epoch, planned_epochs=EPOCHS)  # a loop that stops early (a break) is told so
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    saved = torch.load(folder / "checkpoint.pt", weights_only=True)["smoothing"]  # what a resume would load
    print(f"  smoothing off from epoch {scheduler.switch_epoch}; test accuracy {accuracy:.3f}; "
          f"saved scheduler at epoch {saved['last_epoch']}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print("TSLA(4), theta 0.2:")
        run(tsla.SmoothingScheduler(tsla.schedules.two_stage(0.2, 4)), Path(tmp))
        print("tsla-auto, theta 0.2 (plateau rule: the one-hot loss fell < 5% over 2 epochs):")
        auto = tsla.SmoothingScheduler.auto_two_stage(0.2, window=2, tolerance=0.05)
        run(auto, Path(tmp))
        print(f"  reason: {auto.auto.reason}")
