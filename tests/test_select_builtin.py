"""tsla's own trainer through ``tsla.select``: every run's numbers equal ``tsla.train`` of the same config from epoch
0 (branches included), and a select killed with SIGKILL and run again makes the same choice and selection.json."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tsla
from tsla.config import build_config
from tsla.experiments.trials.builtin import TrainerLoop
from tsla.training.trainer import train

from .test_select import _fake_fashion

ROOT = Path(__file__).resolve().parents[1]
REQUEST = dict(thetas=[0.4], switch_at=[2], theta_after=[0.0, -0.2], epochs=4, seeds=[0, 1], n_val=60)


def _layers(data: Path) -> list:
    return [("test", {"data_root": str(data), "train_subset": 100, "val_size": 60, "milestones": [2], "lr": 0.05,
                      "batch_size": 20, "augment": False, "threads": 1, "device": "cpu", "test_every": 0,
                      "epochs": 4})]


def _records(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if "seconds" not in k and "per_second" not in k} for r in rows]


@pytest.fixture(scope="module")
def selected(tmp_path_factory):
    base = tmp_path_factory.mktemp("builtin")
    data = _fake_fashion(base / "data")
    out = base / "sel"
    result = tsla.select(TrainerLoop(_layers(data), out, log=open(os.devnull, "w")), out=out,
                         log=open(os.devnull, "w"), **REQUEST)
    return base, data, out, result


def test_every_run_equals_an_independent_tsla_train(selected):
    base, data, out, result = selected
    schedules = {"baseline-seed1": {"method": "baseline"}, "lsr-theta0.4-seed1": {"method": "lsr", "theta": 0.4},
                 "tsla@2-theta0.4-seed1": {"method": "tsla@2", "theta": 0.4},
                 "tsla@2-after-0.2-theta0.4-seed1": {"method": "tsla@2", "theta": 0.4, "theta_after": -0.2,
                                                      "allow_negative": True}}
    for name, values in schedules.items():
        cfg = build_config(*_layers(data), ("by hand", {**values, "seed": 1}))
        train(cfg, base / "alone" / name, log=open(os.devnull, "w"), progress_bar=False)
        assert _records(out / name) == _records(base / "alone" / name), name
        reported = [json.loads(x) for x in (out / name / "reports.jsonl").read_text().splitlines()]
        assert [r["val_top1"] for r in reported] == [r["val_top1"] for r in _records(base / "alone" / name)]
    assert result.epochs_trained == 2 * (4 + 4 + 2 + 2)


def test_a_killed_select_resumes_to_the_same_selection(selected, tmp_path):
    base, data, out, result = selected
    again = tmp_path / "sel"
    script = (f"import sys, tsla; from tsla.experiments.trials.builtin import TrainerLoop; "
              f"from tests.test_select_builtin import _layers, REQUEST; from pathlib import Path; "
              f"tsla.select(TrainerLoop(_layers(Path({str(data)!r})), Path({str(again)!r})), "
              f"out=Path({str(again)!r}), **REQUEST)")
    for wait_for in ("baseline-seed0/trial_summary.json", "tsla@2-theta0.4-seed0/reports.jsonl"):
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
        deadline = time.time() + 300
        while not (again / wait_for).exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (again / "selection.json").exists()
    resumed = tsla.select(TrainerLoop(_layers(data), again, log=open(os.devnull, "w")), out=again,
                          log=open(os.devnull, "w"), **REQUEST)
    assert (again / "selection.json").read_text() == (out / "selection.json").read_text()
    assert resumed.chosen == result.chosen
