"""tsla-auto and the diagnostics as a user meets them: the switch happens, is recorded, survives resume;
--diagnose-every logs diag_* keys; 'tsla diagnose' re-measures a saved model."""

import json

import pytest

import tsla.training.trainer
from tsla.smoothing.auto_switch import should_switch
from tsla.cli import main
from tsla.config import TrainConfig
from tsla.training.trainer import train


def _records(losses):
    return [{"epoch": i, "train_onehot_loss": v} for i, v in enumerate(losses)]


def test_plateau_rule_by_hand():
    # window 2: the last loss against the one two epochs before it; 1.0 -> 0.995 is a 0.5% drop, under 1%
    assert should_switch(_records([2.0, 1.0, 0.999, 0.995]), "plateau", 2, 0.01, 1.0)[0] is True
    assert should_switch(_records([1.0, 0.5, 0.9, 0.95]), "plateau", 2, 0.01, 1.0)[0] is True  # the loss rose
    assert should_switch(_records([2.0, 1.0, 0.9, 0.8]), "plateau", 2, 0.01, 1.0)[0] is False
    assert should_switch(_records([2.0, 1.9]), "plateau", 2, 0.01, 1.0)[0] is False  # not enough epochs yet


def test_floor_rule_by_hand():
    diag = {"diag_grad_norm2": 1.0, "diag_sigma2": 99.0, "diag_n": 100, "diag_lsr_floor": 0.5}
    # noise-corrected ||grad F||^2 = 1.0 - 99/99 = 0.0 <= 0.5
    assert should_switch([{"epoch": 0, **diag}], "floor", 3, 0.01, 1.0)[0] is True
    diag["diag_grad_norm2"] = 2.0  # 2.0 - 1.0 = 1.0 > 0.5, but within a factor of 2
    assert should_switch([{"epoch": 0, **diag}], "floor", 3, 0.01, 1.0)[0] is False
    assert should_switch([{"epoch": 0, **diag}], "floor", 3, 0.01, 2.0)[0] is True


def _auto_cfg(root, **kw):
    values = dict(dataset="fashion-mnist", data_root=str(root), model="resnet8", epochs=5, method="tsla-auto",
                  theta=0.2, batch_size=20, device="cpu", auto_window=1, auto_tolerance=0.99,
                  diagnose_every=2, diagnose_examples=20)
    values.update(kw)
    return TrainConfig(**values)


def test_auto_switch_is_recorded_and_survives_resume(tiny_fashion, tmp_path, monkeypatch):
    cfg = _auto_cfg(tiny_fashion)
    full = train(cfg, tmp_path / "full", progress_bar=False)
    lines = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    # window 1 with a 99% tolerance: the rule fires as soon as there are two epochs, i.e. after epoch 1
    assert full["switch_epoch"] == 2
    assert [r["switch_epoch"] for r in lines] == [None, 2, 2, 2, 2]
    assert [r["theta"] for r in lines] == [0.2, 0.2, 0.0, 0.0, 0.0]
    # diagnostics every 2 epochs: after epochs 1 and 3
    assert [("diag_delta" in r) for r in lines] == [False, True, False, True, False]
    r = lines[1]
    assert r["diag_n"] == 20 and r["diag_theta_star"] == pytest.approx(1 / (1 + r["diag_delta"]))
    assert r["diag_lsr_floor"] == pytest.approx(2 * r["diag_delta_sigma2"] / (1 + r["diag_delta"]))

    real = tsla.training.trainer.train_one_epoch

    def crash_at_epoch_3(ctx, batches, theta, epoch, *args, **kw):
        if epoch == 3:
            raise KeyboardInterrupt
        return real(ctx, batches, theta, epoch, *args, **kw)

    monkeypatch.setattr(tsla.training.trainer, "train_one_epoch", crash_at_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", progress_bar=False)
    monkeypatch.setattr(tsla.training.trainer, "train_one_epoch", real)
    # the resumed run restores the recorded decision instead of deciding again
    resumed = train(cfg, tmp_path / "cut", resume=True, progress_bar=False)
    assert resumed["switch_epoch"] == 2
    again = [json.loads(x) for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["theta"] for r in again] == [0.2, 0.2, 0.0, 0.0, 0.0]
    assert resumed["final"]["test_loss"] == full["final"]["test_loss"]


def test_diagnose_command_matches_the_logged_measurement(tiny_fashion, tmp_path, capsys):
    cfg = _auto_cfg(tiny_fashion, method="lsr", epochs=2, diagnose_every=1, keep_checkpoints=1)
    train(cfg, tmp_path / "run", progress_bar=False)
    logged = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    capsys.readouterr()
    assert main(["diagnose", str(tmp_path / "run"), "--epoch", "0", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["epoch"] == 0
    for key in ("grad_norm2", "sigma2", "delta", "theta_star", "lsr_floor", "lsr_variance"):
        assert got[key] == pytest.approx(logged[0][f"diag_{key}"], rel=1e-5), key
    assert main(["diagnose", str(tmp_path / "run")]) == 0
    text = capsys.readouterr().out
    assert "model after epoch 1" in text and "theta* = 1/(1+delta)" in text
    assert main(["diagnose", str(tmp_path / "run"), "--epoch", "7"]) == 2
    assert "no checkpoint of epoch 7" in capsys.readouterr().err


def test_floor_rule_needs_diagnostics_every_epoch():
    with pytest.raises(Exception, match="--diagnose-every 1"):
        TrainConfig(method="tsla-auto", auto_rule="floor", diagnose_every=0)


def test_compare_draws_diagnostics_and_shows_auto_switch(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--data-root", str(tiny_fashion), "--methods", "lsr,tsla-auto", "--seeds", "0", "--epochs",
            "3", "--batch-size", "20", "--device", "cpu", "--diagnose-every", "1", "--diagnose-examples", "20",
            "--auto-window", "1", "--auto-tolerance", "0.99", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert (out / "diagnostics.png").read_bytes()[:4] == b"\x89PNG"
    row = next(line for line in (out / "summary.md").read_text().splitlines() if line.startswith("| tsla-auto"))
    assert row.split("|")[3].strip() == "2"  # smoothing off from epoch 2, as the rule decided after epoch 1
