"""tsla-auto: when to drop label smoothing, decided from measurements instead of a hand-picked epoch.

The theory (PAPER.md, "The theory"): SGD with LSR quickly reaches a region where the one-hot objective F stops
improving — the LSR floor, where ||grad F||^2 is of the order 2 delta sigma^2 / (1 + delta) — and cannot go below it;
one-hot training from there converges further. Two measurable versions of "LSR has reached its floor":

* ``plateau`` (default, free): the one-hot training loss F, logged every epoch from the same forward passes, fell
  by less than ``auto_tolerance`` (relative) over the last ``auto_window`` epochs.
* ``floor``: the measured ||grad F||^2 on the diagnostic subset (corrected for its sampling noise:
  ||G||^2 - sigma^2 / (n - 1) estimates ||grad F||^2 without the sigma^2 / n bias) is at most ``auto_factor``
  times the measured LSR floor 2 delta sigma^2 / (1 + delta). Needs diagnostics every epoch.

Both are pure functions of the records logged so far (they live in :mod:`tsla.switch_rules`); the trainer
applies the decision at the end of an epoch, so smoothing stops from the next epoch on.
"""

from __future__ import annotations

from typing import Any, Sequence

from .switch_rules import decide, unbiased_grad_norm2

__all__ = ["should_switch", "unbiased_grad_norm2"]


def should_switch(
    history: Sequence[dict[str, Any]], rule: str, window: int, tolerance: float, factor: float
) -> tuple[bool, str]:
    """Whether to drop smoothing after the last epoch in ``history`` (metric records, oldest first), and why.

    A thin call into :func:`tsla.switch_rules.decide`, which owns the rules."""
    return decide(rule, history, {"window": window, "tolerance": tolerance, "factor": factor})
