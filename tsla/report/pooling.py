"""Which runs may share a table: one experiment, differing only in what a comparison varies.

A report averages runs over seeds and sets methods side by side. That is only meaningful when every run is the same
experiment apart from the method, θ (and TSLA's θ after the switch) and the seed: a run of 2 epochs and one of 4, or runs on clean and on noisy
labels, averaged into one cell would be a silently wrong number. So :func:`check_poolable` refuses a set of runs
whose configs differ in any other field, except those that only change where or how fast a run trains. (A run of
another length than the baseline and LSR runs is its own labelled cell, ``tsla@30:epochs=35``: see
:func:`tsla.report.collect.collect_runs`, which passes it here with the common length.)
"""

from __future__ import annotations

import dataclasses
import reprlib
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..config import TrainConfig
from ..errors import RunDirError

# what a comparison varies (theta_after: TSLA's second stage, shown in the run's label)
COMPARED_FIELDS = ("method", "theta", "theta_after", "seed")
# where and how fast, not what: the thread count can change the last digits (tsla/threads.py) but not the experiment
POOL_FREE_FIELDS = ("device", "eval_batch_size", "data_root", "download", "workers", "threads", "keep_checkpoints",
                    "keep_epochs",  # these two: which checkpoints are kept (branch points), not what is computed
                    "allow_negative")  # a permission: the thetas it allows are in the method, theta and theta_after
# tsla-auto's own options (its rule and the rule's constants): no other method reads them, so they are compared only
# between tsla-auto runs (a tsla-auto cell added later, with its own rule, pools with the LSR runs trained before it)
AUTO_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name.startswith("auto_"))


def _defaults() -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(TrainConfig):
        out[f.name] = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    return out


def config_mismatches(configs: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, int, Any, Any]]:
    """Fields (outside the compared and free ones) on which the configs do not all agree with the first one:
    ``{field: (index of that first config, index of the first config that differs, first value, its value)}``.

    A field missing from a config (a run from before the field existed) counts as the field's default, the value
    the code of that time used. A field of :data:`AUTO_FIELDS` is compared only between tsla-auto runs: they must
    agree on their rule, the other runs do not read it.
    """
    defaults = _defaults()
    names = [k for k in defaults if k not in COMPARED_FIELDS + POOL_FREE_FIELDS + AUTO_FIELDS]
    found: dict[str, tuple[int, int, Any, Any]] = {}
    _differ_from_first(list(enumerate(configs)), names, defaults, found)
    autos = [(i, c) for i, c in enumerate(configs) if c.get("method") == "tsla-auto"]
    _differ_from_first(autos, AUTO_FIELDS, defaults, found)
    return found


def _differ_from_first(indexed: Sequence[tuple[int, Mapping[str, Any]]], names: Sequence[str],
                       defaults: Mapping[str, Any], found: dict[str, tuple[int, int, Any, Any]]) -> None:
    """Add to ``found`` each of ``names`` on which a config of ``indexed`` ((index, config) pairs) first differs
    from the first one."""
    if not indexed:
        return
    head, first = indexed[0]
    for index, config in indexed[1:]:
        for name in names:
            a, b = first.get(name, defaults[name]), config.get(name, defaults[name])
            if name not in found and a != b:
                found[name] = (head, index, a, b)


def check_poolable(paths: Sequence[Path], configs: Sequence[Mapping[str, Any]]) -> None:
    """Raise ``RunDirError`` naming every differing field (with the values of two runs) when the runs at ``paths``
    (configs ``configs``) are not one experiment."""
    found = config_mismatches(configs)
    if not found:
        return
    short = reprlib.Repr()
    short.maxstring, short.maxother = 40, 40
    details = "; ".join(f"{name}: {short.repr(a)} in {paths[h]}, {short.repr(b)} in {paths[i]}"
                        for name, (h, i, a, b) in found.items())
    raise RunDirError(
        f"these runs are not one experiment, they differ in {', '.join(found)} ({details}): a report pools runs "
        f"that differ only in method, theta and seed; report each experiment on its own"
    )
