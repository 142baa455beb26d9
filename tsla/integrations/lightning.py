"""TSLA in Lightning: a ``Callback`` that keeps the scheduler at Lightning's epoch (or step) and its state in
Lightning's checkpoints.

    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.1, 30))    # or .auto_two_stage(0.1, ...)
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=True)   # used in training_step
    trainer = L.Trainer(callbacks=[SmoothingCallback(scheduler, criterion)], ...)
    trainer.fit(model, ckpt_path=...)                                          # resumes theta and tsla-auto exactly

The position is Lightning's own counter, never counted here: ``trainer.current_epoch`` per epoch, or
``trainer.global_step`` (optimizer steps) with ``steps_per_epoch``. The epoch is reported (tsla-auto decides)
after its last training batch, before validation and before ``ModelCheckpoint`` saves. Validate with plain
cross-entropy, not with ``criterion``. Under DDP the one-hot loss is summed over ranks, and rank 0 decides.
"""

from __future__ import annotations

from typing import Any

from .pytorch import report_epoch
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
    """Sets the scheduler's position at each epoch (or step) start, reports each epoch to tsla-auto, and saves the
    scheduler's state (plain numbers and strings) in the checkpoint under ``state_key``.

    ``criterion`` (a loss built with ``track_onehot=True``) supplies tsla-auto's one-hot loss; it may be None for a
    fixed schedule.
    """

    def __init__(self, scheduler: SmoothingScheduler, criterion: Any = None) -> None:
        if scheduler.auto is not None and not getattr(criterion, "track_onehot", False):
            raise ValueError("tsla-auto needs the one-hot loss: pass criterion=LabelSmoothingCrossEntropy("
                             "scheduler=..., track_onehot=True), the loss your training_step uses")
        self.scheduler = scheduler
        self.criterion = criterion
        self._reported: int | None = None  # the last epoch reported (in this process)

    @property
    def state_key(self) -> str:
        return "tsla.SmoothingCallback"

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self.scheduler.steps_per_epoch is None:
            self.scheduler.last_epoch = trainer.current_epoch

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.scheduler.steps_per_epoch is not None:
            self.scheduler.last_epoch = trainer.global_step

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx + 1 == trainer.num_training_batches:  # before the epoch-end validation and checkpoint
            self._report(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._report(trainer)  # data of unknown length: no last batch was recognised

    def _report(self, trainer: Any) -> None:
        epoch = trainer.current_epoch
        if self._reported != epoch:
            self._reported = epoch
            report_epoch(self.scheduler, epoch, self.criterion)

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state_dict)
