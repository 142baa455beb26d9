"""Early stopping reported in every run with --val-size: summary.json's best_val is the earliest epoch of the best
validation top-1 and the test metrics of the model at that epoch, exact across a SIGKILL + resume and a branch."""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from tsla.config import TrainConfig
from tsla.data import build_data
from tsla.data.fashion_mnist import MEAN, STD
from tsla.errors import RunDirError
from tsla.models import build_model
from tsla.training.evaluate_run import evaluate_run
from tsla.training.trainer import train

TEST_KEYS = ("test_top1", "test_nll", "test_ece")


def _cfg(root, **kw):
    # 100 noisy images, lr 0.4: validation top-1 goes 0.10, 0.16, 0.14, 0.16 (a tie; the earliest, epoch 1, counts)
    base = dict(dataset="fashion-mnist", data_root=str(root), model="resnet8", train_subset=100, val_size=50,
                test_subset=50, epochs=4, batch_size=10, device="cpu", augment=False, label_noise=0.4, lr=0.4,
                method="lsr", theta=0.2, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _by_hand(run):
    """best_val from metrics.jsonl alone: the first epoch of the largest val_top1, and that epoch's test metrics."""
    rows = _rows(run)
    best = max(rows, key=lambda r: (r["val_top1"], -r["epoch"]))
    return {"epoch": best["epoch"], "val_top1": best["val_top1"], "val_nll": best["val_nll"],
            **{k: best[k] for k in TEST_KEYS}}


def _top1_of_weights(cfg, weights):
    """Test top-1 of ``weights`` counted by hand: the test images normalised by the formula, argmax per image."""
    data = build_data(cfg, torch.device("cpu"))
    model = build_model(cfg.model, 10, 1)
    model.load_state_dict(weights)
    model.eval()
    images = (data.test.images.float() / 255 - MEAN[0]) / STD[0]
    with torch.no_grad():
        predicted = model(images).argmax(1)
    return (predicted == data.test.targets).float().mean().item()


@pytest.fixture(scope="module")
def reference(fashion_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    summary = train(_cfg(fashion_root), out, progress_bar=False)
    return out, summary


def test_best_val_is_the_earliest_best_validation_epoch_with_its_own_test_metrics(fashion_root, reference):
    out, summary = reference
    rows = _rows(out)
    assert summary["best_val"] == _by_hand(out)
    assert summary["best_val"]["epoch"] == 1  # the tie at epoch 3 does not count; the last epoch is not chosen
    assert [r["val_top1"] for r in rows].count(summary["best_val"]["val_top1"]) == 2
    assert rows[1]["test_top1"] != rows[-1]["test_top1"] or rows[1]["test_nll"] != rows[-1]["test_nll"]
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["epoch"] == 1
    assert _top1_of_weights(_cfg(fashion_root), best["model"]) == pytest.approx(summary["best_val"]["test_top1"])
    again = evaluate_run(out, "best-val")
    assert {k: again[k] for k in TEST_KEYS} == pytest.approx({k: summary["best_val"][k] for k in TEST_KEYS})
    final = evaluate_run(out, "final")
    assert {k: final[k] for k in TEST_KEYS} == pytest.approx({k: rows[-1][k] for k in TEST_KEYS})


def test_best_val_survives_a_sigkill_and_resume_exactly(fashion_root, tmp_path, reference):
    ref_out, ref_summary = reference
    out = tmp_path / "run"
    cfg = _cfg(fashion_root)
    # a real SIGKILL inside epoch 3, after the best epoch (1): only the checkpoint can carry the best weights over
    script = ("import os, signal, sys, torch\n"
              "import tsla.training.trainer as t\n"
              "from tsla.config import TrainConfig\n"
              "inner = t.train_one_epoch\n"
              "def killing(ctx, batches, theta, epoch, *a):\n"
              "    if epoch == 3:\n"
              "        next(iter(batches))\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              "    return inner(ctx, batches, theta, epoch, *a)\n"
              "t.train_one_epoch = killing\n"
              f"t.train(TrainConfig(**{cfg.to_dict()!r}), {str(out)!r}, progress_bar=False)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert len(_rows(out)) == 3 and not (out / "summary.json").exists() and not (out / "best.pt").exists()
    summary = train(cfg, out, resume=True, progress_bar=False)
    assert summary["best_val"] == ref_summary["best_val"] == _by_hand(out)
    a = torch.load(out / "best.pt", weights_only=True)["model"]
    b = torch.load(ref_out / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_a_branch_inherits_its_trunks_best_so_far(fashion_root, tmp_path):
    # 3 epochs: validation top-1 0.10, 0.16 (LSR trunk), then 0.14 one-hot: the best lies in the inherited prefix
    train(_cfg(fashion_root, epochs=3, keep_epochs=[2]), tmp_path / "lsr", progress_bar=False)
    branched = train(_cfg(fashion_root, epochs=3, method="tsla@2"), tmp_path / "branch", progress_bar=False,
                     branch=(tmp_path / "lsr", 2))
    alone = train(_cfg(fashion_root, epochs=3, method="tsla@2"), tmp_path / "alone", progress_bar=False)
    assert branched["best_val"] == alone["best_val"] == _by_hand(tmp_path / "branch")
    assert branched["best_val"]["epoch"] < 2  # chosen in the trunk's epochs: inherited, not re-measured
    a = torch.load(tmp_path / "branch" / "best.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "alone" / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_test_every_0_never_evaluates_the_test_set(fashion_root, tmp_path, monkeypatch):
    import tsla.training.trainer as trainer

    calls = []
    monkeypatch.setattr(trainer, "evaluate", lambda *a: calls.append(a))  # evaluate_split does not go through it
    summary = train(_cfg(fashion_root, epochs=2, test_every=0), tmp_path / "run", progress_bar=False)
    assert calls == []
    assert not any(k.startswith("test_") for r in _rows(tmp_path / "run") for k in r)
    assert summary["best_val"]["test_top1"] is None and summary["best_val"]["epoch"] in (0, 1)
    assert summary["best"] == {"test_top1": None, "epoch": None}  # no placeholder a report could read as -100 %
    assert (tmp_path / "run" / "best.pt").is_file()


def test_a_run_without_validation_has_no_best_val_and_evaluate_run_says_so(tiny_fashion, tmp_path):
    cfg = TrainConfig(dataset="fashion-mnist", data_root=str(tiny_fashion), model="resnet8", epochs=1,
                      batch_size=8, device="cpu")
    assert train(cfg, tmp_path / "run", progress_bar=False)["best_val"] is None
    assert not (tmp_path / "run" / "best.pt").exists()
    with pytest.raises(RunDirError, match="best.pt is missing"):
        evaluate_run(tmp_path / "run", "best-val")


def test_the_command_line_finishes_a_run_that_never_saw_the_test_set(tiny_fashion, tmp_path, capsys):
    """`tsla train --test-every 0` (what every `tsla select --jobs K` run is) ends with exit 0 and a last line that
    shows no test number, rather than a KeyError traceback after training."""
    from tsla.cli import main

    argv = ["train", "--data-root", str(tiny_fashion), "--val-size", "10", "--epochs", "1", "--batch-size", "8",
            "--test-every", "0", "--device", "cpu", "--threads", "1", "--no-progress", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "done: test set not evaluated (--test-every 0)" in captured.out and "final val top-1" in captured.out


def _finished_with_val(tiny_fashion, run):
    cfg = TrainConfig(dataset="fashion-mnist", data_root=str(tiny_fashion), model="resnet8", epochs=1, batch_size=8,
                      val_size=10, device="cpu", threads=1)
    train(cfg, run, progress_bar=False)
    return cfg


def test_a_damaged_best_pt_is_one_clear_error_with_a_remedy_that_works(tiny_fashion, tmp_path):
    """evaluate_run (and so `tsla select --at best-val`) on a cut best.pt: RunDirError naming the file, not torch's
    zip error; the advised resume writes the same best.pt again from the checkpoint."""
    from tsla.cli import main

    run = tmp_path / "run"
    _finished_with_val(tiny_fashion, run)
    good = torch.load(run / "best.pt", weights_only=True)
    cut = (run / "best.pt").read_bytes()
    (run / "best.pt").write_bytes(cut[: len(cut) // 2])
    with pytest.raises(RunDirError, match=r"best.pt is truncated or corrupt.*--resume"):
        evaluate_run(run, "best-val")
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 0
    again = torch.load(run / "best.pt", weights_only=True)
    assert {k: v for k, v in again.items() if k != "model"} == {k: v for k, v in good.items() if k != "model"}
    assert all(torch.equal(again["model"][k], good["model"][k]) for k in good["model"])
    assert evaluate_run(run, "best-val")["test_top1"] >= 0


def test_a_checkpoint_with_a_tampered_best_val_is_refused_in_one_line(tiny_fashion, tmp_path, capsys):
    """Edited by hand with its checksum recomputed (as rows 98-99 of docs/errors.md), a best_val entry that is not
    an epoch, two numbers and weights is refused like the other entries, not a TypeError deep in the trainer."""
    from tsla.cli import main
    from tsla.training.checkpoint import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    _finished_with_val(tiny_fashion, run)
    (run / "summary.json").unlink()
    state = load_checkpoint(run / "checkpoint.pt")
    state["best_val"] = {**state["best_val"], "epoch": None}
    save_checkpoint(run / "checkpoint.pt", state)
    assert main(["train", "--out", str(run), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tsla: error: ") and err.count("\n") == 1 and "invalid best_val entry" in err
