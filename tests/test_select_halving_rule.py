"""Noise-aware halving (tsla/experiments/select_halving_rule.py) on made-up logs, against hand computations: which
families a milestone keeps (a family within one SE of the best stays, where keeping the better half would not
decide the same), the epochs each seed trains, and the choice among the families left."""

import math

from tsla.experiments.select_halving_rule import noise_aware_halving
from tsla.experiments.select_score import Candidate, candidates


def _log(values):
    return [{"epoch": e, "val_top1": v, "val_nll": 1.0 - v} for e, v in enumerate(values)]


# epochs 0..3, a milestone at 3, two seeds; scores are the best validation top-1 of epochs 0..2 at the milestone
LOGS = {
    "baseline": [_log([.40, .45, .50, .90]), _log([.40, .45, .52, .90])],                 # .51 at the milestone
    "lsr-theta0.1": [_log([.50, .55, .60, .66]), _log([.50, .55, .62, .68])],             # .61
    "tsla@2-theta0.1": [_log([.50, .55, .64, .70]), _log([.50, .55, .66, .72])],          # .65: best family
    "lsr-theta0.4": [_log([.50, .55, .635, .50]), _log([.50, .55, .655, .50])],           # .005 below per seed
    "tsla@2-theta0.4": [_log([.50, .55, .60, .60]), _log([.50, .55, .60, .60])],          # .60
}
GRID = candidates([0.1, 0.4], [2])


def _records(cand):
    return LOGS[cand.label]


def test_a_family_within_one_se_of_the_best_is_kept():
    got = noise_aware_halving(GRID, _records, [3], 4, n_val=1000)
    (r,) = got.rounds
    assert r.at_epoch == 3 and r.kept == ["theta0.1", "theta0.4"]
    assert r.scores["theta0.1"] == (.64 + .66) / 2 and r.scores["theta0.4"] == (.635 + .655) / 2
    floor = math.sqrt(0.08 / (2 * 1000))  # two seeds, 1,000 validation images: 0.0063 > the 0.005 gap
    assert abs(r.se["theta0.4"] - floor) < 1e-12 and r.se["theta0.1"] == 0.0
    # the baseline, 0.14 below, is dropped at 3; each theta family: trunk 4 + tsla@2's 2 epochs
    assert got.stop == {"baseline": 3, "theta0.1": 4, "theta0.4": 4}
    assert got.epochs_per_seed == 3 + (4 + 2) + (4 + 2)
    # full runs: lsr-theta0.1 (.67) is the best LSR; tsla@2-theta0.1 (.71) beats it by 0.04 > SE
    assert [c.label for c in got.eligible] == ["lsr-theta0.1", "tsla@2-theta0.1", "lsr-theta0.4", "tsla@2-theta0.4"]
    assert got.choice.chosen == Candidate("tsla", 0.1, 2)


def test_without_the_validation_floor_the_same_gap_drops_the_family():
    got = noise_aware_halving(GRID, _records, [3], 4)  # no n_val: the seeds' SE of a constant 0.005 gap is 0
    assert got.rounds[0].kept == ["theta0.1"]
    assert got.epochs_per_seed == 3 + (4 + 2) + (3 + 1)  # theta0.4: trunk to 3, its branch at 2 one epoch
    assert got.choice.chosen == Candidate("tsla", 0.1, 2)


def test_no_milestone_inside_the_run_trains_everything():
    got = noise_aware_halving(GRID, _records, [0, 4, 9], 4, n_val=1000)
    assert got.rounds == () and got.epochs_per_seed == 4 + 2 * (4 + 2)
    assert got.choice.chosen == Candidate("baseline", 0.0)  # .90 at epoch 3: 0.19 above any other
