"""TSLA in the Hugging Face ``transformers.Trainer``: a Trainer subclass that owns the scheduler, the loss and the
callback, so all three see the same object, and keeps the scheduler's state in every checkpoint.

    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.1, 3))      # or .auto_two_stage(0.1, ...)
    trainer = SmoothingTrainer(model=model, args=args, train_dataset=..., smoothing=scheduler)
    trainer.train()                                    # later: trainer.train(resume_from_checkpoint=True)

Why a subclass: the Trainer builds its loss once, a ``TrainerCallback`` cannot reach the Trainer, and with
``restore_callback_states_from_checkpoint`` the Trainer re-creates callbacks from their JSON arguments, so a
callback holding the scheduler would lose it. Here the scheduler lives on the Trainer; its state is written as
``tsla_smoothing.json`` into every checkpoint folder (beside the model) and read back by ``train(resume_from_checkpoint=...)``.

The loss (:class:`SmoothedLoss`, passed as ``compute_loss_func``) is token-level ready: logits (..., K) against
labels (...), ``-100`` labels ignored, summed and divided by the Trainer's ``num_items_in_batch`` (the kept labels
of the whole accumulated batch, over all devices when ``average_tokens_across_devices``), so gradient accumulation
gives the mean over every kept label, as one large batch would. Causal language models: ``shift_labels=True``.

The position is the Trainer's own: its epoch per epoch, ``state.global_step`` (optimizer steps) with
``steps_per_epoch``. Each epoch is reported (tsla-auto decides) in ``on_epoch_end``, before the Trainer saves.
Evaluation uses the same loss function (the Trainer's design); its calls, without gradients, are not tracked.
Checkpoints taken inside an epoch resume theta exactly, but tsla-auto then hears that epoch's one-hot loss over the
steps after the resume only: save per epoch (``save_strategy="epoch"``) for an exact tsla-auto.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

import torch

from . import require
from .pytorch import report_epoch
from ..losses.cross_entropy import LabelSmoothingCrossEntropy
from ..smoothing.scheduler import SmoothingScheduler

transformers = require("transformers", "hf", "Hugging Face transformers")
require("accelerate", "hf", "Hugging Face accelerate (the Trainer needs it)")
from transformers.trainer_utils import get_last_checkpoint  # noqa: E402

STATE_FILE = "tsla_smoothing.json"


class SmoothedLoss:
    """A ``compute_loss_func(outputs, labels, num_items_in_batch)``: label-smoothed cross-entropy at the
    scheduler's current theta, summed over the kept labels and divided by ``num_items_in_batch`` (or, without it,
    by this batch's count of kept labels). ``criterion`` (tracking the one-hot term) feeds tsla-auto."""

    def __init__(self, scheduler: SmoothingScheduler, prior: torch.Tensor | None = None, ignore_index: int = -100,
                 shift_labels: bool = False) -> None:
        self.criterion = LabelSmoothingCrossEntropy(prior, reduction="sum", ignore_index=ignore_index,
                                                    scheduler=scheduler, track_onehot=True)
        self.ignore_index = ignore_index
        self.shift_labels = shift_labels

    def __call__(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        if labels is None:
            raise ValueError("the batch reached the loss without labels: name them 'labels' and give the model's "
                             "forward a labels=None argument (or set TrainingArguments(label_names=['labels']))")
        logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]
        if self.shift_labels:  # position t predicts token t + 1
            logits, labels = logits[..., :-1, :], labels[..., 1:]
        logits = logits.reshape(-1, logits.shape[-1])
        labels = labels.reshape(-1).to(logits.device)
        total = self.criterion(logits, labels)
        count = num_items_in_batch if num_items_in_batch is not None else (labels != self.ignore_index).sum()
        if torch.is_tensor(count):
            count = count.to(total.device)
        return total / count


class _SmoothingCallback(transformers.TrainerCallback):
    """Keeps the scheduler at the Trainer's position and reports each finished epoch (tsla-auto)."""

    def __init__(self, scheduler: SmoothingScheduler, loss: SmoothedLoss) -> None:
        self.scheduler, self.loss, self.epoch = scheduler, loss, 0

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # the Trainer's epoch is fractional (epoch + done steps / steps in the epoch): its whole part, with slack
        # for the float sum; a resume inside an epoch lands here with that epoch's fraction
        self.epoch = math.floor((state.epoch or 0.0) + 1e-6)
        if self.scheduler.steps_per_epoch is None:
            self.scheduler.last_epoch = self.epoch
        self.loss.criterion.pop_onehot_sums()  # nothing from before this epoch (e.g. an earlier train() call)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.scheduler.steps_per_epoch is not None:
            self.scheduler.last_epoch = state.global_step

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        report_epoch(self.scheduler, self.epoch, self.loss.criterion)


class SmoothingTrainer(transformers.Trainer):
    """``transformers.Trainer`` training with label smoothing from ``smoothing`` (a :class:`tsla.SmoothingScheduler`).

    Takes the Trainer's arguments, plus ``prior`` (None: uniform) and ``shift_labels`` (causal LM) for
    :class:`SmoothedLoss`. Raises ``ValueError`` if ``compute_loss_func`` is also given, and, on resume, if the
    checkpoint folder has no ``tsla_smoothing.json`` (it was not written by a SmoothingTrainer).
    """

    def __init__(self, *args: Any, smoothing: SmoothingScheduler, prior: torch.Tensor | None = None,
                 shift_labels: bool = False, **kwargs: Any) -> None:
        if kwargs.get("compute_loss_func") is not None:
            raise ValueError("SmoothingTrainer computes the loss itself (tsla.integrations.hf.SmoothedLoss): "
                             "leave compute_loss_func out")
        self.smoothing = smoothing
        self.smoothed_loss = SmoothedLoss(smoothing, prior, shift_labels=shift_labels)
        callbacks = [_SmoothingCallback(smoothing, self.smoothed_loss), *(kwargs.pop("callbacks", None) or [])]
        super().__init__(*args, compute_loss_func=self.smoothed_loss, callbacks=callbacks, **kwargs)

    def train(self, resume_from_checkpoint: str | bool | None = None, *args: Any, **kwargs: Any) -> Any:
        """``Trainer.train``; resuming, the scheduler's state comes back from the checkpoint first."""
        path = resume_from_checkpoint
        if path is True:  # the Trainer's own rule: the last checkpoint in output_dir
            path = get_last_checkpoint(self.args.output_dir)
        if isinstance(path, (str, os.PathLike)):
            state_file = os.path.join(path, STATE_FILE)
            if not os.path.isfile(state_file):
                raise ValueError(f"{state_file} is missing: resume a SmoothingTrainer from a checkpoint that a "
                                 f"SmoothingTrainer saved")
            with open(state_file) as f:
                self.smoothing.load_state_dict(json.load(f))
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """``Trainer.save_model`` (also what each checkpoint calls), plus the scheduler's state beside the model."""
        super().save_model(output_dir, _internal_call)
        if self.args.should_save:
            folder = output_dir or self.args.output_dir
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, STATE_FILE), "w") as f:
                json.dump(self.smoothing.state_dict(), f, indent=1)
