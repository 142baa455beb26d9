"""``tsla.select(train_fn)``: the contract (what each trial is handed, what it trains, what is written), branches
equal to uninterrupted runs, resume after an interruption, hand-computed choices, and the refusals."""

import json
import math

import pytest
import torch

import tsla
from tsla.errors import ConfigError, RunDirError, TrainingError

from .select_loops import CountingLoop, ScriptedLoop

REQUEST = dict(thetas=[0.1, 0.4], switch_at=[3], theta_after=[0.0, -0.2], epochs=5, seeds=[0, 1], n_val=60)


def _theta_by_hand(candidate: dict, epoch: int) -> float:
    if candidate["method"] == "baseline":
        return 0.0
    if candidate["method"] == "lsr" or epoch < candidate["switch_epoch"]:
        return candidate["theta"]
    return candidate["theta_after"]


def test_each_trunk_once_each_branch_from_its_switch(tmp_path):
    loop = CountingLoop()
    result = tsla.select(loop, out=tmp_path / "sel", log=open("/dev/null", "w"), **REQUEST)
    # per seed: baseline, 2 LSR trunks (0..4), and per theta TSLA(3) and the negative end (3..4 only)
    for seed in (0, 1):
        assert loop.epochs[f"baseline-seed{seed}"] == [0, 1, 2, 3, 4]
        for theta in ("0.1", "0.4"):
            assert loop.epochs[f"lsr-theta{theta}-seed{seed}"] == [0, 1, 2, 3, 4]
            assert loop.epochs[f"tsla@3-theta{theta}-seed{seed}"] == [3, 4]
            assert loop.epochs[f"tsla@3-after-0.2-theta{theta}-seed{seed}"] == [3, 4]
    assert len(loop.epochs) == 14
    assert result.epochs_trained == sum(len(v) for v in loop.epochs.values()) == 2 * (5 + 2 * (5 + 2 + 2))
    assert result.epochs_independent == 14 * 5
    # every epoch trained with the candidate's theta, never the trunk's
    for name, thetas in loop.thetas.items():
        ident = json.loads((tmp_path / "sel" / name / "trial.json").read_text())
        assert thetas == [_theta_by_hand(ident["candidate"], e) for e in loop.epochs[name]], name
    saved = json.loads((tmp_path / "sel" / "selection.json").read_text())
    assert saved["chosen"] == result.chosen and set(result.chosen) == {"method", "theta", "switch_epoch",
                                                                       "theta_after"}
    assert set(saved["stop_epochs"]) == {"0", "1"}
    assert not (tmp_path / "sel" / "lsr-theta0.1-seed0" / "kept").exists()  # pruned once its branches finished


def test_a_branch_equals_an_uninterrupted_run_of_its_schedule(tmp_path):
    tsla.select(CountingLoop(), out=tmp_path / "sel", log=open("/dev/null", "w"), **REQUEST)
    branch = [json.loads(x) for x in (tmp_path / "sel" / "tsla@3-after-0.2-theta0.4-seed1" / "reports.jsonl")
              .read_text().splitlines()]

    class Whole:  # the same loop, run from epoch 0 with the branch's schedule, outside select
        def __init__(self):
            self.reports = []
            self.name, self.seed, self.epochs, self.start_epoch, self.checkpoint = "w", 1, 5, 0, None
            self.scheduler = tsla.SmoothingScheduler(tsla.schedules.two_stage(0.4, 3, -0.2))

        def report(self, epoch, checkpoint=None, **m):
            self.reports.append({"epoch": epoch, "theta": self.scheduler.get_last_theta(), **m})
            self.scheduler.step()

    whole = Whole()
    CountingLoop()(whole)
    assert [r["val_top1"] for r in branch] == [r["val_top1"] for r in whole.reports]
    assert [r["val_nll"] for r in branch] == [r["val_nll"] for r in whole.reports]
    assert [r["theta"] for r in branch] == [0.4, 0.4, 0.4, -0.2, -0.2]


def test_interrupted_then_rerun_gives_the_same_selection(tmp_path):
    clean = tsla.select(CountingLoop(), out=tmp_path / "clean", log=open("/dev/null", "w"), **REQUEST)
    broken = CountingLoop(fail_at=("lsr-theta0.4-seed1", 2))
    with pytest.raises(RuntimeError, match="killed"):
        tsla.select(broken, out=tmp_path / "cut", log=open("/dev/null", "w"), **REQUEST)
    again = CountingLoop()
    resumed = tsla.select(again, out=tmp_path / "cut", log=open("/dev/null", "w"), **REQUEST)
    assert again.epochs["lsr-theta0.4-seed1"] == [2, 3, 4]  # resumed after its last reported epoch
    assert "baseline-seed0" not in again.epochs  # finished runs are skipped
    assert (tmp_path / "cut" / "selection.json").read_text() == (tmp_path / "clean" / "selection.json").read_text()
    assert resumed.chosen == clean.chosen


def test_edited_reports_never_decide(tmp_path):
    out = tmp_path / "sel"
    first = tsla.select(CountingLoop(), out=out, log=open("/dev/null", "w"), **REQUEST)
    reports = out / "baseline-seed0" / "reports.jsonl"
    reports.write_text(reports.read_text().replace('"val_top1": ', '"val_top1": 1'))  # inflated by hand
    second = tsla.select(CountingLoop(), out=out, log=open("/dev/null", "w"), **REQUEST)
    assert second.to_dict() == first.to_dict()


def _scripted(tmp_path, scores, seeds=(0, 1, 2), n_val=1000, **kw):
    request = dict(thetas=[0.4], switch_at=[3], epochs=4, seeds=list(seeds), n_val=n_val, **kw)
    return tsla.select(ScriptedLoop(scores), out=tmp_path, log=open("/dev/null", "w"), **request)


def test_hand_computed_choice_noise_aware_moves_only_beyond_one_se(tmp_path):
    # LSR beats the baseline by 0.05 in every seed: seed SE 0, floor sqrt(0.08 / (3 * 1000)) = 0.0052 -> move;
    # TSLA(3) beats LSR by 0.003, 0.004, 0.005: mean 0.004, seed SE 0.00058, floor 0.0052 -> stay on LSR
    scores = {"baseline": {0: 0.70, 1: 0.71, 2: 0.72}, "lsr-theta0.4": {0: 0.75, 1: 0.76, 2: 0.77},
              "tsla@3-theta0.4": {0: 0.753, 1: 0.764, 2: 0.775}}
    result = _scripted(tmp_path / "a", scores, rule="noise-aware")
    assert result.chosen == {"method": "lsr", "theta": 0.4, "switch_epoch": None, "theta_after": 0.0}
    assert result.rule["best"]["method"] == "tsla"  # the best mean is not chosen: validation cannot separate it
    assert not result.rule["separated"] and result.rule["val_too_small"]
    assert "too small to separate" in result.rule["sentence"]
    floor = math.sqrt(0.08 / (3 * 1000))
    tsla_row = next(c for c in result.rule["candidates"] if c["method"] == "tsla")
    assert tsla_row["vs_chosen"]["mean"] == pytest.approx(0.004, abs=1e-12)
    assert tsla_row["vs_chosen"]["se"] == pytest.approx(floor, rel=1e-12)
    # the same gain with 100,000 validation examples (floor 0.00052 < the seed SE 0.00058): TSLA is chosen
    result = _scripted(tmp_path / "b", scores, n_val=100_000, rule="noise-aware")
    assert result.chosen["method"] == "tsla" and result.chosen["switch_epoch"] == 3
    # the default rule, best-mean, takes the best mean (TSLA, +0.004) and says validation cannot tell it from LSR
    result = _scripted(tmp_path / "c", scores)
    assert result.chosen["method"] == "tsla" and result.rule["name"] == "best-mean"
    assert not result.rule["separated"] and "too small to separate" in result.rule["sentence"]


def test_best_val_scores_and_stop_epochs(tmp_path):
    # per-epoch validation curves: the stop epoch is each run's best (ties to the earliest)
    curve = {0: [0.5, 0.9, 0.9, 0.6], 1: [0.5, 0.6, 0.95, 0.7]}
    scores = {"baseline": {0: 0.1, 1: 0.1}, "lsr-theta0.4": curve, "tsla@3-theta0.4": curve}
    result = _scripted(tmp_path, scores, seeds=(0, 1))
    assert result.chosen["method"] == "lsr" and result.stop_epochs == {0: 1, 1: 2}
    assert result.recommended_epochs == 3  # median of 1 and 2 is 1.5, rounded to even: 2, plus one
    last = _scripted(tmp_path / "last", scores, seeds=(0, 1), at="last")
    row = next(c for c in last.candidates if c["method"] == "lsr")
    assert row["seed_scores"] == [0.6, 0.7] and last.recommended_epochs == 4


def test_halving_stops_a_clearly_worse_family_and_counts_epochs(tmp_path):
    scores = {"baseline": {0: 0.2, 1: 0.21}, "lsr-theta0.1": {0: 0.8, 1: 0.8}, "tsla@3-theta0.1": {0: 0.8, 1: 0.8},
              "lsr-theta0.4": {0: 0.79, 1: 0.8}, "tsla@3-theta0.4": {0: 0.79, 1: 0.8}}
    loop = ScriptedLoop(scores)
    result = tsla.select(loop, out=tmp_path, thetas=[0.1, 0.4], switch_at=[3], epochs=6, seeds=[0, 1], n_val=1000,
                         halving=True, halving_at=[2], log=open("/dev/null", "w"))
    assert result.halving[0]["kept"] == ["theta0.1", "theta0.4"]  # baseline far below; 0.4 within one SE of 0.1
    assert loop.epochs["baseline-seed0"] == [0, 1]  # stopped at the milestone
    assert loop.epochs["lsr-theta0.4-seed0"] == [0, 1, 2, 3, 4, 5]
    assert result.epochs_trained == 2 * (2 + 2 * (6 + 3)) == sum(len(v) for v in loop.epochs.values())
    assert result.chosen["method"] != "baseline"


@pytest.mark.parametrize("report, message", [
    (lambda t: t.report(1, val_top1=0.5, checkpoint={}), "expected epoch 0"),
    (lambda t: t.report(0, val_nll=0.5, checkpoint={}), "has no val_top1"),
    (lambda t: t.report(0, val_top1=0.5), "has no checkpoint"),
    (lambda t: t.report(0, val_top1="high", checkpoint={}), "is not a number"),
    (lambda t: t.report(0, val_top1=0.5, checkpoint={"w": __import__("numpy").zeros(2)}), "weights_only=True"),
])
def test_bad_reports_are_one_clear_error(tmp_path, report, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        tsla.select(report, out=tmp_path, thetas=[0.1], epochs=2, log=open("/dev/null", "w"))


def test_refusals(tmp_path):
    with pytest.raises(TrainingError, match="must call trial.report"):
        tsla.select(lambda trial: None, out=tmp_path / "a", thetas=[0.1], epochs=2, log=open("/dev/null", "w"))
    tsla.select(ScriptedLoop({"baseline": {0: 0.5}, "lsr-theta0.1": {0: 0.6}}), out=tmp_path / "b", thetas=[0.1],
                epochs=2, log=open("/dev/null", "w"))
    with pytest.raises(RunDirError, match="holds a run of another request"):
        tsla.select(ScriptedLoop({}), out=tmp_path / "b", thetas=[0.1], epochs=3, log=open("/dev/null", "w"))
    for kw, text in [(dict(thetas=[1.5]), "outside \\(0, 1\\]"), (dict(thetas=[0.1], switch_at=[9]), "switch_at: 9"),
                     (dict(thetas=[0.1], switch_at=[1], theta_after=[0.3]), "theta_after: 0.3"),
                     (dict(thetas=[0.1], seeds=[0, 0]), "distinct"), (dict(thetas=[0.1], at="end"), "at='end'")]:
        with pytest.raises(ConfigError, match=text):
            tsla.select(ScriptedLoop({}), out=tmp_path / "c", epochs=4, log=open("/dev/null", "w"), **kw)
