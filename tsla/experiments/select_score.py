"""How ``tsla select`` scores and chooses, as pure functions of logged per-epoch records (metrics.jsonl lines), so
that the command and the replay of the committed study logs (scripts/replay_selection.py) choose the same way.

A candidate is (method, theta, switch_epoch, theta_after): ``baseline`` (theta 0), ``lsr`` at theta, ``tsla`` at
theta switching at S (smoothing off from epoch S, epochs counted from 0), or a *negative end*: ``tsla`` with
theta_after < 0 (LSR at theta until S, then theta_after from epoch S). Only ``val_*`` fields are read: the test set
never decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

CRITERIA = {"val_top1": max, "val_nll": min}
"""Each criterion and whether its best value is the largest (top-1) or the smallest (NLL)."""
AT = ("last", "best-val")


@dataclass(frozen=True, order=True)
class Candidate:
    """One configuration ``tsla select`` can choose."""

    method: str
    theta: float
    switch_epoch: int | None = None
    theta_after: float = 0.0
    """θ from the switch epoch on: 0 (TSLA's one-hot labels), or negative for a negative end (method ``tsla``)."""

    @property
    def label(self) -> str:
        """The run folder's method-theta part: baseline, lsr-theta0.2, tsla@25-theta0.2, and for a negative end
        tsla@25-after-0.2-theta0.4."""
        if self.method == "baseline":
            return "baseline"
        name = "lsr" if self.method == "lsr" else f"tsla@{self.switch_epoch}"
        after = f"-after{self.theta_after:g}" if self.theta_after else ""
        return f"{name}{after}-theta{self.theta:g}"

    @property
    def train_method(self) -> str:
        """The trainer's ``--method`` for this candidate."""
        return {"baseline": "baseline", "lsr": "lsr"}.get(self.method, f"tsla@{self.switch_epoch}")

    @property
    def negative_end(self) -> bool:
        """Whether the candidate ends on a negative θ (LSR until S, then ``theta_after`` < 0)."""
        return self.method == "tsla" and self.theta_after < 0

    def as_dict(self) -> dict[str, Any]:
        """{method, theta, switch_epoch, theta_after}: plain values, as selection.json writes them."""
        return {"method": self.method, "theta": 0.0 if self.method == "baseline" else self.theta,
                "switch_epoch": self.switch_epoch, "theta_after": self.theta_after}


def candidates(thetas: Sequence[float], switch_at: Sequence[int],
               theta_after: Sequence[float] = (0.0,)) -> list[Candidate]:
    """The grid in training order: the baseline, then per theta its LSR trunk and, for each S, TSLA(S) followed by
    one negative end per negative value of ``theta_after`` (values >= 0 add nothing: 0 is TSLA(S) itself)."""
    grid = [Candidate("baseline", 0.0)]
    for theta in thetas:
        grid.append(Candidate("lsr", theta))
        for s in switch_at:
            grid.append(Candidate("tsla", theta, s))
            grid += [Candidate("tsla", theta, s, after) for after in theta_after if after < 0]
    return grid


def score(records: Sequence[Mapping[str, Any]], criterion: str, at: str) -> dict[str, Any]:
    """The validation score of one run: ``criterion`` at the last epoch (``at='last'``) or at the early-stopping
    epoch (``'best-val'``: the epoch of the highest ``val_top1``, ties to the earliest, as the trainer's ``best_val``
    and RUN/best.pt). Returns {score, epoch, val_top1, val_nll} of that epoch. Raises ``ValueError`` when the
    records hold no validation metrics."""
    key = "val_top1" if at == "best-val" else criterion
    rows = [r for r in records if key in r and criterion in r]
    if not rows:
        raise ValueError(f"no {criterion} in the run's metrics: train the candidates with --val-size")
    row = rows[-1] if at == "last" else max(rows, key=lambda r: (r["val_top1"], -r["epoch"]))
    return {"score": row[criterion], "epoch": row["epoch"], "val_top1": row.get("val_top1"),
            "val_nll": row.get("val_nll")}


def mean_score(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Scores of one candidate over its seeds -> their mean (score and validation metrics) and the seeds' scores."""
    def mean(key: str) -> float | None:
        values = [s[key] for s in per_seed if s.get(key) is not None]
        return sum(values) / len(values) if values else None

    return {"score": mean("score"), "val_top1": mean("val_top1"), "val_nll": mean("val_nll"),
            "seed_scores": [s["score"] for s in per_seed]}


TIE = 1e-12
"""Scores this close (absolute, or relative to the larger) are a tie: a mean over seeds carries float rounding
(mean(0.40, 0.46) is 0.43000000000000005, mean(0.43, 0.43) is 0.43), while distinct validation accuracies of n
images over k seeds differ by at least 1 / (n k)."""


def check_finite(scores: Mapping[Candidate, float]) -> None:
    """Raise ``ValueError`` naming the first candidate whose (mean) validation score is not finite."""
    for cand, value in scores.items():
        if not math.isfinite(value):
            raise ValueError(f"{cand.label}: its validation score is {value} (its runs diverged): lower --lr, "
                             f"or leave that theta out of --thetas")


def choose(scores: Mapping[Candidate, float], criterion: str) -> Candidate:
    """The candidate with the best score (largest top-1, smallest NLL); a tie (scores within :data:`TIE`) goes to
    the candidate listed first: a later one is chosen only when it is better by more than that. Raises
    ``ValueError`` for no candidates or a non-finite score."""
    if not scores:
        raise ValueError("no candidate to choose from")
    for cand, value in scores.items():
        if not math.isfinite(value):
            raise ValueError(f"{cand.label}: its validation score is {value} (its runs diverged): lower --lr, "
                             f"or leave that theta out of --thetas")
    sign = 1.0 if CRITERIA[criterion] is max else -1.0
    best = None
    for cand, value in scores.items():
        if best is None or (sign * (value - scores[best]) > 0
                            and not math.isclose(value, scores[best], rel_tol=TIE, abs_tol=TIE)):
            best = cand
    return best


def keep_better_half(family_scores: Mapping[float, float], criterion: str) -> list[float]:
    """Successive halving at one lr milestone: of the families (keyed by theta; the baseline is theta 0) still
    training, the better half by validation (ceil(n / 2), at least one), in the order given."""
    sign = 1.0 if CRITERIA[criterion] is max else -1.0
    order = list(family_scores)
    ranked = sorted(order, key=lambda t: (-sign * family_scores[t], order.index(t)))
    keep = set(ranked[: max(1, math.ceil(len(order) / 2))])
    return [t for t in order if t in keep]


def family_of(cand: Candidate) -> str:
    """The family a candidate trains in: 'baseline' alone, or 'theta<θ>' (the LSR trunk and its TSLA branches)."""
    return "baseline" if cand.method == "baseline" else f"theta{cand.theta:g}"


def families(cands: Sequence[Candidate]) -> dict[str, list[Candidate]]:
    """The candidates grouped by :func:`family_of`, families and members in the order given."""
    out: dict[str, list[Candidate]] = {}
    for cand in cands:
        out.setdefault(family_of(cand), []).append(cand)
    return out


def halving_round(fams: Mapping[str, Sequence[Candidate]], alive: Sequence[str], milestone: int,
                  records_of: Callable[[Candidate], Sequence[Sequence[Mapping[str, Any]]]], criterion: str,
                  at: str) -> tuple[dict[str, float], list[str]]:
    """One successive-halving decision at an lr milestone: each family still training is scored by its best member
    that exists by then (a TSLA branch switching before the milestone, or the trunk), each member by the mean over
    seeds of its score on the epochs before the milestone (``records_of(cand)``: one metrics list per seed).
    Returns (family -> score, the families kept)."""
    fam_score: dict[str, float] = {}
    for name in alive:
        members = [c for c in fams[name] if c.switch_epoch is None or c.switch_epoch < milestone]
        per = {c: mean_score([score(r[:milestone], criterion, at) for r in records_of(c)])["score"]
               for c in members}
        fam_score[name] = per[choose(per, criterion)]
    return fam_score, keep_better_half(fam_score, criterion)


def epochs_trained(fams: Mapping[str, Sequence[Candidate]], stop: Mapping[str, int]) -> int:
    """Epochs one seed trains when each family stops at ``stop[family]``: the trunk's epochs plus each branch's
    epochs after its switch."""
    return sum(stop[n] + sum(max(0, stop[n] - c.switch_epoch) for c in fams[n] if c.switch_epoch) for n in fams)
