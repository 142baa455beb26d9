"""The joint space of candidates and the schedule each one trains with.

A candidate is (method, theta, switch_epoch, theta_after): ``baseline`` (theta 0 throughout), ``lsr`` (theta
throughout), ``tsla`` (theta for epochs 0..S-1, then theta_after: 0 is TSLA(S), a negative value the negative end).
Every TSLA candidate *is* its theta's LSR run until S, so it trains as a branch of that run from epoch S.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Sequence

from ...errors import ConfigError
from ...smoothing import schedules
from ..select_score import Candidate, candidates


def schedule_of(cand: Candidate) -> schedules.AnySchedule:
    """The smoothing schedule ``cand`` trains with (a pure function of the epoch)."""
    if cand.method == "baseline":
        return schedules.none()
    if cand.method == "lsr":
        return schedules.constant(cand.theta)
    return schedules.two_stage(cand.theta, cand.switch_epoch, cand.theta_after)


_EXAMPLE = {"thetas": "0.1, 0.4", "switch_at": "5", "theta_after": "0.0, -0.2", "seeds": "0, 1, 2",
            "halving_at": "5"}


def as_list(name: str, value: Any) -> list:
    """``value`` (a list, tuple, numpy array...) as a list. Raises ``ConfigError`` naming ``name`` for a string or a
    single number."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(f"{name}={value!r:.60}: give a list of numbers, e.g. {name}=[{_EXAMPLE[name]}]")
    return list(value)


def is_real(value: Any) -> bool:
    """A plain real number (Python's or numpy's, e.g. from ``np.linspace``), never a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_whole(value: Any) -> bool:
    """A finite integral number (``3``, ``3.0``, ``np.int64(3)``), never a bool."""
    return is_real(value) and math.isfinite(value) and int(value) == value


def joint_space(thetas: Sequence[float], switch_at: Sequence[int], theta_after: Sequence[float],
                epochs: int) -> list[Candidate]:
    """The candidates in the order of simplicity (baseline, then per theta: LSR, TSLA(S), the negative ends).
    Raises ``ConfigError`` naming the argument for a request that cannot be planned."""
    if not (is_whole(epochs) and epochs >= 1):
        raise ConfigError(f"epochs={epochs!r}: give the number of epochs each run trains, an integer >= 1")
    thetas, switch_at, theta_after = (as_list(n, v) for n, v in (("thetas", thetas), ("switch_at", switch_at),
                                                                  ("theta_after", theta_after)))
    if not thetas:
        raise ConfigError("thetas is empty: list the smoothing strengths to try, e.g. thetas=[0.1, 0.4]")
    for theta in thetas:
        if not is_real(theta):
            raise ConfigError(f"thetas: {theta!r:.60} is not a number: give numbers in (0, 1], e.g. thetas=[0.1, 0.4]")
        if not 0 < theta <= 1:
            raise ConfigError(f"thetas: {theta!r} is outside (0, 1]; the baseline (theta 0) is always a candidate")
    if len({f"{float(t):g}" for t in thetas}) != len(thetas):
        raise ConfigError("thetas must not repeat a value (to 6 significant digits)")
    for s in switch_at:
        if not (is_whole(s) and 0 < s < epochs):
            raise ConfigError(f"switch_at: {s!r} is not a whole epoch between 1 and epochs - 1 ({epochs - 1})")
    if len(set(switch_at)) != len(switch_at):
        raise ConfigError("switch_at must not repeat an epoch")
    for after in theta_after:
        if not (is_real(after) and -1 <= after <= 0):
            raise ConfigError(f"theta_after: {after!r} is outside [-1, 0]: 0 ends on one-hot labels (TSLA), a "
                              f"negative value on negative smoothing, e.g. theta_after=[0.0, -0.2]")
    if theta_after and not switch_at:
        raise ConfigError("theta_after needs switch_at: the final theta starts at a switch epoch S")
    ends = [float(a) for a in theta_after] or [0.0]
    return candidates([float(t) for t in thetas], [int(s) for s in switch_at], ends)
