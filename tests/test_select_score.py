"""The selection's pure scoring (tsla/experiments/select_score.py) against hand computations on made-up logs: which
families a halving round keeps at a milestone, how many epochs a seed trains when families stop early, and how
equal means tie."""

from tsla.experiments.select_score import (Candidate, candidates, choose, epochs_trained, families, halving_round,
                                           mean_score)


def _log(val_top1_by_epoch):
    return [{"epoch": e, "val_top1": v, "val_nll": 1.0 - v} for e, v in enumerate(val_top1_by_epoch)]


def test_a_halving_round_scores_each_family_by_its_best_member_before_the_milestone():
    grid = candidates([0.1, 0.4], [2, 5])  # baseline; theta0.1: lsr, tsla@2, tsla@5; theta0.4: the same
    fams = families(grid)
    assert list(fams) == ["baseline", "theta0.1", "theta0.4"]
    # last validation top-1 before epoch 4, two seeds each; tsla@5 does not exist yet at the milestone 4
    logs = {
        "baseline": [_log([.1, .2, .3, .50, .9]), _log([.1, .2, .3, .54, .9])],          # mean .52
        "lsr-theta0.1": [_log([.1, .2, .3, .40, .1]), _log([.1, .2, .3, .42, .1])],      # .41
        "tsla@2-theta0.1": [_log([.1, .2, .3, .60, .1]), _log([.1, .2, .3, .40, .1])],   # .50: the family's best
        "tsla@5-theta0.1": [_log([.1, .2, .3, .99, .99]), _log([.1, .2, .3, .99, .99])],  # not yet branched
        "lsr-theta0.4": [_log([.1, .2, .3, .30, .1]), _log([.1, .2, .3, .30, .1])],      # .30
        "tsla@2-theta0.4": [_log([.1, .2, .3, .20, .1]), _log([.1, .2, .3, .20, .1])],   # .20
        "tsla@5-theta0.4": [_log([.1, .2, .3, .99, .99]), _log([.1, .2, .3, .99, .99])],
    }
    scores, kept = halving_round(fams, list(fams), 4, lambda c: logs[c.label], "val_top1", "last")
    assert scores == {"baseline": (.50 + .54) / 2, "theta0.1": (.60 + .40) / 2, "theta0.4": .30}
    assert kept == ["baseline", "theta0.1"]  # ceil(3 / 2) = 2 of 3, in the order given


def test_epochs_trained_counts_the_trunk_and_each_branch_after_its_switch():
    fams = families(candidates([0.4], [15, 25]))
    # baseline 30; theta0.4 stopped at 15: its trunk 15, tsla@15 0 more, tsla@25 never branched
    assert epochs_trained(fams, {"baseline": 30, "theta0.4": 15}) == 30 + 15
    # both to 30: trunk 30 + (30 - 15) + (30 - 25)
    assert epochs_trained(fams, {"baseline": 30, "theta0.4": 30}) == 30 + 30 + 15 + 5


def test_negative_ends_follow_each_tsla_candidate_and_old_labels_stay():
    grid = candidates([0.4], [15, 25], theta_after=(0.0, -0.2))
    assert [c.label for c in grid] == ["baseline", "lsr-theta0.4", "tsla@15-theta0.4", "tsla@15-after-0.2-theta0.4",
                                       "tsla@25-theta0.4", "tsla@25-after-0.2-theta0.4"]
    assert [c.negative_end for c in grid] == [False, False, False, True, False, True]
    assert grid[5].as_dict() == {"method": "tsla", "theta": 0.4, "switch_epoch": 25, "theta_after": -0.2}
    assert grid[0].as_dict() == {"method": "baseline", "theta": 0.0, "switch_epoch": None, "theta_after": 0.0}
    assert candidates([0.4], [15, 25]) == [grid[i] for i in (0, 1, 2, 4)]  # the default adds no negative end
    # a negative end is a branch of its theta's trunk: same family, epochs after its switch counted
    assert list(families(grid)) == ["baseline", "theta0.4"]
    assert epochs_trained(families(grid), {"baseline": 30, "theta0.4": 30}) == 30 + 30 + 2 * 15 + 2 * 5


def test_equal_means_over_seeds_tie_and_the_candidate_listed_first_wins():
    """mean(0.40, 0.46) and mean(0.43, 0.43) are both 0.43 by hand; float rounding made the first 0.43000000000000005
    and it won although listed second (docs/selection.md: a tie goes to the candidate listed first)."""
    lsr, tsla = Candidate("lsr", 0.4), Candidate("tsla", 0.4, 2)
    even = mean_score([{"score": 0.43}, {"score": 0.43}])["score"]
    uneven = mean_score([{"score": 0.40}, {"score": 0.46}])["score"]
    assert choose({lsr: even, tsla: uneven}, "val_top1") == lsr
    assert choose({tsla: uneven, lsr: even}, "val_top1") == tsla
    # val_nll, smallest wins: equal means tie the same way
    assert choose({lsr: even, tsla: uneven}, "val_nll") == lsr
    # a real difference still wins: one more correct image of 1,000 in one of two seeds is 0.0005 in the mean
    better = mean_score([{"score": 0.431}, {"score": 0.43}])["score"]
    assert choose({lsr: even, tsla: better}, "val_top1") == tsla
    assert choose({lsr: even, tsla: better}, "val_nll") == lsr
