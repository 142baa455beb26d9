"""Choosing theta, the switch epoch S, the final theta and when to stop for your own PyTorch loop, with tsla.select.

    python examples/select_plain_loop.py [OUT]          # OUT defaults to runs/select-plain-loop (1-2 minutes)

The loop is an ordinary epoch loop (a 1-D CNN classifying generated signals, 20 % of the labels wrong, SGD with a
cosine learning rate) turned into a ``train_fn(trial)``: it builds its model from ``trial.seed``, loads
``trial.checkpoint`` (model, optimizer and learning-rate scheduler) when tsla hands one over — a resume, or a
branch starting at its switch epoch from its trunk's state — trains epochs ``trial.start_epoch`` ..
``trial.epochs - 1`` with a loss that reads theta from ``trial.scheduler``, and ends each epoch with
``trial.report(epoch, val_top1=..., val_nll=..., checkpoint=...)``, which also steps that scheduler.
tsla.select trains the baseline, LSR, TSLA(S) and LSR ending on theta = -0.2 at S for every theta and seed (each
TSLA run a branch of its LSR run from epoch S) and chooses on validation.

Prints one line per trained epoch, then the choice, how sure it is, the stop epoch per seed, the epoch count to
retrain with without a validation split, and where the chosen runs' best checkpoints are. Everything is in OUT
(``selection.json``, one folder per run); killed, the same command continues where it stopped.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # select_data.py, beside this file

import tsla  # noqa: E402
from select_data import SignalCNN, split, val_numbers  # noqa: E402


class SignalLoop:
    """The ``train_fn``: one call trains one run of the selection (see the module docstring).

    ``trained[name]`` lists the epochs this loop trained for each run (counted here, in the loop), so that a test
    can check that no epoch is trained twice. Batches are drawn in an order fixed by (seed, epoch), and nothing
    else is random after the weights are built: a branch's numbers equal an uninterrupted run's.
    """

    def __init__(self, n_train: int = 2000, n_val: int = 1000, label_noise: float = 0.2, batch_size: int = 64,
                 lr: float = 0.1, verbose: bool = True) -> None:
        self.x, self.y, self.x_val, self.y_val = split(n_train, n_val, label_noise)
        self.n_val, self.batch_size, self.lr, self.verbose = n_val, batch_size, lr, verbose
        self.trained: dict[str, list[int]] = defaultdict(list)

    def __call__(self, trial: Any) -> None:
        torch.manual_seed(trial.seed)  # the initial weights: one draw per seed, shared by every candidate
        model = SignalCNN()
        optimizer = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9, weight_decay=5e-4)
        lr_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=trial.epochs)  # stepped per epoch
        if trial.checkpoint is not None:  # a resume, or a branch from its trunk's state after epoch S - 1
            model.load_state_dict(trial.checkpoint["model"])
            optimizer.load_state_dict(trial.checkpoint["optimizer"])
            lr_schedule.load_state_dict(trial.checkpoint["lr_schedule"])
        # theta is read from trial.scheduler at every call; trial.report steps it, this loop never does
        criterion = tsla.LabelSmoothingCrossEntropy(scheduler=trial.scheduler, allow_negative=True)
        for epoch in range(trial.start_epoch, trial.epochs):  # epochs counted from 0
            self.trained[trial.name].append(epoch)
            theta = trial.scheduler.get_last_theta()
            model.train()
            order = torch.randperm(len(self.y), generator=torch.Generator().manual_seed(100_003 * trial.seed + epoch))
            for batch in order.split(self.batch_size):
                loss = criterion(model(self.x[batch]), self.y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            lr_schedule.step()
            model.eval()
            with torch.no_grad():
                numbers = val_numbers(model(self.x_val), self.y_val)  # plain cross-entropy, never the smoothed loss
            if self.verbose:
                print(f"{trial.name} epoch {epoch}: theta {theta:+.2f}, val_top1 {numbers['val_top1']:.3f}, "
                      f"val_nll {numbers['val_nll']:.3f}", flush=True)
            trial.report(epoch, **numbers, checkpoint={"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                                       "lr_schedule": lr_schedule.state_dict()})


def main(out: str | Path, loop: SignalLoop | None = None, *, thetas: Sequence[float] = (0.1, 0.3),
         switch_at: Sequence[int] = (5, 8), epochs: int = 10, seeds: Sequence[int] = (0, 1, 2)) -> Any:
    """Run the selection into ``out`` with ``loop`` (default: ``SignalLoop()``), print what it chose, and return
    the :class:`SelectionResult`. Raises what ``tsla.select`` raises."""
    loop = loop or SignalLoop()
    result = tsla.select(loop, thetas=list(thetas), switch_at=list(switch_at), theta_after=[0.0, -0.2],
                         epochs=epochs, seeds=list(seeds), n_val=loop.n_val, out=out)  # prints the summary
    print(f"stop epochs (counted from 0) per seed: {result.stop_epochs}")
    print(f"recommended epochs to retrain {result.label} without a validation split: {result.recommended_epochs}")
    for seed, path in result.checkpoints.items():
        print(f"seed {seed}: its best checkpoint is {Path(out) / path} (torch.load(..., weights_only=True)"
              f"['checkpoint'] holds what the loop reported)")
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/select-plain-loop")
