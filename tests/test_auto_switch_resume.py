"""AutoSwitch across a resume (issue 21): the epoch its loaded state closed may be told once more (a framework
replaying the epoch's end) and is ignored; a skipped epoch after a loaded state is refused with the right reason."""

import pytest

from tsla.smoothing.auto_switch import AutoSwitch


def _saved_after(epochs):
    auto = AutoSwitch("plateau", window=2, tolerance=0.01)
    for e in range(epochs):
        auto.update(e, 2.0 - e / 10)
    return auto.state_dict()


def test_a_loaded_state_accepts_its_last_epoch_once_more_and_keeps_the_saved_record():
    resumed = AutoSwitch("plateau", window=2, tolerance=0.01)
    resumed.load_state_dict(_saved_after(2))
    assert resumed.update(1, 9.9) is False  # the replayed end of epoch 1: ignored
    assert [r["train_onehot_loss"] for r in resumed.history] == [2.0, 1.9]
    resumed.update(2, 1.8)
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2]
    with pytest.raises(ValueError, match="told epoch 2 after epoch 2: epoch 2 was recorded already"):
        resumed.update(2, 1.8)  # only right after the load


def test_without_a_load_an_epoch_told_twice_is_refused():
    fresh = AutoSwitch("plateau", window=2, tolerance=0.01)
    fresh.update(0, 2.0)
    with pytest.raises(ValueError, match="told epoch 0 after epoch 0: epoch 0 was recorded already"):
        fresh.update(0, 2.0)


def test_an_epoch_skipped_after_a_load_names_the_checkpoint_not_a_missing_load():
    resumed = AutoSwitch("plateau", window=2, tolerance=0.01)
    resumed.load_state_dict(_saved_after(1))
    with pytest.raises(ValueError) as info:
        resumed.update(2, 1.8)
    message = str(info.value)
    assert "told epoch 2 after epoch 0: the state loaded from the checkpoint ends at epoch 0, so epoch 1" in message
    assert "load its state_dict first" not in message
    fresh = AutoSwitch("plateau", window=2, tolerance=0.01)
    fresh.update(0, 2.0)
    with pytest.raises(ValueError, match="epochs 1-2 never reached it.*load its state_dict first"):
        fresh.update(3, 1.8)
