"""tsla-auto: when to drop label smoothing, decided from measurements instead of a hand-picked epoch.

The theory (PAPER.md, "The theory"): SGD with LSR quickly reaches a region where the one-hot objective F stops
improving — the LSR floor, where ||grad F||^2 is of the order 2 delta sigma^2 / (1 + delta) — and cannot go below it;
one-hot training from there converges further. Two measurable versions of "LSR has reached its floor":

* ``plateau`` (default, free): the one-hot training loss F, logged every epoch from the same forward passes, fell
  by less than ``auto_tolerance`` (relative) over the last ``auto_window`` epochs.
* ``floor``: the measured ||grad F||^2 on the diagnostic subset (corrected for its sampling noise:
  ||G||^2 - sigma^2 / (n - 1) estimates ||grad F||^2 without the sigma^2 / n bias) is at most ``auto_factor``
  times the measured LSR floor 2 delta sigma^2 / (1 + delta). Needs diagnostics every epoch.

Both are pure functions of the records logged so far; the trainer applies the decision at the end of an epoch, so
smoothing stops from the next epoch on.
"""

from __future__ import annotations

from typing import Any, Sequence


def unbiased_grad_norm2(diag: dict[str, Any]) -> float:
    """||grad F||^2 estimated without the sampling bias of ||G||^2 (E||G||^2 = ||grad F||^2 + sigma^2 / n)."""
    return diag["grad_norm2"] - diag["sigma2"] / (diag["n"] - 1)


def should_switch(
    history: Sequence[dict[str, Any]], rule: str, window: int, tolerance: float, factor: float
) -> tuple[bool, str]:
    """Whether to drop smoothing after the last epoch in ``history`` (metric records, oldest first), and why."""
    last = history[-1]
    if rule == "plateau":
        if len(history) <= window:
            return False, f"waiting for {window + 1} epochs of one-hot loss"
        before, now = history[-1 - window]["train_onehot_loss"], last["train_onehot_loss"]
        drop = (before - now) / before if before > 0 else 0.0
        reason = f"one-hot train loss fell {100 * drop:.2f}% over {window} epochs ({before:.4f} -> {now:.4f})"
        return drop < tolerance, reason
    if rule == "floor":
        if "diag_grad_norm2" not in last:
            return False, "no diagnostics this epoch"
        diag = {k[len("diag_"):]: v for k, v in last.items() if k.startswith("diag_")}
        grad = unbiased_grad_norm2(diag)
        reason = f"||grad F||^2 ~ {grad:.4g} vs LSR floor {diag['lsr_floor']:.4g} (factor {factor:g})"
        return grad <= factor * diag["lsr_floor"], reason
    raise ValueError(f"unknown tsla-auto rule {rule!r}")
