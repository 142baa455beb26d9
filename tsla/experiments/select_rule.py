"""The noise-aware choice among select's candidates: prefer the simplest candidate, move to a more complex one only
when validation shows a paired difference larger than its standard error, and say how sure the choice is.

Pure functions of per-seed validation scores (``per_seed[c][k]``: candidate c's score for seed k, every candidate
trained with the same seeds, so differences are paired by seed). Scores are in the criterion's own units: top-1 as a
fraction, NLL in nats. Deterministic: the bootstrap draws from a seeded generator.

**The standard error of a paired difference.** With d_k = score(c, k) - score(b, k) over K seeds,

    SE = max(s_d / sqrt(K), sqrt(D / (K * n_val)))

where s_d is the standard deviation of the d_k (ddof 1) and the second term, the *validation floor*, is used for
``val_top1`` when ``n_val`` (the validation split's size) is given. Why a floor: each d_k is measured on a finite
validation split, and two classifiers scored on the same n examples differ by (delta - Delta^2) / n in variance
(delta: the share of examples on which exactly one is right; Delta: their accuracy difference). That noise is part
of s_d, but with 2-4 seeds s_d is itself so uncertain that it can come out near 0 by chance; the floor is the least
SE the validation sampling alone allows. It falls as 1 / K because the validation noise of different seeds was
measured to be closer to independent than shared (see the constants below). With one seed s_d does not exist and SE is the floor
(or nan without ``n_val``: the rule then cannot move away from the simplest candidate).

**The constants, fixed on the committed logs of study 1 and study 2 only** (docs/evidence/study, study2; tabled by
scripts/replay_select.py in docs/evidence/select-replay/constants.md): with aggregate top-1 only, delta is unknown,
but a run's validation and test top-1 are two independent samples of the same model, so for two runs of the same
(draw, seed) r = (val_a - val_b) - (test_a - test_b) has variance D * (1 / n_val + 1 / n_test). Over every pair of
select's candidate cells at each run's best-validation epoch, D = mean(r^2) / (1/1000 + 1/10000) was 0.034 (study 1,
clean), 0.122 (study 1, 40 % symmetric noise), 0.040 / 0.087 / 0.104 (study 2: clean, sym40, pair40); their mean,
rounded, is VAL_DISAGREEMENT = 0.08. Averaged over a group's 4 seeds (one validation split), r kept
E[mean^2] / E[r^2] = 0.07-0.48 of its variance per regime, 0.31 on average (0.25 if independent across seeds, 1 if
shared): closer to independent, hence the 1 / K. The threshold, one SE (Z_MOVE = 1), is the rule's own definition,
not fitted; docs/evidence/select-replay/sensitivity.md shows what other thresholds would have chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..report.stats import _t_quantile
from .select_score import CRITERIA, Candidate

VAL_DISAGREEMENT = 0.08
"""D: the per-example variance of the difference between two candidates' 0/1 correctness (see the module text)."""
RULES = {"best-mean": 0.0, "noise-aware": 1.0}
"""The choice rules ``select`` offers, by the threshold (in SEs) a more complex candidate's gain must exceed. On the
replays of studies 1 and 2 (docs/evidence/select-replay) only the threshold 0, the best mean with ties to the simpler
candidate, met the goal select − best fixed cell >= -0.25 points in all three study-2 regimes (-0.22 / +0.02 /
0.00; one SE: -0.49 / -0.56 / 0.00), so it is ``select``'s default; the one-SE rule stays available."""
DEFAULT_RULE = "best-mean"
Z_MOVE = 1.0
"""The noise-aware rule's threshold: move to a more complex candidate only when its paired mean improvement exceeds
Z_MOVE standard errors (also the halving threshold)."""
BOOTSTRAP = 4000
"""Bootstrap replicates for P(best)."""


def simplicity(cand: Candidate) -> int:
    """The candidate's rank in the order of simplicity: baseline 0, LSR 1, TSLA 2, a negative end 3."""
    if cand.method == "baseline":
        return 0
    if cand.method == "lsr":
        return 1
    return 3 if cand.negative_end else 2


@dataclass(frozen=True)
class Difference:
    """A paired mean difference (a - b, the criterion's units) with its SE, its parts and a 95 % interval."""

    mean: float
    se: float
    seed_se: float
    floor: float
    low: float
    high: float


def paired_difference(a: Sequence[float], b: Sequence[float], criterion: str = "val_top1", n_val: int | None = None,
                      disagreement: float = VAL_DISAGREEMENT) -> Difference:
    """a - b paired by seed, with SE = max(seed SE, validation floor) as in the module text. The interval is
    mean +- q * SE, q the t quantile with K - 1 degrees of freedom when the seed SE governs, 1.96 when the floor (a
    known normal variance) does; nan where SE is nan."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    k = d.size
    mean = float(d.mean())
    seed_se = float(d.std(ddof=1) / math.sqrt(k)) if k > 1 else math.nan
    floor = math.sqrt(disagreement / (k * n_val)) if criterion == "val_top1" and n_val else 0.0
    se = floor if math.isnan(seed_se) else max(seed_se, floor)
    if math.isnan(seed_se) and floor == 0.0:
        se = math.nan
    q = _t_quantile(0.975, k - 1) if k > 1 and seed_se >= floor else 1.959963984540054
    return Difference(mean, se, seed_se, floor, mean - q * se, mean + q * se)


@dataclass(frozen=True)
class CandidateStats:
    """One candidate's validation summary: mean score, difference to the best and to the chosen, P(best)."""

    candidate: Candidate
    mean: float
    vs_best: Difference
    vs_chosen: Difference
    p_best: float


@dataclass(frozen=True)
class JointChoice:
    """The rule's choice and how sure it is. ``best`` has the best mean score; ``moves`` lists the rule's steps
    ("baseline -> lsr-theta0.4: +0.0500 beyond 1 SE (0.0045)"); ``separated`` is False when the best and the
    chosen differ by no more than one SE (when the chosen is the best, or the same model, the best and the
    runner-up: the best mean among candidates whose scores differ from the best's, as identical scores are the same
    model); ``val_too_small`` when, in addition, the validation floor is the larger part of that SE; ``sentence``
    says so in plain words (or that the two are separated), naming the simpler candidate the rule kept if any."""

    chosen: Candidate
    best: Candidate
    criterion: str
    n_seeds: int
    n_val: int | None
    stats: tuple[CandidateStats, ...]
    moves: tuple[str, ...]
    separated: bool
    val_too_small: bool
    sentence: str

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers and strings, as a selection.json entry would hold them (an SE or bound that cannot be
        measured, nan, becomes None: JSON has no nan)."""
        def diff(d: Difference) -> dict[str, float | None]:
            return {k: None if math.isnan(v) else v for k, v in
                    (("mean", d.mean), ("se", d.se), ("low", d.low), ("high", d.high))}

        return {"chosen": self.chosen.as_dict(), "best": self.best.as_dict(), "criterion": self.criterion,
                "n_seeds": self.n_seeds, "n_val": self.n_val, "moves": list(self.moves),
                "separated": self.separated, "val_too_small": self.val_too_small, "sentence": self.sentence,
                "candidates": [{**s.candidate.as_dict(), "mean": s.mean, "vs_best": diff(s.vs_best),
                                "vs_chosen": diff(s.vs_chosen), "p_best": s.p_best} for s in self.stats]}


def _check(per_seed: Mapping[Candidate, Sequence[float]], criterion: str, n_val: int | None) -> int:
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}: use one of {', '.join(CRITERIA)}")
    if not per_seed:
        raise ValueError("no candidate to choose from")
    if n_val is not None and (isinstance(n_val, bool) or not isinstance(n_val, int) or n_val < 1):
        raise ValueError(f"n_val={n_val!r}: give the validation split's size in examples (a positive integer)")
    sizes = {len(v) for v in per_seed.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError("every candidate needs one score per seed, for the same seeds (scores are paired by seed)")
    for cand, values in per_seed.items():
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{cand.label}: its validation score is not finite (its runs diverged): lower the "
                             f"learning rate, or leave that candidate out")
    return sizes.pop()


def p_best(per_seed: Mapping[Candidate, Sequence[float]], criterion: str = "val_top1", n_val: int | None = None,
           disagreement: float = VAL_DISAGREEMENT, replicates: int = BOOTSTRAP,
           seed: int = 0) -> dict[Candidate, float]:
    """P(best) per candidate: the share of bootstrap replicates in which its mean is the best (ties split evenly).
    A replicate resamples the seeds with replacement (the same seeds for every candidate: paired) and, for
    ``val_top1`` with ``n_val``, adds validation-example noise. With aggregate top-1 only, resampling the n_val
    examples is modelled as binomial noise, in its normal form: the part every candidate shares (the examples all
    get right or all get wrong) moves every mean alike and cannot change the ranking, so it is left out; the part
    that can, the examples on which candidates disagree, is drawn independently per candidate and seed with variance
    D / (2 n_val), so that a difference of two candidates gets D / n_val, the variance that sets the rule's floor.
    Candidates with identical scores for every seed are taken to be the same model (a branch whose best-validation
    epoch lies before its switch *is* its trunk there): they share their noise, tie in every replicate and split
    their P(best)."""
    cands = list(per_seed)
    k = _check(per_seed, criterion, n_val)
    sign = 1.0 if CRITERIA[criterion] is max else -1.0
    scores = sign * np.array([per_seed[c] for c in cands], dtype=float)  # candidates x seeds, larger is better
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, k, size=(replicates, k))
    draws = scores[:, idx]  # candidates x replicates x seeds
    if criterion == "val_top1" and n_val:
        model = [next(j for j in range(len(cands)) if list(per_seed[cands[j]]) == list(per_seed[c])) for c in cands]
        noise = rng.normal(0.0, math.sqrt(disagreement / (2 * n_val)), size=draws.shape)
        draws = draws + noise[model]  # the same model, the same noise
    means = draws.mean(axis=2)
    top = means.max(axis=0)
    winners = np.isclose(means, top[None, :], rtol=0.0, atol=1e-12)
    share = (winners / winners.sum(axis=0)[None, :]).mean(axis=1)
    return {c: float(share[i]) for i, c in enumerate(cands)}


def choose_noise_aware(per_seed: Mapping[Candidate, Sequence[float]], criterion: str = "val_top1",
                       n_val: int | None = None, disagreement: float = VAL_DISAGREEMENT, z: float = Z_MOVE,
                       replicates: int = BOOTSTRAP, seed: int = 0) -> JointChoice:
    """The rule: start from the simplest candidate (lowest :func:`simplicity`; among several at that level, e.g.
    two LSR θ when there is no baseline, the best mean, the first given on a tie); then, for each more complex
    level in turn (LSR, TSLA, negative end), take that level's best mean as the challenger and move to it only when
    its paired mean improvement over the current choice exceeds ``z`` SE (:func:`paired_difference`). Within a
    level (several θ or S) the best mean is the challenger: the rule prefers simpler *kinds* of schedule, not
    smaller θ. Raises ``ValueError`` for an unknown criterion, no candidates, unpaired or non-finite scores, or a
    bad ``n_val``."""
    k = _check(per_seed, criterion, n_val)
    given = list(per_seed)
    order = sorted(given, key=lambda c: (simplicity(c), given.index(c)))
    sign = 1.0 if CRITERIA[criterion] is max else -1.0
    mean = {c: float(np.mean(per_seed[c])) for c in order}

    def diff(a: Candidate, b: Candidate) -> Difference:
        return paired_difference(per_seed[a], per_seed[b], criterion, n_val, disagreement)

    def top_of(level: int) -> Candidate:
        return max((c for c in order if simplicity(c) == level), key=lambda c: (sign * mean[c], -order.index(c)))

    current, moves = top_of(simplicity(order[0])), []
    for level in sorted({simplicity(c) for c in order if simplicity(c) > simplicity(current)}):
        challenger = top_of(level)
        d = diff(challenger, current)
        # threshold 0 (best-mean) needs no SE: one seed without n_val has none (NaN), which never let it move
        if sign * d.mean > (z * d.se if z else 0.0):
            moves.append(f"{current.label} -> {challenger.label}: {d.mean:+.4f} beyond {z:g} SE ({d.se:.4f})")
            current = challenger
    best = max(order, key=lambda c: (sign * mean[c], -order.index(c)))
    probs = p_best(per_seed, criterion, n_val, disagreement, replicates, seed)
    stats = tuple(CandidateStats(c, mean[c], diff(c, best), diff(c, current), probs[c]) for c in given)
    distinct = [c for c in order if c == best or list(per_seed[c]) != list(per_seed[best])]
    if len(distinct) < 2:
        return JointChoice(current, best, criterion, k, n_val, stats, tuple(moves), True, False,
                           f"one model ({best.label}): nothing to separate")
    same = list(per_seed[current]) == list(per_seed[best])
    other = max((c for c in distinct if c != best), key=lambda c: (sign * mean[c], -order.index(c))) if same \
        else current
    # how sure: always against one SE, whatever threshold the rule moved by (0 for the best-mean rule)
    separated, too_small, sentence = _separation(best, other, diff(best, other), sign, k, n_val, disagreement,
                                                 Z_MOVE)
    if not same:
        sentence = f"the rule keeps the simpler {current.label}, not the best mean {best.label}; {sentence}"
    return JointChoice(current, best, criterion, k, n_val, stats, tuple(moves), separated, too_small, sentence)


def _separation(top: Candidate, other: Candidate, d: Difference, sign: float, k: int, n_val: int | None,
                disagreement: float, z: float) -> tuple[bool, bool, str]:
    """Whether ``top`` (the best mean) beats ``other`` by more than ``z`` SE (``d``: top - other), whether the
    validation floor is the larger part of that SE, and the sentence to print."""
    gap = sign * d.mean
    if gap > z * d.se:
        return True, False, (f"validation separates {top.label} from {other.label}: it is better by "
                             f"{abs(d.mean):.4f}, more than {z:g} SE ({d.se:.4f})")
    if d.floor > 0 and not d.floor < d.seed_se:
        need = "" if gap <= 0 else f"; about {math.ceil(disagreement / (k * gap * gap)):,} would be needed"
        return False, True, (f"the validation split ({n_val} examples) is too small to separate {top.label} from "
                             f"{other.label}: they differ by {abs(d.mean):.4f}, within the validation sampling "
                             f"error ({d.floor:.4f}) of {k} seed(s){need}")
    how = "more seeds" if k > 1 else "a second seed (one seed gives no SE)"
    return False, False, (f"{k} seed(s) cannot separate {top.label} from {other.label}: they differ by "
                          f"{abs(d.mean):.4f}, within the seeds' SE ({d.se:.4f}); {how} would tell")


def rule_threshold(rule: str) -> float:
    """The threshold of a rule's name. Raises ``ValueError`` naming the rules for an unknown one."""
    if rule not in RULES:
        raise ValueError(f"rule {rule!r} is unknown: choose {' or '.join(RULES)}")
    return RULES[rule]
