"""The command line's names for schedules (``--method tsla@30``, ``--theta``, ``--theta-after``) and the per-epoch
table printed before training. The schedules themselves are in :mod:`tsla.smoothing.schedules`.
"""

from __future__ import annotations

from typing import Callable

from ..errors import ConfigError
from ..losses.cross_entropy import check_theta
from .schedules import AnySchedule, AutoTwoStage, Schedule, constant, cosine, linear, none, reverse, two_stage

METHOD_HELP = "baseline | lsr | tsla@S | reverse@S | tsla-auto | linear@E | cosine@E (S, E: epochs counted from 0)"


def check_cli_theta(theta: float, flag: str, allow_negative: bool) -> float:
    """``theta`` of the command-line ``flag`` checked: in [0, 1], or [-1, 1] with ``--allow-negative``.
    Raises ``ConfigError`` naming the flag (and, for a negative value, ``--allow-negative``)."""
    try:
        return check_theta(theta, allow_negative)
    except ValueError:
        pass
    if not allow_negative and isinstance(theta, (int, float)) and -1.0 <= theta < 0.0:
        raise ConfigError(f"{flag} {theta:g} is negative: negative label smoothing is opt-in, add --allow-negative "
                          f"(theta in [-1, 0))")
    lowest = -1 if allow_negative else 0
    raise ConfigError(f"{flag} {theta} is outside [{lowest}, 1]: pass a smoothing strength between {lowest} and 1")


def parse_method(method: str, theta: float, epochs: int | None = None, theta_after: float = 0.0,
                 allow_negative: bool = False) -> AnySchedule:
    """Build the schedule a ``--method`` string names, with smoothing strength ``theta`` (and, for ``tsla@S``,
    ``theta_after`` from epoch S on; any other method refuses a nonzero ``theta_after``).

    ``epochs`` (the run length), when given, bounds S and E: 0 <= S <= epochs and 1 <= E <= epochs. A negative
    theta or theta_after needs ``allow_negative``. Raises ``ConfigError`` naming the method and the accepted forms.
    """
    name, _, arg = method.strip().partition("@")
    check_cli_theta(theta, "--theta", allow_negative)
    check_cli_theta(theta_after, "--theta-after", allow_negative)
    if theta_after != 0 and name != "tsla":
        raise ConfigError(f"--theta-after {theta_after:g} applies to tsla@S only, not --method {method!r}: leave it "
                          f"at 0 (or use reverse@S with --theta for smoothing after one-hot epochs)")
    if name == "tsla-auto":
        if arg:
            raise ConfigError(f"--method {method!r}: tsla-auto chooses its own switch epoch; write tsla-auto")
        return AutoTwoStage(theta)
    if name in ("baseline", "lsr"):
        if arg:
            raise ConfigError(f"--method {method!r}: {name} takes no @epoch; choose one of {METHOD_HELP}")
        return none() if name == "baseline" else constant(theta)
    if name not in ("tsla", "reverse", "linear", "cosine"):
        raise ConfigError(f"--method {method!r} is unknown: choose one of {METHOD_HELP}")
    try:
        at = int(arg)
    except ValueError:
        raise ConfigError(f"--method {method!r}: {name} needs an integer epoch, e.g. {name}@30") from None
    lowest = 0 if name in ("tsla", "reverse") else 1
    if at < lowest or (epochs is not None and at > epochs):
        upper = f"the epoch count ({epochs})" if epochs is not None else "the epoch count"
        raise ConfigError(f"--method {method!r}: the epoch must lie between {lowest} and {upper}")
    if name == "tsla":
        return two_stage(theta, at, theta_after)
    factory = {"reverse": reverse, "linear": linear, "cosine": cosine}[name]
    return factory(theta, at)


def format_table(schedule: Schedule, epochs: int, lr_at: Callable[[int], float] | None = None) -> str:
    """A short text table of theta (and the learning rate) per epoch, runs of equal values collapsed."""
    rows: list[tuple[int, int, float, float | None]] = []
    for epoch in range(epochs):
        value = (schedule(epoch), lr_at(epoch) if lr_at else None)
        if rows and (rows[-1][2], rows[-1][3]) == value:
            rows[-1] = (rows[-1][0], epoch, *value)
        else:
            rows.append((epoch, epoch, *value))
    header = "epochs      theta" + ("   lr" if lr_at else "")
    lines = [header]
    if len(rows) > 16:  # a smooth decay changes every epoch: show its ends
        rows = rows[:8] + [None] + rows[-7:]
    for row in rows:
        if row is None:
            lines.append("...")
            continue
        first, last, theta, lr = row
        span = f"{first}" if first == last else f"{first}-{last}"
        line = f"{span:<10}  {theta:.4f}"
        if lr is not None:
            line += f"  {lr:.4g}"
        lines.append(line)
    return "\n".join(lines)
