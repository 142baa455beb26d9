"""tsla-auto as an object: :class:`AutoSwitch` is told each epoch's one-hot training loss (and, when measured, the
diagnostics), asks a switch rule whether LSR has reached its floor, and keeps the history and the decision.

The rules themselves are pure functions of the per-epoch records (:mod:`tsla.smoothing.switch_rules`); this object only
collects the records, applies the first True decision (smoothing off from the next epoch on), keeps it for good, and
saves all of it as plain numbers and strings, so a resumed run decides exactly as an uninterrupted one. tsla's own
trainer, the plain-loop helper and the Lightning and Hugging Face adapters all use this one class.

Under ``torch.distributed`` the rule runs on rank 0 (the rank that measured the diagnostics) and its answer is
broadcast, so every rank switches at the same epoch.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, Mapping, Sequence

from ..distributed import broadcast_object
from .plain import plain_value, whole_number
from .switch_rules import CONSTANTS, RULES, decide, unbiased_grad_norm2

__all__ = ["AutoSwitch", "auto_switch_for", "should_switch", "unbiased_grad_norm2"]

STATE_FORMAT = 1
_PLAIN = (bool, int, float, str, type(None))


def _plain(key: str, value: Any) -> Any:
    """A record value as a plain number or string (0-d tensors and numpy scalars, ``np.float64`` included, as
    Python's own types), or a list of them."""
    if isinstance(value, (list, tuple)):
        return [_plain(key, v) for v in value]
    value = plain_value(value)  # np.float64 is a float, yet weights_only loading refuses it: stored as float
    if not isinstance(value, _PLAIN):
        raise ValueError(f"metric {key!r} is a {type(value).__name__}: give a number or a string")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metric {key}={value} is not finite: the switch cannot decide from it")
    return value


class AutoSwitch:
    """Decides once, from measurements, the epoch after which label smoothing stops.

    ``rule`` names a rule of :mod:`tsla.smoothing.switch_rules` (``plateau``, ``floor``, ...); ``params`` are its constants by
    name (``window``, ``tolerance``, ``factor``, ...), passed to it as a dict. Call :meth:`update` (or
    :meth:`observe`) once at the end of every epoch, in order. Before the decision ``switch_epoch`` is None; once a
    rule returns True after epoch ``e``, ``switch_epoch`` is ``e + 1`` for good and ``reason`` says why.

    Keys starting with ``test_`` are dropped from the records: the switch never sees the test set.
    Raises ``ValueError`` for an unknown rule.
    """

    def __init__(self, rule: str = "plateau", **params: Any) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown tsla-auto rule {rule!r}: choose one of {', '.join(RULES)}")
        self.rule = rule
        self.params = {k: _plain(k, v) for k, v in params.items()}
        for name in ("window", "patience", "val_window", "last_decay"):  # counts of epochs (a tuner's 3.0 is 3)
            if name not in self.params:
                continue
            value, lowest = self.params[name], 0 if name == "last_decay" else 1  # a window of 0 decides from nothing
            count = whole_number(value)
            if count is None or count < lowest:
                raise ValueError(f"AutoSwitch constant {name}={value!r} must be an integer >= {lowest} (epochs)")
            self.params[name] = count
        self.history: list[dict[str, Any]] = []
        self.switch_epoch: int | None = None
        self.reason = ""
        self._resumed = False  # just loaded: the last recorded epoch may be told once more (a replayed epoch end)

    @classmethod
    def from_config(cls, cfg: Any) -> "AutoSwitch":
        """The switch a :class:`tsla.TrainConfig` describes: ``auto_rule`` and every other ``auto_<name>`` field as
        the constant ``<name>``; the ``noise-gap`` rule also gets ``last_decay``, the last of ``milestones``."""
        params = {f.name[len("auto_"):]: getattr(cfg, f.name) for f in fields(cfg)
                  if f.name.startswith("auto_") and f.name != "auto_rule"}
        if "last_decay" in CONSTANTS[cfg.auto_rule]:  # noise-gap defers to the last milestone of the step schedule
            params["last_decay"] = max(cfg.milestones, default=0)
        return cls(cfg.auto_rule, **params)

    @property
    def decided(self) -> bool:
        return self.switch_epoch is not None

    def update(self, epoch: int, onehot_loss: float, diagnostics: Mapping[str, Any] | None = None, *,
               val_top1: float | None = None, val_nll: float | None = None, train_top1: float | None = None,
               **metrics: Any) -> bool:
        """Record epoch ``epoch`` (counted from 0): its mean one-hot training loss, the diagnostics of
        :func:`tsla.theory.gradient_noise.gradient_noise` if measured (stored as ``diag_<key>``), the validation
        top-1 and NLL (fractions, nats), the training top-1 on the given labels (the running accuracy of the epoch's
        training batches, as tsla's trainer logs ``train_top1``) and any other metrics by name (e.g. ``lr=0.1``,
        ``next_lr=0.01``: the v2 and v3 rules act at a decay). The v3 rules need ``val_top1`` (``noise-gap`` also
        ``train_top1``). Returns True if the switch was decided by this call."""
        given = {"val_top1": val_top1, "val_nll": val_nll, "train_top1": train_top1}
        record: dict[str, Any] = {"epoch": epoch, "train_onehot_loss": onehot_loss,
                                  **{k: v for k, v in given.items() if v is not None}, **metrics}
        if diagnostics:
            record.update({(k if k.startswith("diag_") else f"diag_{k}"): v for k, v in diagnostics.items()})
            if "diag_grad_norm2_unbiased" not in record and {"diag_grad_norm2", "diag_sigma2", "diag_n"} <= set(record):
                record["diag_grad_norm2_unbiased"] = unbiased_grad_norm2(
                    {k[len("diag_"):]: v for k, v in record.items() if k.startswith("diag_")})
        return self.observe(record)

    def observe(self, record: Mapping[str, Any]) -> bool:
        """Record one epoch's metrics as a metrics.jsonl line holds them (``epoch`` and ``train_onehot_loss``
        required) and, while undecided, decide. Returns True if the switch was decided by this call.

        Right after :meth:`load_state_dict`, the last epoch recorded may be told once more and is ignored (returns
        False, the saved record kept): a framework resuming from a checkpoint written after that epoch's end may
        replay the end.

        Raises ``ValueError`` for a missing key, a non-finite or non-numeric value, or an epoch that does not follow
        the last one recorded (an epoch told twice, e.g. after a resume that did not load the state dict, or an epoch
        skipped), with the reason.
        """
        for key in ("epoch", "train_onehot_loss"):
            if key not in record:
                raise ValueError(f"AutoSwitch record lacks {key!r}: give the epoch and its mean one-hot train loss")
        clean = {k: _plain(k, v) for k, v in record.items() if not k.startswith("test_")}
        epoch = clean["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise ValueError(f"epoch={epoch!r}: give the finished epoch as an integer counted from 0")
        resumed, self._resumed = self._resumed, False
        if self.history and epoch != self.history[-1]["epoch"] + 1:
            last = self.history[-1]["epoch"]
            if epoch == last and resumed:
                return False  # the loaded state closed this epoch already: a resume replaying its end; kept as saved
            raise ValueError(f"AutoSwitch told epoch {epoch} after epoch {last}: " + self._order_hint(epoch, last, resumed))
        self.history.append(clean)
        if self.decided:
            return False
        switch, reason = self._decide()
        self.reason = reason
        if switch:
            self.switch_epoch = epoch + 1
        return switch

    @staticmethod
    def _order_hint(epoch: int, last: int, resumed: bool) -> str:
        """Why an epoch out of order is refused, and the remedy."""
        if epoch <= last:
            return f"epoch {epoch} was recorded already; tell each epoch once, in order"
        skipped = f"epoch {last + 1}" if epoch == last + 2 else f"epochs {last + 1}-{epoch - 1}"
        if resumed:
            return (f"the state loaded from the checkpoint ends at epoch {last}, so {skipped} never reached it (a "
                    f"checkpoint taken inside or at the end of an epoch, before the epoch was reported): report "
                    f"{skipped} first, or resume from a checkpoint written after the report")
        return f"{skipped} never reached it; tell each epoch once, in order (after a resume, load its state_dict first)"

    def _decide(self) -> tuple[bool, str]:
        """The rule's answer on rank 0, the same on every rank (a rule error is raised on every rank)."""
        try:
            answer: tuple[Any, ...] = ("ok", *decide(self.rule, self.history, self.params))
        except ValueError as exc:  # re-raised below on every rank, so no rank waits for a broadcast that never comes
            answer = ("error", str(exc))
        answer = broadcast_object(answer)
        if answer[0] == "error":
            raise ValueError(answer[1])
        return bool(answer[1]), str(answer[2])

    def state_dict(self) -> dict[str, Any]:
        """Rule, constants, history, decision and reason: plain numbers and strings (JSON and
        ``torch.load(weights_only=True)`` both read it back)."""
        return {"format": STATE_FORMAT, "rule": self.rule, "params": dict(self.params),
                "history": [dict(r) for r in self.history], "switch_epoch": self.switch_epoch, "reason": self.reason}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`. The whole state is checked before anything changes: raises
        ``ValueError`` (and leaves this switch as it was) if it was made with another rule or other values of the constants its rule reads (a
        resumed run must decide as the original would), or is not a valid AutoSwitch state (see
        :meth:`check_state_dict`)."""
        self._apply(self.check_state_dict(state))

    def _apply(self, checked: tuple[list[dict[str, Any]], int | None, str]) -> None:
        """Load a state :meth:`check_state_dict` returned (it cannot fail)."""
        self.history, self.switch_epoch, self.reason = checked
        self._resumed = True

    def check_state_dict(self, state: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int | None, str]:
        """Check a :meth:`state_dict` for this switch without loading it; returns its (history, switch_epoch,
        reason). Raises ``ValueError`` for: not a format-1 state, another rule or constants, a record that is not a
        mapping with an integer ``epoch`` >= 0 and a finite ``train_onehot_loss`` (or holds a non-finite or
        non-plain value), epochs that do not follow each other, a ``switch_epoch`` that is not an integer following
        an epoch of the history (an empty history has none), and a ``reason`` that is not a string."""
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT or "history" not in state:
            raise ValueError("not an AutoSwitch state_dict (no format 1 with a history): pass what state_dict() gave")
        missing = [k for k in ("rule", "params", "switch_epoch", "reason") if k not in state]
        if missing or not isinstance(state["params"], Mapping):
            raise ValueError(f"AutoSwitch state_dict lacks {(missing or ['params as a mapping'])[0]!r}: pass what "
                             f"state_dict() gave")
        read = CONSTANTS[self.rule]  # constants the rule does not read may differ (fields added by later versions)
        if state["rule"] != self.rule or any(dict(state["params"]).get(k) != self.params.get(k) for k in read):
            raise ValueError(f"the saved AutoSwitch used rule {state['rule']!r} with {dict(state['params'])}, this one "
                             f"{self.rule!r} with {self.params}: build it as the saved run was built")
        if not isinstance(state["history"], (list, tuple)):
            raise ValueError(f"AutoSwitch state_dict history is a {type(state['history']).__name__}, not a list")
        history: list[dict[str, Any]] = []
        for i, record in enumerate(state["history"]):
            if not isinstance(record, Mapping) or "epoch" not in record or "train_onehot_loss" not in record:
                raise ValueError(f"AutoSwitch state_dict history[{i}] is not a record with 'epoch' and "
                                 f"'train_onehot_loss'")
            clean = {k: _plain(k, v) for k, v in record.items()}  # non-finite or non-plain values: ValueError
            epoch, loss = clean["epoch"], clean["train_onehot_loss"]
            if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
                raise ValueError(f"AutoSwitch state_dict history[{i}] has epoch={epoch!r}: an integer >= 0 is needed")
            if isinstance(loss, bool) or not isinstance(loss, (int, float)):
                raise ValueError(f"AutoSwitch state_dict history[{i}] has train_onehot_loss={loss!r}, not a number")
            if history and epoch != history[-1]["epoch"] + 1:
                raise ValueError(f"AutoSwitch state_dict history has epoch {epoch} after epoch "
                                 f"{history[-1]['epoch']}: its epochs must follow each other")
            history.append(clean)
        switch = state["switch_epoch"]
        if switch is not None:
            if isinstance(switch, bool) or not isinstance(switch, int):
                raise ValueError(f"AutoSwitch state_dict switch_epoch={switch!r} is not an integer (or None)")
            if not history or not history[0]["epoch"] < switch <= history[-1]["epoch"] + 1:
                span = f"epochs {history[0]['epoch']}-{history[-1]['epoch']}" if history else "no epoch"
                raise ValueError(f"AutoSwitch state_dict switch_epoch={switch} does not follow an epoch of its "
                                 f"history ({span}): a switch is decided after an observed epoch")
        if not isinstance(state["reason"], str):
            raise ValueError(f"AutoSwitch state_dict reason={state['reason']!r} is not a string")
        return history, switch, state["reason"]

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "AutoSwitch":
        """A switch rebuilt from its :meth:`state_dict` alone. Raises ``ValueError`` for anything
        :meth:`check_state_dict` would refuse, and for a rule or constants that cannot build a switch."""
        params = state.get("params") if isinstance(state, Mapping) else None
        if not isinstance(params, Mapping) or not isinstance(state.get("rule"), str) or \
                not all(isinstance(k, str) for k in params):
            raise ValueError("not an AutoSwitch state_dict (a rule and its constants by name are needed): pass what "
                             "state_dict() gave")
        switch = cls(state["rule"], **params)
        switch.load_state_dict(state)
        return switch

    def __repr__(self) -> str:
        return (f"AutoSwitch(rule={self.rule!r}, params={self.params}, epochs={len(self.history)}, "
                f"switch_epoch={self.switch_epoch})")


def auto_switch_for(cfg: Any, schedule: Any, checkpoint: Mapping[str, Any] | None = None) -> AutoSwitch | None:
    """The trainer's switch: None unless ``schedule`` is tsla-auto's; restored from a tsla checkpoint when given.

    Checkpoints written before the switch had a state of its own hold ``auto_switch_epoch`` and the metrics
    history; those are restored from it.
    """
    from .schedules import AutoTwoStage

    if not isinstance(schedule, AutoTwoStage):
        return None
    switch = AutoSwitch.from_config(cfg)
    if checkpoint is not None:
        state = checkpoint.get("auto_switch")
        if state is None:  # an older checkpoint: its records and its decision
            state = {**switch.state_dict(), "history": checkpoint.get("history", []),
                     "switch_epoch": checkpoint.get("auto_switch_epoch")}
            state["history"] = [{k: v for k, v in r.items() if not k.startswith("test_")} for r in state["history"]]
        switch.load_state_dict(state)
    return switch


def should_switch(
    history: Sequence[dict[str, Any]], rule: str, window: int, tolerance: float, factor: float
) -> tuple[bool, str]:
    """Whether to drop smoothing after the last epoch in ``history`` (metric records, oldest first), and why.

    A thin call into :func:`tsla.smoothing.switch_rules.decide`, which owns the rules."""
    return decide(rule, history, {"window": window, "tolerance": tolerance, "factor": factor})
