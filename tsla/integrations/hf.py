"""TSLA in the Hugging Face ``transformers.Trainer``: a Trainer subclass that owns the scheduler, the loss and the
callback, so all three see the same object, and keeps the scheduler's state in every checkpoint.

    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.1, 3))      # or .auto_two_stage(0.1, ...)
    trainer = SmoothingTrainer(model=model, args=args, train_dataset=..., smoothing=scheduler)
    trainer.train()                                    # later: trainer.train(resume_from_checkpoint=True)

Why a subclass: the Trainer builds its loss once, a ``TrainerCallback`` cannot reach the Trainer, and with
``restore_callback_states_from_checkpoint`` the Trainer re-creates callbacks from their JSON arguments, so a
callback holding the scheduler would lose it. Here the scheduler lives on the Trainer; its state is written as
``tsla_smoothing.json`` into every checkpoint folder (beside the model) and read back by ``train(resume_from_checkpoint=...)``.
A Trainer subclass of your own: derive it from :class:`SmoothingTrainer` instead of ``transformers.Trainer``.

The loss (:class:`SmoothedLoss`, passed as ``compute_loss_func``) is token-level ready: logits (..., K) against
labels (...), ``-100`` labels ignored, summed and divided by the Trainer's ``num_items_in_batch`` (the kept labels
of the whole accumulated batch, over all devices when ``average_tokens_across_devices``), so gradient accumulation
gives the mean over every kept label, as one large batch would. Causal language models: ``shift_labels=True``.
Evaluation (calls without gradients) uses theta = 0: ``eval_loss`` is the plain one-hot cross-entropy.

The position is the Trainer's own optimizer step counter ``state.global_step``, read before every step: the epoch
is ``global_step // (optimizer steps per epoch)`` (per step with ``steps_per_epoch``, which must equal the Trainer's
count). An epoch is reported (tsla-auto decides) in ``on_epoch_end`` when its last step is done, before the Trainer
saves. The one-hot sums of the epoch in progress go into every checkpoint, so a checkpoint taken inside an epoch, or
after its last step and before its end (``save_strategy="steps"``), resumes tsla-auto exactly. ``log_history`` gets
``smoothing_theta`` and ``train_onehot_loss`` (F since the last log) beside each training ``loss``.
``hyperparameter_search`` may search ``theta`` and ``switch_epoch``: each trial trains its own schedule.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

import torch

from . import require
from .epoch_sums import EpochOnehot
from .pytorch import report_epoch
from .run_length import warn_if_before_switch, warn_if_switch_unreachable
from .trial import SEARCH_KEYS, trial_scheduler
from ..losses.cross_entropy import LabelSmoothingCrossEntropy
from ..smoothing.scheduler import SmoothingScheduler

transformers = require("transformers", "hf", "Hugging Face transformers")
require("accelerate", "hf", "Hugging Face accelerate (the Trainer needs it)")
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES  # noqa: E402
from transformers.trainer_utils import HPSearchBackend, get_last_checkpoint  # noqa: E402

STATE_FILE = "tsla_smoothing.json"


class SmoothedLoss:
    """A ``compute_loss_func(outputs, labels, num_items_in_batch)``: label-smoothed cross-entropy at the
    scheduler's current theta, summed over the kept labels and divided by ``num_items_in_batch`` (or, without it,
    by this batch's count of kept labels). ``criterion`` (tracking the one-hot term) feeds tsla-auto. Calls without
    gradients (evaluation) use theta = 0, the plain cross-entropy.

    ``allow_negative=True`` lets the scheduler's theta be negative (in [-1, 0), negative label smoothing), as on
    :class:`tsla.LabelSmoothingCrossEntropy`; without it a training call at a negative theta raises the loss's
    ``ValueError``. Only a :class:`SmoothingTrainer` moves theta: a training call from any other Trainer raises
    ``ValueError``.
    """

    def __init__(self, scheduler: SmoothingScheduler, prior: torch.Tensor | None = None, ignore_index: int = -100,
                 shift_labels: bool = False, allow_negative: bool = False) -> None:
        self.criterion = LabelSmoothingCrossEntropy(prior, reduction="sum", ignore_index=ignore_index,
                                                    scheduler=scheduler, track_onehot=True,
                                                    allow_negative=allow_negative)
        self.ignore_index = ignore_index
        self.shift_labels = shift_labels
        self.trainer_attached = False  # set by SmoothingTrainer, whose callback moves theta

    def __call__(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        if labels is None:
            raise ValueError("the batch reached the loss without labels: name them 'labels' and give the model's "
                             "forward a labels=None argument (or set TrainingArguments(label_names=['labels']))")
        training = torch.is_grad_enabled()
        if training and not self.trainer_attached:
            raise ValueError("SmoothedLoss is training under a Trainer that never moves theta (a plain "
                             "transformers.Trainer): use tsla.integrations.hf.SmoothingTrainer(..., smoothing=scheduler)")
        logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]
        if self.shift_labels:  # position t predicts token t + 1
            logits, labels = logits[..., :-1, :], labels[..., 1:]
        logits = logits.reshape(-1, logits.shape[-1])
        labels = labels.reshape(-1).to(logits.device)
        total = self.criterion(logits, labels, theta=None if training else 0.0)
        count = num_items_in_batch if num_items_in_batch is not None else (labels != self.ignore_index).sum()
        if torch.is_tensor(count):
            count = count.to(total.device)
        return total / count


def optimizer_steps_per_epoch(batches: int, accumulation: int) -> int:
    """The Trainer's count: one optimizer step per ``accumulation`` batches, and one for a shorter last group."""
    return max(math.ceil(batches / accumulation), 1)


class _SmoothingCallback(transformers.TrainerCallback):
    """Keeps the scheduler at the Trainer's step, collects the one-hot sums and reports each finished epoch."""

    def __init__(self, scheduler: SmoothingScheduler, loss: SmoothedLoss, onehot: EpochOnehot) -> None:
        self.scheduler, self.loss, self.onehot = scheduler, loss, onehot
        self.steps_per_epoch: int | None = None  # the Trainer's optimizer steps per epoch (None: data of no length)
        self.epoch = 0
        self._reported: int | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, train_dataloader: Any = None, **kwargs: Any) -> None:
        try:
            batches = len(train_dataloader)
        except TypeError:  # an IterableDataset: epochs are whatever the Trainer calls them
            batches = None
        self.steps_per_epoch = None if batches is None else optimizer_steps_per_epoch(
            batches, args.gradient_accumulation_steps)
        per_step = self.scheduler.steps_per_epoch
        if per_step is not None and self.steps_per_epoch is not None and per_step != self.steps_per_epoch:
            raise ValueError(f"the scheduler has steps_per_epoch={per_step}, but this Trainer takes "
                             f"{self.steps_per_epoch} optimizer steps per epoch ({batches} batches, "
                             f"gradient_accumulation_steps={args.gradient_accumulation_steps}): build it with "
                             f"steps_per_epoch={self.steps_per_epoch}")
        length = f"max_steps={args.max_steps}" if args.max_steps > 0 else f"num_train_epochs={args.num_train_epochs:g}"
        warn_if_switch_unreachable(self.scheduler, state.num_train_epochs, length)
        self._report_closed_epoch(state)

    def _report_closed_epoch(self, state: Any) -> None:
        """A checkpoint taken after an epoch's last step but before its end (``save_strategy="steps"``) resumes in
        the next epoch, and the Trainer never ends the closed one: report it from the saved sums."""
        auto, n = self.scheduler.auto, self.steps_per_epoch
        if auto is None or n is None or state.global_step == 0 or state.global_step % n:
            return
        closed = state.global_step // n - 1
        if (auto.history[-1]["epoch"] if auto.history else -1) == closed - 1:
            self._report(closed)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:  # EarlyStoppingCallback may have ended the run before the switch
            warn_if_before_switch(self.scheduler, self.scheduler.epoch, planned_epochs=state.num_train_epochs)

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._place(state)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._place(state)

    def _place(self, state: Any) -> None:
        if self.steps_per_epoch is not None:
            self.epoch = state.global_step // self.steps_per_epoch
        else:  # the Trainer's fractional epoch: its whole part, with slack for the float sum
            self.epoch = math.floor((state.epoch or 0.0) + 1e-6)
        self.scheduler.last_epoch = state.global_step if self.scheduler.steps_per_epoch is not None else self.epoch

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.onehot.collect()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.steps_per_epoch is not None and (state.global_step == 0 or state.global_step % self.steps_per_epoch):
            return  # stopped inside an epoch (max_steps, a stop): nothing closed; its sums stay in the checkpoint
        self._report(self.epoch if self.steps_per_epoch is None else state.global_step // self.steps_per_epoch - 1)

    def _report(self, epoch: int) -> None:
        if self._reported != epoch:
            self._reported = epoch
            report_epoch(self.scheduler, epoch, self.loss.criterion, sums=self.onehot.pop())


class SmoothingTrainer(transformers.Trainer):
    """``transformers.Trainer`` training with label smoothing from ``smoothing`` (a :class:`tsla.SmoothingScheduler`).

    Takes the Trainer's arguments, plus ``prior`` (None: uniform), ``shift_labels`` (causal LM) and
    ``allow_negative`` (a schedule reaching a negative theta) for :class:`SmoothedLoss`. Raises ``ValueError`` if
    ``compute_loss_func`` is also given, if ``args.label_smoothing_factor`` is not 0 (the Trainer would ignore it
    beside this loss), for a causal language model of ``transformers`` without ``shift_labels=True``, for a second
    ``train()`` of tsla-auto without a resume, and, on resume, if the checkpoint folder has no ``tsla_smoothing.json``
    (it was not written by a SmoothingTrainer). Warns once (``UserWarning``) when training starts with the switch
    epoch beyond the run's length, or ends before the switch epoch (``EarlyStoppingCallback``).

    ``hyperparameter_search``: ``theta`` and ``switch_epoch`` may be in the search space; each trial trains
    ``smoothing``'s schedule with the trial's values put in, from a fresh scheduler (``smoothing_template`` keeps the
    constructor's; ``smoothing`` is the current trial's).
    """

    def __init__(self, *args: Any, smoothing: SmoothingScheduler, prior: torch.Tensor | None = None,
                 shift_labels: bool = False, allow_negative: bool = False, **kwargs: Any) -> None:
        if kwargs.get("compute_loss_func") is not None:
            raise ValueError("SmoothingTrainer computes the loss itself (tsla.integrations.hf.SmoothedLoss): "
                             "leave compute_loss_func out")
        training_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        factor = getattr(training_args, "label_smoothing_factor", 0)
        if factor != 0:
            raise ValueError(f"TrainingArguments(label_smoothing_factor={factor}) is ignored beside tsla's loss: set it "
                             f"to 0 and give theta through smoothing=")
        self.smoothing = smoothing
        self.smoothing_template = smoothing  # what each hyperparameter-search trial starts from
        self.smoothed_loss = SmoothedLoss(smoothing, prior, shift_labels=shift_labels, allow_negative=allow_negative)
        self.smoothed_loss.trainer_attached = True
        self.onehot = EpochOnehot(self.smoothed_loss.criterion)
        self._smoothing_callback = _SmoothingCallback(smoothing, self.smoothed_loss, self.onehot)
        callbacks = [self._smoothing_callback, *(kwargs.pop("callbacks", None) or [])]
        super().__init__(*args, compute_loss_func=self.smoothed_loss, callbacks=callbacks, **kwargs)
        name = type(self.model).__name__
        if not shift_labels and name in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
            raise ValueError(f"{name} is a causal language model (position t predicts token t + 1): pass "
                             f"shift_labels=True, or the loss trains on unshifted labels")

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
            try:
                with open(state_file, encoding="utf-8") as f:
                    state = json.load(f)
            except (ValueError, OSError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                raise ValueError(f"{state_file} cannot be read ({type(exc).__name__}: cut or damaged): resume from "
                                 f"an earlier checkpoint, or restore the file") from None
            if not isinstance(state, dict):
                raise ValueError(f"{state_file} holds a {type(state).__name__}, not the scheduler state a "
                                 f"SmoothingTrainer saves: resume from a checkpoint that a SmoothingTrainer saved")
            pending = state.pop("onehot_pending", None)  # absent from files written before issue 21
            self.onehot.check(pending)  # both checked before either loads
            self.smoothing.load_state_dict(state)
            self.onehot.load(pending)
        elif self.smoothing.auto is not None and self.smoothing.auto.history and not self._searching(args, kwargs):
            raise ValueError("this SmoothingTrainer's tsla-auto has recorded epochs already, and train() without "
                             "resume_from_checkpoint starts again at epoch 0: resume a checkpoint, or build a new "
                             "SmoothingTrainer with a fresh scheduler for a new run")
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def _searching(self, args: tuple, kwargs: dict) -> bool:
        """Whether this ``train()`` is a trial of ``hyperparameter_search`` (it gets a fresh scheduler)."""
        trial = kwargs.get("trial", args[0] if args else None)
        return self.hp_search_backend is not None and trial is not None

    def _hp_search_setup(self, trial: Any) -> None:
        """The Trainer's trial set-up, plus the smoothing: ``theta`` and ``switch_epoch`` among the trial's
        parameters (``hp_space``) replace the constructor's (:func:`tsla.integrations.trial.trial_scheduler`), and
        every trial starts from a fresh scheduler. The Trainer is given the other parameters only (they set
        ``TrainingArguments`` fields)."""
        if self.hp_search_backend is None or trial is None:
            return super()._hp_search_setup(trial)
        optuna = self.hp_search_backend == HPSearchBackend.OPTUNA
        params = dict(self.hp_space(trial) if optuna else trial)
        self._use_smoothing(trial_scheduler(self.smoothing_template, params))
        if not optuna:  # Ray Tune and W&B hand the parameters themselves
            return super()._hp_search_setup({k: v for k, v in params.items() if k not in SEARCH_KEYS})
        hp_space = self.hp_space
        self.hp_space = lambda t: {k: v for k, v in hp_space(t).items() if k not in SEARCH_KEYS}
        try:
            super()._hp_search_setup(trial)
        finally:
            self.hp_space = hp_space

    def _use_smoothing(self, scheduler: SmoothingScheduler) -> None:
        """Train with ``scheduler`` from now on: the trainer, its loss and its callback read this one object."""
        self.smoothing = self.smoothed_loss.criterion.scheduler = self._smoothing_callback.scheduler = scheduler

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """``Trainer.log``; a training log (one with ``loss``) also gets ``smoothing_theta`` and
        ``train_onehot_loss`` (the one-hot loss F since the last log)."""
        if "loss" in logs:
            logs = {**logs, "smoothing_theta": self.smoothing.get_last_theta()}
            onehot = self.onehot.pop_since_log()
            if onehot is not None:
                logs["train_onehot_loss"] = onehot
        super().log(logs, *args, **kwargs)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """``Trainer.save_model`` (also what each checkpoint calls), plus the scheduler's state beside the model."""
        super().save_model(output_dir, _internal_call)
        if self.args.should_save:
            folder = output_dir or self.args.output_dir
            os.makedirs(folder, exist_ok=True)
            state = {**self.smoothing.state_dict(), "onehot_pending": self.onehot.state()}
            with open(os.path.join(folder, STATE_FILE), "w") as f:
                json.dump(state, f, indent=1)
