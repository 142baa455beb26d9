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
* ``phase-plateau`` [window, rate] (v2, free): at an lr decay, switch if the constant-lr phase it ends had stalled:
  the one-hot train loss fell by less than ``rate`` per epoch over the phase's last ``window`` epochs.
* ``gain`` [gain, patience] (v2, needs diagnostics): the measured scale-free one-step gain of the LSR gradient over
  the one-hot one, corrected for sampling noise, stayed below ``gain`` for ``patience`` diagnoses.
* ``noise-gap`` [val_window, margin, last_decay] (v3, needs ``val_top1`` and ``train_top1``): at the first lr decay,
  switch unless the training top-1 on the given labels is more than ``margin`` below the best validation top-1 of
  the phase's last ``val_window`` epochs (the labels disagree with a model that generalises: label noise); then
  switch at the decay into epoch ``last_decay`` instead.
* ``val-plateau`` [val_window, min_delta] (v3, needs ``val_top1``): at an lr decay, switch if the best validation
  top-1 of the phase's last ``val_window`` epochs beat the phase's earlier best by less than ``min_delta``.

The v3 constants were fixed by replaying the study's committed R1/R2 logs only (docs/selection.md).

The constants are named as tsla's config fields without their ``auto_`` prefix (``--auto-window`` -> ``window``).
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


def _phase_start(history: Sequence[Record], end: int) -> int:
    """Index of the first record of the constant-lr phase that contains record ``end``."""
    start = end
    while start > 0 and history[start - 1]["lr"] == history[end]["lr"]:
        start -= 1
    return start


def phase_plateau(history: Sequence[Record], params: Mapping[str, Any]) -> tuple[bool, str]:
    """v2, free: at a learning-rate decay, drop smoothing if the phase it ends had stalled.

    A phase is a run of epochs at one constant lr. When the last record's ``next_lr`` (the lr of the coming epoch,
    logged by tsla's trainer) is below its ``lr``, the phase just ended is judged: over its last ``window`` epochs
    (fewer if the phase is shorter), the one-hot train loss fell by less than ``rate`` (relative) per epoch on
    average -> switch from the coming epoch, the first at the lower lr. Without ``next_lr`` the decay is seen one
    epoch late (the first record at the lower lr) and the phase before it is judged then. Never fires without a
    decay, so under a cosine schedule (a new lr every epoch) it never fires.
    """
    window, rate = int(_param(params, "phase-plateau", "window")), float(_param(params, "phase-plateau", "rate"))
    _needs_lr(history[-1], "phase-plateau")
    last = len(history) - 1
    if "next_lr" in history[-1]:
        if not history[-1]["next_lr"] < history[-1]["lr"]:
            return False, "no learning-rate decay after this epoch"
        end = last
    else:
        if last == 0 or not history[-1]["lr"] < history[-2]["lr"]:
            return False, "no learning-rate decay at this epoch"
        end = last - 1
    start = _phase_start(history, end)
    w = min(window, end - start)
    if w < 1:
        return False, f"the phase at lr {history[end]['lr']:g} lasted one epoch: nothing to judge"
    before, now = history[end - w]["train_onehot_loss"], history[end]["train_onehot_loss"]
    per_epoch = (before - now) / before / w if before > 0 else 0.0
    reason = (f"at the lr decay after epoch {history[end]['epoch']}: one-hot train loss fell {100 * per_epoch:.2f}% "
              f"per epoch over the phase's last {w} epochs ({before:.4f} -> {now:.4f}; threshold {100 * rate:g}%)")
    return per_epoch < rate, reason


def _decay_end(history: Sequence[Record]) -> int | None:
    """Index of the last record of a constant-lr phase that a decay has just ended, judged after the last record:
    the last record itself when its ``next_lr`` is below its ``lr``; without ``next_lr``, the record before it when
    the last one's lr is lower (the decay seen one epoch late). None when no decay ends a phase here."""
    last = len(history) - 1
    if "next_lr" in history[-1]:
        return last if history[-1]["next_lr"] < history[-1]["lr"] else None
    return last - 1 if last > 0 and history[-1]["lr"] < history[-2]["lr"] else None


def _decay_ends(history: Sequence[Record]) -> list[int]:
    """Indices of every phase-ending record so far (each decay once), oldest first."""
    return [end for end in (_decay_end(history[: i + 1]) for i in range(len(history))) if end is not None]


def _needs(record: Record, rule: str, *keys: str) -> None:
    missing = [k for k in keys if k not in record]
    if missing:
        raise ValueError(f"tsla-auto rule {rule!r} reads {', '.join(missing)} each epoch: log a validation split "
                         f"(--val-size) and pass {', '.join(missing)} to AutoSwitch.update")


def _needs_lr(record: Record, rule: str, *also: str) -> None:
    """The v2/v3 rules act at learning-rate decays: each record must hold ``lr`` (a bare ``KeyError: 'lr'`` before);
    the message also names the rule's other metrics (``also``) that this record lacks."""
    if "lr" in record:
        return
    missing = [k for k in ("lr", *also) if k not in record]
    extra = "".join(f", {k}=..." for k in missing[1:])
    raise ValueError(f"tsla-auto rule {rule!r} acts at learning-rate decays and reads {', '.join(missing)} each "
                     f"epoch, which it was not given: pass lr=<this epoch's lr>, next_lr=<the next one's>{extra} to "
                     f"AutoSwitch.update (or end_epoch); the Lightning and Hugging Face adapters pass none of them: "
                     f"use rule 'plateau' there")


def noise_gap(history: Sequence[Record], params: Mapping[str, Any]) -> tuple[bool, str]:
    """v3, validation-aware: at the first lr decay compare the training top-1 on the given labels (``train_top1``,
    the running accuracy of the epoch's training passes) with the best ``val_top1`` of the phase's last
    ``val_window`` epochs. A model that generalises fits its own training labels at least as well as held-out
    ones; if the training top-1 is more than ``margin`` below that validation best, the given labels disagree with
    the model (the signature of label noise), and the switch is deferred to the decay into epoch ``last_decay``
    (the last milestone: one-hot training at the smallest lr memorises least). Otherwise switch at this first
    decay. Once deferred, the rule fires at the first later decay into an epoch >= ``last_decay``.
    """
    window = int(_param(params, "noise-gap", "val_window"))
    margin = float(_param(params, "noise-gap", "margin"))
    last_decay = int(_param(params, "noise-gap", "last_decay"))
    _needs_lr(history[-1], "noise-gap", "train_top1", "val_top1")
    ends = _decay_ends(history)
    if not ends:
        return False, "no learning-rate decay yet"
    first = ends[0]
    _needs(history[first], "noise-gap", "train_top1", "val_top1")
    start = _phase_start(history, first)
    recent = history[max(start, first - window + 1): first + 1]
    best_val = max(r["val_top1"] for r in recent)
    train = history[first]["train_top1"]
    gap = train - best_val
    seen = (f"at the first lr decay (after epoch {history[first]['epoch']}) train top-1 on the given labels "
            f"{100 * train:.1f}% vs best val top-1 of the last {len(recent)} epochs {100 * best_val:.1f}% "
            f"(gap {100 * gap:+.1f} points, margin {100 * margin:g})")
    if gap >= -margin:
        return first == ends[-1] and _decay_end(history) is not None, seen + ": labels look clean, switch there"
    now = history[ends[-1]]
    due = _decay_end(history) is not None and ends[-1] != first and int(now["epoch"]) + 1 >= last_decay
    return due, seen + f": labels look noisy, switch deferred to the decay into epoch {last_decay}"


def val_plateau(history: Sequence[Record], params: Mapping[str, Any]) -> tuple[bool, str]:
    """v3: at an lr decay, switch if validation top-1 had plateaued in the phase the decay ends: the best
    ``val_top1`` of its last ``val_window`` epochs beat the best of its earlier epochs by less than ``min_delta``
    (a fraction, 0.005 = half a point). A phase no longer than the window is not judged."""
    window = int(_param(params, "val-plateau", "val_window"))
    min_delta = float(_param(params, "val-plateau", "min_delta"))
    _needs_lr(history[-1], "val-plateau", "val_top1")
    end = _decay_end(history)
    if end is None:
        return False, "no learning-rate decay after this epoch"
    _needs(history[end], "val-plateau", "val_top1")
    start = _phase_start(history, end)
    if end - start + 1 <= window:
        return False, f"the phase before the decay after epoch {history[end]['epoch']} is not longer than {window} epochs"
    recent = max(r["val_top1"] for r in history[end - window + 1: end + 1])
    before = max(r["val_top1"] for r in history[start: end - window + 1])
    reason = (f"at the lr decay after epoch {history[end]['epoch']}: best val top-1 of the phase's last {window} epochs "
              f"{100 * recent:.2f}% vs {100 * before:.2f}% before them (threshold +{100 * min_delta:g} points)")
    return recent - before < min_delta, reason


def _gain(record: Record) -> float | None:
    """The train-mode estimate when measured (the F SGD descends), else the per-example one at the run's batch."""
    return record.get("diag_mb_one_step_gain", record.get("diag_one_step_gain"))


def gain(history: Sequence[Record], params: Mapping[str, Any]) -> tuple[bool, str]:
    """v2, diagnostic: LSR's best one-step decrease of F has fallen below ``gain`` x one-hot's for the last
    ``patience`` diagnosed epochs in a row (see tsla.theory.gradient_noise: one_step_gain = <grad F, E h>^2 / E||h_b||^2
    over ||grad F||^4 / E||g_b||^2, scale-free). An undefined gain (||grad F||^2 estimated <= 0: noise dominates
    the signal, so neither label can make progress on F) counts as below the threshold.
    """
    threshold, patience = float(_param(params, "gain", "gain")), int(_param(params, "gain", "patience"))
    measured = [r for r in history if "diag_one_step_gain" in r or "diag_mb_one_step_gain" in r]
    if "diag_one_step_gain" not in history[-1] and "diag_mb_one_step_gain" not in history[-1]:
        return False, "no diagnostics this epoch"
    if len(measured) < patience:
        return False, f"waiting for {patience} diagnoses"
    recent = [_gain(r) for r in measured[-patience:]]
    shown = ", ".join("undefined" if g is None else f"{g:.3f}" for g in recent)
    below = all(g is None or g < threshold for g in recent)
    return below, f"one-step gain of LSR over one-hot in the last {patience} diagnoses: {shown} (threshold {threshold:g})"


RULES: dict[str, Rule] = {"plateau": plateau, "phase-plateau": phase_plateau, "gain": gain, "floor": floor,
                          "noise-gap": noise_gap, "val-plateau": val_plateau}

CONSTANTS: dict[str, tuple[str, ...]] = {
    "plateau": ("window", "tolerance"), "phase-plateau": ("window", "rate"), "gain": ("gain", "patience"),
    "floor": ("factor",), "noise-gap": ("val_window", "margin", "last_decay"), "val-plateau": ("val_window", "min_delta"),
}
"""The constants each rule reads: a resumed run must have the same values for these (and only these)."""


def decide(rule: str, history: Sequence[Record], params: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether to drop smoothing after the last record in ``history``, and a one-line reason.

    Raises ``ValueError`` for an unknown rule, an empty history, or a missing constant.
    """
    if rule not in RULES:
        raise ValueError(f"unknown tsla-auto rule {rule!r}: choose one of {', '.join(RULES)}")
    if not history:
        raise ValueError("tsla-auto needs at least one finished epoch to decide")
    return RULES[rule](history, params)


def replay(rule: str, records: Sequence[Record], params: Mapping[str, Any]) -> int | None:
    """The epoch smoothing would be off from if ``rule`` had been told ``records`` one epoch at a time (the decision
    after epoch e takes effect at e + 1), or None if it never fires. tsla-auto trains exactly as LSR until it
    switches, so an LSR run's metrics.jsonl replays the decision a tsla-auto run of the same seed would take."""
    for i in range(len(records)):
        if decide(rule, records[: i + 1], params)[0]:
            return int(records[i]["epoch"]) + 1
    return None
