"""Choosing theta, the switch epoch S, the final theta and when to stop for a Hugging Face Trainer, with tsla.select.

    pip install "tsla[hf]"
    python examples/select_hf_trainer.py [OUT]          # OUT defaults to runs/select-hf-trainer (a few minutes)

``train_fn(trial)`` trains a small torch module (a 1-D CNN classifying generated signals, 20 % of the labels wrong,
returning ``{"logits"}``) with ``transformers.Trainer``. The loss is a ``compute_loss_func`` reading theta from
``trial.scheduler`` at every training call (evaluation: plain cross-entropy); a ``TrainerCallback`` ends every
epoch after its evaluation with ``trial.report(epoch, val_top1=..., val_nll=..., checkpoint=...)``, which also
steps ``trial.scheduler``. The checkpoint is the model, optimizer and learning-rate scheduler states; a resume or a
branch loads them and trains the remaining ``trial.epochs - trial.start_epoch`` epochs (see :class:`SignalHF`).

Prints one line per trained epoch, then the choice, how sure it is, the stop epoch per seed and the epoch count to
retrain with without a validation split. Everything is in OUT (``selection.json``, one folder per run); killed,
the same command continues.
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))  # select_data.py, beside this file

import tsla  # noqa: E402
from select_data import EpochShuffle, SignalCNN, split, val_numbers  # noqa: E402


class SignalClassifier(torch.nn.Module):
    """The CNN as the Trainer wants a model: keyword inputs, a dict with ``logits`` out (the loss is computed by
    the Trainer's ``compute_loss_func``); ``labels`` is named so that the Trainer hands them to that loss."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn = SignalCNN()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"logits": self.cnn(x)}


class SmoothedLoss:
    """``compute_loss_func(outputs, labels, num_items_in_batch)``: label smoothing at the trial scheduler's theta
    while training (summed, divided by the Trainer's count of labels in the accumulated batch), plain
    cross-entropy under evaluation (no gradients)."""

    def __init__(self, scheduler: tsla.SmoothingScheduler) -> None:
        self.criterion = tsla.LabelSmoothingCrossEntropy(reduction="sum", scheduler=scheduler, allow_negative=True)

    def __call__(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"]
        if not torch.is_grad_enabled():
            return torch.nn.functional.cross_entropy(logits, labels)
        count = len(labels) if num_items_in_batch is None else num_items_in_batch
        return self.criterion(logits, labels) / count


class EpochTrainer(transformers.Trainer):
    """A Trainer drawing its training batches from ``order`` (an :class:`EpochShuffle`) instead of its own random
    sampler, whose order depends on the epochs the Trainer counted in this call."""

    def __init__(self, *args: Any, order: EpochShuffle, **kwargs: Any) -> None:
        self.order = order
        super().__init__(*args, **kwargs)

    def _get_train_sampler(self, train_dataset: Any = None) -> EpochShuffle:
        return self.order


class ReportToTrial(transformers.TrainerCallback):
    """Ends each epoch of ``trial``'s run after its evaluation with ``trial.report``. The Trainer counts the epochs
    of this call from 0; the trial's are ``trial.start_epoch`` + that. ``trained`` lists the epochs trained."""

    def __init__(self, trial: Any, trained: list[int], verbose: bool = True) -> None:
        self.trial, self.trained, self.verbose = trial, trained, verbose

    def _epoch(self, state: Any) -> int:
        return self.trial.start_epoch + round(state.epoch or 0.0)  # state.epoch: epochs done in this call

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.trained.append(self._epoch(state))

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float], model: Any = None,
                    optimizer: Any = None, lr_scheduler: Any = None, **kwargs: Any) -> None:
        checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "lr_schedule": lr_scheduler.state_dict()}
        epoch, theta = self._epoch(state) - 1, self.trial.scheduler.get_last_theta()
        if self.verbose:
            print(f"{self.trial.name} epoch {epoch}: theta {theta:+.2f}, val_top1 {metrics['eval_val_top1']:.3f}, "
                  f"val_nll {metrics['eval_val_nll']:.3f}", flush=True)
        self.trial.report(epoch, val_top1=metrics["eval_val_top1"], val_nll=metrics["eval_val_nll"],
                          checkpoint=checkpoint)


def _val_numbers(prediction: transformers.EvalPrediction) -> dict[str, float]:
    return val_numbers(torch.as_tensor(prediction.predictions), torch.as_tensor(prediction.label_ids))


class SignalHF:
    """The ``train_fn``: one call trains one run of the selection with a fresh ``transformers.Trainer``.

    The Trainer resumes only from a checkpoint folder of its own, so this loop owns what a resume needs: it builds
    the optimizer and the learning-rate scheduler (cosine over the whole run's optimizer steps, ``trial.epochs`` x
    steps per epoch), loads their states and the model's from ``trial.checkpoint``, hands them to the Trainer
    (``optimizers=``) and trains ``trial.epochs - trial.start_epoch`` epochs. The Trainer counts them from 0, so
    the callback adds ``trial.start_epoch`` to its epoch, and so does the batch order (``EpochShuffle`` with
    ``first_epoch=trial.start_epoch``): a branch sees the batches an uninterrupted run sees at the same epoch.
    tsla's ``SmoothingTrainer`` is not used: its callback sets the scheduler's epoch from the Trainer's step count,
    which starts at 0 in this call (a branch would train with epoch 0's theta); here ``trial.report`` alone moves
    theta, once per epoch.

    ``trained[name]`` lists the epochs trained per run (counted by the callback from the Trainer's epoch).
    """

    def __init__(self, n_train: int = 2000, n_val: int = 1000, label_noise: float = 0.2, batch_size: int = 64,
                 lr: float = 0.1, verbose: bool = True) -> None:
        x, y, x_val, y_val = split(n_train, n_val, label_noise)
        self.train_set = [{"x": x[i], "labels": y[i]} for i in range(len(y))]
        self.val_set = [{"x": x_val[i], "labels": y_val[i]} for i in range(len(y_val))]
        self.n_val, self.batch_size, self.lr, self.verbose = n_val, batch_size, lr, verbose
        self.trained: dict[str, list[int]] = defaultdict(list)

    def __call__(self, trial: Any) -> None:
        torch.manual_seed(trial.seed)  # the initial weights: one draw per seed, shared by every candidate
        model = SignalClassifier()
        optimizer = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9, weight_decay=5e-4)
        steps = trial.epochs * math.ceil(len(self.train_set) / self.batch_size)  # optimizer steps of the whole run
        lr_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)  # the Trainer steps it
        if trial.checkpoint is not None:  # a resume, or a branch from its trunk's state after epoch S - 1
            model.load_state_dict(trial.checkpoint["model"])
            optimizer.load_state_dict(trial.checkpoint["optimizer"])
            lr_schedule.load_state_dict(trial.checkpoint["lr_schedule"])
        with tempfile.TemporaryDirectory() as tmp:
            args = transformers.TrainingArguments(
                output_dir=tmp, num_train_epochs=trial.epochs - trial.start_epoch, seed=trial.seed, use_cpu=True,
                per_device_train_batch_size=self.batch_size, per_device_eval_batch_size=len(self.val_set),
                eval_strategy="epoch", save_strategy="no", logging_strategy="no", report_to="none",
                disable_tqdm=True, dataloader_num_workers=0)
            trainer = EpochTrainer(model=model, args=args, train_dataset=self.train_set, eval_dataset=self.val_set,
                                   optimizers=(optimizer, lr_schedule), compute_loss_func=SmoothedLoss(trial.scheduler),
                                   compute_metrics=_val_numbers, order=EpochShuffle(len(self.train_set), trial.seed,
                                                                                   trial.start_epoch),
                                   callbacks=[ReportToTrial(trial, self.trained[trial.name], self.verbose)])
            trainer.remove_callback(transformers.PrinterCallback)  # ReportToTrial prints one line per epoch
            trainer.train()


def main(out: str | Path, loop: SignalHF | None = None, *, thetas: Sequence[float] = (0.1, 0.3),
         switch_at: Sequence[int] = (5, 8), epochs: int = 10, seeds: Sequence[int] = (0, 1, 2)) -> Any:
    """Run the selection into ``out`` with ``loop`` (default: ``SignalHF()``), print what it chose, and return the
    :class:`SelectionResult`. Raises what ``tsla.select`` raises."""
    transformers.logging.set_verbosity_error()
    loop = loop or SignalHF()
    result = tsla.select(loop, thetas=list(thetas), switch_at=list(switch_at), theta_after=[0.0, -0.2],
                         epochs=epochs, seeds=list(seeds), n_val=loop.n_val, out=out)  # prints the summary
    print(f"stop epochs (counted from 0) per seed: {result.stop_epochs}")
    print(f"recommended epochs to retrain {result.label} without a validation split: {result.recommended_epochs}")
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/select-hf-trainer")
