"""``tsla.select`` given what a careless loop or user gives it: numpy numbers, a percentage for val_top1, values that
are no epoch, damaged run files; each a one-line ``ConfigError``/``RunDirError``/``ValueError`` naming the thing, or
the same selection as plain Python values give."""

import shutil

import numpy as np
import pytest
import torch

import tsla
from tsla.errors import ConfigError, RunDirError

from .select_loops import ScriptedLoop

# val_top1 per epoch; LSR's best epoch is 1 (0.7), the baseline's 3
SCORES = {"baseline": {0: [0.5, 0.5, 0.5, 0.55], 1: 0.5},
          "lsr-theta0.4": {0: [0.6, 0.7, 0.6, 0.6], 1: [0.6, 0.7, 0.6, 0.6]},
          "tsla@2-theta0.4": {0: 0.6, 1: 0.6}}
REQUEST = dict(thetas=[0.4], switch_at=[2], epochs=4, seeds=[0, 1], n_val=1000)


def _select(out, scores=SCORES, **request):
    return tsla.select(ScriptedLoop(scores), out=out, log=open("/dev/null", "w"), **{**REQUEST, **request})


def test_numpy_numbers_give_the_same_selection_as_python_numbers(tmp_path):
    plain = _select(tmp_path / "plain")
    numpy = _select(tmp_path / "numpy", thetas=np.linspace(0.4, 0.4, 1), switch_at=np.array([2]),
                    epochs=np.int64(4), seeds=np.arange(2), n_val=np.int64(1000))
    assert numpy.to_dict() == plain.to_dict()
    assert (tmp_path / "numpy" / "selection.json").read_text() == (tmp_path / "plain" / "selection.json").read_text()
    names = [sorted(p.name for p in (tmp_path / kind).iterdir()) for kind in ("numpy", "plain")]
    assert names[0] == names[1]


@pytest.mark.parametrize("request_, message", [
    (dict(switch_at=[float("nan")]), "switch_at: nan is not a whole epoch"),
    (dict(switch_at=[None]), "switch_at: None is not a whole epoch"),
    (dict(thetas=["0.4"]), "thetas: '0.4' is not a number"),
    (dict(thetas="0.4"), "thetas='0.4': give a list of numbers"),
    (dict(seeds=0), "seeds=0: give a list"),
    (dict(thetas=[0.4, 0.2], halving=True, halving_at=[float("nan")]), "halving_at: nan is not an epoch"),
])
def test_values_that_are_no_list_or_no_epoch_are_one_config_error(tmp_path, request_, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        _select(tmp_path, **request_)
    assert not (tmp_path / "selection.json").exists()


@pytest.mark.parametrize("value", [85.0, -0.5, float("nan")])
def test_val_top1_outside_a_fraction_is_refused_at_the_report(tmp_path, value):
    scores = {**SCORES, "baseline": {0: value, 1: value}}
    with pytest.raises(ValueError, match=r"val_top1=.* is not a fraction in \[0, 1\]"):
        _select(tmp_path, scores)


@pytest.mark.parametrize("content", ["[]", "5", "null"])
def test_a_trial_json_that_is_no_object_is_one_run_dir_error(tmp_path, content):
    _select(tmp_path)
    (tmp_path / "baseline-seed0" / "trial.json").write_text(content)
    with pytest.raises(RunDirError, match="trial.json is not a run's identity"):
        _select(tmp_path)


def test_a_finished_run_without_its_state_names_the_file_and_the_remedy(tmp_path):
    _select(tmp_path)
    (tmp_path / "baseline-seed0" / "trial_state.pt").unlink()
    with pytest.raises(RunDirError, match="trial_state.pt is missing: delete that run's folder"):
        _select(tmp_path)
    shutil.rmtree(tmp_path / "baseline-seed0")  # the remedy named
    assert _select(tmp_path).chosen == {"method": "lsr", "theta": 0.4, "switch_epoch": None, "theta_after": 0.0}


def test_the_chosen_checkpoint_must_hold_the_scored_epoch(tmp_path):
    first = _select(tmp_path)
    assert first.stop_epochs == {0: 1, 1: 1}  # LSR's best epoch, by hand from SCORES
    chosen = tmp_path / first.checkpoints[0]
    shutil.copy(chosen.parent / "trial_state.pt", chosen)  # the last epoch's weights where the best epoch's belong
    with pytest.raises(RunDirError, match="trial_best.pt belongs to run .* after epoch 3, not to .* after epoch 1"):
        _select(tmp_path)
    chosen.unlink()
    with pytest.raises(RunDirError, match="trial_best.pt is missing"):
        _select(tmp_path)


def test_a_chosen_branch_whose_best_epoch_is_before_its_switch_names_its_inherited_checkpoint(tmp_path):
    # TSLA(2) wins on the mean (0.8 against LSR's 0.65); seed 0's best epoch, 0, lies in the prefix it shares with
    # LSR, so its best checkpoint is the trunk's state after epoch 0, inherited at the branch's start
    scores = {"baseline": {0: 0.5, 1: 0.5}, "lsr-theta0.4": {0: [0.7, 0.6, 0.6, 0.6], 1: 0.6},
              "tsla@2-theta0.4": {0: 0.6, 1: [0.6, 0.6, 0.9, 0.9]}}
    result = _select(tmp_path, scores)
    assert (result.label, result.stop_epochs) == ("TSLA(theta=0.4, S=2)", {0: 0, 1: 2})
    held = torch.load(tmp_path / result.checkpoints[0], weights_only=True)
    assert (held["run"], held["epoch"]) == ("lsr-theta0.4-seed0", 0)
    assert _select(tmp_path, scores).to_dict() == result.to_dict()  # the rerun (every run finished) agrees


def test_a_rerun_with_a_criterion_the_runs_never_reported_names_it_not_a_cli_flag(tmp_path):
    _select(tmp_path)  # ScriptedLoop reports val_top1 only
    with pytest.raises(RunDirError, match="never reported val_nll") as refused:
        _select(tmp_path, criterion="val_nll")
    assert "--val-size" not in str(refused.value)  # a flag of tsla select, not of tsla.select


@pytest.mark.parametrize("request_, message", [
    (dict(switch_at=[], halving=True), "halving=True has no epoch to halve at"),  # trained every run to the end
    (dict(halving=True, halving_at=[]), "halving=True has no epoch to halve at"),
    (dict(halving_at=[2]), "halving_at is for halving=True"),  # silently ignored
])
def test_halving_that_would_halve_nothing_is_refused(tmp_path, request_, message):
    with pytest.raises(ConfigError, match=message):
        _select(tmp_path, **{"thetas": [0.4, 0.2], **request_})
    assert not any(tmp_path.iterdir())  # refused before anything trained


def test_a_folder_where_selection_json_goes_is_named_not_a_full_disk(tmp_path):
    (tmp_path / "selection.json").mkdir()
    with pytest.raises(RunDirError, match="selection.json .*: a folder is in its place: move it away") as refused:
        _select(tmp_path)
    assert "disk space" not in str(refused.value)
    (tmp_path / "selection.json").rmdir()  # the remedy: the finished runs are reused, the choice written
    assert _select(tmp_path).label == "LSR(theta=0.4)"


def test_best_mean_with_one_seed_and_no_n_val_chooses_the_best_mean(tmp_path):
    # the default call: one seed, no n_val. LSR is 0.4 better at every epoch (by hand from the scores); the
    # best-mean rule chose the baseline, its paired SE being unknown (NaN) with one seed
    scores = {"baseline": {0: 0.5}, "lsr-theta0.4": {0: 0.9}, "tsla@2-theta0.4": {0: 0.9}}
    result = _select(tmp_path, scores, seeds=[0], n_val=None)
    assert result.chosen == {"method": "lsr", "theta": 0.4, "switch_epoch": None, "theta_after": 0.0}


def test_the_noise_aware_rule_without_any_standard_error_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="rule='noise-aware' compares gains with their standard error"):
        _select(tmp_path, seeds=[0], n_val=None, rule="noise-aware")
    assert not any(tmp_path.iterdir())


def test_halving_without_any_standard_error_is_refused(tmp_path):
    # with one seed and no n_val no family could ever be stopped: every run trained to the end as if no halving
    with pytest.raises(ConfigError, match="halving stops a family only when it is behind by more than its standard"):
        _select(tmp_path, thetas=[0.4, 0.2], seeds=[0], n_val=None, halving=True)
    assert not any(tmp_path.iterdir())


class SteppingLoop(ScriptedLoop):
    """A loop that also steps trial.scheduler, as it would an lr scheduler, and records the theta it trains with."""

    def __call__(self, trial):
        self.thetas = getattr(self, "thetas", {})
        for epoch in range(trial.start_epoch, trial.epochs):
            self.thetas.setdefault(trial.name, []).append(trial.scheduler.get_last_theta())
            trial.scheduler.step()
            trial.report(epoch, val_top1=0.5, checkpoint={"epoch": torch.tensor(epoch)})


def test_a_loop_that_steps_the_scheduler_itself_is_refused_at_its_first_report(tmp_path):
    loop = SteppingLoop(SCORES)
    with pytest.raises(ValueError, match=r"trial.scheduler is at epoch 1, not 0: the loop stepped it"):
        tsla.select(loop, out=tmp_path, log=open("/dev/null", "w"), **REQUEST)
    assert loop.thetas == {"baseline-seed0": [0.0]}  # refused after one epoch, before a shifted theta was trained
