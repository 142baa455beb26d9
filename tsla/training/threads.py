"""The CPU thread count of a run: part of what it computes, so it is recorded and kept.

torch's CPU kernels split reductions (convolutions, matrix products, sums) across threads, and the order in which
partial sums are added depends on the thread count. Float addition is not associative, so the same run on 1 and on 2
threads can drift apart in the last bits from the first step on and end with different numbers (as ``compare --jobs
1`` and ``--jobs 2`` did for one run in issue 13). A run therefore records
its thread count (``threads`` in config.yaml, the checkpoint and summary.json); ``--resume`` and branching keep it,
and a resume asked to change it is refused (:func:`check_same_threads`), so that "exact resume" stays exact.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from ..errors import RunDirError


def check_same_threads(saved: Mapping[str, Any], threads: int, source: str | Path, what: str = "--resume") -> None:
    """Refuse to continue a run (``saved``: its config dict) on another thread count than it was trained with.

    A config saved before thread counts were recorded (no ``threads`` key, or None) cannot be checked and passes.
    Raises ``RunDirError`` naming both counts and the flag that keeps the run's own.
    """
    before = saved.get("threads")
    if before is None or int(before) == int(threads):
        return
    raise RunDirError(
        f"{what}: {source} was trained with {before} CPU thread(s), not {threads}: the thread count changes the "
        f"numbers a run computes, so pass --threads {before} (or use a new --out)"
    )


@contextmanager
def using_threads(threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``, restoring the previous count afterwards (a caller
    training in its own process, such as a test or a notebook, keeps its setting)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
