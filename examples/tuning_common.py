"""What the tuner examples share: 40 %-noisy synthetic data, a small model, one epoch of training with tsla's
scheduler and criterion, the validation score, and the count of epochs trained at a θ other than the tuner's.

Every epoch's data order is seeded by (seed, epoch), as in tsla's own trainer, so a trial restored from a
checkpoint continues exactly as it would have without the stop.
"""

from __future__ import annotations

import torch
from torch import nn

import tsla

CLASSES = 5


def noisy_data(n: int, seed: int, noise: float = 0.4) -> dict[str, torch.Tensor]:
    """n training examples (a fraction ``noise`` of their labels replaced by a random other class) and n // 2
    clean validation examples: 20 features, the class read (noisily) from the first 5."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + n // 2, 20, generator=g)
    y = (x[:, :CLASSES] + 0.5 * torch.randn(len(x), CLASSES, generator=g)).argmax(1)
    flip = torch.rand(n, generator=g) < noise
    shift = torch.randint(1, CLASSES, (n,), generator=g)
    y_train = torch.where(flip, (y[:n] + shift) % CLASSES, y[:n])
    return {"x": x[:n], "y": y_train, "x_val": x[n:], "y_val": y[n:]}


def model_and_optimizer(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, CLASSES))
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: tsla.SmoothingScheduler,
                data: dict[str, torch.Tensor], epoch: int) -> float:
    """One epoch at the scheduler's θ (read by the criterion at every call); returns that θ."""
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler)
    theta = scheduler.get_last_theta()
    order = torch.randperm(len(data["x"]), generator=torch.Generator().manual_seed(epoch))
    for batch in order.split(64):
        loss = criterion(model(data["x"][batch]), data["y"][batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return theta


@torch.no_grad()
def val_top1(model: nn.Module, data: dict[str, torch.Tensor]) -> float:
    return (model(data["x_val"]).argmax(1) == data["y_val"]).float().mean().item()


def epochs_at_other_theta(rows: list[tuple[int, float, float, int]]) -> int:
    """Of (epoch, θ trained with, the tuner's θ for the trial then, its switch epoch S) rows, how many trained at
    another θ than TSLA(S) with the tuner's θ gives at that epoch (θ before S, 0 from S on)."""
    return sum(used != (theta if epoch < switch else 0.0) for epoch, used, theta, switch in rows)
