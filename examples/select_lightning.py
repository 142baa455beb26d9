"""Choosing theta, the switch epoch S, the final theta and when to stop for a Lightning model, with tsla.select.

    pip install "tsla[lightning]"
    python examples/select_lightning.py [OUT]           # OUT defaults to runs/select-lightning (a few minutes)

``train_fn(trial)`` builds a ``LightningModule`` (a 1-D CNN classifying generated signals, 20 % of the labels
wrong, SGD with a per-epoch cosine learning rate) whose training loss reads theta from ``trial.scheduler``, and
fits it with ``lightning.Trainer``. A callback, :class:`ReportToTrial`, ends every epoch after its validation: it
takes Lightning's own checkpoint of the trainer (weights, optimizer, learning-rate scheduler, loop counters) and
calls ``trial.report(epoch, val_top1=..., val_nll=..., checkpoint=...)``, which also steps ``trial.scheduler``.
When tsla hands over a checkpoint (a resume, or a branch starting at its switch epoch from its trunk's state),
``trainer.fit(..., ckpt_path=...)`` restores it, so training continues at ``trial.start_epoch``.

Prints one line per trained epoch, then the choice, how sure it is, the stop epoch per seed and the epoch count to
retrain with without a validation split. Everything is in OUT (``selection.json``, one folder per run); killed,
the same command continues.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import lightning.pytorch as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # select_data.py, beside this file

import tsla  # noqa: E402
from select_data import EpochShuffle, SignalCNN, split, val_numbers  # noqa: E402


class SignalModule(L.LightningModule):
    """The CNN, trained with ``criterion`` (theta read from the trial's scheduler at every call) and validated with
    plain cross-entropy; ``val`` holds the last validation's numbers, over the whole split."""

    def __init__(self, criterion: tsla.LabelSmoothingCrossEntropy, epochs: int, lr: float) -> None:
        super().__init__()
        self.net, self.criterion, self.epochs, self.lr = SignalCNN(), criterion, epochs, lr
        self.val: dict[str, float] = {}
        self._val_batches: list[tuple[torch.Tensor, torch.Tensor]] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return self.criterion(self.net(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self._val_batches.append((self.net(x), y))

    def on_validation_epoch_end(self) -> None:
        logits, y = (torch.cat(t) for t in zip(*self._val_batches))
        self._val_batches.clear()
        self.val = val_numbers(logits, y)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9, weight_decay=5e-4)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "epoch"}}


class ReportToTrial(L.Callback):
    """Ends each epoch of ``trial``'s run after its validation with ``trial.report``, passing Lightning's own
    checkpoint (saved to ``folder``, read back weights-only) as the trial's checkpoint. ``trained`` lists the
    epochs Lightning trained (its own counter). Raises ``RuntimeError`` if Lightning's epoch is not the one the
    trial's scheduler is at (theta would be another epoch's)."""

    def __init__(self, trial: Any, folder: Path, trained: list[int], verbose: bool = True) -> None:
        self.trial, self.path, self.trained, self.verbose = trial, folder / "last.ckpt", trained, verbose

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch != self.trial.scheduler.last_epoch:
            raise RuntimeError(f"Lightning is at epoch {trainer.current_epoch}, the trial's scheduler at "
                               f"{self.trial.scheduler.last_epoch}: the checkpoint did not restore the epoch")
        self.trained.append(trainer.current_epoch)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        trainer.save_checkpoint(self.path)  # what ModelCheckpoint saves here: a resume starts the next epoch
        checkpoint = torch.load(self.path, map_location="cpu", weights_only=True)
        epoch, theta = trainer.current_epoch, self.trial.scheduler.get_last_theta()
        if self.verbose:
            print(f"{self.trial.name} epoch {epoch}: theta {theta:+.2f}, val_top1 {pl_module.val['val_top1']:.3f}, "
                  f"val_nll {pl_module.val['val_nll']:.3f}", flush=True)
        self.trial.report(epoch, **pl_module.val, checkpoint={"lightning": checkpoint})


class SignalLightning:
    """The ``train_fn``: one call fits one run of the selection with a fresh ``lightning.Trainer``.

    Why Lightning's own checkpoint, restored through ``ckpt_path``: it carries the loop counters, so
    ``trainer.current_epoch`` (and with it the learning-rate schedule's epoch and the epoch ``EpochShuffle``
    draws its order from) continues at ``trial.start_epoch`` exactly as in an uninterrupted fit, with
    ``max_epochs=trial.epochs`` unchanged; an epoch offset kept beside Lightning would have to be added to each of
    those by hand. tsla's ``SmoothingCallback`` is not used: it saves the scheduler's state into Lightning's
    checkpoint and loads it back on resume, so a branch would be handed its trunk's schedule (LSR), which its own
    scheduler refuses to load ("build it as the saved run was built"); and it sets the scheduler's position from
    Lightning's counter. Here ``trial.report`` alone moves theta, once per epoch.

    ``trained[name]`` lists the epochs Lightning trained per run. Deterministic on a CPU: a branch's numbers
    equal an uninterrupted fit's.
    """

    def __init__(self, n_train: int = 2000, n_val: int = 1000, label_noise: float = 0.2, batch_size: int = 64,
                 lr: float = 0.1, verbose: bool = True) -> None:
        x, y, x_val, y_val = split(n_train, n_val, label_noise)
        self.train_set = torch.utils.data.TensorDataset(x, y)
        self.val_set = torch.utils.data.TensorDataset(x_val, y_val)
        self.n_val, self.batch_size, self.lr, self.verbose = n_val, batch_size, lr, verbose
        self.trained: dict[str, list[int]] = defaultdict(list)

    def __call__(self, trial: Any) -> None:
        torch.manual_seed(trial.seed)  # the initial weights: one draw per seed, shared by every candidate
        criterion = tsla.LabelSmoothingCrossEntropy(scheduler=trial.scheduler, allow_negative=True)
        module = SignalModule(criterion, trial.epochs, self.lr)
        train = torch.utils.data.DataLoader(self.train_set, batch_size=self.batch_size,
                                            sampler=EpochShuffle(len(self.train_set), trial.seed))
        val = torch.utils.data.DataLoader(self.val_set, batch_size=len(self.val_set))
        with tempfile.TemporaryDirectory() as tmp:
            resume = None
            if trial.checkpoint is not None:  # a resume, or a branch from its trunk's state after epoch S - 1
                resume = Path(tmp) / "resume.ckpt"
                torch.save(trial.checkpoint["lightning"], resume)
            trainer = L.Trainer(max_epochs=trial.epochs, accelerator="cpu", devices=1, logger=False,
                                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                                num_sanity_val_steps=0, default_root_dir=tmp,
                                callbacks=[ReportToTrial(trial, Path(tmp), self.trained[trial.name], self.verbose)])
            trainer.fit(module, train, val, ckpt_path=resume, weights_only=True)


def main(out: str | Path, loop: SignalLightning | None = None, *, thetas: Sequence[float] = (0.1, 0.3),
         switch_at: Sequence[int] = (5, 8), epochs: int = 10, seeds: Sequence[int] = (0, 1, 2)) -> Any:
    """Run the selection into ``out`` with ``loop`` (default: ``SignalLightning()``), print what it chose, and
    return the :class:`SelectionResult`. Raises what ``tsla.select`` raises."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no device banner per run
    warnings.filterwarnings("ignore", ".*does not have many workers.*")  # the data are tensors in memory
    loop = loop or SignalLightning()
    result = tsla.select(loop, thetas=list(thetas), switch_at=list(switch_at), theta_after=[0.0, -0.2],
                         epochs=epochs, seeds=list(seeds), n_val=loop.n_val, out=out)  # prints the summary
    print(f"stop epochs (counted from 0) per seed: {result.stop_epochs}")
    print(f"recommended epochs to retrain {result.label} without a validation split: {result.recommended_epochs}")
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/select-lightning")
