"""TSLA in a plain PyTorch loop: the end-of-epoch step every adapter shares.

    scheduler = tsla.SmoothingScheduler.auto_two_stage(0.1, window=3, tolerance=0.01)  # or SmoothingScheduler(schedule)
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler, track_onehot=True)
    for epoch in range(start_epoch, epochs):
        for x, y in loader:
            loss = criterion(model(x), y)                    # theta read from the scheduler at the call
            ...
        end_epoch(scheduler, epoch, criterion)               # tsla-auto told the epoch's one-hot loss; next epoch
        torch.save({"model": ..., "optimizer": ..., "smoothing": scheduler.state_dict(), "epoch": epoch}, path)

    warn_if_before_switch(scheduler, epoch, planned_epochs=epochs)   # after the loop: did it end before the switch?

Resume: build the same objects, ``scheduler.load_state_dict(torch.load(path, weights_only=True)["smoothing"])``,
and continue from the saved epoch + 1. With ``steps_per_epoch``, call ``scheduler.step()`` after every optimizer
step instead; ``end_epoch`` then only reports. A loop that stops early (its own early stopping) passes the last epoch
it trained to :func:`warn_if_before_switch` (from :mod:`tsla.integrations.run_length`), which warns once if that
epoch lies before the schedule's switch.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.distributed as dist

from ..distributed import all_reduce_sum
from ..smoothing.scheduler import SmoothingScheduler
from .run_length import warn_if_before_switch, warn_if_switch_unreachable

__all__ = ["end_epoch", "epoch_onehot_loss", "reduced_sums", "report_epoch", "warn_if_before_switch",
           "warn_if_switch_unreachable"]


def reduced_sums(sums: torch.Tensor) -> tuple[float, float]:
    """``[sum, denominator]`` of the one-hot term summed over all ranks under ``torch.distributed``, as floats."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        sums = sums.to(torch.device("cuda", torch.cuda.current_device()))  # NCCL reduces CUDA tensors only
    total, count = all_reduce_sum(sums).tolist()
    return total, count


def epoch_onehot_loss(criterion: Any, sums: torch.Tensor | None = None) -> float:
    """The mean one-hot loss of ``criterion``'s training calls since the last pop (its sums reset), summed over all
    ranks under ``torch.distributed`` before dividing; ``sums`` (an adapter's, see
    :class:`tsla.integrations.epoch_sums.EpochOnehot`) replaces the pop.

    Raises ``ValueError`` if the loss does not track the one-hot term or saw no training call.
    """
    if not getattr(criterion, "track_onehot", False):
        raise ValueError("this loss does not track the one-hot term: build it with "
                         "LabelSmoothingCrossEntropy(..., track_onehot=True)")
    total, count = reduced_sums(criterion.pop_onehot_sums() if sums is None else sums)
    if count == 0:
        raise ValueError("no one-hot loss this epoch: the loss saw no training call (with gradients enabled)")
    return total / count


def report_epoch(scheduler: SmoothingScheduler, epoch: int, criterion: Any = None, onehot_loss: float | None = None,
                 diagnostics: Mapping[str, Any] | None = None, *, sums: torch.Tensor | None = None,
                 **metrics: Any) -> float | None:
    """At the end of epoch ``epoch`` (counted from 0): the epoch's one-hot training loss (``onehot_loss``, else
    popped from a ``criterion`` built with ``track_onehot=True``, or divided from an adapter's ``sums``) goes to the scheduler's :class:`tsla.AutoSwitch`,
    with the diagnostics and metrics if given. Returns the one-hot loss (None when there is none and no switch).

    Raises ``ValueError`` when tsla-auto gets no one-hot loss, or as :meth:`tsla.AutoSwitch.update` does.
    """
    if onehot_loss is None and criterion is not None and getattr(criterion, "track_onehot", False):
        onehot_loss = epoch_onehot_loss(criterion, sums)
    if scheduler.auto is not None:
        if onehot_loss is None:
            raise ValueError("tsla-auto needs each epoch's one-hot train loss: build the loss with "
                             "track_onehot=True and pass it as criterion=, or pass onehot_loss=")
        scheduler.auto.update(epoch, onehot_loss, diagnostics, **metrics)
    return onehot_loss


def end_epoch(scheduler: SmoothingScheduler, epoch: int, criterion: Any = None, onehot_loss: float | None = None,
              diagnostics: Mapping[str, Any] | None = None, **metrics: Any) -> float | None:
    """:func:`report_epoch`, then, for a per-epoch scheduler, ``scheduler.step()`` (to epoch ``epoch + 1``).

    Raises ``ValueError`` if a per-epoch scheduler is not at ``epoch`` (a step missed or taken twice), or a per-step
    one is not at ``(epoch + 1) * steps_per_epoch`` (a wrong ``steps_per_epoch``, or a ``step()`` missed).
    """
    per_step = scheduler.steps_per_epoch
    if per_step is None and scheduler.last_epoch != epoch:
        raise ValueError(f"the scheduler is at epoch {scheduler.last_epoch}, not {epoch}: call end_epoch once per "
                         f"epoch and no scheduler.step() of your own (after a resume, load its state_dict)")
    if per_step is not None and scheduler.last_epoch != (epoch + 1) * per_step:
        done = scheduler.last_epoch
        hint = f"build it with steps_per_epoch={done // (epoch + 1)}" if done % (epoch + 1) == 0 and done else \
            "call scheduler.step() after every optimizer step"
        raise ValueError(f"the scheduler counted {done} optimizer steps by the end of epoch {epoch}, but "
                         f"steps_per_epoch={per_step} means {(epoch + 1) * per_step}: {hint}")
    onehot_loss = report_epoch(scheduler, epoch, criterion, onehot_loss, diagnostics, **metrics)
    if scheduler.steps_per_epoch is None:
        scheduler.step()
    return onehot_loss
