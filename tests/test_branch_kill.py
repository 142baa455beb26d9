"""A branch killed at any point resumes or starts again, and kept checkpoints are whole (issue 22, items 5-6)."""

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from tsla.cli import main
from tsla.config import config_text
from tsla.errors import DataError
from tsla.experiments.grid_jobs import _start_from
from tsla.training import engine, trainer
from tsla.training.checkpoint import load_checkpoint, save_checkpoint
from tsla.training.trainer import train

from .conftest import write_idx
from .test_branch import _cfg, _metrics


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs, and the files stay as they are."""


@pytest.fixture
def source(tiny_fashion, tmp_path, trained):
    """A copy of an LSR run that kept its checkpoint after epoch 1 (on this test's data), and the metrics of TSLA(1)
    trained alone."""
    for name in ("lsr", "alone"):
        shutil.copytree(trained / name, tmp_path / name)
    return tmp_path / "lsr", _metrics(tmp_path / "alone")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The two runs, trained once per module on a copy of tiny_fashion's data (the same images in every test)."""
    root = tmp_path_factory.mktemp("trained")
    data = root / "data"
    data.mkdir()
    g = torch.Generator().manual_seed(0)  # as tests/conftest.py's tiny_fashion
    for split, n in (("train", 40), ("t10k", 20)):
        write_idx(data / f"{split}-images-idx3-ubyte", torch.randint(0, 256, (n, 28, 28), generator=g,
                                                                     dtype=torch.uint8), compress=False)
        write_idx(data / f"{split}-labels-idx1-ubyte", torch.arange(n) % 10, compress=False)
    train(_cfg(data, keep_epochs=[1]), root / "lsr", progress_bar=False)
    train(_cfg(data, method="tsla@1"), root / "alone", progress_bar=False)
    return root


def _kill_in_first_epoch(monkeypatch):
    def killed(*args, **kwargs):
        raise Killed
    monkeypatch.setattr(trainer, "train_one_epoch", killed)


@pytest.mark.parametrize("how", ["resume", "compare"])
def test_a_branch_killed_in_its_first_epoch_resumes_or_starts_again(tiny_fashion, tmp_path, source, monkeypatch, how):
    lsr, expected = source
    cfg, out = _cfg(tiny_fashion, method="tsla@1"), tmp_path / "branch"
    _kill_in_first_epoch(monkeypatch)
    with pytest.raises(Killed):
        train(cfg, out, progress_bar=False, branch=(lsr, 1))
    monkeypatch.setattr(trainer, "train_one_epoch", engine.train_one_epoch)
    if how == "resume":
        train(cfg, out, progress_bar=False, resume=True)
    else:  # a compare rerun: it resumes a run folder with a checkpoint, and branches one without
        resume, branch = _start_from(out, (lsr, 1), io.StringIO())
        train(cfg, out, progress_bar=False, resume=resume, branch=branch)
    assert _metrics(out) == expected


def test_a_branch_folder_left_with_metrics_but_no_checkpoint_starts_again(tiny_fashion, tmp_path, source, capsys):
    # what a kill in the first epoch left before the fix: the source's epoch in metrics.jsonl, no checkpoint
    lsr, expected = source
    cfg, out = _cfg(tiny_fashion, method="tsla@1"), tmp_path / "branch"
    out.mkdir()
    (out / "config.yaml").write_text(config_text(cfg))
    (out / "metrics.jsonl").write_text((lsr / "metrics.jsonl").read_text().splitlines()[0] + "\n")
    log = io.StringIO()
    train(cfg, out, progress_bar=False, branch=(lsr, 1), log=log)
    assert "stopped before its first checkpoint: starting it again" in log.getvalue()
    assert _metrics(out) == expected


def test_a_kept_checkpoint_missed_by_a_kill_is_written_again_on_resume(tiny_fashion, tmp_path):
    # killed right after epoch 1's checkpoint, before it was kept: checkpoint.pt after 2 of 3 epochs, no epoch-1.pt
    run = tmp_path / "lsr"
    train(_cfg(tiny_fashion, epochs=2, milestones=[1], keep_epochs=[2]), run, progress_bar=False)
    state = load_checkpoint(run / "checkpoint.pt")
    state["config"]["epochs"] = 3
    state["config"]["milestones"] = [2]
    save_checkpoint(run / "checkpoint.pt", state)
    (run / "config.yaml").write_text(yaml.safe_dump(state["config"], sort_keys=False))
    (run / "summary.json").unlink()
    shutil.rmtree(run / "checkpoints")
    log = io.StringIO()
    train(_cfg(tiny_fashion, keep_epochs=[2]), run, progress_bar=False, resume=True, log=log)
    assert "writing the kept checkpoint" in log.getvalue() and "missing" in log.getvalue()
    kept = load_checkpoint(run / "checkpoints" / "epoch-1.pt")
    assert kept["next_epoch"] == 2 and kept["model"].keys() == state["model"].keys()
    assert all((kept["model"][k] == state["model"][k]).all() for k in state["model"])


def test_a_cut_kept_checkpoint_makes_compare_train_the_branch_from_epoch_0(tmp_path, source):
    lsr, _ = source
    kept = lsr / "checkpoints" / "epoch-0.pt"
    kept.write_bytes(kept.read_bytes()[:300])  # what a kill during the old, non-atomic copy left
    log = io.StringIO()
    assert _start_from(tmp_path / "branch", (lsr, 1), log) == (False, None)
    assert "cannot branch from" in log.getvalue() and "training from epoch 0" in log.getvalue()


def test_kept_checkpoints_are_written_through_a_temporary_file(tiny_fashion, tmp_path, monkeypatch):
    # a kill in mid-copy: the copy's writer dies after part of the bytes; no cut epoch-0.pt may be left behind
    from tsla.training import checkpoint

    real = checkpoint.shutil.copyfileobj

    def dies_half_way(src, dst, *args):
        dst.write(src.read(100))
        raise Killed

    monkeypatch.setattr(checkpoint.shutil, "copyfileobj", dies_half_way)
    with pytest.raises(Killed):
        train(_cfg(tiny_fashion, keep_epochs=[1]), tmp_path / "lsr", progress_bar=False)
    monkeypatch.setattr(checkpoint.shutil, "copyfileobj", real)
    assert not (tmp_path / "lsr" / "checkpoints" / "epoch-0.pt").exists()
    assert json.loads("[]") == [p.name for p in (tmp_path / "lsr" / "checkpoints").iterdir()]


def _compare(data, out, threads, shard=None):
    argv = ["compare", "--data-root", str(data), "--train-subset", "30", "--test-subset", "20", "--epochs", "2",
            "--milestones", "1", "--batch-size", "8", "--methods", "lsr,tsla@1", "--seeds", "0", "--threads",
            str(threads), "--out", str(out), "--no-progress", "--device", "cpu"]
    return main(argv + (["--shard", shard] if shard else []))


def test_a_compare_whose_branch_source_used_another_thread_count_finishes(tiny_fashion, tmp_path, capsys):
    # issue 22, item 7: the LSR run trained on 2 threads (its branch's folder then lost); the grid now runs on 1
    out = tmp_path / "cmp"
    assert _compare(tiny_fashion, out, 2) == 0
    shutil.rmtree(out / "tsla@1-seed0")
    capsys.readouterr()
    assert _compare(tiny_fashion, out, 1) == 0
    assert "was trained on 2 CPU thread(s), this run uses 1" in capsys.readouterr().out
    summary = json.loads((out / "tsla@1-seed0" / "summary.json").read_text())
    assert summary["branched_from"] is None and summary["config"]["threads"] == 1


def test_a_rerun_with_the_advised_thread_count_replaces_a_stale_unstarted_config(tiny_fashion, tmp_path, capsys):
    # an earlier compare wrote tsla@1-seed0/config.yaml for 1 thread and its run never started; the rerun on 2
    # threads (the source's) must neither train with the stale file nor refuse the folder
    out = tmp_path / "cmp"
    assert _compare(tiny_fashion, out, 2) == 0
    shutil.rmtree(out / "tsla@1-seed0")
    stale = yaml.safe_load((out / "lsr-seed0" / "config.yaml").read_text())
    stale.update(method="tsla@1", keep_epochs=[], threads=1)
    (out / "tsla@1-seed0").mkdir()
    (out / "tsla@1-seed0" / "config.yaml").write_text(yaml.safe_dump(stale, sort_keys=False))
    assert _compare(tiny_fashion, out, 2) == 0
    summary = json.loads((out / "tsla@1-seed0" / "summary.json").read_text())
    assert summary["branched_from"]["at_epoch"] == 1 and summary["config"]["threads"] == 2


def test_a_branch_or_resume_on_other_test_images_is_refused(tmp_path, source):
    # issue 22, item 11: same training files, other test images: the metrics would mix two test sets
    lsr, _ = source
    other = tmp_path / "other"
    other.mkdir()
    data = Path(yaml.safe_load((lsr / "config.yaml").read_text())["data_root"])
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copy(data / name, other / name)
    write_idx(other / "t10k-images-idx3-ubyte", torch.zeros(20, 28, 28, dtype=torch.uint8), compress=False)
    with pytest.raises(DataError, match=f"found now differ from those {lsr} was evaluated on"):  # the source
        train(_cfg(other, method="tsla@1"), tmp_path / "branch", progress_bar=False, branch=(lsr, 1))
    assert not (tmp_path / "branch").exists()


def test_a_checkpoint_without_the_test_fingerprint_still_resumes(tmp_path, source):
    # run folders of earlier versions carry no eval_fingerprint: not a mismatch
    lsr, _ = source
    state = load_checkpoint(lsr / "checkpoints" / "epoch-0.pt")
    assert state["eval_fingerprint"].startswith("sha256:")
    del state["eval_fingerprint"]
    save_checkpoint(lsr / "checkpoints" / "epoch-0.pt", state)
    data = Path(yaml.safe_load((lsr / "config.yaml").read_text())["data_root"])
    summary = train(_cfg(data, method="tsla@1"), tmp_path / "branch", progress_bar=False, branch=(lsr, 1))
    assert summary["branched_from"]["at_epoch"] == 1
