"""The noise-aware choice (tsla/experiments/select_rule.py) against hand computations: when validation separates two
candidates and when it cannot, the order of simplicity, the SE's two parts, P(best) against the normal formula,
and the one-line errors for bad input."""

import json
import math

import pytest

from tsla.experiments.select_rule import choose_noise_aware, p_best, paired_difference, simplicity
from tsla.experiments.select_score import Candidate

BASE, LSR, T15, NEG = (Candidate("baseline", 0.0), Candidate("lsr", 0.4), Candidate("tsla", 0.4, 15),
                       Candidate("tsla", 0.4, 25, -0.2))
SEEDS = [0.70, 0.71, 0.72, 0.73]
FLOOR4 = math.sqrt(0.08 / (4 * 1000))  # D / (K n_val) with D = 0.08, 4 seeds, 1,000 validation images: 0.004472


def _plus(d):
    return [v + d for v in SEEDS]


def test_the_order_of_simplicity_is_baseline_lsr_tsla_negative_end():
    assert [simplicity(c) for c in (BASE, LSR, T15, NEG)] == [0, 1, 2, 3]
    assert simplicity(Candidate("tsla", 0.4, 25, 0.0)) == 2


def test_validation_clearly_separates_five_points():
    got = choose_noise_aware({BASE: SEEDS, LSR: _plus(0.05)}, n_val=1000)
    assert got.chosen == LSR and got.best == LSR and got.separated and not got.val_too_small
    assert got.moves == ("baseline -> lsr-theta0.4: +0.0500 beyond 1 SE (0.0045)",)
    base = got.stats[0]
    assert base.mean == pytest.approx(0.715)
    # every seed differs by exactly 0.05: the seeds' SE is 0, so the floor sets SE and a normal interval
    assert base.vs_best.mean == pytest.approx(-0.05) and base.vs_best.se == pytest.approx(FLOOR4)
    assert base.vs_best.low == pytest.approx(-0.05 - 1.959964 * FLOOR4)
    assert got.stats[1].p_best == 1.0 and base.p_best == 0.0  # 0.05 is 11 SE of the bootstrap difference


def test_validation_cannot_separate_a_third_of_a_point_with_1000_images():
    lsr = [0.703, 0.714, 0.722, 0.733]  # paired differences 0.003, 0.004, 0.002, 0.003: mean 0.003
    got = choose_noise_aware({BASE: SEEDS, LSR: lsr}, n_val=1000)
    seed_se = math.sqrt(((0.0) ** 2 + 0.001 ** 2 + 0.001 ** 2 + 0.0 ** 2) / 3) / 2  # 0.000408
    d = got.stats[1].vs_chosen
    assert d.mean == pytest.approx(0.003) and d.seed_se == pytest.approx(seed_se) and d.se == pytest.approx(FLOOR4)
    assert got.chosen == BASE and got.best == LSR and got.moves == ()
    assert not got.separated and got.val_too_small
    # n for which sqrt(D / (4 n)) = 0.003: 0.08 / (4 * 0.003^2) = 2,222.2 -> 2,223
    assert got.sentence == ("the rule keeps the simpler baseline, not the best mean lsr-theta0.4; the validation "
                            "split (1000 examples) is too small to separate lsr-theta0.4 from baseline: they differ "
                            "by 0.0030, within the validation sampling error (0.0045) of 4 seed(s); about 2,223 "
                            "would be needed")
    # without n_val only the seeds' SE (0.0004) counts, and the same numbers move to LSR
    assert choose_noise_aware({BASE: SEEDS, LSR: lsr}).chosen == LSR


def test_noisy_seeds_keep_the_simpler_candidate_and_ask_for_more_seeds():
    lsr = [0.72, 0.70, 0.75, 0.71]  # differences +0.02, -0.01, +0.03, -0.02: mean 0.005, sd 0.023805
    got = choose_noise_aware({BASE: SEEDS, LSR: lsr}, n_val=1000)
    assert got.stats[1].vs_chosen.se == pytest.approx(0.023805 / 2, abs=1e-6)
    assert got.chosen == BASE and not got.separated and not got.val_too_small
    assert "4 seed(s) cannot separate lsr-theta0.4 from baseline" in got.sentence and "more seeds" in got.sentence
    t3 = 3.182446  # t quantile 0.975 with 3 degrees of freedom: the seeds' SE governs
    assert got.stats[1].vs_chosen.high == pytest.approx(0.005 + t3 * 0.023805 / 2, abs=1e-5)


def test_the_sentence_is_about_the_chosen_when_the_rule_kept_a_simpler_candidate():
    # LSR 2 points above the baseline (chosen); TSLA 0.2 above LSR, within SE: the rule keeps LSR
    got = choose_noise_aware({BASE: SEEDS, LSR: _plus(0.02), T15: _plus(0.022)}, n_val=1000)
    assert got.chosen == LSR and got.best == T15 and not got.separated and got.val_too_small
    assert got.sentence.startswith("the rule keeps the simpler lsr-theta0.4, not the best mean tsla@15-theta0.4; "
                                   "the validation split (1000 examples) is too small to separate tsla@15-theta0.4 "
                                   "from lsr-theta0.4: they differ by 0.0020")
    # best == chosen: the runner-up is compared (LSR, 0.2 below TSLA)
    alone = choose_noise_aware({BASE: SEEDS, LSR: _plus(0.02), T15: _plus(0.03)}, n_val=1000)
    assert alone.chosen == T15 and alone.sentence.startswith("validation separates tsla@15-theta0.4 from lsr-theta0.4")


def test_moves_one_step_at_a_time_and_stops_below_one_se():
    # LSR beats the baseline by 2 points; TSLA has the best mean but beats LSR by only 0.2 (< SE 0.45): LSR stays
    per_seed = {T15: _plus(0.022), NEG: _plus(0.001), BASE: SEEDS, LSR: _plus(0.02)}
    got = choose_noise_aware(per_seed, n_val=1000)
    assert got.chosen == LSR and got.best == T15
    assert [s.candidate for s in got.stats] == [T15, NEG, BASE, LSR]  # in the order given
    # LSR 1.5 points above the baseline: TSLA now beats it by 0.7 (> SE), and the rule moves on to TSLA
    per_seed[LSR] = _plus(0.015)
    assert choose_noise_aware(per_seed, n_val=1000).chosen == T15


def test_without_a_baseline_the_rule_starts_from_the_best_lsr():
    lsr1 = Candidate("lsr", 0.1)
    got = choose_noise_aware({lsr1: SEEDS, LSR: _plus(0.02), T15: _plus(0.022)}, n_val=1000)
    assert got.chosen == LSR and got.moves == ()  # TSLA's +0.2 over LSR(0.4) is below its SE (0.45)


def test_a_negative_end_wins_only_by_more_than_its_se_over_tsla():
    per_seed = {BASE: SEEDS, LSR: _plus(0.02), T15: _plus(0.03), NEG: _plus(0.03 + 0.9 * FLOOR4)}
    assert choose_noise_aware(per_seed, n_val=1000).chosen == T15
    per_seed[NEG] = _plus(0.03 + 1.1 * FLOOR4)
    assert choose_noise_aware(per_seed, n_val=1000).chosen == NEG


def test_one_seed_uses_the_floor_alone():
    floor1 = math.sqrt(0.08 / 1000)  # 0.008944
    assert choose_noise_aware({BASE: [0.70], LSR: [0.70 + 1.1 * floor1]}, n_val=1000).chosen == LSR
    assert choose_noise_aware({BASE: [0.70], LSR: [0.70 + 0.9 * floor1]}, n_val=1000).chosen == BASE
    lone = choose_noise_aware({BASE: [0.70], LSR: [0.80]})  # one seed, no n_val: no SE, no move
    assert lone.chosen == BASE and "a second seed" in lone.sentence


def test_nll_lower_is_better():
    got = choose_noise_aware({BASE: [0.9, 0.8, 0.85], LSR: [0.7, 0.6, 0.66]}, criterion="val_nll")
    assert got.chosen == LSR and got.best == LSR  # 0.197 lower with seed SE 0.0033; no floor for NLL
    assert got.stats[0].vs_best.mean == pytest.approx((0.2 + 0.2 + 0.19) / 3)
    assert got.stats[0].vs_best.se == pytest.approx(0.01 / math.sqrt(3) / math.sqrt(3))


def test_p_best_matches_the_normal_formula_and_is_deterministic():
    # constant paired difference 0.003: the bootstrap difference is normal with sd sqrt(D / (K n)) = FLOOR4
    per_seed = {BASE: SEEDS, LSR: _plus(0.003)}
    probs = p_best(per_seed, n_val=1000)
    expected = 0.5 * (1 + math.erf(0.003 / FLOOR4 / math.sqrt(2)))  # Phi(0.671) = 0.749
    assert probs[LSR] == pytest.approx(expected, abs=0.03) and probs[BASE] == pytest.approx(1 - probs[LSR])
    assert p_best(per_seed, n_val=1000) == probs
    # identical scores and no validation noise: every replicate is a tie, split evenly
    assert p_best({BASE: SEEDS, LSR: list(SEEDS)}) == {BASE: 0.5, LSR: 0.5}


def test_paired_difference_of_one_seed_without_n_val_has_no_se():
    d = paired_difference([0.7], [0.6])
    assert d.mean == pytest.approx(0.1) and math.isnan(d.se) and math.isnan(d.low)


@pytest.mark.parametrize("per_seed, kwargs, message", [
    ({}, {}, "no candidate to choose from"),
    ({BASE: [0.7, 0.7], LSR: [0.7]}, {}, "one score per seed"),
    ({BASE: [0.7], LSR: [float("nan")]}, {}, "lsr-theta0.4: its validation score is not finite"),
    ({BASE: [0.7]}, {"criterion": "val_top5"}, "unknown criterion 'val_top5'"),
    ({BASE: [0.7]}, {"n_val": 0}, "n_val=0: give the validation split's size"),
])
def test_bad_input_is_one_value_error(per_seed, kwargs, message):
    with pytest.raises(ValueError, match=message):
        choose_noise_aware(per_seed, **kwargs)


def test_as_dict_is_plain_json_with_none_for_what_one_seed_cannot_measure():
    got = choose_noise_aware({BASE: [0.70], LSR: [0.80]}).as_dict()
    text = json.dumps(got, allow_nan=False)  # raises on nan
    back = json.loads(text)
    assert back["chosen"] == {"method": "baseline", "theta": 0.0, "switch_epoch": None, "theta_after": 0.0}
    assert back["candidates"][1]["vs_chosen"] == {"mean": pytest.approx(0.1), "se": None, "low": None, "high": None}
    assert back["separated"] is False and back["moves"] == []


def test_a_branch_early_stopped_before_its_switch_is_its_trunk_model():
    # TSLA(25)'s best-validation epochs all lie before 25: its scores are LSR's, the same model
    t25 = Candidate("tsla", 0.4, 25)
    lsr = [0.7203, 0.7311, 0.7402, 0.7507]
    got = choose_noise_aware({BASE: SEEDS, LSR: lsr, t25: list(lsr)}, n_val=1000)
    p = {s.candidate: s.p_best for s in got.stats}
    # the same model gets the same noise: the two tie in every replicate and split P(best) exactly
    assert p[LSR] == p[t25] and p[LSR] + p[t25] + p[BASE] == pytest.approx(1.0)
    # the runner-up is the baseline, not the copy of LSR: 2.06 points below at SE 0.45, separated
    assert got.chosen == LSR and got.separated
    assert got.sentence == ("validation separates lsr-theta0.4 from baseline: it is better by 0.0206, more than 1 "
                            "SE (0.0045)")


def test_candidates_that_are_all_one_model_have_nothing_to_separate():
    got = choose_noise_aware({LSR: SEEDS, T15: list(SEEDS)}, n_val=1000)
    assert got.chosen == LSR and got.separated and got.sentence == "one model (lsr-theta0.4): nothing to separate"
