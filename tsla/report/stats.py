"""Paired statistics over seeds: the mean difference with a t interval, an exact sign-flip test, Holm's adjustment,
the minimum detectable effect and an equivalence test (TOST).

Every function takes the per-seed differences d_i = a_i - b_i of one contrast (the same seed trained with methods a
and b: same initialisation, data order and augmentation), so the seed's own effect cancels.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Sequence

import numpy as np
from scipy import special

EXACT_LIMIT = 16  # up to 2^16 sign patterns enumerated; beyond, a seeded Monte-Carlo draw
MONTE_CARLO_DRAWS = 2**16  # sign patterns drawn for n > EXACT_LIMIT pairs (the observed one included) ...
MONTE_CARLO_WORK = 2**28  # ... but at most this many signs in all (fewer patterns, at least 2^11, for huge n)
CHUNK = 2**21  # random bytes (8 signs each) drawn at once (their sizes fix the seeded sample: keep them)
LOOKUPS = 2**16  # ... looked up and summed in slices of about this many: 1 MiB of temporaries, in cache, whatever n is
STOP_HITS = 100  # the Monte Carlo stops once this many patterns reach the observed |mean| (p then known to ~10%)


def _t_quantile(q: float, df: int) -> float:
    """Student's t quantile: ``scipy.stats.t.ppf(q, df)``'s own kernel, without its per-call argument checks (about
    0.2 ms, which a thousand contrasts would pay a few times each)."""
    return float(special.stdtrit(df, q))


def mean_ci(diffs: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean difference and its two-sided ``level`` t interval (nan bounds below 2 pairs)."""
    d = np.asarray(diffs, dtype=float)
    mean = float(d.mean())
    if d.size < 2:
        return mean, math.nan, math.nan
    half = _t_quantile(0.5 + level / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    return mean, mean - half, mean + half


def monte_carlo_draws(n: int) -> int:
    """The number of sign patterns the Monte-Carlo sign-flip test draws for ``n`` pairs (n > EXACT_LIMIT): 2^16 up
    to 4,096 pairs, then MONTE_CARLO_WORK / n (at least 2^11), so that its cost stays bounded."""
    return min(MONTE_CARLO_DRAWS, max(2**11, MONTE_CARLO_WORK // n))


def sign_flip_p(diffs: Sequence[float]) -> float:
    """Two-sided p-value of the exact sign-flip (paired permutation) test of "mean difference = 0": the fraction of
    the 2^n sign patterns whose |mean| is at least the observed |mean| (the observed pattern included). With n pairs
    the smallest attainable p is 2 / 2^n (0.03125 for 6 pairs).

    Beyond EXACT_LIMIT pairs the patterns are a seeded Monte-Carlo sample, drawn in chunks of bounded memory: up to
    :func:`monte_carlo_draws` patterns (the observed one included), stopped early once STOP_HITS of them reach the
    observed |mean| (Besag and Clifford's sequential p = hits / patterns drawn, which needs only about STOP_HITS / p
    draws for a large p). Where Hoeffding's bound 2 exp(-(sum d)^2 / (2 sum d^2)), an upper bound on the exact p,
    is below 1 / draws, the sample could not resolve p and the bound is returned instead (conservative)."""
    d = np.asarray(diffs, dtype=float)
    if d.size == 0:
        return math.nan
    observed = abs(d.mean())
    tolerance = observed - 1e-12 * max(1.0, observed)
    if d.size <= EXACT_LIMIT:
        return float(np.mean(np.abs(_sign_patterns(d.size) @ d) / d.size >= tolerance))
    draws, total, squares = monte_carlo_draws(d.size), float(d.sum()), float(np.dot(d, d))
    if squares == 0:
        return 1.0  # every difference 0: every pattern has mean 0, as observed
    bound = 2.0 * math.exp(-total * total / (2.0 * squares))
    if bound < 1.0 / draws:
        return bound
    # a pattern is one random byte per 8 pairs (bit set: the pair's sign flipped); table[j, b] is the sum of the
    # differences that byte value b flips in group j, so a pattern's flipped sum is one lookup per 8 pairs
    rng = np.random.default_rng(0)
    groups = (d.size + 7) // 8
    padded = np.zeros(groups * 8)
    padded[: d.size] = d
    bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(float)  # 256 x 8, high bit first
    table = (padded.reshape(groups, 8) @ bits.T).ravel()
    offsets = np.arange(groups, dtype=np.intp) * 256
    hits, drawn, chunk = 1, 1, 256  # the observed pattern counts once; chunks grow so an early stop comes early
    while drawn < draws and hits < STOP_HITS:
        k = min(chunk, max(1, CHUNK // groups), draws - drawn)
        patterns = rng.integers(0, 256, size=(k, groups), dtype=np.uint8)
        rows = max(1, LOOKUPS // groups)  # the patterns in a few slices: each row's sum is the same, found faster
        for start in range(0, k, rows):
            index = patterns[start:start + rows].astype(np.intp)
            index += offsets
            sums = total - 2.0 * np.take(table, index).sum(axis=1)
            hits += int(np.count_nonzero(np.abs(sums) / d.size >= tolerance))
        drawn += k
        chunk *= 2
    return hits / drawn


@functools.lru_cache(maxsize=EXACT_LIMIT + 1)
def _sign_patterns(n: int) -> np.ndarray:
    """The 2^n sign patterns of n pairs (2^n x n, read-only), built once per n: building them is most of an exact
    test's time (about 0.2 s at n = 16), and an analysis runs hundreds of tests of the same n."""
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    signs.setflags(write=False)
    return signs


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (controls the family-wise error rate); nan stays nan."""
    order = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    m = len(order)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def minimum_detectable_effect(diffs: Sequence[float], alpha: float = 0.05, power: float = 0.8) -> float:
    """The true mean difference a two-sided paired t test at ``alpha`` detects with probability ``power``, given the
    observed spread of the differences: (t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n) (nan below 2 pairs)."""
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return math.nan
    df = d.size - 1
    return float((_t_quantile(1 - alpha / 2, df) + _t_quantile(power, df)) * d.std(ddof=1) / math.sqrt(d.size))


def tost_p(diffs: Sequence[float], margin: float) -> float:
    """p-value of the two one-sided t tests (TOST) of equivalence within (-margin, margin): small when the mean
    difference is shown to lie inside the margin (p < 0.05 exactly when the 90% t interval lies inside it)."""
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return math.nan
    se = d.std(ddof=1) / math.sqrt(d.size)
    if se == 0:
        return 0.0 if abs(d.mean()) < margin else 1.0
    df = d.size - 1
    p_low = special.stdtr(df, -((d.mean() + margin) / se))  # H0: mean <= -margin (t's upper tail: t.sf)
    p_high = special.stdtr(df, (d.mean() - margin) / se)  # H0: mean >= +margin (t.cdf)
    return float(max(p_low, p_high))


def noninferiority_p(diffs: Sequence[float], margin: float) -> float:
    """One-sided paired t test of non-inferiority, H0: mean difference <= -margin: small when a is shown to be no
    more than ``margin`` below b (p < 0.05 exactly when the lower 95 % one-sided t bound is above -margin). nan below
    2 pairs; with no spread, 0 when the mean is above -margin and 1 otherwise (as :func:`tost_p`)."""
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return math.nan
    se = d.std(ddof=1) / math.sqrt(d.size)
    if se == 0:
        return 0.0 if d.mean() > -margin else 1.0
    return float(special.stdtr(d.size - 1, -((d.mean() + margin) / se)))


def verdict(mean: float, p_adjusted: float, p_equivalence: float, margin: float, alpha: float = 0.05) -> str:
    """The decision rule of docs/study.md: 'a > b' or 'a < b' when the Holm-adjusted sign-flip p is below alpha;
    else 'equivalent' when TOST shows |difference| < margin; else 'undecided' (the data rule out neither)."""
    if not math.isnan(p_adjusted) and p_adjusted < alpha:
        return "a > b" if mean > 0 else "a < b"
    if not math.isnan(p_equivalence) and p_equivalence < alpha:
        return f"equivalent (±{margin:g})"
    return "undecided"
