"""DistributedDataParallel through torchrun on CPU (gloo, 2 processes) against a single process.

Tolerance: on CPU torch has no SyncBatchNorm, so each rank normalises over its 32-image half of the 64-image global
batch while the single process normalises over all 64. That is the only difference in the computation (same data
order, augmentation, initial weights, global batch and learning rate), so the epoch-averaged losses agree closely —
we require 3% (relative) — while test accuracy after 16 steps moves more; we require 10 points. What must be exact
is checked exactly: image counts, and the test metrics, which a single process recomputes from the saved weights.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from tsla.cli import main
from tsla.config import TrainConfig
from tsla.data import build_data
from tsla.training.engine import StepContext, evaluate
from tsla.models import build_model


def _argv(root, out):
    return ["train", "--data-root", str(root), "--train-subset", "512", "--test-subset", "301", "--epochs", "2",
            "--milestones", "1", "--method", "tsla@1", "--batch-size", "64", "--device", "cpu", "--out", str(out),
            "--no-progress"]


def test_two_gloo_ranks_match_one_process(fashion_root, tmp_path, capsys):
    two = tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", "-m", "tsla",
           *_argv(fashion_root, two)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("done: final test top-1") == 1  # only rank 0 prints
    assert main(_argv(fashion_root, tmp_path / "one")) == 0
    capsys.readouterr()

    lines = [json.loads(x) for x in (two / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1]  # one writer
    single = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((two / "summary.json").read_text())
    assert summary["world_size"] == 2
    for a, b in zip(lines, single):
        assert a["train_images"] == b["train_images"] == 512  # the ranks' halves add up to the whole epoch
        assert a["test_images"] == b["test_images"] == 301  # the test set evaluated once in total (150 + 151)
        for key in ("train_loss", "train_onehot_loss", "test_loss"):
            assert a[key] == pytest.approx(b[key], rel=0.03), key
        assert abs(a["test_top1"] - b["test_top1"]) <= 0.10

    # the 2-rank test metrics are exact: recompute them in one process from the saved weights
    cfg = TrainConfig(**{k: v for k, v in json.loads((two / "summary.json").read_text())["config"].items()})
    data = build_data(cfg, torch.device("cpu"))
    model = build_model(cfg.model, data.num_classes, data.in_channels)
    model.load_state_dict(torch.load(two / "checkpoint.pt", weights_only=True)["model"])
    ctx = StepContext(model=model, optimizer=None, loss_fn=None, device=torch.device("cpu"))
    again = evaluate(ctx, data.test.epoch(cfg.seed, 1))
    for key in ("test_loss", "test_top1", "test_top5", "test_ece", "test_brier"):
        assert again[key] == pytest.approx(lines[-1][key], rel=1e-5, abs=1e-7), key


def test_global_batch_must_split_evenly(tmp_path, monkeypatch, capsys):
    from tsla.distributed import DistInfo, check_batch
    from tsla.errors import ConfigError

    with pytest.raises(ConfigError, match="--batch-size 30 .* multiple of the 4 processes"):
        check_batch(30, DistInfo(0, 4, 0))
