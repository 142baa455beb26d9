"""TSLA in Lightning: a ``Callback`` that keeps the scheduler at Lightning's epoch (or step) and its state in
Lightning's checkpoints.

    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.1, 30))    # or .auto_two_stage(0.1, ...)
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=True)   # used in training_step
    trainer = L.Trainer(callbacks=[SmoothingCallback(scheduler, criterion)], ...)
    trainer.fit(model, ckpt_path=...)                                          # resumes theta and tsla-auto exactly

The position is Lightning's own counter, never counted here, read before every training batch (a resume from a step
checkpoint on an epoch's last batch skips ``on_train_epoch_start``): ``trainer.current_epoch`` per epoch, or
``trainer.global_step`` (optimizer steps) with ``steps_per_epoch``. The epoch is reported (tsla-auto decides)
after its last training batch, before validation and before ``ModelCheckpoint`` saves; the one-hot sums of the epoch
in progress are in every checkpoint, so a step checkpoint inside an epoch resumes tsla-auto too. ``smoothing_theta``
(per step) and ``train_onehot_loss`` (per epoch) go to ``pl_module.log``. Validate with plain cross-entropy, not with
``criterion``. Under DDP the one-hot loss is summed over ranks, and rank 0 decides.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from .epoch_sums import EpochOnehot
from .pytorch import report_epoch
from .run_length import warn_if_before_switch, warn_if_switch_unreachable
from ..losses.cross_entropy import LabelSmoothingCrossEntropy
from ..smoothing.auto_switch import AutoSwitch
from ..smoothing.scheduler import SmoothingScheduler

try:
    import lightning.pytorch as _pl
except ImportError:
    try:  # the older package name, when that is what is installed
        import pytorch_lightning as _pl
    except ImportError:
        raise ImportError("tsla.integrations.lightning needs Lightning, which is not installed: "
                          "pip install \"tsla[lightning]\"") from None


class SmoothingCallback(_pl.Callback):
    """Sets the scheduler's position before every training batch from Lightning's own counters, reports each epoch
    to tsla-auto, logs theta and the one-hot loss F with ``pl_module.log``, and saves the scheduler's state (plain
    numbers and strings, with the one-hot sums of the epoch in progress) in the checkpoint under ``state_key``.

    ``criterion`` (a loss built with ``track_onehot=True``) supplies tsla-auto's one-hot loss and the logged F; it may
    be None for a fixed schedule. Raises ``ValueError`` at the start of training if the scheduler's
    ``steps_per_epoch`` differs from the optimizer steps Lightning takes per epoch. Warns once (``UserWarning``, one
    line) at the start if the switch epoch lies beyond ``max_epochs``, or else when training ends before the switch
    epoch (``EarlyStopping``).
    """

    def __init__(self, scheduler: SmoothingScheduler, criterion: Any = None) -> None:
        if scheduler.auto is not None and not getattr(criterion, "track_onehot", False):
            raise ValueError("tsla-auto needs the one-hot loss: pass criterion=LabelSmoothingCrossEntropy("
                             "scheduler=..., track_onehot=True), the loss your training_step uses")
        self.scheduler = scheduler
        self.criterion = criterion
        self.onehot = EpochOnehot(criterion)
        self._reported: int | None = None  # the last epoch reported (in this process)

    @property
    def state_key(self) -> str:
        return "tsla.SmoothingCallback"

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        # before Lightning restores or writes a checkpoint: a tsla object in hparams is pickled into every checkpoint,
        # which torch.load(weights_only=True), Lightning's loader, then refuses
        for name, value in dict(getattr(pl_module, "hparams", {})).items():
            if isinstance(value, (LabelSmoothingCrossEntropy, SmoothingScheduler, AutoSwitch)):
                raise ValueError(f"save_hyperparameters() stored {name!r} (a {type(value).__name__}) in the module's "
                                 f"hparams, which makes every checkpoint unloadable: call "
                                 f"self.save_hyperparameters(ignore=[{name!r}])")

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        per_step = self.scheduler.steps_per_epoch
        batches = trainer.num_training_batches
        if per_step is not None and batches != float("inf"):
            steps = math.ceil(batches / trainer.accumulate_grad_batches)  # an optimizer step also ends each epoch
            if per_step != steps:
                raise ValueError(f"the scheduler has steps_per_epoch={per_step}, but this Trainer takes {steps} "
                                 f"optimizer steps per epoch ({batches} batches, accumulate_grad_batches="
                                 f"{trainer.accumulate_grad_batches}): build it with steps_per_epoch={steps}")
        warn_if_switch_unreachable(self.scheduler, trainer.max_epochs, f"Trainer(max_epochs={trainer.max_epochs})")

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        switch = self.scheduler.switch_epoch
        if trainer.is_global_zero and switch is not None:  # EarlyStopping may have ended the run before the switch
            warn_if_before_switch(self.scheduler, self.scheduler.epoch, f"Trainer(min_epochs={switch + 1})",
                                  planned_epochs=trainer.max_epochs)

    def _place(self, trainer: Any) -> None:
        # Lightning's counters, read at every batch: a resume may skip on_train_epoch_start (a step checkpoint on an
        # epoch's last batch resumes straight into the next epoch)
        per_step = self.scheduler.steps_per_epoch is not None
        self.scheduler.last_epoch = trainer.global_step if per_step else trainer.current_epoch

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._place(trainer)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._place(trainer)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.onehot.collect()
        pl_module.log("smoothing_theta", self.scheduler.get_last_theta(), on_step=True, on_epoch=False, batch_size=1)
        if batch_idx + 1 == trainer.num_training_batches:  # before the epoch-end validation and checkpoint
            self._report(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._report(trainer, pl_module)  # data of unknown length: no last batch was recognised

    def _report(self, trainer: Any, pl_module: Any) -> None:
        epoch = trainer.current_epoch
        if self._reported == epoch:
            return
        self._reported = epoch
        if not self.onehot.tracking:
            report_epoch(self.scheduler, epoch)
            return
        onehot = report_epoch(self.scheduler, epoch, self.criterion, sums=self.onehot.pop())
        pl_module.log("train_onehot_loss", onehot, on_step=False, on_epoch=True, batch_size=1, sync_dist=False)

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state and ``onehot_pending``, the one-hot sums of the epoch in progress."""
        return {**self.scheduler.state_dict(), "onehot_pending": self.onehot.state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`. Raises ``ValueError`` (loading nothing) for a state that is not a
        mapping, one the scheduler refuses (:meth:`tsla.SmoothingScheduler.check_state_dict`) or bad one-hot sums."""
        if not isinstance(state_dict, Mapping):
            raise ValueError(f"the callback's state is a {type(state_dict).__name__}, not the mapping state_dict() "
                             f"gives: resume from a checkpoint this callback saved")
        state = dict(state_dict)
        pending = state.pop("onehot_pending", None)
        self.onehot.check(pending)
        self.scheduler.check_state_dict(state)
        self.onehot.load(pending)
        self.scheduler.load_state_dict(state)
