"""The one-hot loss F of the epoch in progress, held by an adapter so that it survives a checkpoint.

A framework may checkpoint anywhere: inside an epoch (HF ``save_strategy="steps"``, Lightning's step checkpoints,
timm's recovery files) or after an epoch's last step but before its end is reported to tsla-auto. The adapter moves
the criterion's one-hot sums here after every step (:meth:`EpochOnehot.collect`), saves them with the scheduler's state
(:meth:`state`, two plain floats) and restores them on resume (:meth:`load`), so the resumed run tells tsla-auto the
same epoch loss as an uninterrupted one; :meth:`mean` also gives the F to log since the last log.

Under ``torch.distributed`` the saved sums are the saving rank's (rank 0) and are restored on rank 0 only: a resume
inside an epoch then counts rank 0's steps before the cut and every rank's steps after it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.distributed as dist

from .pytorch import reduced_sums



class EpochOnehot:
    """Running float64 ``[sum, denominator]`` of the one-hot term, for the epoch (``pop``) and for the span since the
    last log (``pop_since_log``). ``criterion`` is a :class:`tsla.LabelSmoothingCrossEntropy` with ``track_onehot``
    (None or untracked: everything stays empty)."""

    def __init__(self, criterion: Any = None) -> None:
        self.criterion = criterion if getattr(criterion, "track_onehot", False) else None
        self.epoch: torch.Tensor | None = None
        self.since_log: torch.Tensor | None = None

    @property
    def tracking(self) -> bool:
        return self.criterion is not None

    def collect(self) -> None:
        """Move the criterion's sums since its last pop into the epoch's and the log's (no device synchronisation)."""
        if self.criterion is None:
            return
        sums = self.criterion.pop_onehot_sums()
        self.epoch = sums if self.epoch is None else self.epoch + sums.to(self.epoch.device)
        self.since_log = sums if self.since_log is None else self.since_log + sums.to(self.since_log.device)

    def state(self) -> list[float]:
        """The epoch's sums so far as two plain floats (for a checkpoint)."""
        self.collect()
        return [0.0, 0.0] if self.epoch is None else [float(v) for v in self.epoch.tolist()]

    @staticmethod
    def check(values: Any) -> None:
        """Raise ``ValueError`` unless ``values`` is None (or empty) or what :meth:`state` gives: two finite numbers."""
        if values is None or (isinstance(values, (list, tuple)) and not values):
            return
        if (not isinstance(values, (list, tuple)) or len(values) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in values)):
            raise ValueError(f"onehot_pending={values!r:.60} is not two finite sums: resume from a state that "
                             f"state_dict() (or the adapter's checkpoint) gave")

    def load(self, values: Sequence[float] | None) -> None:
        """Continue the epoch from saved sums (rank 0 only under ``torch.distributed``; see the module docstring).
        Raises ``ValueError`` (loading nothing) for values :meth:`check` refuses."""
        self.check(values)
        rank0 = not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
        self.epoch = torch.tensor([float(v) for v in values], dtype=torch.float64) if values and rank0 else None
        self.since_log = None

    def pop(self) -> torch.Tensor:
        """The epoch's sums (zeros if none), reset: what :func:`tsla.integrations.pytorch.onehot_mean` divides."""
        self.collect()
        sums, self.epoch = self.epoch, None
        return torch.zeros(2, dtype=torch.float64) if sums is None else sums

    def pop_since_log(self) -> float | None:
        """F over the steps since the last call (summed over ranks), reset; None if no position was counted."""
        self.collect()
        sums, self.since_log = self.since_log, None
        if self.criterion is None:
            return None
        total, count = reduced_sums(torch.zeros(2, dtype=torch.float64) if sums is None else sums)
        return total / count if count else None
