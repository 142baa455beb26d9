"""The schedule against the run's length: a switch epoch beyond the run's known length is warned about when training
starts (:func:`warn_if_switch_unreachable`), and a run that ended before its switch says so once when it ends
(:func:`warn_if_before_switch`).

Early stopping (Lightning's ``EarlyStopping``, Hugging Face's ``EarlyStoppingCallback``, a plain loop's ``break``)
may end a TSLA(S) run before epoch S: it then never trained without smoothing, and without a word it would be
reported as TSLA(S). Both adapters call :func:`warn_if_before_switch` when training ends; a plain loop calls it after
its loop with the last epoch it trained.
"""

from __future__ import annotations

import math
import warnings

from ..smoothing.scheduler import SmoothingScheduler


def warn_if_switch_unreachable(scheduler: SmoothingScheduler, epochs: float | None, source: str) -> bool:
    """Warn once (``UserWarning``, one line) when the schedule's switch epoch (TSLA's S, reverse's start, a decay's
    end) lies beyond a run of ``epochs`` epochs (``source`` names where that length comes from, e.g.
    ``Trainer(max_epochs=20)``): the run will end before it. Returns whether it warned.

    A warning, not an error: a framework run may be cut on purpose and resumed later with more epochs (Lightning's
    ``fit(ckpt_path=...)`` with a larger ``max_epochs``). A switch at the run's end (``S == epochs``, LSR
    throughout) is not warned about, as ``tsla train --method tsla@S`` allows it; nothing is checked when ``epochs``
    is unknown (None, infinite, -1) or the switch is not fixed (tsla-auto, a constant theta)."""
    switch = scheduler.switch_epoch
    if switch is None or epochs is None or not math.isfinite(epochs) or epochs < 0 or switch <= epochs:
        return False
    warnings.warn(f"{scheduler.schedule} switches at epoch {switch}, but this run trains {epochs:g} "
                  f"epoch{'' if epochs == 1 else 's'} ({source}): it will end before the switch unless resumed "
                  f"with more; give a switch epoch of at most {epochs:g}, or train for at least {switch + 1} epochs",
                  UserWarning, stacklevel=2)
    return True


def warn_if_before_switch(scheduler: SmoothingScheduler, last_epoch: float, remedy: str = "",
                          planned_epochs: float | None = None) -> bool:
    """Warn once (``UserWarning``, one line) when training ended in epoch ``last_epoch`` (the last one trained,
    counted from 0; fractional per step) before the schedule's switch epoch: its last stage never trained. Returns
    whether it warned. ``remedy`` (e.g. ``"Trainer(min_epochs=11)"``) is appended to the advice.

    ``planned_epochs``, the run's planned length when known: a switch at or beyond it is not warned about here (at
    the end, a planned ``S == epochs`` is LSR throughout, as ``tsla train`` allows; beyond it,
    :func:`warn_if_switch_unreachable` said so when training started)."""
    switch = scheduler.switch_epoch
    if switch is None or last_epoch >= switch:
        return False
    if planned_epochs is not None and math.isfinite(planned_epochs) and 0 <= planned_epochs <= switch:
        return False
    last = math.floor(last_epoch)
    how = f" ({remedy})" if remedy else ""
    warnings.warn(f"training ended in epoch {last} (counted from 0), before epoch {switch} where "
                  f"{scheduler.schedule} switches to theta {scheduler.theta_at(switch):g}: that stage never trained, "
                  f"so this run is not the schedule it names; if early stopping ended it, let it stop no earlier than "
                  f"after epoch {switch}{how}, or choose an earlier switch", UserWarning, stacklevel=2)
    return True
