"""The joint space of candidates and the schedule each one trains with.

A candidate is (method, theta, switch_epoch, theta_after): ``baseline`` (theta 0 throughout), ``lsr`` (theta
throughout), ``tsla`` (theta for epochs 0..S-1, then theta_after: 0 is TSLA(S), a negative value the negative end).
Every TSLA candidate *is* its theta's LSR run until S, so it trains as a branch of that run from epoch S.
"""

from __future__ import annotations

from typing import Sequence

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


def joint_space(thetas: Sequence[float], switch_at: Sequence[int], theta_after: Sequence[float],
                epochs: int) -> list[Candidate]:
    """The candidates in the order of simplicity (baseline, then per theta: LSR, TSLA(S), the negative ends).
    Raises ``ConfigError`` naming the argument for a request that cannot be planned."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs={epochs!r}: give the number of epochs each run trains, an integer >= 1")
    if not thetas:
        raise ConfigError("thetas is empty: list the smoothing strengths to try, e.g. thetas=[0.1, 0.4]")
    for theta in thetas:
        if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not 0 < theta <= 1:
            raise ConfigError(f"thetas: {theta!r} is outside (0, 1]; the baseline (theta 0) is always a candidate")
    if len({f"{float(t):g}" for t in thetas}) != len(thetas):
        raise ConfigError("thetas must not repeat a value (to 6 significant digits)")
    for s in switch_at:
        if isinstance(s, bool) or int(s) != s or not 0 < s < epochs:
            raise ConfigError(f"switch_at: {s!r} is not a whole epoch between 1 and epochs - 1 ({epochs - 1})")
    if len(set(switch_at)) != len(switch_at):
        raise ConfigError("switch_at must not repeat an epoch")
    for after in theta_after:
        if isinstance(after, bool) or not isinstance(after, (int, float)) or not -1 <= after <= 0:
            raise ConfigError(f"theta_after: {after!r} is outside [-1, 0]: 0 ends on one-hot labels (TSLA), a "
                              f"negative value on negative smoothing, e.g. theta_after=[0.0, -0.2]")
    if theta_after and not switch_at:
        raise ConfigError("theta_after needs switch_at: the final theta starts at a switch epoch S")
    ends = [float(a) for a in theta_after] or [0.0]
    return candidates([float(t) for t in thetas], [int(s) for s in switch_at], ends)
