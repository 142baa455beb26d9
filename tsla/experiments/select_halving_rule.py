"""Noise-aware successive halving across θ families, as a pure function of logged per-epoch records, so that it can
be replayed on committed logs and the command can make the same decisions.

The families are those of :func:`tsla.experiments.select_score.families`: the baseline alone, and per θ its LSR
trunk with its TSLA(S) and negative-end branches. At each lr milestone m every family still training is scored by
its best member among those that exist by then (the trunk, and branches switching before m), each member by the
mean over seeds of its score on the epochs before m (by each record's ``epoch``). A family is **kept unless it is
worse than the best family by more than its SE** (the paired SE of
:func:`tsla.experiments.select_rule.paired_difference` between the two families' best members, validation floor
included): unlike keeping the better half, a family that validation cannot tell from the best is never dropped.
The choice among the members of the families left is :func:`tsla.experiments.select_rule.choose_noise_aware` on
full-run scores. Epochs are counted exactly, per seed: each family's trunk to the epoch it stopped at, plus each
branch's epochs from its switch to that epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .select_rule import VAL_DISAGREEMENT, Z_MOVE, JointChoice, choose_noise_aware, paired_difference
from .select_score import CRITERIA, Candidate, epochs_trained, families, score

Records = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class HalvingRound:
    """One decision: the milestone, each alive family's score (its best member's mean) and the SE of its paired
    difference from the best family (0 for the best itself), and the families kept, in the order given."""

    at_epoch: int
    scores: dict[str, float]
    se: dict[str, float]
    kept: list[str]


@dataclass(frozen=True)
class HalvingResult:
    """The rounds, the epoch each family stopped at (the run's length for those kept), the epochs trained per seed,
    the candidates left to choose from, and the choice among them."""

    rounds: tuple[HalvingRound, ...]
    stop: dict[str, int]
    epochs_per_seed: int
    eligible: list[Candidate]
    choice: JointChoice


def _scores(records: Sequence[Records], until: int | None, criterion: str, at: str) -> list[float]:
    """Each seed's score on its epochs before ``until`` (by the records' ``epoch``, so that logs with gaps, e.g. only
    the epochs with a test evaluation, are cut at the right epoch), or on all of them."""
    return [score(r if until is None else [x for x in r if x["epoch"] < until], criterion, at)["score"]
            for r in records]


def noise_aware_halving(cands: Sequence[Candidate], records_of: Callable[[Candidate], Sequence[Records]],
                        milestones: Sequence[int], epochs: int, criterion: str = "val_top1", at: str = "best-val",
                        n_val: int | None = None, disagreement: float = VAL_DISAGREEMENT,
                        z: float = Z_MOVE) -> HalvingResult:
    """Replay noise-aware halving over ``cands`` (``records_of(c)``: one metrics list per seed, the same seeds in
    the same order for every candidate) with decisions at each milestone 0 < m < ``epochs``. Raises ``ValueError``
    for a criterion it does not know, records without validation metrics, or a non-finite score."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}: use one of {', '.join(CRITERIA)}")
    sign = 1.0 if CRITERIA[criterion] is max else -1.0
    fams = families(cands)
    alive, stop, rounds = list(fams), {name: epochs for name in fams}, []
    for m in sorted(x for x in milestones if 0 < x < epochs):
        leaders: dict[str, list[float]] = {}
        for name in alive:
            members = [c for c in fams[name] if c.switch_epoch is None or c.switch_epoch < m]
            per = {c: _scores(records_of(c), m, criterion, at) for c in members}
            leader = max(members, key=lambda c: (sign * sum(per[c]) / len(per[c]), -members.index(c)))
            leaders[name] = per[leader]
        means = {name: sum(v) / len(v) for name, v in leaders.items()}
        top = max(alive, key=lambda n: (sign * means[n], -alive.index(n)))
        se = {n: 0.0 if n == top else paired_difference(leaders[top], leaders[n], criterion, n_val, disagreement).se
              for n in alive}
        kept = [n for n in alive if n == top or not sign * (means[top] - means[n]) > z * se[n]]
        for name in alive:
            if name not in kept:
                stop[name] = m
        rounds.append(HalvingRound(m, means, se, kept))
        alive = kept
    eligible = [c for name in alive for c in fams[name]]
    per_seed = {c: _scores(records_of(c), None, criterion, at) for c in eligible}
    choice = choose_noise_aware(per_seed, criterion, n_val, disagreement, z)
    return HalvingResult(tuple(rounds), stop, epochs_trained(fams, stop), eligible, choice)
