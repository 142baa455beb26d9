"""``SmoothingScheduler``: the current theta of a smoothing schedule, with ``torch.optim.lr_scheduler``'s conventions.

    scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.2, 30))
    criterion = tsla.LabelSmoothingCrossEntropy(scheduler=scheduler)   # reads get_last_theta() at every call
    for epoch in range(epochs):
        train_one_epoch(model, criterion, ...)
        scheduler.step()
    torch.save({"model": ..., "optimizer": ..., "smoothing": scheduler.state_dict()}, path)

Per epoch (the default), ``last_epoch`` counts the calls to ``step()`` and theta is ``schedule(last_epoch)``. Per
step (``steps_per_epoch=n``, ``step()`` after every optimizer step), ``last_epoch`` counts steps and theta is the
schedule at the fractional epoch ``last_epoch / n``: a two-stage schedule still drops at the same step as per epoch
(its drop epoch is whole), while a linear or cosine decay moves every step.

tsla-auto: pass ``schedules.AutoTwoStage(theta)`` and ``auto=tsla.AutoSwitch(...)``; theta follows the switch's
decision, and the switch's history and decision are part of this scheduler's state dict.

Restoring: ``load_state_dict(state)`` continues a run as it was built (the saved schedule must be this one);
``load_position(state)`` takes only the position and keeps this scheduler's schedule, for a tuner that changes θ or
S between checkpoints (population-based training) or a branch with its own θ.

theta is computed from the schedule at every call, never stored, so nothing can go stale. The one copy is
``theta_tensor``, a 0-dim tensor for ``torch.compile`` (a compiled step reads it instead of a Python float, which
would recompile at every new value): it is rewritten in place by ``step()``, by setting ``last_epoch``, by
``load_state_dict()`` and by every ``get_last_theta()``, and is never part of the state dict.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

import torch

from .auto_switch import AutoSwitch
from .plain import whole_number
from .schedules import AnySchedule, AutoTwoStage, from_dict

STATE_FORMAT = 1


class SmoothingScheduler:
    """The smoothing strength theta of ``schedule`` at the position ``last_epoch``.

    Built fresh (``last_epoch=-1``), it is at epoch 0 (as torch's schedulers, which take their first step on
    construction). ``steps_per_epoch`` switches to per-step positions (see the module docstring).

    Raises ``ValueError`` for a schedule that cannot be saved (a plain function, a lambda), for ``steps_per_epoch <
    1``, for an ``AutoTwoStage`` schedule without ``auto`` (or one
    whose switch epoch is already set together with ``auto``), and for ``auto`` with any other schedule.
    """

    def __init__(self, schedule: AnySchedule, steps_per_epoch: int | None = None, auto: AutoSwitch | None = None,
                 last_epoch: int = -1) -> None:
        per_step = None if steps_per_epoch is None else whole_number(steps_per_epoch)
        if steps_per_epoch is not None and (per_step is None or per_step < 1):  # 2.5 was truncated to 2
            raise ValueError(f"steps_per_epoch={steps_per_epoch!r} must be an integer >= 1 (or None: per epoch)")
        if not callable(getattr(schedule, "to_dict", None)):
            raise ValueError(f"schedule {schedule!r} cannot be saved in a checkpoint (no to_dict()): pass a "
                             f"tsla.schedules schedule (e.g. two_stage, linear, cosine)")
        auto_schedule = isinstance(schedule, AutoTwoStage)
        if auto is not None and not auto_schedule:
            raise ValueError(f"auto=AutoSwitch(...) needs schedules.AutoTwoStage(theta), got {schedule!r}")
        if auto_schedule and (auto is None) == (schedule.switch_epoch is None):
            raise ValueError("AutoTwoStage takes its switch epoch from auto=AutoSwitch(...): pass AutoTwoStage(theta) "
                             "with auto, or a TwoStage schedule for a fixed epoch")
        if last_epoch < -1:
            raise ValueError(f"last_epoch={last_epoch} must be >= -1 (-1: a fresh scheduler)")
        self.base_schedule = schedule
        self.steps_per_epoch = per_step
        self.auto = auto
        self._theta = torch.zeros((), dtype=torch.float64)
        self.last_epoch = last_epoch + 1  # the step torch's schedulers take on construction

    @property
    def last_epoch(self) -> int:
        """The position: epochs done (steps done with ``steps_per_epoch``); setting it moves theta there."""
        return self._last_epoch

    @last_epoch.setter
    def last_epoch(self, value: int) -> None:
        position = whole_number(value)  # a NumPy counter is kept as a plain int: state_dict() stays loadable
        if position is None or position < -1:
            raise ValueError(f"last_epoch={value!r} is not a whole number >= -1: give the epochs (or, with "
                             f"steps_per_epoch, the optimizer steps) done")
        self._last_epoch = position
        if self.epoch >= 0:  # a position before epoch 0 has no theta: get_last_theta() says so when asked
            self._refresh()

    def _refresh(self) -> float:
        theta = self.theta_at(self.epoch)
        if not torch.compiler.is_compiling():  # a compiled step only reads it
            self._theta.fill_(theta)
        return theta

    @property
    def theta_tensor(self) -> torch.Tensor:
        """theta now as a 0-dim float64 CPU tensor, always the same object, updated in place: what a loss reads
        inside ``torch.compile`` so that a new theta is new data, not a new graph."""
        if not torch.compiler.is_compiling():
            self._refresh()  # the automatic switch may have decided since the last step
        return self._theta

    @classmethod
    def auto_two_stage(cls, theta: float, rule: str = "plateau", steps_per_epoch: int | None = None,
                       **params: Any) -> "SmoothingScheduler":
        """tsla-auto in one call: ``AutoTwoStage(theta)`` driven by ``AutoSwitch(rule, **params)``."""
        return cls(AutoTwoStage(theta), steps_per_epoch, auto=AutoSwitch(rule, **params))

    @property
    def schedule(self) -> AnySchedule:
        """The schedule in force: the base schedule, with the automatic switch's decision applied."""
        if self.auto is None:
            return self.base_schedule
        return replace(self.base_schedule, switch_epoch=self.auto.switch_epoch)

    @property
    def epoch(self) -> float:
        """The position in epochs: ``last_epoch``, or ``last_epoch / steps_per_epoch`` per step."""
        return self.last_epoch if self.steps_per_epoch is None else self.last_epoch / self.steps_per_epoch

    @property
    def switch_epoch(self) -> int | None:
        """Where smoothing ends (the schedule's ``switch_epoch``; None while tsla-auto has not decided)."""
        return self.schedule.switch_epoch

    def theta_at(self, epoch: float) -> float:
        """theta at ``epoch`` (fractional allowed), under the decision made so far."""
        return self.schedule(epoch)

    def get_last_theta(self) -> float:
        """theta at the current position (what the loss should use now)."""
        return self._refresh()

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch (one optimizer step with ``steps_per_epoch``); ``step(n)`` sets the position to ``n``
        instead (``last_epoch = n``: the epoch, or with ``steps_per_epoch`` the optimizer steps done), as a framework's
        own counter gives it. Raises ``ValueError`` for a position that is not an integer >= 0."""
        if epoch is None:
            self.last_epoch += 1
            return
        if isinstance(epoch, bool) or int(epoch) != epoch or epoch < 0:
            raise ValueError(f"step({epoch!r}): give the position as an integer >= 0 (epochs, or optimizer steps "
                             f"with steps_per_epoch)")
        self.last_epoch = int(epoch)

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers and strings only (``torch.load(weights_only=True)`` and JSON read it back): the schedule,
        the position, ``steps_per_epoch`` and the automatic switch's state (None without one)."""
        return {"format": STATE_FORMAT, "schedule": self.base_schedule.to_dict(), "last_epoch": self.last_epoch,
                "steps_per_epoch": self.steps_per_epoch,
                "auto": None if self.auto is None else self.auto.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`. The whole state (the switch's included) is checked before anything
        changes; raises ``ValueError``, leaving this scheduler as it was, for every state :meth:`check_state_dict`
        refuses."""
        auto = self.check_state_dict(state)
        if self.auto is not None:
            self.auto._apply(auto)
        self.last_epoch = state["last_epoch"]

    def check_state_dict(self, state: Mapping[str, Any]) -> Any:
        """Check a :meth:`state_dict` for this scheduler without loading it (returns the switch's checked state,
        None without a switch). Raises ``ValueError`` if it is not a format-1 state, was made from another schedule,
        another ``steps_per_epoch`` or another switch (resume a run as it was built), or holds a ``last_epoch`` that
        is not an integer in [0, 2^53) or an invalid switch state (:meth:`AutoSwitch.check_state_dict`)."""
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT or "schedule" not in state:
            raise ValueError("not a SmoothingScheduler state_dict (no format 1 with a schedule): pass what "
                             "state_dict() gave")
        missing = [k for k in ("last_epoch", "steps_per_epoch", "auto") if k not in state]
        if missing:
            raise ValueError(f"SmoothingScheduler state_dict lacks {missing[0]!r}: pass what state_dict() gave")
        try:
            saved = from_dict(state["schedule"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the saved schedule {state['schedule']!r:.80} is not valid ({exc})") from None
        if saved != self.base_schedule or state["steps_per_epoch"] != self.steps_per_epoch:
            raise ValueError(f"the saved scheduler ran {saved} with steps_per_epoch={state['steps_per_epoch']}, this "
                             f"one {self.base_schedule} with steps_per_epoch={self.steps_per_epoch}: build it as the "
                             f"saved run was built")
        last = state["last_epoch"]
        if isinstance(last, bool) or not isinstance(last, int) or not 0 <= last < 2**53:
            raise ValueError(f"SmoothingScheduler state_dict last_epoch={last!r} is not an integer in [0, 2^53): "
                             f"pass what state_dict() gave")
        if (state["auto"] is None) != (self.auto is None):
            raise ValueError("the saved scheduler and this one differ in having an AutoSwitch: build it as the saved "
                             "run was built")
        return None if self.auto is None else self.auto.check_state_dict(state["auto"])

    def load_position(self, state: Mapping[str, Any]) -> None:
        """Take only the position (``last_epoch``) of a :meth:`state_dict`, keeping this scheduler's own schedule
        (θ, S) and switch: what a tuner that swaps hyper-parameters needs (Ray Tune's population-based training
        copying another trial's checkpoint, a branch of another θ from a trunk's state). θ is then this schedule's
        at the saved position; nothing of the saved schedule is kept. The positions must count the same thing:
        the saved ``steps_per_epoch`` must equal this one's.

        Raises ``ValueError``, leaving this scheduler as it was, for a state that is not a format-1 state dict,
        another ``steps_per_epoch``, or a ``last_epoch`` that is not an integer in [0, 2^53)."""
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
            raise ValueError("not a SmoothingScheduler state_dict (no format 1): pass what state_dict() gave")
        missing = [k for k in ("last_epoch", "steps_per_epoch") if k not in state]
        if missing:
            raise ValueError(f"SmoothingScheduler state_dict lacks {missing[0]!r}: pass what state_dict() gave")
        saved = state["steps_per_epoch"]
        if saved != self.steps_per_epoch:
            def unit(n: Any) -> str:
                return "epochs" if n is None else f"optimizer steps ({n} per epoch)"

            raise ValueError(f"the saved position counts {unit(saved)}, this scheduler {unit(self.steps_per_epoch)}: "
                             f"build it with steps_per_epoch={saved!r}")
        last = state["last_epoch"]
        if isinstance(last, bool) or not isinstance(last, int) or not 0 <= last < 2**53:
            raise ValueError(f"SmoothingScheduler state_dict last_epoch={last!r} is not an integer in [0, 2^53): "
                             f"pass what state_dict() gave")
        self.last_epoch = last

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "SmoothingScheduler":
        """A scheduler rebuilt from its :meth:`state_dict` alone, with the saved schedule (its θ and S): after a tuner
        changed θ or S, build the scheduler from the tuner's values and call :meth:`load_position` instead. Raises
        ``ValueError`` for anything :meth:`check_state_dict` would refuse, and for a state whose parts cannot build a
        scheduler."""
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT or "schedule" not in state:
            raise ValueError("not a SmoothingScheduler state_dict (no format 1 with a schedule): pass what "
                             "state_dict() gave")
        try:
            auto = None if state.get("auto") is None else AutoSwitch.from_state_dict(state["auto"])
            scheduler = cls(from_dict(state["schedule"]), state.get("steps_per_epoch"), auto=auto)
        except (TypeError, KeyError) as exc:  # e.g. a steps_per_epoch of the wrong type
            raise ValueError(f"SmoothingScheduler state_dict cannot rebuild a scheduler ({type(exc).__name__}: "
                             f"{exc}): pass what state_dict() gave") from None
        scheduler.load_state_dict(state)
        return scheduler

    def __repr__(self) -> str:
        per = "" if self.steps_per_epoch is None else f", steps_per_epoch={self.steps_per_epoch}"
        return f"SmoothingScheduler({self.schedule}{per}, last_epoch={self.last_epoch}, theta={self.get_last_theta():g})"
