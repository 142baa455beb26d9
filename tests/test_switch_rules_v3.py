"""tsla-auto v3 (noise-gap, val-plateau): rules checked on histories worked out by hand, AutoSwitch fed validation
metrics, the trainer's config, and each rule's replay on the study's committed logs against docs/selection.md."""

import json
import re
from pathlib import Path

import pytest

from tsla import AutoSwitch, TrainConfig
from tsla.errors import ConfigError
from tsla.smoothing.switch_rules import decide, replay

ROOT = Path(__file__).resolve().parents[1]


def _history(train, val, lrs):
    """Records as tsla's trainer logs them: lr, next_lr (the lr of the next epoch), train_top1 and val_top1."""
    return [{"epoch": i, "lr": lr, "next_lr": lrs[i + 1] if i + 1 < len(lrs) else lr, "train_onehot_loss": 1.0,
             "train_top1": t, "val_top1": v} for i, (t, v, lr) in enumerate(zip(train, val, lrs))]


LRS = [0.1] * 4 + [0.01] * 3 + [0.001] * 2  # decays after epochs 3 and 6: first epochs at a lower lr are 4 and 7
NOISE_GAP = {"val_window": 2, "margin": 0.0, "last_decay": 7}


def test_noise_gap_switches_at_the_first_decay_when_labels_agree():
    # epoch 3: train top-1 0.90 >= best val of epochs 2-3 (0.80): the model fits its labels -> off from epoch 4
    hist = _history([0.5, 0.7, 0.8, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99], [0.5, 0.6, 0.8, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8],
                    LRS)
    assert replay("noise-gap", hist, NOISE_GAP) == 4
    assert decide("noise-gap", hist[:3], NOISE_GAP)[0] is False  # no decay after epoch 2


def test_noise_gap_defers_to_the_last_decay_when_labels_disagree():
    # epoch 3: train top-1 0.60 < best val of epochs 2-3 (0.75; epoch 0's 0.99 lies outside the window of 2)
    train = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9]
    val = [0.99, 0.6, 0.75, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    hist = _history(train, val, LRS)
    switch, reason = decide("noise-gap", hist[:4], NOISE_GAP)
    assert switch is False and "noisy" in reason and "-15.0 points" in reason
    assert replay("noise-gap", hist, NOISE_GAP) == 7  # at the decay after epoch 6, into epoch 7 = last_decay
    assert replay("noise-gap", hist, {**NOISE_GAP, "last_decay": 9}) is None  # no decay into epoch >= 9
    assert replay("noise-gap", hist, {**NOISE_GAP, "margin": 0.2}) == 4  # 15 points below is within a 20-point margin
    # a window over the whole phase sees epoch 0's 0.99: still noisy
    assert replay("noise-gap", hist, {**NOISE_GAP, "val_window": 10}) == 7


def test_noise_gap_without_next_lr_sees_each_decay_one_epoch_late():
    hist = [{k: v for k, v in r.items() if k != "next_lr"}
            for r in _history([0.3] * 9, [0.7] * 9, LRS)]  # noisy: train 0.3 < val 0.7
    assert replay("noise-gap", hist, NOISE_GAP) == 8  # the decay into epoch 7 is seen after epoch 7


def test_val_plateau_by_hand():
    p = {"val_window": 3, "min_delta": 0.005}
    lrs = [0.1] * 6 + [0.01] * 3
    flat = _history([0.5] * 9, [0.5, 0.6, 0.7, 0.7, 0.69, 0.7, 0.8, 0.8, 0.8], lrs)
    # epochs 3-5 best 0.70, epochs 0-2 best 0.70: gain 0 < 0.5 points -> off from epoch 6
    assert replay("val-plateau", flat, p) == 6
    rising = _history([0.5] * 9, [0.5, 0.6, 0.7, 0.7, 0.69, 0.72, 0.8, 0.8, 0.8], lrs)
    switch, reason = decide("val-plateau", rising[:6], p)  # gain 2 points: still rising
    assert switch is False and "72.00% vs 70.00%" in reason
    assert replay("val-plateau", rising, p) is None  # the last phase never ends in a decay
    short = _history([0.5] * 9, [0.5] * 9, [0.1] * 3 + [0.01] * 6)
    assert replay("val-plateau", short, p) is None  # a 3-epoch phase with a 3-epoch window has no "before"


def test_v3_rules_name_the_missing_metric():
    hist = [{"epoch": 0, "lr": 0.1, "next_lr": 0.01, "train_onehot_loss": 1.0}]
    with pytest.raises(ValueError, match="val_top1.*--val-size"):
        decide("val-plateau", hist, {"val_window": 1, "min_delta": 0.0})
    with pytest.raises(ValueError, match="train_top1, val_top1"):
        decide("noise-gap", hist, NOISE_GAP)


@pytest.mark.parametrize("rule, params, named", [
    ("noise-gap", NOISE_GAP, "reads lr, train_top1, val_top1 each epoch"),
    ("val-plateau", {"val_window": 1, "min_delta": 0.0}, "reads lr, val_top1 each epoch"),
    ("phase-plateau", {"window": 2, "rate": 0.01}, "reads lr each epoch"),
])
def test_a_decay_rule_told_no_lr_names_what_to_report(rule, params, named):
    # issue 30 item 14: a loop that reports only the one-hot loss (as the Lightning and HF adapters do) got a bare
    # KeyError: 'lr' after its second epoch; now the first epoch says what to pass, in one line
    auto = AutoSwitch(rule, **params)
    with pytest.raises(ValueError, match=named) as info:
        auto.update(0, 1.0)
    assert "AutoSwitch.update" in str(info.value) and "use rule 'plateau' there" in str(info.value)
    with pytest.raises(ValueError, match="reads lr, train_top1 each epoch"):  # val_top1 given, the rest named
        AutoSwitch("noise-gap", **NOISE_GAP).update(0, 1.0, val_top1=0.5)


def test_auto_switch_update_takes_validation_metrics():
    auto = AutoSwitch("noise-gap", **NOISE_GAP)
    for r in _history([0.3] * 9, [0.7] * 9, LRS):
        auto.update(r["epoch"], 1.0, val_top1=r["val_top1"], train_top1=r["train_top1"], val_nll=0.9,
                    lr=r["lr"], next_lr=r["next_lr"])
    assert auto.switch_epoch == 7 and "deferred" in auto.reason
    assert auto.history[0]["val_nll"] == 0.9


def test_trainer_config_for_the_v3_rules():
    cfg = TrainConfig(method="tsla-auto", auto_rule="noise-gap", val_size=100, epochs=30, milestones=[15, 25])
    auto = AutoSwitch.from_config(cfg)
    assert (auto.params["last_decay"], auto.params["val_window"], auto.params["margin"]) == (25, 5, 0.0)
    with pytest.raises(ConfigError, match="--val-size"):
        TrainConfig(method="tsla-auto", auto_rule="val-plateau", milestones=[5])
    with pytest.raises(ConfigError, match="--milestones"):
        TrainConfig(method="tsla-auto", auto_rule="noise-gap", val_size=100)
    # a resumed run is checked on the constants its rule reads only
    saved = AutoSwitch("plateau", window=3, tolerance=0.01).state_dict()
    AutoSwitch("plateau", window=3, tolerance=0.01, margin=0.3).load_state_dict(saved)
    with pytest.raises(ValueError, match="build it as the saved run was built"):
        AutoSwitch("plateau", window=3, tolerance=0.02).load_state_dict(saved)


def _replay_rows():
    """The rows of docs/selection.md's replay table: rule, constants, regime, switch epochs stated."""
    text = (ROOT / "docs" / "selection.md").read_text()
    rows = re.findall(r"^\| `([\w-]+)` \| ([^|]+) \| (R[12]) \| ([^|]+) \|", text, re.M)
    assert len(rows) >= 6, "docs/selection.md lost its replay table"
    return rows


@pytest.mark.parametrize("rule, constants, regime, stated", _replay_rows())
def test_every_rule_replays_on_the_committed_logs_as_docs_say(rule, constants, regime, stated):
    folder = ROOT / "docs" / "evidence" / "study" / "runs" / {"R1": "r1-few", "R2": "r2-noise"}[regime]
    params = {k: float(v) for k, v in re.findall(r"(\w+) ([-\d.]+)", constants)}
    counts: dict[str, int] = {}
    for run in sorted(folder.glob("lsr-theta*-seed*")):
        records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        got = replay(rule, records, params)
        key = "never" if got is None else str(got)
        counts[key] = counts.get(key, 0) + 1
    expected = {k: int(n) for k, n in re.findall(r"(never|\d+) in (\d+)", stated)}
    assert counts == expected


def test_the_trainer_feeds_the_v3_rules(tiny_fashion, tmp_path):
    """tsla train --method tsla-auto --auto-rule noise-gap: the rule gets each epoch's train_top1 and val_top1 (it
    would raise without them), and the switch it reports is the replay of the run's own metrics.jsonl."""
    import tsla

    cfg = TrainConfig(dataset="fashion-mnist", data_root=str(tiny_fashion), model="resnet8", epochs=4,
                      milestones=[2, 3], val_size=10, method="tsla-auto", auto_rule="noise-gap", theta=0.2,
                      batch_size=10, device="cpu", threads=1)
    summary = tsla.train(cfg, tmp_path / "run", progress_bar=False)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    first = records[1]  # the epoch before the first decay
    best_val = max(r["val_top1"] for r in records[:2])
    expected = 2 if first["train_top1"] >= best_val else 3  # the rule by hand, window 5 > the phase's 2 epochs
    assert summary["switch_epoch"] == expected
    assert [r["theta"] for r in records] == [0.2 if e < expected else 0.0 for e in range(4)]
