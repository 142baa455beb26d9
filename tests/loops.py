"""The tiny problem every integration test trains: 64 synthetic examples, 8 features, 4 classes, a linear model,
batches of 16 (4 steps per epoch), 5 epochs, cut after 2 epochs and resumed. Theta is recorded at every step.

Three smoothing set-ups, each with theta at every step written out from the schedule's definition:
* tsla: TSLA(3) at 0.3: 0.3 for epochs 0-2, then 0.
* auto: tsla-auto, plateau rule with window 2 and tolerance 0.99: any fall of less than 99% fires once three
  epochs are recorded, i.e. after epoch 2, so smoothing is off from epoch 3. A resumed run that lost the first two
  records would wait until epoch 4 and switch at 5: the cut after epoch 1 tells the two apart.
* step: linear decay from 0.3 to 0 at epoch 4, per step: 0.3 * (1 - (k / 4) / 4) at step k.
"""

import torch
from torch import nn

import tsla
from tsla import schedules

N, FEATURES, CLASSES, BATCH, EPOCHS, CUT = 64, 8, 4, 16, 5, 2
STEPS = N // BATCH
KINDS = ("tsla", "auto", "step")
EXPECTED_THETAS = {
    "tsla": [0.3] * (3 * STEPS) + [0.0] * (2 * STEPS),
    "auto": [0.3] * (3 * STEPS) + [0.0] * (2 * STEPS),
    "step": [0.3 * (1 - (k / STEPS) / 4) for k in range(4 * STEPS)] + [0.0] * STEPS,
}
EXPECTED_SWITCH = {"tsla": 3, "auto": 3, "step": 4}


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, FEATURES, generator=g)
    y = (x[:, :CLASSES].argmax(1) + (torch.rand(N, generator=g) < 0.2).long()) % CLASSES  # learnable, 20% noise
    return x, y


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(FEATURES, CLASSES)


def scheduler(kind: str) -> tsla.SmoothingScheduler:
    if kind == "tsla":
        return tsla.SmoothingScheduler(schedules.two_stage(0.3, 3))
    if kind == "auto":
        return tsla.SmoothingScheduler.auto_two_stage(0.3, window=2, tolerance=0.99)
    return tsla.SmoothingScheduler(schedules.linear(0.3, 4), steps_per_epoch=STEPS)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
