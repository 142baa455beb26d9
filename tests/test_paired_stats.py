"""Paired statistics checked against independent computations: scipy's paired t test, hand-enumerated sign flips,
Holm by hand, the power of a paired t test at the minimum detectable effect (non-central t)."""

import csv
import itertools
import math

import numpy as np
import pytest
from scipy import stats

from tsla.report.paired import contrasts, parse_contrasts
from tsla.report.stats import (holm, mean_ci, minimum_detectable_effect, noninferiority_p, sign_flip_p, tost_p,
                               verdict)
from tsla.errors import ConfigError

D = [0.4, 0.1, 0.7, -0.2, 0.5, 0.3, 0.6, 0.2]


def test_the_interval_is_scipys_paired_t_interval():
    a = np.array([90.1, 89.7, 90.6, 89.9, 90.3, 90.0, 90.8, 90.2])
    b = a - np.array(D)
    mean, low, high = mean_ci(list(a - b))
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (mean, low, high) == pytest.approx((float(np.mean(D)), ci.low, ci.high), abs=1e-9)


def test_sign_flip_p_counts_the_sign_patterns():
    assert sign_flip_p([1.0, 2.0, 3.0]) == pytest.approx(2 / 8)  # only all-plus and all-minus reach |mean| = 2
    count = sum(abs(np.dot(s, D)) >= abs(sum(D)) - 1e-12 for s in itertools.product((1, -1), repeat=len(D)))
    assert sign_flip_p(D) == pytest.approx(count / 2 ** len(D))
    assert sign_flip_p([0.3] * 8) == pytest.approx(2 / 256)  # the smallest p with 8 pairs


def test_non_inferiority_is_scipys_one_sided_t_test():
    for diffs in (D, [-0.3, -0.6, -0.2, -0.5, -0.4, -0.1], [-1.0, -0.9, -1.2, -0.7]):
        expected = stats.ttest_1samp(diffs, -0.5, alternative="greater").pvalue
        assert noninferiority_p(diffs, 0.5) == pytest.approx(expected, rel=1e-9)
    # no spread: shown exactly when the mean is above -margin; one pair gives no test
    assert (noninferiority_p([-0.2] * 4, 0.5), noninferiority_p([-0.6] * 4, 0.5)) == (0.0, 1.0)
    assert math.isnan(noninferiority_p([0.3], 0.5))


def test_the_exact_sign_flip_p_is_the_same_on_a_second_call():
    d = [0.3, -0.1, 0.4, 0.2, -0.05, 0.6, 0.1, 0.25, -0.3, 0.15, 0.5, 0.05, 0.2, -0.2, 0.35, 0.45]  # 16 pairs
    count = sum(abs(np.dot(s, d)) >= abs(sum(d)) - 1e-12 for s in itertools.product((1, -1), repeat=len(d)))
    assert sign_flip_p(d) == sign_flip_p(d) == pytest.approx(count / 2 ** len(d))  # the cached patterns


def test_holm_by_hand():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


def test_the_minimum_detectable_effect_has_80_percent_power():
    n, sd = len(D), float(np.std(D, ddof=1))
    mde = minimum_detectable_effect(D)
    crit = stats.t.ppf(0.975, n - 1)
    nc = mde / (sd / math.sqrt(n))
    power = stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)
    assert power == pytest.approx(0.8, abs=0.03)


def test_tost_agrees_with_the_90_percent_interval():
    for margin in (0.2, 0.5, 0.8, 1.0):
        _, low, high = mean_ci(D, level=0.90)
        assert (tost_p(D, margin) < 0.05) == (-margin < low and high < margin)


def test_verdicts():
    assert verdict(0.3, 0.01, 0.5, 0.5) == "a > b"
    assert verdict(-0.3, 0.01, 0.5, 0.5) == "a < b"
    assert verdict(0.1, 0.4, 0.01, 0.5) == "equivalent (±0.5)"
    assert verdict(0.1, 0.4, 0.3, 0.5) == "undecided"


def test_contrasts_pair_by_seed_and_holm_within_each_family():
    rows = [{"regime": "r", "label": lab, "method": lab.split("-")[0], "theta": 0.1, "seed": s, "test_top1": v}
            for lab, vals in (("tsla@5-theta0.1", [91, 92, 90.5]), ("lsr-theta0.1", [90, 91.5, 90.5]),
                              ("baseline", [89, 91, 90]))
            for s, v in enumerate(vals)]
    found = contrasts(rows, parse_contrasts("tsla@5-theta0.1:lsr-theta0.1;lsr-theta0.1:baseline"), 0.5)
    assert [(c["a"], c["b"], c["family"]) for c in found] == [("tsla@5-theta0.1", "lsr-theta0.1", 1),
                                                            ("lsr-theta0.1", "baseline", 2)]
    assert found[0]["mean_diff"] == pytest.approx(np.mean([1, 0.5, 0]))
    assert found[0]["p_holm"] == found[0]["p_raw"]  # a family of one is not adjusted
    with pytest.raises(ConfigError, match="has no cell 'lsr-theta0.4'"):
        contrasts(rows, [[("tsla@5-theta0.1", "lsr-theta0.4")]], 0.5)
    with pytest.raises(ConfigError, match="write each contrast as A:B"):
        parse_contrasts("tsla@5")
