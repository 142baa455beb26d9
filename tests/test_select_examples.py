"""The ``tsla.select`` examples (examples/select_*.py), each run through ``tsla.select`` on tiny data: the choice
written and one of the space's candidates, every trunk trained once and each branch from its switch epoch only
(counted in the example's own loop), and a branch's validation numbers equal to an uninterrupted run of its
schedule in the same loop (deterministic loops: CPU, one thread, data order fixed by seed and epoch)."""

import importlib.util
import io
import json
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import torch

import tsla

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
REQUEST = dict(thetas=[0.3], switch_at=[2], epochs=4, seeds=[0, 1])
# the space of REQUEST with theta_after [0, -0.2], written out by hand
SPACE = [{"method": "baseline", "theta": 0.0, "switch_epoch": None, "theta_after": 0.0},
         {"method": "lsr", "theta": 0.3, "switch_epoch": None, "theta_after": 0.0},
         {"method": "tsla", "theta": 0.3, "switch_epoch": 2, "theta_after": 0.0},
         {"method": "tsla", "theta": 0.3, "switch_epoch": 2, "theta_after": -0.2}]
TRUNKS = ["baseline", "lsr-theta0.3"]
BRANCHES = ["tsla@2-theta0.3", "tsla@2-after-0.2-theta0.3"]


@pytest.fixture(autouse=True)
def one_thread():
    """One thread for each test's runs (the branch and the uninterrupted run compute alike), restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Uninterrupted:
    """A stand-in for the trial ``tsla.select`` hands a loop: epochs 0..epochs-1 of ``schedule`` from scratch, no
    checkpoint; ``reports`` records what the loop reported, and ``report`` steps the scheduler as the contract says."""

    def __init__(self, seed: int, epochs: int, schedule) -> None:
        self.name, self.seed, self.epochs, self.start_epoch, self.checkpoint = "uninterrupted", seed, epochs, 0, None
        self.scheduler = tsla.SmoothingScheduler(schedule)
        self.reports: list[dict] = []

    def report(self, epoch, *, checkpoint=None, **metrics) -> None:
        self.reports.append({"epoch": epoch, "theta": self.scheduler.get_last_theta(), **metrics})
        self.scheduler.step()


def _reports(out: Path, run: str) -> list[dict]:
    return [json.loads(line) for line in (out / run / "reports.jsonl").read_text().splitlines()]


def _run(example, loop, tmp_path: Path):
    """The example's main on tiny data; returns its result, the folder and what it printed."""
    out = tmp_path / "select"
    printed = io.StringIO()
    with redirect_stdout(printed), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = example.main(out, loop, **REQUEST)
    return result, out, printed.getvalue()


def _check_selection_and_epochs(result, out: Path, printed: str, trained: dict) -> None:
    saved = json.loads((out / "selection.json").read_text())
    assert saved["chosen"] in SPACE and saved["chosen"] == result.chosen
    assert set(saved["stop_epochs"]) == {"0", "1"} and all(0 <= e < 4 for e in saved["stop_epochs"].values())
    assert f"retrain without validation for {saved['recommended_epochs']} epochs" in printed
    for seed in (0, 1):  # counted in the example's loop: each trunk 0..3 once, each branch 2..3 only
        for label in TRUNKS:
            assert trained[f"{label}-seed{seed}"] == [0, 1, 2, 3]
        for label in BRANCHES:
            assert trained[f"{label}-seed{seed}"] == [2, 3]
    assert len(trained) == 8 and result.epochs_trained == 2 * (4 + 4 + 2 + 2)


def _check_branch_equals_uninterrupted(loop, out: Path) -> None:
    branch = _reports(out, "tsla@2-after-0.2-theta0.3-seed1")  # epochs 0-1 its trunk's, 2-3 its own
    whole = Uninterrupted(1, 4, tsla.schedules.two_stage(0.3, 2, -0.2))
    with redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loop(whole)
    assert [r["theta"] for r in branch] == [0.3, 0.3, -0.2, -0.2]
    for key in ("val_top1", "val_nll"):
        assert [r[key] for r in branch] == [r[key] for r in whole.reports], key
    # and TSLA(2) departs from its trunk (LSR) at the switch: the branch did train with its own theta
    assert _reports(out, "tsla@2-theta0.3-seed1")[2]["val_nll"] != _reports(out, "lsr-theta0.3-seed1")[2]["val_nll"]


def test_plain_loop_example(tmp_path):
    ex = _example("select_plain_loop")
    loop = ex.SignalLoop(n_train=160, n_val=80, batch_size=32)
    result, out, printed = _run(ex, loop, tmp_path)
    _check_selection_and_epochs(result, out, printed, loop.trained)
    loop.verbose = False
    _check_branch_equals_uninterrupted(loop, out)


def test_lightning_example(tmp_path):
    pytest.importorskip("lightning")
    ex = _example("select_lightning")
    loop = ex.SignalLightning(n_train=160, n_val=80, batch_size=32)
    result, out, printed = _run(ex, loop, tmp_path)
    _check_selection_and_epochs(result, out, printed, loop.trained)
    _check_branch_equals_uninterrupted(loop, out)


def test_hf_trainer_example(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    ex = _example("select_hf_trainer")
    loop = ex.SignalHF(n_train=160, n_val=80, batch_size=32)
    result, out, printed = _run(ex, loop, tmp_path)
    _check_selection_and_epochs(result, out, printed, loop.trained)
    _check_branch_equals_uninterrupted(loop, out)
