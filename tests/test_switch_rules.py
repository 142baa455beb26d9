"""tsla-auto's switch rules (tsla.switch_rules.decide), each checked on histories worked out by hand."""

import pytest

from tsla.switch_rules import decide


def _records(losses):
    return [{"epoch": i, "train_onehot_loss": v} for i, v in enumerate(losses)]


def test_plateau_by_hand():
    p = {"window": 2, "tolerance": 0.01}
    # the last loss against the one 2 epochs before: 1.0 -> 0.995 is a 0.5% drop, under 1%
    assert decide("plateau", _records([2.0, 1.0, 0.999, 0.995]), p)[0] is True
    assert decide("plateau", _records([2.0, 1.0, 0.9, 0.8]), p)[0] is False  # 20% drop
    assert decide("plateau", _records([2.0, 1.9]), p)[0] is False  # not enough epochs yet


def test_floor_by_hand():
    diag = {"diag_grad_norm2": 1.0, "diag_sigma2": 99.0, "diag_n": 100, "diag_lsr_floor": 0.5}
    # SRS-corrected ||grad F||^2 = 1.0 - 99/99 = 0 <= 0.5
    assert decide("floor", [{"epoch": 0, **diag}], {"factor": 1.0})[0] is True
    diag["diag_grad_norm2"] = 2.0  # 2 - 1 = 1 > 0.5, within a factor 2
    assert decide("floor", [{"epoch": 0, **diag}], {"factor": 1.0})[0] is False
    assert decide("floor", [{"epoch": 0, **diag}], {"factor": 2.0})[0] is True


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="unknown tsla-auto rule 'nope'"):
        decide("nope", _records([1.0]), {})
    with pytest.raises(ValueError, match="'tolerance'"):
        decide("plateau", _records([1.0, 0.9]), {"window": 1})
    with pytest.raises(ValueError, match="at least one"):
        decide("plateau", [], {"window": 1, "tolerance": 0.1})
