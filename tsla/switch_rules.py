"""tsla-auto's switch rules: when to drop label smoothing, as pure functions of the metric records logged so far.

Entry point: ``decide(rule, history, params) -> (switch, reason)``. ``history`` is the per-epoch metric records,
oldest first (keys as in metrics.jsonl: ``epoch``, ``lr``, ``train_onehot_loss``, ``val_*``, ``diag_*``), the last
one being the epoch just finished; ``params`` holds the rule's constants by name. A rule keeps no state: the same
history always gives the same answer, so a resumed run decides exactly as an uninterrupted one. The caller applies
a True decision from the next epoch on.

Rules (constants in brackets):

* ``plateau`` [window, tolerance]: the one-hot training loss fell by less than ``tolerance`` (relative) over the
  last ``window`` epochs. The v1 rule; see docs/theory.md for why it rarely fires under a step learning rate.
* ``floor`` [factor]: ||grad F||^2, noise-corrected with the simple-random-sampling formula
  ||G||^2 - sigma^2 / (n - 1), is at most ``factor`` x the measured LSR floor 2 delta sigma^2 / (1 + delta).
  The v1 diagnostic rule; docs/theory.md explains why its comparison is not the paper's.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

Record = Mapping[str, Any]
Rule = Callable[[Sequence[Record], Mapping[str, Any]], "tuple[bool, str]"]


def unbiased_grad_norm2(diag: Mapping[str, Any]) -> float:
    """v1's ||grad F||^2 estimate ||G||^2 - sigma^2 / (n - 1): unbiased only when the n examples are a simple
    random draw (E||G||^2 = ||grad F||^2 + sigma^2 / n there); it over-subtracts on a class-balanced set."""
    return diag["grad_norm2"] - diag["sigma2"] / (diag["n"] - 1)


def _param(params: Mapping[str, Any], rule: str, name: str) -> Any:
    if name not in params:
        raise ValueError(f"tsla-auto rule {rule!r} needs the constant {name!r} (got {sorted(params)})")
    return params[name]


def _diag(record: Record) -> dict[str, Any]:
    return {k[len("diag_"):]: v for k, v in record.items() if k.startswith("diag_")}


def plateau(history: Sequence[Record], params: Mapping[str, Any]) -> tuple[bool, str]:
    """The one-hot train loss fell by less than ``tolerance`` (relative) over the last ``window`` epochs."""
    window, tolerance = int(_param(params, "plateau", "window")), float(_param(params, "plateau", "tolerance"))
    if len(history) <= window:
        return False, f"waiting for {window + 1} epochs of one-hot loss"
    before, now = history[-1 - window]["train_onehot_loss"], history[-1]["train_onehot_loss"]
    drop = (before - now) / before if before > 0 else 0.0
    reason = f"one-hot train loss fell {100 * drop:.2f}% over {window} epochs ({before:.4f} -> {now:.4f})"
    return drop < tolerance, reason


def floor(history: Sequence[Record], params: Mapping[str, Any]) -> tuple[bool, str]:
    """v1: the SRS-corrected ||grad F||^2 is at most ``factor`` x the measured LSR floor (diagnostics needed)."""
    factor = float(_param(params, "floor", "factor"))
    last = history[-1]
    if "diag_grad_norm2" not in last:
        return False, "no diagnostics this epoch"
    diag = _diag(last)
    grad = unbiased_grad_norm2(diag)
    reason = f"||grad F||^2 ~ {grad:.4g} vs LSR floor {diag['lsr_floor']:.4g} (factor {factor:g})"
    return grad <= factor * diag["lsr_floor"], reason


RULES: dict[str, Rule] = {"plateau": plateau, "floor": floor}


def decide(rule: str, history: Sequence[Record], params: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether to drop smoothing after the last record in ``history``, and a one-line reason.

    Raises ``ValueError`` for an unknown rule, an empty history, or a missing constant.
    """
    if rule not in RULES:
        raise ValueError(f"unknown tsla-auto rule {rule!r}: choose one of {', '.join(RULES)}")
    if not history:
        raise ValueError("tsla-auto needs at least one finished epoch to decide")
    return RULES[rule](history, params)
