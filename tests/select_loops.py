"""Training loops for the tests of ``tsla.select``: a deterministic tiny classifier that counts its own epochs, and a
scripted loop that reports given validation numbers (for hand-computed choices)."""

from __future__ import annotations

from collections import defaultdict

import torch

import tsla

N_VAL = 60


def tiny_data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(6, 4, generator=g)
    x = torch.randn(160, 6, generator=g)
    y = (x @ w + 0.8 * torch.randn(160, 4, generator=g)).argmax(1)
    return x[:100], y[:100], x[100:], y[100:]


class CountingLoop:
    """``train_fn`` for tsla.select: a linear model trained with the trial's scheduler; records the epochs each run
    trained (``self.epochs[name]``) and the theta each epoch trained with (``self.thetas[name]``)."""

    def __init__(self, fail_at: tuple[str, int] | None = None) -> None:
        self.data = tiny_data()
        self.epochs: dict[str, list[int]] = defaultdict(list)
        self.thetas: dict[str, list[float]] = defaultdict(list)
        self.fail_at = fail_at

    def __call__(self, trial) -> None:
        xtr, ytr, xva, yva = self.data
        torch.manual_seed(trial.seed)
        model = torch.nn.Linear(6, 4)
        opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        if trial.checkpoint is not None:
            model.load_state_dict(trial.checkpoint["model"])
            opt.load_state_dict(trial.checkpoint["optimizer"])
        criterion = tsla.LabelSmoothingCrossEntropy(scheduler=trial.scheduler, allow_negative=True)
        for epoch in range(trial.start_epoch, trial.epochs):
            if self.fail_at == (trial.name, epoch):
                raise RuntimeError("killed")
            self.epochs[trial.name].append(epoch)
            self.thetas[trial.name].append(trial.scheduler.get_last_theta())
            order = torch.randperm(100, generator=torch.Generator().manual_seed(1000 * trial.seed + epoch))
            for batch in order.split(20):
                opt.zero_grad()
                criterion(model(xtr[batch]), ytr[batch]).backward()
                opt.step()
            with torch.no_grad():
                logits = model(xva)
                acc = (logits.argmax(1) == yva).double().mean().item()
                nll = torch.nn.functional.cross_entropy(logits, yva).item()
            trial.report(epoch, val_top1=acc, val_nll=nll,
                         checkpoint={"model": model.state_dict(), "optimizer": opt.state_dict()})


class ScriptedLoop:
    """``train_fn`` that trains nothing and reports ``scores[label][seed]`` (a constant per run, or a list per
    epoch) as val_top1."""

    def __init__(self, scores) -> None:
        self.scores = scores
        self.epochs: dict[str, list[int]] = defaultdict(list)

    def __call__(self, trial) -> None:
        label = trial.name.rsplit("-seed", 1)[0]
        value = self.scores[label][trial.seed]
        for epoch in range(trial.start_epoch, trial.epochs):
            self.epochs[trial.name].append(epoch)
            v = value[epoch] if isinstance(value, list) else value
            trial.report(epoch, val_top1=v, checkpoint={"epoch": torch.tensor(epoch)})
