"""TSLA in timm's train.py: a training loss with ``set_epoch(epoch)`` and a ``CheckpointSaver`` that keeps the
scheduler's state in timm's checkpoints.

    train_loss_fn = SmoothingLoss(tsla.schedules.two_stage(0.1, 30))      # or SmoothingScheduler.auto_two_stage(...)
    saver = SmoothingCheckpointSaver(model=model, optimizer=optimizer, args=args, amp_scaler=loss_scaler,
                                     checkpoint_dir=output_dir, smoothing=train_loss_fn.scheduler)
    if args.resume:                                      # after timm's resume_checkpoint(...)
        saver.load_state_dict_from_checkpoint(args.resume)
    for epoch in range(start_epoch, num_epochs):
        train_loss_fn.set_epoch(epoch)                   # beside the sampler's set_epoch / mixup_off_epoch check
        train_one_epoch(epoch, model, loader_train, optimizer, train_loss_fn, args, ...)
        train_loss_fn.end_epoch(epoch)                   # tsla-auto decides; before the saver runs
        saver.save_checkpoint(epoch, metric=...)

Why not timm's own ``LabelSmoothingCrossEntropy``: it stores ``smoothing`` and ``confidence = 1 - smoothing``
separately, so setting ``.smoothing = 0`` between epochs leaves the stale confidence and trains on
``(1 - theta_old) * NLL`` instead of the NLL. Here theta is read from the schedule at every call and ``smoothing`` is
read-only.

Mixup/CutMix: timm's ``Mixup(label_smoothing=...)`` smooths the mixed targets itself, by a constant. With TSLA,
build ``Mixup(label_smoothing=0.0)`` and let this loss smooth the (probability) targets: (1 - theta) y_mix + theta u
is exactly what Mixup's own smoothing gives at a constant theta, and it follows the schedule.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import require
from .pytorch import report_epoch
from ..losses.cross_entropy import LabelSmoothingCrossEntropy
from ..smoothing.scheduler import SmoothingScheduler
from ..smoothing.schedules import AnySchedule

require("timm", "timm", "timm")
from timm.utils import CheckpointSaver  # noqa: E402


class SmoothingLoss(nn.Module):
    """``loss(logits, target)`` with theta of the epoch last given to :meth:`set_epoch` (epoch 0 until then);
    ``target`` is class indices or probabilities (Mixup's). ``smoothing`` is a :class:`tsla.SmoothingScheduler` (per
    epoch; with an AutoSwitch for tsla-auto) or a schedule.

    Raises ``ValueError`` for a per-step scheduler (``set_epoch`` sets whole epochs).
    """

    def __init__(self, smoothing: SmoothingScheduler | AnySchedule, prior: torch.Tensor | None = None) -> None:
        super().__init__()
        scheduler = smoothing if isinstance(smoothing, SmoothingScheduler) else SmoothingScheduler(smoothing)
        if scheduler.steps_per_epoch is not None:
            raise ValueError("SmoothingLoss follows set_epoch(epoch): build its scheduler without steps_per_epoch")
        self.scheduler = scheduler
        self.criterion = LabelSmoothingCrossEntropy(prior, scheduler=scheduler, track_onehot=scheduler.auto is not None)

    @property
    def smoothing(self) -> float:
        """The theta in force now (read-only: it comes from the schedule)."""
        return self.scheduler.get_last_theta()

    @smoothing.setter
    def smoothing(self, value: Any) -> None:
        raise AttributeError("SmoothingLoss.smoothing comes from its schedule: call set_epoch(epoch) instead")

    def set_epoch(self, epoch: int) -> None:
        """Use theta of ``epoch`` (counted from 0) from now on."""
        if isinstance(epoch, bool) or int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch={epoch!r}: give the epoch about to be trained, an integer counted from 0")
        self.scheduler.last_epoch = int(epoch)

    def end_epoch(self, epoch: int) -> float | None:
        """Report epoch ``epoch``'s one-hot training loss to tsla-auto (see
        :func:`tsla.integrations.pytorch.report_epoch`); returns it (None for a fixed schedule)."""
        return report_epoch(self.scheduler, epoch, self.criterion)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.criterion(logits, target)

    def extra_repr(self) -> str:
        return f"{self.scheduler!r}"


class SmoothingCheckpointSaver(CheckpointSaver):
    """timm's ``CheckpointSaver`` whose saver state (in every checkpoint it writes, read back by
    ``load_state_dict_from_checkpoint``) also holds ``smoothing``'s state under ``tsla_smoothing``: plain numbers and
    strings, so timm's ``weights_only=True`` loading reads it."""

    def __init__(self, *args: Any, smoothing: SmoothingScheduler, **kwargs: Any) -> None:
        if not hasattr(CheckpointSaver, "load_state_dict_from_checkpoint"):
            raise ImportError("SmoothingCheckpointSaver needs a timm whose CheckpointSaver keeps a saver state "
                              "(tested with timm 1.0.31): pip install -U \"tsla[timm]\"")
        super().__init__(*args, **kwargs)
        self.smoothing = smoothing

    def state_dict(self, epoch: Any = None, metric: Any = None) -> dict[str, Any]:
        return {**super().state_dict(epoch, metric), "tsla_smoothing": self.smoothing.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Raises ``ValueError`` if the checkpoint holds no smoothing state (not written by this saver)."""
        if "tsla_smoothing" not in state_dict:
            raise ValueError("this checkpoint holds no tsla_smoothing state: resume from one that a "
                             "SmoothingCheckpointSaver wrote")
        super().load_state_dict(state_dict)
        self.smoothing.load_state_dict(state_dict["tsla_smoothing"])
