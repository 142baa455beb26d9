"""Timing helpers: every figure is a ratio against a reference measured in the same process, alternating, with
several repeats; the median is reported (this machine varies by about 20% from run to run)."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def seconds(fn: Callable[[], object], inner: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner


def alternate(candidate: Callable[[], object], reference: Callable[[], object], repeats: int = 7,
              inner: int = 1, warmup: int = 1) -> dict[str, float]:
    """Time ``candidate`` and ``reference`` in turns (ABAB...), ``repeats`` times each after ``warmup`` rounds.

    Returns the median seconds of each, and ``ratio`` = median over rounds of candidate/reference (each round's two
    timings were taken back to back, so a slow spell of the machine affects both).
    """
    for _ in range(warmup):
        candidate()
        reference()
    ratios, cand, ref = [], [], []
    for i in range(repeats):
        if i % 2 == 0:
            a, b = seconds(candidate, inner), seconds(reference, inner)
        else:
            b, a = seconds(reference, inner), seconds(candidate, inner)
        cand.append(a)
        ref.append(b)
        ratios.append(a / b)
    return {"candidate_s": statistics.median(cand), "reference_s": statistics.median(ref),
            "ratio": statistics.median(ratios), "repeats": repeats}
