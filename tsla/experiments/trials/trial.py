"""The object a user's ``train_fn`` is handed once per run: what to train (candidate, seed, epochs), where to start
(``start_epoch``, ``checkpoint``), the smoothing scheduler positioned there, and ``report``, which ends each epoch.

``report`` records the epoch's validation numbers and the loop's checkpoint (weights-only, bound to the run and the
epoch), keeps the best-validation checkpoint and, for a trunk, its state at every switch epoch a branch needs, then
steps the scheduler. The loop never steps it.
"""

from __future__ import annotations

import io
import math
import numbers
from pathlib import Path
from typing import Any

import torch

from ...smoothing.scheduler import SmoothingScheduler
from . import store
from .plan import PlannedRun
from .space import schedule_of


class Pause(Exception):
    """Raised by :meth:`Trial.report` at the end of a run's segment (successive halving's milestone): the loop
    unwinds, the run resumes later from the checkpoint just saved. Never raised to the caller of ``select``."""


def _number(name: str, value: Any) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"trial.report: {name}={value!r:.60} is not a number: report plain numbers (a float, or a "
                         f"one-element tensor), e.g. val_top1=correct / total")
    return float(value)


class Trial:
    """One run of a selection, as the loop sees it.

    Attributes (plain values): ``candidate`` ({"method", "theta", "switch_epoch", "theta_after"}), ``seed``,
    ``epochs`` (the run's length; train epochs ``start_epoch`` .. ``epochs - 1``), ``start_epoch`` (0, or the epoch
    after the checkpoint's), ``checkpoint`` (what the loop passed to an earlier ``report``, loaded weights-only; for a
    branch starting at S, its trunk's after epoch S - 1; None for a fresh run), ``scheduler`` (a
    :class:`tsla.SmoothingScheduler` of the candidate's schedule positioned at ``start_epoch``), ``name`` (the run's
    folder under ``out``), ``branch_points`` (the epochs S at which other runs branch from this one: its state after
    S epochs is kept for them; empty for a branch or a run nothing branches from).
    """

    def __init__(self, run: PlannedRun, epochs: int, run_dir: Path, start_epoch: int, checkpoint: Any,
                 history: list[dict[str, Any]], keep: list[int], criterion: str, until: int | None = None,
                 best: dict[str, Any] | None = None) -> None:
        self.name = run.name
        self.candidate = run.candidate.as_dict()
        self.seed = run.seed
        self.epochs = epochs
        self.start_epoch = start_epoch
        self.checkpoint = checkpoint
        self.scheduler = SmoothingScheduler(schedule_of(run.candidate), last_epoch=start_epoch - 1)
        self.branch_points = sorted(keep)
        self._run, self._dir, self._history = run, run_dir, list(history)
        self._keep, self._criterion, self._until = set(keep), criterion, until
        self._best = best or {"epoch": -1, "val_top1": -math.inf}
        self._checked = False
        self.reported = 0
        """Epochs reported in this call of the loop (the epochs it trained)."""

    @property
    def next_epoch(self) -> int:
        return self.start_epoch + self.reported

    def report(self, epoch: int, *, checkpoint: Any = None, **metrics: Any) -> None:
        """End epoch ``epoch`` (counted from 0): record ``metrics`` (at least the selection's criterion, e.g.
        ``val_top1=`` as a fraction in [0, 1]; ``val_nll=`` and any other number as you like) and ``checkpoint`` (what
        a later run needs to continue from here: state dicts of tensors and plain values, e.g.
        ``{"model": model.state_dict(), "optimizer": opt.state_dict()}``), then step the scheduler.

        Raises ``ValueError`` for an epoch out of order, a missing criterion or checkpoint, a value that is not a
        number, a ``val_top1`` outside [0, 1] (NaN included), ``trial.scheduler`` stepped by the loop, or a checkpoint that
        ``torch.load(weights_only=True)`` cannot read back."""
        expected = self.next_epoch
        if isinstance(epoch, numbers.Integral) and not isinstance(epoch, bool):
            epoch = int(epoch)  # numpy's integers too (a loop over np.arange)
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch != expected:
            raise ValueError(f"trial.report(epoch={epoch!r}): expected epoch {expected} (epochs count from 0, from "
                             f"trial.start_epoch; report each epoch once, in order)")
        if epoch >= self.epochs:
            raise ValueError(f"trial.report(epoch={epoch}): the run has trial.epochs = {self.epochs} epochs "
                             f"(0..{self.epochs - 1}): loop over range(trial.start_epoch, trial.epochs)")
        if self.scheduler.last_epoch != epoch:  # the loop stepped it too: theta would run ahead of the epochs
            raise ValueError(f"trial.report(epoch={epoch}): trial.scheduler is at epoch {self.scheduler.last_epoch}, "
                             f"not {epoch}: the loop stepped it, and trial.report steps it once per epoch; remove "
                             f"the loop's trial.scheduler.step()")
        if self._criterion not in metrics:
            raise ValueError(f"trial.report(epoch={epoch}) has no {self._criterion}: pass it, e.g. "
                             f"trial.report(epoch, {self._criterion}=..., checkpoint=...)")
        if checkpoint is None:
            raise ValueError(f"trial.report(epoch={epoch}) has no checkpoint: pass checkpoint={{'model': "
                             f"model.state_dict(), ...}}, which resumes and branches the run")
        if not self._checked:
            self._check_weights_only(checkpoint)
        record = {"epoch": epoch, "theta": self.scheduler.get_last_theta(),
                  **{k: _number(k, v) for k, v in sorted(metrics.items())}}
        if "val_top1" in record and not 0 <= record["val_top1"] <= 1:
            raise ValueError(f"trial.report(epoch={epoch}): val_top1={record['val_top1']!r} is not a fraction in "
                             f"[0, 1]: report correct / total (not a percentage)")
        self._history.append(record)
        better = "val_top1" in record and record["val_top1"] > self._best["val_top1"]
        if better:
            self._best = {"epoch": epoch, "val_top1": record["val_top1"]}
        run, d = self._run.name, self._dir
        # the state first (it holds every report), then what is derived from it
        store.save_state(d / store.STATE, run, epoch, checkpoint, self._history, {"best": self._best})
        if better:
            store.copy_state(d / store.STATE, d / store.BEST)
        if epoch + 1 in self._keep:
            store.copy_state(d / store.STATE, store.kept_path(d, epoch + 1))
            if (d / store.BEST).is_file():  # a branch inherits the best-so-far of its prefix
                store.copy_state(d / store.BEST, d / store.KEPT / f"best-after-{epoch + 1}.pt")
        store.write_reports(d, self._history)
        self.reported += 1
        self.scheduler.step()
        if self._until is not None and epoch + 1 >= self._until and epoch + 1 < self.epochs:
            raise Pause(epoch + 1)

    def _check_weights_only(self, checkpoint: Any) -> None:
        buffer = io.BytesIO()
        try:
            torch.save(checkpoint, buffer)
            buffer.seek(0)
            torch.load(buffer, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch's unpickler refuses many types, each with its own error
            raise ValueError(f"trial.report: the checkpoint cannot be read back with torch.load(weights_only=True) "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}): pass "
                             f"state dicts of tensors and plain numbers/strings (convert numpy values with "
                             f"float() or torch.as_tensor)") from None
        self._checked = True

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every epoch's report so far (a branch's starts with its trunk's epochs before S)."""
        return [dict(r) for r in self._history]

    def __repr__(self) -> str:
        return (f"Trial({self.name}: {self.candidate}, seed {self.seed}, epochs {self.start_epoch}.."
                f"{self.epochs - 1})")
