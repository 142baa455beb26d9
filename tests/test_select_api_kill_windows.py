"""``tsla.select`` interrupted between the two writes of one ``trial.report`` (the run's state saved, the files derived
from it not yet): the same call again must leave every run's best checkpoint at its best validation epoch and every
branch with its start, as an uninterrupted call does. The interruption is an exception raised by the n-th copy of a
state file (what a kill -9 at that instant leaves on disk: the copies are atomic, and nothing after them ran)."""

import pytest
import torch

import tsla
from tsla.experiments.trials import store

from .select_loops import ScriptedLoop

# val_top1 per epoch: the best epoch of LSR's trunk is 0 (kept by its branch at S = 2), the baseline's the last
SCORES = {"baseline": {0: [0.50, 0.55, 0.60, 0.62]},
          "lsr-theta0.4": {0: [0.70, 0.60, 0.60, 0.60]},
          "tsla@2-theta0.4": {0: [0.70, 0.60, 0.60, 0.60]}}
REQUEST = dict(thetas=[0.4], switch_at=[2], epochs=4, seeds=[0], n_val=1000)


class Interrupted(Exception):
    pass


def _select(out, monkeypatch=None, fail_on=None):
    if fail_on is not None:
        real, calls = store.copy_state, []

        def copy(source, target):
            calls.append(target.name)
            if target.name == fail_on[0] and calls.count(target.name) == fail_on[1]:
                raise Interrupted(target.name)
            real(source, target)

        monkeypatch.setattr(store, "copy_state", copy)
    return tsla.select(ScriptedLoop(SCORES), out=out, log=open("/dev/null", "w"), **REQUEST)


def _epoch(path):
    return torch.load(path, weights_only=True)["epoch"]


@pytest.mark.parametrize("fail_on", [(store.BEST, 4),  # the baseline's last epoch, its best: state saved, no copy
                                     ("after-2.pt", 1),  # the trunk's state after S = 2, which the branch starts from
                                     ("best-after-2.pt", 1)])  # the trunk's best so far, which the branch inherits
def test_a_rerun_after_an_interrupted_report_equals_an_uninterrupted_call(tmp_path, monkeypatch, fail_on):
    clean = _select(tmp_path / "clean")
    with pytest.raises(Interrupted):
        _select(tmp_path / "cut", monkeypatch, fail_on)
    monkeypatch.undo()
    again = _select(tmp_path / "cut")
    assert again.to_dict() == clean.to_dict()
    # every run's best checkpoint holds its best validation epoch (by hand from SCORES: baseline 3, LSR and TSLA 0)
    for run, best in [("baseline-seed0", 3), ("lsr-theta0.4-seed0", 0), ("tsla@2-theta0.4-seed0", 0)]:
        assert _epoch(tmp_path / "cut" / run / store.BEST) == best, run
