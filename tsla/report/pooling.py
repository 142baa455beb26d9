"""Which runs may share a table: one experiment, differing only in what a comparison varies.

A report averages runs over seeds and sets methods side by side. That is only meaningful when every run is the same
experiment apart from the method, θ and the seed: a run of 2 epochs and one of 4, or runs on clean and on noisy
labels, averaged into one cell would be a silently wrong number. So :func:`check_poolable` refuses a set of runs
whose configs differ in any other field, except those that only change where or how fast a run trains.
"""

from __future__ import annotations

import dataclasses
import reprlib
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..config import TrainConfig
from ..errors import RunDirError

# what a comparison varies
COMPARED_FIELDS = ("method", "theta", "seed")
# where and how fast, not what: the thread count can change the last digits (tsla/threads.py) but not the experiment
POOL_FREE_FIELDS = ("device", "eval_batch_size", "data_root", "download", "workers", "threads", "keep_checkpoints",
                    "keep_epochs")  # the last two: which checkpoints are kept (branch points), not what is computed


def _defaults() -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(TrainConfig):
        out[f.name] = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    return out


def config_mismatches(configs: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, Any, Any]]:
    """Fields (outside the compared and free ones) on which the configs do not all agree with the first one:
    ``{field: (index of the first config that differs, first config's value, its value)}``.

    A field missing from a config (a run from before the field existed) counts as the field's default, the value
    the code of that time used.
    """
    defaults = _defaults()
    skip = set(COMPARED_FIELDS + POOL_FREE_FIELDS)
    names = [k for k in defaults if k not in skip]
    first = configs[0] if configs else {}
    found: dict[str, tuple[int, Any, Any]] = {}
    for index, config in enumerate(configs[1:], 1):
        for name in names:
            a, b = first.get(name, defaults[name]), config.get(name, defaults[name])
            if name not in found and a != b:
                found[name] = (index, a, b)
    return found


def check_poolable(paths: Sequence[Path], configs: Sequence[Mapping[str, Any]]) -> None:
    """Raise ``RunDirError`` naming every differing field (with the values of two runs) when the runs at ``paths``
    (configs ``configs``) are not one experiment."""
    found = config_mismatches(configs)
    if not found:
        return
    short = reprlib.Repr()
    short.maxstring, short.maxother = 40, 40
    details = "; ".join(f"{name}: {short.repr(a)} in {paths[0]}, {short.repr(b)} in {paths[i]}"
                        for name, (i, a, b) in found.items())
    raise RunDirError(
        f"these runs are not one experiment, they differ in {', '.join(found)} ({details}): a report pools runs "
        f"that differ only in method, theta and seed; report each experiment on its own"
    )
