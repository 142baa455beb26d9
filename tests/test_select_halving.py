"""Successive halving in ``tsla select`` and the trainer's pause (``until``) it rests on: a paused and resumed run
equals an uninterrupted one; the families kept at the milestone are those of a hand computation from
metrics.jsonl (noise-aware: kept unless worse than the best by more than the SE), the stopped ones stop there, and
a rerun re-derives the same halving."""

import json

import tsla
from tsla import TrainConfig
from tsla.cli import main

from .test_select import _argv, _fake_fashion

KEYS = ("train_loss", "train_onehot_loss", "train_top1", "test_loss", "test_top1")


def _lines(run):
    path = run / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []


def test_a_paused_run_resumes_to_the_uninterrupted_result(tiny_fashion, tmp_path):
    cfg = TrainConfig(dataset="fashion-mnist", data_root=str(tiny_fashion), model="resnet8", epochs=3, method="tsla@1",
                      batch_size=20, device="cpu", threads=1, milestones=[2])
    whole = tsla.train(cfg, tmp_path / "whole", progress_bar=False)
    paused = tsla.train(cfg, tmp_path / "paused", progress_bar=False, until=2)
    assert paused == {"status": "paused", "next_epoch": 2}
    assert not (tmp_path / "paused" / "summary.json").exists() and len(_lines(tmp_path / "paused")) == 2
    done = tsla.train(cfg, tmp_path / "paused", resume=True, progress_bar=False)
    for key in KEYS:
        assert done["final"][key] == whole["final"][key], key
    assert [r["epoch"] for r in _lines(tmp_path / "paused")] == [0, 1, 2]


def _halving_argv(data, out):
    """Three families at seed 0 over 6 epochs at lr 0.2, halving at the lr milestone 4: the baseline, LSR(0.1) and
    LSR(1.0), whose uniform target teaches nothing until its TSLA branches drop it (so it is behind at the
    milestone by far more than the SE of 60 validation images, and validation stops it)."""
    return _argv(data, out, "--halving", "--seeds", "0", "--thetas", "0.1,1", "--epochs", "6", "--milestones", "4",
                 "--lr", "0.2")


def test_noise_aware_halving_stops_only_a_family_worse_by_more_than_its_se(tmp_path, capsys):
    data = _fake_fashion(tmp_path / "data")
    out = tmp_path / "sel"
    argv = _halving_argv(data, out)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    sel = json.loads((out / "selection.json").read_text())
    # by hand: at milestone 4 each family's score is its best member's best validation top-1 over epochs 0-3;
    # members are those started before epoch 4: the trunk, TSLA(1) and TSLA(2)
    folders = {"baseline": ["baseline-seed0"],
               "theta0.1": ["lsr-theta0.1-seed0", "tsla@1-theta0.1-seed0", "tsla@2-theta0.1-seed0"],
               "theta1": ["lsr-theta1-seed0", "tsla@1-theta1-seed0", "tsla@2-theta1-seed0"]}
    fam = {name: max(max(r["val_top1"] for r in _lines(out / f)[:4]) for f in runs) for name, runs in folders.items()}
    top = max(fam.values())
    se = (0.08 / (1 * 60)) ** 0.5  # one seed: the validation floor sqrt(D / (K n_val)) is the SE
    kept = [n for n in fam if not top - fam[n] > se]
    assert sel["halving"][0]["at_epoch"] == 4 and sel["halving"][0]["kept"] == kept
    assert sel["halving"][0]["scores"] == fam
    assert "theta1" not in kept  # the uniform target is far below the others: stopped
    # a stopped family trained 4 epochs (its branches from their switch to 4); the others finished
    for name, runs in folders.items():
        for f in runs:
            assert len(_lines(out / f)) == (6 if name in kept else 4)
    expected = sum((6 if n in kept else 4) if n == "baseline" else (6 + 5 + 4 if n in kept else 4 + 3 + 2)
                   for n in folders)
    assert sel["epochs_trained"] == expected and sel["epochs_independent"] == 7 * 6
    assert sel["chosen"]["theta"] != 1.0
    for cand in sel["candidates"]:
        if cand["theta"] == 1.0:
            assert cand["stopped_at"] == 4 and cand["score"] is None
    assert "halving at epoch 4" in printed and "stopped by halving at epoch 4" in printed
    # a rerun (as after an interruption) re-derives the same halving from the logs and retrains nothing
    before = {p: p.read_text() for p in out.glob("*/metrics.jsonl")}
    assert main(argv) == 0
    assert json.loads((out / "selection.json").read_text()) == sel
    assert {p: p.read_text() for p in out.glob("*/metrics.jsonl")} == before


# -- repair after a crash: a cut metrics line, a damaged kept checkpoint ---------------------------------------------

def _halved(tmp_path):
    """A finished --halving select: (its argv, its folder, selection.json, the family stopped at the milestone)."""
    data = _fake_fashion(tmp_path / "data")
    out = tmp_path / "sel"
    argv = _halving_argv(data, out)
    assert main(argv) == 0
    sel = json.loads((out / "selection.json").read_text())
    stopped = next(n for n in sel["halving"][0]["scores"] if n not in sel["halving"][0]["kept"])
    return argv, out, sel, stopped


def test_halving_repairs_a_metrics_line_cut_by_a_crash(tmp_path, capsys):
    argv, out, sel, stopped = _halved(tmp_path)
    trunk = out / ("baseline-seed0" if stopped == "baseline" else f"lsr-{stopped}-seed0")  # paused at the milestone
    path = trunk / "metrics.jsonl"
    whole = path.read_text()
    path.write_text(whole[:-40])  # the last line's append cut short (a crash, a full disk)
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    assert json.loads((out / "selection.json").read_text()) == sel
    assert path.read_text() == whole  # rewritten from the run's checkpoint, which holds every epoch


def test_halving_trains_a_branch_from_epoch_0_when_its_kept_checkpoint_is_damaged(tmp_path, capsys):
    import shutil

    argv, out, sel, stopped = _halved(tmp_path)
    if stopped == "baseline":  # the baseline has no branch; every theta family has TSLA(1), branched after 1 epoch
        stopped = "theta1"
    branch = out / f"tsla@1-{stopped}-seed0"
    before = _lines(branch)
    shutil.rmtree(branch)  # the branch not yet started, and the kept checkpoint it starts from damaged
    kept = out / f"lsr-{stopped}-seed0" / "checkpoints" / "epoch-0.pt"
    kept.write_bytes(kept.read_bytes()[:300])
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    assert "training from epoch 0" in capsys.readouterr().out
    # every epoch is seeded by (seed, epoch): trained from epoch 0 it ends as the branched run did
    assert [{k: r[k] for k in ("val_top1", "train_loss")} for r in _lines(branch)] == \
           [{k: r[k] for k in ("val_top1", "train_loss")} for r in before]
    again = json.loads((out / "selection.json").read_text())
    assert again["chosen"] == sel["chosen"] and again["candidates"] == sel["candidates"]


def test_a_cut_metrics_line_whose_checkpoint_is_damaged_too_is_one_line(tmp_path, capsys):
    argv, out, sel, stopped = _halved(tmp_path)
    trunk = out / ("baseline-seed0" if stopped == "baseline" else f"lsr-{stopped}-seed0")
    cut = (trunk / "metrics.jsonl").read_text()[:-40]  # the last line's append cut short
    (trunk / "metrics.jsonl").write_text(cut)
    (trunk / "checkpoint.pt").write_bytes((trunk / "checkpoint.pt").read_bytes()[:300])
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    last = len(cut.splitlines())
    assert err.startswith(f"tsla: error: {trunk / 'metrics.jsonl'} line {last} is not JSON") and err.count("\n") == 1, err
    assert f"move {trunk} away and rerun to train it again" in err
