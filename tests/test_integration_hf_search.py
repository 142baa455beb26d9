"""Issue 30, item 15: ``Trainer.hyperparameter_search`` with theta and S in the search space trains each trial's own
schedule. Each trial's weights are compared with a plain ``SmoothingTrainer`` run built with that trial's
``two_stage(theta, S)`` (whose theta at every step tests/test_integration_hf.py checks against the definition); before
the fix every trial ran the constructor's schedule."""

import pytest
import torch

import tsla
from tests import loops

transformers = pytest.importorskip("transformers", reason="install the extra: pip install 'tsla[hf]'")
optuna = pytest.importorskip("optuna", reason="install the test extra: pip install 'tsla[test]'")
from tests.test_integration_hf import Tiny, _args, _dataset  # noqa: E402
from tsla.integrations.hf import SmoothingTrainer  # noqa: E402
from tsla.integrations.trial import trial_scheduler  # noqa: E402

GRID = {"theta": [0.0, 0.6], "switch_epoch": [1.0, 4.0]}  # floats, as a tuner may return S


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _plain_run(out, schedule):
    trainer = SmoothingTrainer(model_init=Tiny, args=_args(out, save_strategy="no"), train_dataset=_dataset(),
                               smoothing=tsla.SmoothingScheduler(schedule))
    trainer.train()
    return _weights(trainer.model)


def test_each_trial_trains_its_own_theta_and_switch_epoch(tmp_path):
    constructor = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.3, 3))
    trainer = SmoothingTrainer(model_init=Tiny, args=_args(tmp_path / "search", save_strategy="no"),
                               train_dataset=_dataset(), eval_dataset=_dataset(), smoothing=constructor)
    trials = []

    def objective(metrics):
        trials.append((trainer.smoothing.base_schedule, _weights(trainer.model)))
        return metrics["eval_loss"]

    def hp_space(trial):
        return {name: trial.suggest_categorical(name, values) for name, values in GRID.items()}

    trainer.hyperparameter_search(hp_space=hp_space, compute_objective=objective, n_trials=3, direction="minimize",
                                  backend="optuna", sampler=optuna.samplers.GridSampler(GRID, seed=0))
    assert len(trials) == 3
    seen = set()
    for schedule, weights in trials:
        assert type(schedule.drop_epoch) is int and schedule.drop_epoch in (1, 4) and schedule.theta in (0.0, 0.6)
        seen.add((schedule.theta, schedule.drop_epoch))
        own = _plain_run(tmp_path / f"plain-{schedule.theta}-{schedule.drop_epoch}",
                         tsla.schedules.two_stage(schedule.theta, schedule.drop_epoch))
        assert all(torch.equal(weights[k], own[k]) for k in own), f"trial {schedule} did not train its schedule"
    assert len(seen) == 3
    assert constructor.last_epoch == 0  # the constructor's scheduler is only the template
    # the constructor's own schedule trains other weights than a trial's: the comparison above can fail
    theirs = _plain_run(tmp_path / "constructor", tsla.schedules.two_stage(0.3, 3))
    assert not all(torch.equal(trials[0][1][k], theirs[k]) for k in theirs)


def test_tsla_auto_starts_each_trial_with_a_fresh_switch(tmp_path):
    auto = loops.scheduler("auto")  # plateau: decides after epoch 2 whatever theta
    trainer = SmoothingTrainer(model_init=Tiny, args=_args(tmp_path, save_strategy="no", num_train_epochs=4),
                               train_dataset=_dataset(), eval_dataset=_dataset(), smoothing=auto)
    switches = []

    def objective(metrics):
        switches.append((trainer.smoothing.base_schedule.theta, trainer.smoothing.auto.switch_epoch))
        return metrics["eval_loss"]

    trainer.hyperparameter_search(hp_space=lambda t: {"theta": t.suggest_categorical("theta", [0.1, 0.2])},
                                  compute_objective=objective, n_trials=2, backend="optuna",
                                  sampler=optuna.samplers.GridSampler({"theta": [0.1, 0.2]}, seed=0))
    assert sorted(switches) == [(0.1, 3), (0.2, 3)]  # the second trial was refused before (history left over)


@pytest.mark.parametrize("params, message", [
    ({"switch_epoch": 20.5}, "drop_epoch=20.5 is not an integer"),
    ({"theta": 1.5}, "theta=1.5 is outside"),
])
def test_a_trial_value_the_schedule_refuses_is_one_line(params, message):
    with pytest.raises(ValueError, match=message):
        trial_scheduler(tsla.SmoothingScheduler(tsla.schedules.two_stage(0.3, 3)), params)
    for template in (tsla.SmoothingScheduler(tsla.schedules.constant(0.3)), loops.scheduler("auto")):
        with pytest.raises(ValueError, match="has no switch epoch to set: search 'theta' only"):
            trial_scheduler(template, {"switch_epoch": 2})
