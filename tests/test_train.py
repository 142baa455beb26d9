"""End-to-end training: the files a user reads, exact resume, and refusing to overwrite a run."""

import json
import subprocess
import sys

import pytest
import torch
import yaml

import tsla.training.trainer
from tsla.config import TrainConfig
from tsla.errors import RunDirError, TrainingError
from tsla.training.trainer import train

from .conftest import with_flags

METRIC_KEYS = {
    "epoch", "lr", "theta", "train_loss", "train_onehot_loss", "train_top1",
    "test_loss", "test_top1", "test_top5", "epoch_seconds", "train_images_per_second",
}


def _cfg(root, **kw):
    base = dict(dataset="fashion-mnist", data_root=str(root), model="resnet8", train_subset=512, test_subset=500,
                epochs=2, milestones=[1], method="tsla@1", theta=0.2, batch_size=64, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def test_cli_train_writes_every_file(fashion_root, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tsla", "train", "--preset", "fashion-mnist", "--data-root", str(fashion_root),
           "--train-subset", "512", "--test-subset", "500", "--epochs", "2", "--milestones", "1",
           "--method", "tsla@1", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # the schedule table is printed before training: theta 0.1 for epoch 0, then 0
    assert "0           0.1000  0.1" in done.stdout and "1           0.0000  0.01" in done.stdout
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1]
    assert METRIC_KEYS <= set(lines[0])
    assert [r["theta"] for r in lines] == [0.1, 0.0] and [r["lr"] for r in lines] == pytest.approx([0.1, 0.01])
    for r in lines:
        for key in ("train_top1", "test_top1", "test_top5"):
            assert 0.0 <= r[key] <= 1.0
        assert r["test_top5"] >= r["test_top1"]
    # with theta = 0 the smoothed loss is the one-hot loss; with theta > 0 it is larger (smoothing adds entropy)
    assert lines[1]["train_loss"] == pytest.approx(lines[1]["train_onehot_loss"])
    assert lines[0]["train_loss"] > lines[0]["train_onehot_loss"]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["train_subset"] == 512 and config["model"] == "resnet8" and config["method"] == "tsla@1"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final"]["test_top1"] == lines[-1]["test_top1"]
    assert summary["best"]["test_top1"] == max(r["test_top1"] for r in lines)
    assert summary["versions"]["torch"] == torch.__version__ and "git_commit" in summary
    assert summary["switch_epoch"] == 1
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["next_epoch"] == 2
    assert not list(out.glob(".*.tmp"))  # no temporary file left behind


def test_resume_after_one_epoch_equals_uninterrupted(fashion_root, tmp_path, monkeypatch):
    cfg = _cfg(fashion_root)
    full = train(cfg, tmp_path / "full", progress_bar=False)

    real = tsla.training.trainer.train_one_epoch

    def crash_in_second_epoch(ctx, batches, theta, epoch, *args, **kw):
        if epoch == 1:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C during epoch 1
        return real(ctx, batches, theta, epoch, *args, **kw)

    monkeypatch.setattr(tsla.training.trainer, "train_one_epoch", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", progress_bar=False)
    assert not (tmp_path / "cut" / "summary.json").exists()
    # as if the crash also hit between the checkpoint and the metrics line of epoch 0: the checkpoint restores it
    (tmp_path / "cut" / "metrics.jsonl").write_text("")
    monkeypatch.setattr(tsla.training.trainer, "train_one_epoch", real)
    resumed = train(cfg, tmp_path / "cut", resume=True, progress_bar=False)
    for key in ("train_loss", "train_onehot_loss", "train_top1", "test_loss", "test_top1", "test_top5"):
        assert resumed["final"][key] == full["final"][key], key
    epochs = [json.loads(x)["epoch"] for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1]


def test_existing_run_is_not_overwritten(fashion_root, tmp_path):
    out = tmp_path / "run"
    train(_cfg(fashion_root, epochs=1, milestones=[], method="lsr"), out, progress_bar=False)
    before = (out / "metrics.jsonl").read_text()
    with pytest.raises(RunDirError, match="already holds a run"):
        train(_cfg(fashion_root, epochs=1, milestones=[], method="lsr"), out, progress_bar=False)
    assert (out / "metrics.jsonl").read_text() == before


def test_resume_with_a_different_config_is_refused(fashion_root, tmp_path):
    out = tmp_path / "run"
    train(_cfg(fashion_root, epochs=1, milestones=[], method="lsr"), out, progress_bar=False)
    with pytest.raises(RunDirError, match="theta"):
        train(_cfg(fashion_root, epochs=1, milestones=[], method="lsr", theta=0.3), out, resume=True)


def test_nonfinite_loss_stops_with_epoch_and_step(fashion_root, tmp_path):
    with pytest.raises(TrainingError, match="epoch 0 by step"):
        train(_cfg(fashion_root, epochs=1, milestones=[], lr=1e12), tmp_path / "run", progress_bar=False)


def test_cub_tree_trains_end_to_end(tmp_path):
    """The image-folder path (DataLoader + torchvision transforms) through the whole trainer, on a fake CUB tree."""
    from .test_folder_datasets import make_cub

    root = make_cub(tmp_path / "CUB_200_2011")
    cfg = TrainConfig(dataset="cub", data_root=str(tmp_path), model="resnet8", image_size=32, epochs=1,
                      method="lsr", batch_size=2, workers=0, device="cpu")
    summary = train(cfg, tmp_path / "run", progress_bar=False)
    assert summary["final"]["train_images"] == 4  # the 4 training images of the official split
    assert summary["final"]["test_images"] == 2
    assert root.exists()


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_on_cpu_trains_and_logs_float32_losses(tiny_fashion, tmp_path, amp):
    cfg = TrainConfig(dataset="fashion-mnist", data_root=str(tiny_fashion), model="resnet8", epochs=1, method="lsr",
                      batch_size=20, device="cpu", amp=amp, channels_last=True)
    summary = train(cfg, tmp_path / "run", progress_bar=False)
    final = summary["final"]
    assert final["train_images"] == 40 and final["test_images"] == 20
    # the losses are reduced in float32: finite, and near ln(10) = 2.30 for a barely trained 10-class model
    for key in ("train_loss", "train_onehot_loss", "test_loss"):
        assert 0.5 < final[key] < 20


def test_worker_process_data_error_is_one_line(tmp_path, capsys):
    """A corrupt image met by a DataLoader worker process reaches the user as one line naming the file."""
    from tsla.cli import main

    from .test_folder_datasets import CUB_IMAGES, make_cub

    root = make_cub(tmp_path / "CUB_200_2011")
    broken = root / "images" / CUB_IMAGES[0][1]
    broken.write_bytes(b"not a jpeg")
    code = main(["train", "--dataset", "cub", "--data-root", str(tmp_path), "--model", "resnet8", "--image-size", "32",
                 "--epochs", "1", "--batch-size", "2", "--workers", "1", "--device", "cpu", "--out",
                 str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("tsla: error: cannot read image") and str(broken) in err


def test_compare_refuses_to_reuse_a_finished_run_with_other_settings(tiny_fashion, tmp_path, capsys):
    from tsla.cli import main

    argv = ["compare", "--data-root", str(tiny_fashion), "--methods", "lsr", "--seeds", "0", "--epochs", "1",
            "--batch-size", "20", "--device", "cpu", "--out", str(tmp_path / "cmp"), "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(with_flags(argv, ["--epochs", "2"])) == 2  # the same command with --epochs 2 instead of 1
    assert "is a finished run with epochs=1, not 2" in capsys.readouterr().err
