"""Value checks run once per tensor and again after an in-place change, and never inside a compiled graph.

Reading a prior's or a weight's values costs a few kernels and, on a GPU, a device synchronisation: at small shapes
that was 10-20 % of a call when the same tensor was checked at every call. :class:`CheckedTensors` remembers the
tensors that passed, by identity and torch's version counter; :func:`check_values` runs a check where values can be
read (eagerly; between two graphs inside ``torch.compile``; not at all under ``torch.export``, which has none).
"""

from __future__ import annotations

import weakref
from typing import Callable

import torch

_is_exporting = getattr(torch.compiler, "is_exporting", lambda: False)  # torch >= 2.5


class CheckedTensors:
    """Tensors whose values passed a check: :meth:`seen` is True while the tensor is the same live object and has
    not been changed in place since :meth:`add` (torch's version counter, which every in-place operation bumps, an
    optimizer's step and a write through a view included). A change that bypasses that counter (writing through
    ``.data``, or through a NumPy array sharing the memory) is not seen. Inference tensors have no version counter
    and are never remembered. An entry goes when its tensor is freed. A memo, not state: forgetting it only costs
    a check."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref, int]] = {}

    def seen(self, tensor: torch.Tensor) -> bool:
        entry = self._entries.get(id(tensor))
        return entry is not None and entry[0]() is tensor and entry[1] == tensor._version

    def add(self, tensor: torch.Tensor) -> None:
        if tensor.is_inference():
            return
        key, entries = id(tensor), self._entries

        def forget(ref: weakref.ref) -> None:
            if entries.get(key, (None,))[0] is ref:
                entries.pop(key, None)

        entries[key] = (weakref.ref(tensor, forget), tensor._version)


def _call(check: Callable[[torch.Tensor], None], tensor: torch.Tensor) -> None:
    check(tensor)


# dynamo is imported at the first call made while compiling, never by ``import tsla``
_call_outside_graph = torch._disable_dynamo(_call)


def check_values(check: Callable[[torch.Tensor], None], tensor: torch.Tensor) -> None:
    """``check(tensor)`` where values can be read: eagerly; inside ``torch.compile`` between two graphs (one graph
    break, as reading values always made); under ``torch.export`` not at all (its tensors have no values)."""
    if not torch.compiler.is_compiling():
        check(tensor)
    elif not _is_exporting():
        _call_outside_graph(check, tensor)
