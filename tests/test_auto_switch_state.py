"""AutoSwitch, the stateful tsla-auto: decisions by hand, its state dict (weights_only and JSON), the trainer's use of
it (checkpoint, older checkpoints), and the rank-0 decision broadcast under torch.distributed (2 gloo ranks)."""

import io
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

import tsla
from tsla.smoothing.auto_switch import AutoSwitch, auto_switch_for
from tsla.config import TrainConfig
from tsla.schedules import AutoTwoStage, two_stage


def test_plateau_decision_by_hand_and_kept_for_good():
    auto = AutoSwitch("plateau", window=1, tolerance=0.01)
    assert auto.update(0, 2.0) is False and auto.reason == "waiting for 2 epochs of one-hot loss"
    assert auto.update(1, 1.0) is False  # fell 50%
    assert auto.update(2, 0.999) is True  # fell 0.1% < 1%: smoothing off from epoch 3
    assert auto.switch_epoch == 3 and "0.10%" in auto.reason
    assert auto.update(3, 5.0) is False and auto.switch_epoch == 3  # decided once; later epochs are only recorded
    assert [r["epoch"] for r in auto.history] == [0, 1, 2, 3]


def test_records_are_checked_and_test_metrics_never_kept():
    auto = AutoSwitch("plateau", window=2, tolerance=0.01)
    auto.observe({"epoch": 0, "train_onehot_loss": torch.tensor(1.5), "lr": 0.1, "test_top1": 0.9, "val_loss": 1.2})
    assert auto.history == [{"epoch": 0, "train_onehot_loss": 1.5, "lr": 0.1, "val_loss": 1.2}]
    with pytest.raises(ValueError, match="told epoch 0 after epoch 0"):
        auto.update(0, 1.4)
    with pytest.raises(ValueError, match="not finite"):
        auto.update(1, float("nan"))
    with pytest.raises(ValueError, match="lacks 'train_onehot_loss'"):
        auto.observe({"epoch": 1})
    with pytest.raises(ValueError, match="unknown tsla-auto rule 'never'"):
        AutoSwitch("never")


def test_diagnostics_are_stored_with_the_noise_corrected_gradient():
    auto = AutoSwitch("floor", factor=1.0)
    diag = {"grad_norm2": 2.0, "sigma2": 99.0, "n": 100, "lsr_floor": 0.5}
    # ||G||^2 - sigma^2 / (n - 1) = 2 - 1 = 1 > 0.5: no switch; with the gradient halved, 1 - 1 = 0 <= 0.5: switch
    assert auto.update(0, 1.0, diagnostics=diag) is False
    assert auto.history[0]["diag_grad_norm2_unbiased"] == pytest.approx(1.0)
    assert auto.update(1, 0.9, diagnostics={**diag, "grad_norm2": 1.0}) is True and auto.switch_epoch == 2


def _roundtrip_torch(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_state_round_trip_and_mismatch():
    auto = AutoSwitch("plateau", window=1, tolerance=0.2)
    auto.update(0, 1.0, lr=0.1)
    auto.update(1, 0.9, lr=0.1)  # fell 10% < 20%
    state = auto.state_dict()
    for loaded in (_roundtrip_torch(state), json.loads(json.dumps(state))):
        again = AutoSwitch("plateau", window=1, tolerance=0.2)
        again.load_state_dict(loaded)
        assert (again.switch_epoch, again.reason, again.history) == (2, auto.reason, auto.history)
        assert AutoSwitch.from_state_dict(loaded).state_dict() == state
    with pytest.raises(ValueError, match="build it as the saved run was built"):
        AutoSwitch("plateau", window=2, tolerance=0.2).load_state_dict(state)


def test_from_config_passes_every_auto_field():
    cfg = TrainConfig(method="tsla-auto", auto_window=2, auto_tolerance=0.05, auto_factor=3.0)
    auto = AutoSwitch.from_config(cfg)
    assert auto.rule == "plateau"
    assert {"window": 2, "tolerance": 0.05, "factor": 3.0}.items() <= auto.params.items()
    assert auto_switch_for(cfg, two_stage(0.1, 3)) is None


def test_older_checkpoints_keep_their_decision():
    cfg = TrainConfig(method="tsla-auto", auto_window=1, auto_tolerance=0.01)
    old = {"history": [{"epoch": 0, "train_onehot_loss": 2.0, "test_loss": 1.0},
                       {"epoch": 1, "train_onehot_loss": 1.99, "test_loss": 1.0}], "auto_switch_epoch": 2}
    auto = auto_switch_for(cfg, AutoTwoStage(0.2), old)
    assert auto.switch_epoch == 2 and [r["epoch"] for r in auto.history] == [0, 1]
    assert "test_loss" not in auto.history[0]
    assert tsla.SmoothingScheduler(AutoTwoStage(0.2), auto=auto).theta_at(2) == 0.0


def test_trainer_checkpoint_holds_the_switch_state(tiny_fashion, tmp_path):
    cfg = TrainConfig(dataset="fashion-mnist", data_root=str(tiny_fashion), model="resnet8", epochs=3,
                      method="tsla-auto", theta=0.2, batch_size=20, device="cpu", auto_window=1, auto_tolerance=0.99)
    summary = tsla.train(cfg, tmp_path / "run", progress_bar=False)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["auto_switch"]
    auto = AutoSwitch.from_state_dict(state)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # window 1, tolerance 99%: the rule fires once two epochs are in, after epoch 1
    assert auto.switch_epoch == summary["switch_epoch"] == 2
    assert [r["train_onehot_loss"] for r in auto.history] == [r["train_onehot_loss"] for r in lines]
    assert [r["theta"] for r in lines] == [0.2, 0.2, 0.0]


_RANKS = """
    import json, os
    import torch.distributed as dist
    from tsla.smoothing.auto_switch import AutoSwitch
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    # rank 0's losses plateau after epoch 2 (5% < 10%); rank 1's never would
    losses = [[2.0, 1.0, 0.95, 0.9], [2.0, 1.0, 0.5, 0.25]][rank]
    auto = AutoSwitch("plateau", window=1, tolerance=0.1)
    for epoch, loss in enumerate(losses):
        auto.update(epoch, loss)
    try:
        AutoSwitch("plateau", window=1).update(0, 1.0)  # no tolerance: rank 0's error, raised on every rank
        error = None
    except ValueError as exc:
        error = str(exc)
    print(json.dumps({"rank": rank, "switch": auto.switch_epoch, "reason": auto.reason, "error": error}))
    dist.destroy_process_group()
"""


def test_rank_zero_decides_and_every_rank_follows(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(textwrap.dedent(_RANKS))
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "WORLD_SIZE": "2"}
    ranks = [subprocess.Popen([sys.executable, str(script)], env={**env, "RANK": str(r)}, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for r in range(2)]
    try:
        outputs = [p.communicate(timeout=600) for p in ranks]  # generous: two fresh interpreters on a busy machine
    finally:
        for p in ranks:  # never leave a rank waiting for its peer
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in ranks] == [0, 0], [err[-2000:] for _, err in outputs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert [r["switch"] for r in results] == [3, 3]
    assert results[0]["reason"] == results[1]["reason"] and "5.00%" in results[0]["reason"]
    assert all("needs the constant 'tolerance'" in r["error"] for r in results)
