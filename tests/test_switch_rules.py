"""tsla-auto's switch rules (tsla.smoothing.switch_rules.decide), each checked on histories worked out by hand."""

import pytest

from tsla.smoothing.switch_rules import decide


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


def _phases(losses, lrs, next_lr=True):
    """Records with the lr of each epoch and (as tsla's trainer logs it) the lr of the next one."""
    rows = []
    for i, (v, lr) in enumerate(zip(losses, lrs)):
        row = {"epoch": i, "lr": lr, "train_onehot_loss": v}
        if next_lr:
            row["next_lr"] = lrs[i + 1] if i + 1 < len(lrs) else lr
        rows.append(row)
    return rows


def test_phase_plateau_acts_only_at_a_decay_by_hand():
    p = {"window": 2, "rate": 0.02}
    lrs = [0.1, 0.1, 0.1, 0.1, 0.01]
    # phase at lr 0.1 ends after epoch 3; over its last 2 epochs 1.00 -> 0.97 is 1.5% per epoch, under 2%
    slow = [2.0, 1.0, 0.99, 0.97, 0.5]
    assert decide("phase-plateau", _phases(slow, lrs)[:4], p)[0] is True  # decided after epoch 3, at the decay
    assert decide("phase-plateau", _phases(slow, lrs)[:3], p)[0] is False  # epoch 2: no decay follows
    # 1.00 -> 0.90 is 5% per epoch: still improving, keep smoothing through the next phase
    assert decide("phase-plateau", _phases([2.0, 1.0, 0.95, 0.90, 0.5], lrs)[:4], p)[0] is False
    # the window is clipped to the phase: a 2-epoch phase is judged on its 1 step (0.50 -> 0.499: 0.2%)
    lrs2 = [0.1, 0.1, 0.01, 0.01, 0.001]
    hist = _phases([2.0, 1.0, 0.5, 0.499, 0.45], lrs2)
    assert decide("phase-plateau", hist[:2], {"window": 3, "rate": 0.4})[0] is False  # 50% per epoch
    assert decide("phase-plateau", hist[:4], {"window": 3, "rate": 0.01})[0] is True


def test_phase_plateau_without_next_lr_sees_the_decay_one_epoch_late():
    p = {"window": 2, "rate": 0.02}
    hist = _phases([2.0, 1.0, 0.99, 0.97, 0.5], [0.1, 0.1, 0.1, 0.1, 0.01], next_lr=False)
    assert decide("phase-plateau", hist[:4], p)[0] is False
    switch, reason = decide("phase-plateau", hist, p)
    assert switch is True and "after epoch 3" in reason
    # cosine: a new lr every epoch, so every phase lasts one epoch and the rule never fires
    cos = _phases([2.0, 1.5, 1.2, 1.1], [0.1, 0.09, 0.07, 0.05])
    assert not any(decide("phase-plateau", cos[: i + 1], p)[0] for i in range(4))


def test_gain_rule_by_hand():
    p = {"gain": 1.0, "patience": 2}
    rows = [{"epoch": 0, "diag_one_step_gain": 1.2}, {"epoch": 1}, {"epoch": 2, "diag_one_step_gain": 0.8},
            {"epoch": 3, "diag_one_step_gain": None}]
    assert decide("gain", rows[:1], p)[0] is False  # one diagnosis only
    assert decide("gain", rows[:2], p)[0] is False  # no diagnosis this epoch
    assert decide("gain", rows[:3], p)[0] is False  # 1.2 then 0.8: only the last is below 1
    assert decide("gain", rows, p)[0] is True  # 0.8 then undefined (||grad F||^2 <= 0 measured): both count
    # the train-mode estimate, when logged, is the one read
    mb = [{"epoch": 0, "diag_one_step_gain": 0.5, "diag_mb_one_step_gain": 1.5}] * 2
    assert decide("gain", mb, p)[0] is False
