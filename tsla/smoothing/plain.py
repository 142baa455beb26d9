"""Plain Python numbers for everything a state dict holds.

A NumPy scalar (``np.linspace(...)[i]`` is an ``np.float64``, a subclass of ``float``) or a 0-dim tensor kept in a
schedule or a switch's state makes ``torch.save`` pickle a NumPy or torch object, which
``torch.load(weights_only=True)`` then refuses at resume time, and an ``np.int64`` makes ``json.dump`` fail. These
helpers turn such values into ``bool``, ``int``, ``float`` or ``str`` when an object is built, so that its
``state_dict()`` is plain whatever the caller passed.
"""

from __future__ import annotations

import math
import operator
from typing import Any

PLAIN = (bool, int, float, str, type(None))


def plain_value(value: Any) -> Any:
    """``value`` as an exact ``bool``/``int``/``float``/``str`` (NumPy scalars and 0-dim tensors via ``.item()``,
    subclasses such as ``np.float64`` converted), None kept; anything else is returned unchanged for the caller to
    refuse."""
    if type(value) in PLAIN:
        return value
    if hasattr(value, "item") and not isinstance(value, PLAIN):
        try:
            value = value.item()  # a tensor of more than one element raises: returned unchanged below
        except (TypeError, ValueError, RuntimeError):
            return value
    for kind in PLAIN[:-1]:  # bool before int: True is an int too
        if isinstance(value, kind):
            return kind(value)
    return value


def whole_number(value: Any) -> int | None:
    """``value`` as an ``int`` if it is a whole number (an integer of any kind, or an integral float such as the
    ``20.0`` a tuner returns), else None (a bool, a string, 20.5, NaN and infinity are not)."""
    value = plain_value(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    try:
        return operator.index(value)
    except TypeError:
        return None
