"""TSLA in timm's train.py: a training loss with ``set_epoch(epoch)`` and a ``CheckpointSaver`` that keeps the
scheduler's state in timm's checkpoints.

    train_loss_fn = SmoothingLoss(tsla.schedules.two_stage(0.1, 30))      # or SmoothingScheduler.auto_two_stage(...)
    saver = SmoothingCheckpointSaver(model=model, optimizer=optimizer, args=args, amp_scaler=loss_scaler,
                                     checkpoint_dir=output_dir, smoothing=train_loss_fn)
    if args.resume:                                      # after timm's resume_checkpoint(...)
        saver.load_state_dict_from_checkpoint(args.resume)
    for epoch in range(start_epoch, num_epochs):
        train_loss_fn.set_epoch(epoch)                   # beside the sampler's set_epoch / mixup_off_epoch check
        train_metrics = train_one_epoch(epoch, model, loader_train, optimizer, train_loss_fn, args, ...)
        train_loss_fn.end_epoch(epoch)                   # tsla-auto decides; before the saver runs
        train_metrics.update(train_loss_fn.summary())    # theta and the one-hot loss F into summary.csv
        saver.save_checkpoint(epoch, metric=...)

Per update (a scheduler with ``steps_per_epoch``): ``train_loss_fn.step_update(num_updates=num_updates)`` beside
``lr_scheduler.step_update``. A recovery checkpoint (``saver.save_recovery``) holds the one-hot sums of the epoch in
progress: timm resumes it at the next epoch, and ``set_epoch`` reports the cut epoch to tsla-auto first.

Why not timm's own ``LabelSmoothingCrossEntropy``: it stores ``smoothing`` and ``confidence = 1 - smoothing``
separately, so setting ``.smoothing = 0`` between epochs leaves the stale confidence and trains on
``(1 - theta_old) * NLL`` instead of the NLL. Here theta is read from the schedule at every call and ``smoothing`` is
read-only.

Mixup/CutMix: timm's ``Mixup(label_smoothing=...)`` smooths the mixed targets itself, by a constant. With TSLA,
build ``Mixup(label_smoothing=0.0)`` and let this loss smooth the (probability) targets: (1 - theta) y_mix + theta u
is exactly what Mixup's own smoothing gives at a constant theta, and it follows the schedule.
"""

from __future__ import annotations

import math

from typing import Any

import torch
from torch import nn

from . import require
from .epoch_sums import EpochOnehot
from .pytorch import report_epoch
from ..losses.cross_entropy import LabelSmoothingCrossEntropy
from ..smoothing.scheduler import SmoothingScheduler
from ..smoothing.schedules import AnySchedule

require("timm", "timm", "timm")
from timm.utils import CheckpointSaver  # noqa: E402


class SmoothingLoss(nn.Module):
    """``loss(logits, target)`` with theta of the position last given to :meth:`set_epoch` (and, per step, to
    :meth:`step_update`; epoch 0 until then); ``target`` is class indices or probabilities (Mixup's). ``smoothing`` is
    a :class:`tsla.SmoothingScheduler` (with an AutoSwitch for tsla-auto; with ``steps_per_epoch`` for theta per
    optimizer update) or a schedule.

    The one-hot loss F of the epoch is tracked (``track_onehot``, default True) for tsla-auto and for
    :meth:`summary`. ``check_mixup``: refuse probability targets with no zero entry (more than 2 classes), which is
    what timm's ``Mixup`` gives with its default ``label_smoothing=0.1`` (checked once per epoch).
    ``allow_negative=True`` lets theta be negative (in [-1, 0), negative label smoothing), as on
    :class:`tsla.LabelSmoothingCrossEntropy`; without it a call at a negative theta raises the loss's ``ValueError``.
    Raises ``ValueError`` for tsla-auto without ``track_onehot``.
    """

    def __init__(self, smoothing: SmoothingScheduler | AnySchedule, prior: torch.Tensor | None = None, *,
                 track_onehot: bool = True, check_mixup: bool = True, allow_negative: bool = False) -> None:
        super().__init__()
        scheduler = smoothing if isinstance(smoothing, SmoothingScheduler) else SmoothingScheduler(smoothing)
        if scheduler.auto is not None and not track_onehot:
            raise ValueError("tsla-auto needs the one-hot loss: leave track_onehot=True")
        self.scheduler = scheduler
        self.criterion = LabelSmoothingCrossEntropy(prior, scheduler=scheduler, track_onehot=track_onehot,
                                                    allow_negative=allow_negative)
        self.onehot = EpochOnehot(self.criterion)
        self.check_mixup = check_mixup
        self._epoch: int | None = None  # the epoch set last (in this process)
        self._updates: int | None = None  # the last num_updates given to step_update (in this process)
        self._pending_epoch: int | None = None  # the epoch whose sums a recovery checkpoint restored
        self._mixup_checked = False
        self._last_onehot: float | None = None

    @property
    def smoothing(self) -> float:
        """The theta in force now (read-only: it comes from the schedule)."""
        return self.scheduler.get_last_theta()

    @smoothing.setter
    def smoothing(self, value: Any) -> None:
        raise AttributeError("SmoothingLoss.smoothing comes from its schedule: call set_epoch(epoch) instead")

    def set_epoch(self, epoch: int) -> None:
        """Use theta of ``epoch`` (counted from 0) from now on.

        Raises ``ValueError`` when tsla-auto's records do not reach the epoch before (its state was not restored on
        resume), or, per step, when timm's update count disagrees with ``steps_per_epoch`` or no
        :meth:`step_update` came during the last epoch."""
        if isinstance(epoch, bool) or int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch={epoch!r}: give the epoch about to be trained, an integer counted from 0")
        epoch = int(epoch)
        per_step = self.scheduler.steps_per_epoch
        if per_step is not None and self._epoch is not None and epoch == self._epoch + 1:
            if self._updates is None:
                raise ValueError(f"no step_update(num_updates) during epoch {self._epoch}: with steps_per_epoch, call "
                                 f"loss.step_update(num_updates=num_updates) beside lr_scheduler.step_update")
            if self._updates != epoch * per_step:
                raise ValueError(f"the scheduler has steps_per_epoch={per_step}, but timm counted {self._updates} "
                                 f"updates by the start of epoch {epoch}: build it with steps_per_epoch="
                                 f"{self._updates // epoch if self._updates % epoch == 0 else 'your updates per epoch'}")
        self._catch_up(epoch)
        self._epoch, self._mixup_checked = epoch, False
        self.scheduler.last_epoch = epoch if per_step is None else epoch * per_step

    def _catch_up(self, epoch: int) -> None:
        """tsla-auto must have heard every epoch before ``epoch``; the one a recovery checkpoint cut short (timm
        resumes it at the next epoch) is reported here with F over its steps before the cut."""
        auto = self.scheduler.auto
        if auto is None:
            return
        last = auto.history[-1]["epoch"] if auto.history else -1
        if last == epoch - 2 and self._pending_epoch == epoch - 1:
            self.end_epoch(epoch - 1)
        elif last < epoch - 1:
            raise ValueError(f"tsla-auto has recorded {'no epoch' if last < 0 else f'epochs up to {last}'} but "
                             f"set_epoch({epoch}) starts epoch {epoch}: on resume restore its state with "
                             f"SmoothingCheckpointSaver(..., smoothing=train_loss_fn) and "
                             f"saver.load_state_dict_from_checkpoint(path) (timm's plain CheckpointSaver does not "
                             f"save it)")
        self._pending_epoch = None

    def step_update(self, num_updates: int) -> None:
        """Per step (``steps_per_epoch``): use theta after ``num_updates`` optimizer updates, timm's count that
        train.py gives ``lr_scheduler.step_update``. Raises ``ValueError`` for a per-epoch scheduler."""
        if self.scheduler.steps_per_epoch is None:
            raise ValueError("step_update needs a scheduler with steps_per_epoch (theta per update); a per-epoch "
                             "schedule follows set_epoch alone")
        self._updates = int(num_updates)
        self.scheduler.last_epoch = self._updates

    def end_epoch(self, epoch: int) -> float | None:
        """Report epoch ``epoch``'s one-hot training loss to tsla-auto (see
        :func:`tsla.integrations.pytorch.report_epoch`); returns it (None when not tracked)."""
        if not self.onehot.tracking:
            return report_epoch(self.scheduler, epoch)
        self._last_onehot = report_epoch(self.scheduler, epoch, self.criterion, sums=self.onehot.pop())
        return self._last_onehot

    def summary(self) -> dict[str, float]:
        """``smoothing_theta`` now and ``train_onehot_loss`` of the last :meth:`end_epoch`, to merge into the
        ``train_metrics`` that timm's ``update_summary`` writes to summary.csv."""
        out = {"smoothing_theta": self.smoothing}
        if self._last_onehot is not None:
            out["train_onehot_loss"] = self._last_onehot
        return out

    def pending_state(self, epoch: int | None) -> dict[str, Any]:
        """The one-hot sums of the epoch in progress (``epoch``), for a checkpoint."""
        return {"epoch": epoch, "sums": self.onehot.state()}

    @staticmethod
    def check_pending_state(state: Any) -> None:
        """Raise ``ValueError`` unless ``state`` is None or what :meth:`pending_state` writes: an epoch (an integer
        or None) and two finite sums."""
        if state is None:
            return
        sums = state.get("sums") if isinstance(state, dict) else None
        epoch = state.get("epoch") if isinstance(state, dict) else None
        if (not isinstance(sums, (list, tuple)) or len(sums) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in sums)
                or not (epoch is None or (isinstance(epoch, int) and not isinstance(epoch, bool)))):
            raise ValueError("the checkpoint's tsla_onehot_pending is not an epoch with two finite sums: resume from "
                             "a checkpoint that a SmoothingCheckpointSaver wrote")

    def load_pending_state(self, state: dict[str, Any] | None) -> None:
        self.check_pending_state(state)
        self.onehot.load(None if state is None else state["sums"])
        self._pending_epoch = None if state is None or state["sums"] == [0.0, 0.0] else state["epoch"]

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.check_mixup and not self._mixup_checked and target.dtype.is_floating_point and target.shape[-1] > 2:
            self._mixup_checked = True  # once per epoch: one device synchronisation
            if bool((target > 0).all()):
                raise ValueError("the targets have no zero entry: timm's Mixup(label_smoothing=...) smoothed them "
                                 "already (its default is 0.1), so the one-hot stage would still be smoothed: build "
                                 "Mixup(..., label_smoothing=0.0) (soft targets of your own: check_mixup=False)")
        loss = self.criterion(logits, target)
        self.onehot.collect()
        return loss

    def extra_repr(self) -> str:
        return f"{self.scheduler!r}"


class SmoothingCheckpointSaver(CheckpointSaver):
    """timm's ``CheckpointSaver`` whose saver state (in every checkpoint it writes, recovery files included, read
    back by ``load_state_dict_from_checkpoint``) also holds the smoothing state under ``tsla_smoothing``: plain
    numbers and strings, so timm's ``weights_only=True`` loading reads it.

    ``smoothing`` is the :class:`SmoothingLoss` (preferred: its one-hot sums of the epoch in progress are saved too,
    so tsla-auto resumes from a recovery checkpoint) or its scheduler.
    """

    def __init__(self, *args: Any, smoothing: SmoothingLoss | SmoothingScheduler, **kwargs: Any) -> None:
        if not hasattr(CheckpointSaver, "load_state_dict_from_checkpoint"):
            raise ImportError("SmoothingCheckpointSaver needs a timm whose CheckpointSaver keeps a saver state "
                              "(tested with timm 1.0.31): pip install -U \"tsla[timm]\"")
        super().__init__(*args, **kwargs)
        self.loss = smoothing if isinstance(smoothing, SmoothingLoss) else None
        self.smoothing = smoothing.scheduler if isinstance(smoothing, SmoothingLoss) else smoothing

    def state_dict(self, epoch: Any = None, metric: Any = None) -> dict[str, Any]:
        state = {**super().state_dict(epoch, metric), "tsla_smoothing": self.smoothing.state_dict()}
        if self.loss is not None:
            state["tsla_onehot_pending"] = self.loss.pending_state(epoch)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore timm's bookkeeping and the smoothing state. Both are checked before either changes: raises
        ``ValueError`` (the saver and the scheduler left as they were) if the checkpoint holds no smoothing state
        (not written by this saver), an invalid one, or a saver state of the wrong shape."""
        if not isinstance(state_dict, dict) or "tsla_smoothing" not in state_dict:
            raise ValueError("this checkpoint holds no tsla_smoothing state: resume from one that a "
                             "SmoothingCheckpointSaver wrote")
        _check_saver_state(state_dict)
        self.smoothing.check_state_dict(state_dict["tsla_smoothing"])
        SmoothingLoss.check_pending_state(state_dict.get("tsla_onehot_pending"))
        super().load_state_dict(state_dict)
        self.smoothing.load_state_dict(state_dict["tsla_smoothing"])
        if self.loss is not None:
            self.loss.load_pending_state(state_dict.get("tsla_onehot_pending"))


def _number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _check_saver_state(state: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless timm's part of a saver state has the shape ``CheckpointSaver.state_dict`` gives:
    ``checkpoint_files`` a list of (file name, metric) pairs, ``best_epoch``/``best_metric`` numbers or None and
    ``pending`` an (epoch, metric) pair."""
    files = state.get("checkpoint_files", [])
    if not isinstance(files, (list, tuple)) or not all(
            isinstance(f, (list, tuple)) and len(f) == 2 and isinstance(f[0], str) and _number_or_none(f[1])
            for f in files):
        raise ValueError("the saver state's checkpoint_files is not a list of (file name, metric) pairs")
    if not _number_or_none(state.get("best_epoch")) or not _number_or_none(state.get("best_metric")):
        raise ValueError("the saver state's best_epoch and best_metric must be numbers or None")
    pending = state.get("pending", (None, None))
    if not isinstance(pending, (list, tuple)) or len(pending) != 2 or not all(map(_number_or_none, pending)):
        raise ValueError("the saver state's pending entry is not an (epoch, metric) pair")
