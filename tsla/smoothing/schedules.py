"""Smoothing schedules: pure functions ``epoch -> theta``.

Epochs count from 0. ``two_stage(0.4, 30)`` gives 0.4 for epochs 0..29 and 0.0 from epoch 30 on, so TSLA(30) trains
with label smoothing for exactly 30 epochs; ``two_stage(0.4, 30, after=-0.2)`` ends on negative smoothing instead.
A schedule accepts theta in [-1, 1]; the loss refuses a negative theta unless built with ``allow_negative=True``. Each schedule is a frozen dataclass: calling it has no side effects and
its value depends on the epoch alone, so a resumed run sees the same theta as an uninterrupted one. Its fields are
stored as plain Python numbers whatever was passed (a NumPy theta from ``np.linspace``, an epoch given as the
integral float ``20.0`` a tuner returns; ``20.5`` is refused), so ``to_dict()`` survives
``torch.load(weights_only=True)`` and JSON.

On the command line, methods are named compactly (see :func:`tsla.smoothing.methods.parse_method`):

    baseline     theta = 0 throughout (one-hot labels)
    lsr          theta constant throughout
    tsla@S       theta for epochs 0..S-1, then theta_after (default 0) (TSLA(S))
    reverse@S    0 for epochs 0..S-1, then theta (one-hot first: Wei et al.'s CE warm-up, then e.g. negative theta)
    tsla-auto    theta until the one-hot objective stops improving, then 0 (see tsla.smoothing.auto_switch)
    linear@E     theta decays linearly to 0 at epoch E
    cosine@E     theta decays along a half cosine to 0 at epoch E
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, Callable, ClassVar, Mapping, Union

from ..losses.cross_entropy import check_theta
from .plain import whole_number

Schedule = Callable[[float], float]


def _check_epoch(epoch: float) -> float:
    if not epoch >= 0:  # also rejects NaN
        raise ValueError(f"epoch={epoch} is negative: epochs count from 0")
    return epoch


def _check_epoch_arg(value: Any, name: str, lowest: int, meaning: str) -> int:
    """A schedule's epoch argument as an ``int``: a whole number (an integer of any kind, NumPy's too, or an integral
    float such as the ``20.0`` a tuner returns; not a bool, 20.5, NaN or infinity) >= ``lowest``; ``ValueError``
    naming it otherwise (a string once failed with a bare TypeError, and NaN, no first stage at all, or True passed
    unnoticed)."""
    number = whole_number(value)
    if number is None:
        raise ValueError(f"{name}={value!r} is not an integer: give {meaning} as a whole number of epochs (from 0)")
    if number < lowest:
        raise ValueError(f"{name}={value!r} is {'negative' if number < 0 else 'below 1'}: give {meaning} "
                         f"(>= {lowest})")
    return number


def _store(schedule: Any, **values: Any) -> None:
    """Keep the checked, plain values on a frozen schedule (``to_dict()`` then holds no NumPy or torch scalar)."""
    for name, value in values.items():
        object.__setattr__(schedule, name, value)


class _Stored:
    """``to_dict()`` / ``from_dict()``: a schedule as plain numbers and strings (JSON, ``torch.load(weights_only=True)``).

    Epochs may be fractional (``epoch + step / steps_per_epoch``, as :class:`tsla.SmoothingScheduler` asks with
    ``steps_per_epoch``); an integer epoch gives the per-epoch value.
    """

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": ..., <field>: <value>, ...}``, e.g. ``{"kind": "two_stage", "theta": 0.4, "drop_epoch": 30}``."""
        return {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AnySchedule":
        """The schedule ``to_dict()`` described. Called on a class, the kind must be that class's.

        Raises ``ValueError`` for something other than a mapping, an unknown kind, a kind of another class, or
        missing or extra fields.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a stored schedule is a mapping with a 'kind' (what to_dict() gives), not a "
                             f"{type(data).__name__}")
        data = dict(data)
        kind = data.pop("kind", None)
        target = KINDS.get(kind) if isinstance(kind, str) else None
        if target is None:
            raise ValueError(f"schedule kind {kind!r} is unknown: choose one of {', '.join(KINDS)}")
        if cls is not _Stored and target is not cls:
            raise ValueError(f"schedule kind {kind!r} is not a {cls.__name__}")
        names = {f.name for f in fields(target)}
        required = {f.name for f in fields(target) if f.default is MISSING}  # older stored TSLA lacks "after"
        if set(data) - names or required - set(data):
            raise ValueError(f"schedule {kind!r} takes the fields {sorted(names)}, got {sorted(data)}")
        return target(**data)


@dataclass(frozen=True)
class Constant(_Stored):
    """theta for every epoch (theta = 0 is the one-hot baseline)."""

    kind: ClassVar[str] = "constant"
    theta: float

    def __post_init__(self) -> None:
        _store(self, theta=_check_value(self.theta))

    def __call__(self, epoch: float) -> float:
        _check_epoch(epoch)
        return float(self.theta)

    @property
    def switch_epoch(self) -> None:
        """None: theta never changes."""
        return None


@dataclass(frozen=True)
class TwoStage(_Stored):
    """TSLA: theta for epochs 0..drop_epoch-1, then ``after`` (0: one-hot labels; negative: negative smoothing)."""

    kind: ClassVar[str] = "two_stage"
    theta: float
    drop_epoch: int
    after: float = 0.0

    def __post_init__(self) -> None:
        _store(self, theta=_check_value(self.theta), after=_check_value(self.after, "after"),
               drop_epoch=_check_epoch_arg(self.drop_epoch, "drop_epoch", 0, "the first epoch of the second stage"))

    def __call__(self, epoch: float) -> float:
        return float(self.theta) if _check_epoch(epoch) < self.drop_epoch else float(self.after)

    @property
    def switch_epoch(self) -> int:
        """The first epoch of the second stage: ``drop_epoch``."""
        return self.drop_epoch


@dataclass(frozen=True)
class Reverse(_Stored):
    """The reverse order: theta = 0 (one-hot labels) for epochs 0..start_epoch-1, then ``theta`` (Wei et al., ICML
    2022: plain cross-entropy first, then negative smoothing)."""

    kind: ClassVar[str] = "reverse"
    theta: float
    start_epoch: int

    def __post_init__(self) -> None:
        _store(self, theta=_check_value(self.theta),
               start_epoch=_check_epoch_arg(self.start_epoch, "start_epoch", 0, "the first epoch with smoothing"))

    def __call__(self, epoch: float) -> float:
        return 0.0 if _check_epoch(epoch) < self.start_epoch else float(self.theta)

    @property
    def switch_epoch(self) -> int:
        """The first epoch with smoothing: ``start_epoch``."""
        return self.start_epoch


@dataclass(frozen=True)
class _Decay(_Stored):
    """theta * shape(epoch / end_epoch) before end_epoch, 0 from end_epoch on; ``shape`` falls from 1 at 0."""

    theta: float
    end_epoch: int

    def __post_init__(self) -> None:
        _store(self, theta=_check_value(self.theta),
               end_epoch=_check_epoch_arg(self.end_epoch, "end_epoch", 1, "the first epoch with theta 0"))

    def __call__(self, epoch: float) -> float:
        epoch = _check_epoch(epoch)
        return 0.0 if epoch >= self.end_epoch else float(self.theta) * self.shape(epoch / self.end_epoch)

    @staticmethod
    def shape(fraction: float) -> float:
        raise NotImplementedError

    @property
    def switch_epoch(self) -> int:
        """The first epoch with theta = 0: ``end_epoch``."""
        return self.end_epoch


@dataclass(frozen=True)
class Linear(_Decay):
    """theta * (1 - epoch / end_epoch) before end_epoch, 0 from end_epoch on."""

    kind: ClassVar[str] = "linear"

    @staticmethod
    def shape(fraction: float) -> float:
        return 1.0 - fraction


@dataclass(frozen=True)
class Cosine(_Decay):
    """theta * (1 + cos(pi * epoch / end_epoch)) / 2 before end_epoch, 0 from end_epoch on."""

    kind: ClassVar[str] = "cosine"

    @staticmethod
    def shape(fraction: float) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * fraction))


@dataclass(frozen=True)
class AutoTwoStage(_Stored):
    """tsla-auto: theta until the trainer decides to drop smoothing (see :mod:`tsla.smoothing.auto_switch`), then 0.

    The decision is data: ``switch_epoch`` is None until it is made; :class:`tsla.SmoothingScheduler` asks its
    :class:`tsla.AutoSwitch` for it and applies this schedule with it set. Given ``switch_epoch``, theta is a pure
    function of the epoch, exactly as for :class:`TwoStage`.
    """

    kind: ClassVar[str] = "auto_two_stage"
    theta: float
    switch_epoch: int | None = None

    def __post_init__(self) -> None:
        _store(self, theta=_check_value(self.theta))
        if self.switch_epoch is not None:
            _store(self, switch_epoch=_check_epoch_arg(self.switch_epoch, "switch_epoch", 0,
                                                       "the first epoch without smoothing"))

    def __call__(self, epoch: float) -> float:
        _check_epoch(epoch)
        return float(self.theta) if self.switch_epoch is None or epoch < self.switch_epoch else 0.0


AnySchedule = Union[Constant, TwoStage, Reverse, Linear, Cosine, AutoTwoStage]
KINDS: dict[str, type] = {c.kind: c for c in (Constant, TwoStage, Reverse, Linear, Cosine, AutoTwoStage)}


def from_dict(data: Mapping[str, Any]) -> AnySchedule:
    """The schedule a ``to_dict()`` result describes, of any kind (see :meth:`_Stored.from_dict`)."""
    return _Stored.from_dict(data)


def none() -> Constant:
    """The one-hot baseline: theta = 0 at every epoch."""
    return Constant(0.0)


def constant(theta: float) -> Constant:
    """LSR: the same theta at every epoch."""
    return Constant(theta)


def two_stage(theta: float, switch_epoch: int, after: float = 0.0) -> TwoStage:
    """TSLA(switch_epoch): theta for epochs 0..switch_epoch-1 (exactly switch_epoch epochs of LSR), then ``after``
    (0: one-hot labels, TSLA as in the paper; e.g. -0.2: negative smoothing)."""
    return TwoStage(theta, switch_epoch, after)


def reverse(theta: float, switch_epoch: int) -> Reverse:
    """The reverse order: one-hot labels for epochs 0..switch_epoch-1, then ``theta`` (e.g. -0.2, Wei et al.)."""
    return Reverse(theta, switch_epoch)


def linear(theta: float, end_epoch: int) -> Linear:
    """theta decaying linearly from epoch 0 to 0 at end_epoch."""
    return Linear(theta, end_epoch)


def cosine(theta: float, end_epoch: int) -> Cosine:
    """theta decaying along a half cosine from epoch 0 to 0 at end_epoch."""
    return Cosine(theta, end_epoch)


def _check_value(theta: float, name: str = "theta") -> float:
    """``theta`` (or ``after``) as a plain float in [-1, 1]; ``ValueError`` naming it otherwise."""
    try:
        return check_theta(theta, allow_negative=True)
    except ValueError as exc:
        raise ValueError(str(exc).replace("theta=", f"{name}=", 1)) from None


def switch_epoch(schedule: AnySchedule) -> int | None:
    """Where the schedule's last stage begins: TSLA's switch epoch (theta_after from there on), reverse@S's first
    smoothed epoch, linear/cosine's end epoch (theta 0 from there on), tsla-auto's decision; None for a constant
    theta and for tsla-auto before it decides."""
    return schedule.switch_epoch
