"""One hyperparameter-search trial's scheduler: the constructor's schedule with the trial's ``theta`` and
``switch_epoch`` put in, and a fresh automatic switch, so that every trial trains its own schedule from epoch 0.

Used by :meth:`tsla.integrations.hf.SmoothingTrainer` under ``Trainer.hyperparameter_search``; a search of one's own
(Optuna, Ray Tune around a plain loop) can call :func:`trial_scheduler` with the trial's parameters too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from ..smoothing.auto_switch import AutoSwitch
from ..smoothing.scheduler import SmoothingScheduler
from ..smoothing.schedules import Cosine, Linear, Reverse, TwoStage

SEARCH_KEYS = ("theta", "switch_epoch")
"""The parameter names a trial may give for the smoothing (the arguments of ``tsla.schedules.two_stage``)."""

_SWITCH_FIELD = {TwoStage: "drop_epoch", Reverse: "start_epoch", Linear: "end_epoch", Cosine: "end_epoch"}


def trial_scheduler(template: SmoothingScheduler, params: Mapping[str, Any]) -> SmoothingScheduler:
    """A new scheduler at epoch 0: ``template``'s schedule with ``params["theta"]`` and ``params["switch_epoch"]``
    where given (TSLA's drop epoch, reverse's start, a decay's end; integral floats such as 20.0 accepted), the same
    ``steps_per_epoch``, and for tsla-auto a fresh :class:`tsla.AutoSwitch` with the template's rule and constants.

    Raises ``ValueError`` in one line for a ``switch_epoch`` given to a schedule without one (a constant theta,
    tsla-auto, which decides it) and for values the schedule refuses (20.5, a theta outside [-1, 1]).
    """
    schedule = template.base_schedule
    changes: dict[str, Any] = {}
    if params.get("theta") is not None:
        changes["theta"] = params["theta"]
    if params.get("switch_epoch") is not None:
        field = _SWITCH_FIELD.get(type(schedule))
        if field is None:
            raise ValueError(f"the trial gives switch_epoch={params['switch_epoch']!r}, but {schedule} has no switch "
                             f"epoch to set: search 'theta' only, or build the trainer with a two_stage schedule")
        changes[field] = params["switch_epoch"]
    auto = None if template.auto is None else AutoSwitch(template.auto.rule, **template.auto.params)
    return SmoothingScheduler(replace(schedule, **changes), template.steps_per_epoch, auto=auto)
