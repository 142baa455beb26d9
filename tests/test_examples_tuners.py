"""The tuner examples (issue 28 item 5) on tiny data: PBT mutating θ, ASHA and Optuna train 0 epochs at a θ other
than the one the tuner recorded; the trap the PBT example avoids (``from_state_dict``) is caught by the same count."""

import os
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def examples():
    sys.path.insert(0, str(EXAMPLES))
    yield
    sys.path.remove(str(EXAMPLES))
    for name in ("tuning_common", "ray_tune_pbt", "ray_tune_asha", "optuna_best_val"):
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def tune_cluster(examples):
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'tsla[tune]' (the test extra has it)")
    pytest.importorskip("ray.tune", reason="Ray Tune is not installed: pip install 'tsla[tune]'")
    path = os.pathsep.join([str(EXAMPLES), str(EXAMPLES.parent), os.environ.get("PYTHONPATH", "")])
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})  # workers import the examples
    yield
    ray.shutdown()


def test_pbt_mutating_theta_trains_every_epoch_at_the_recorded_theta(tune_cluster, tmp_path):
    import ray_tune_pbt

    other, exploits = ray_tune_pbt.main(samples=200, epochs=4, trials=2, storage=str(tmp_path / "ok"))
    assert exploits >= 1 and other == 0
    # the way the users restored it: the copied trial's θ, silently (the count is not blind to it)
    other, exploits = ray_tune_pbt.main(samples=200, epochs=4, trials=2, restore="from_state_dict",
                                        storage=str(tmp_path / "trap"))
    assert exploits >= 1 and other >= 1


def test_asha_trains_every_epoch_at_the_recorded_theta(tune_cluster, tmp_path):
    import ray_tune_asha

    other, epochs = ray_tune_asha.main(samples=200, epochs=6, trials=4, storage=str(tmp_path))
    assert epochs >= 4 * 5 and other == 0  # no trial is stopped before its first rung, after the largest S (4)


def test_optuna_reports_the_best_validation_score_at_the_trials_theta(examples):
    pytest.importorskip("optuna", reason="Optuna is not installed: pip install 'tsla[tune]'")
    import optuna_best_val

    other, epochs = optuna_best_val.main(samples=200, epochs=6, trials=4)
    assert epochs >= 4 * 5 and other == 0
