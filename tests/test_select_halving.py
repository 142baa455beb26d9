"""Successive halving in ``tsla select`` and the trainer's pause (``until``) it rests on: a paused and resumed run
equals an uninterrupted one; the families kept at the milestone are the better half by a hand computation from
metrics.jsonl, the stopped ones stop there, and the choice is the argmax among the families left."""

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


def test_halving_keeps_the_better_half_at_the_milestone(tmp_path, capsys):
    data = _fake_fashion(tmp_path / "data")
    out = tmp_path / "sel"
    argv = _argv(data, out, "--halving", "--seeds", "0", "--thetas", "0.1,0.4")
    assert main(argv) == 0
    printed = capsys.readouterr().out
    sel = json.loads((out / "selection.json").read_text())
    # by hand: at milestone 2 each family's score is its best member's validation top-1 after epoch 1 (index 1);
    # members are those started before epoch 2: the trunk and TSLA(1)
    folders = {"baseline": ["baseline-seed0"],
               "theta0.1": ["lsr-theta0.1-seed0", "tsla@1-theta0.1-seed0"],
               "theta0.4": ["lsr-theta0.4-seed0", "tsla@1-theta0.4-seed0"]}
    fam = {name: max(_lines(out / f)[1]["val_top1"] for f in runs) for name, runs in folders.items()}
    worst = min(fam.values())
    stopped = [n for n in fam if fam[n] == worst][-1]  # of equal scores, the family listed later stops
    assert sel["halving"] == [{"at_epoch": 2, "scores": fam, "kept": [n for n in fam if n != stopped]}]
    # the stopped family trained 2 epochs (its TSLA(1) from 1 to 2, its TSLA(2) not at all); the others finished
    for name, runs in folders.items():
        for f in runs:
            assert len(_lines(out / f)) == (2 if name == stopped else 4)
    if stopped != "baseline":
        assert _lines(out / f"tsla@2-{stopped}-seed0") == []
    # hand count of epochs: baseline 4 (2 if stopped); a theta family 4 + 3 + 2 = 9, or 2 + 1 = 3 if stopped
    expected = sum((2 if n == stopped else 4) if n == "baseline" else (3 if n == stopped else 9) for n in folders)
    assert sel["epochs_trained"] == expected and sel["epochs_independent"] == 7 * 4
    # the choice: the argmax of the final validation top-1 among the candidates of the kept families
    finals = {}
    for cand in sel["candidates"]:
        if cand.get("stopped_at") is None:
            name = {"baseline": "baseline", "lsr": f"lsr-theta{cand['theta']:g}"}.get(
                cand["method"], f"tsla@{cand['switch_epoch']}-theta{cand['theta']:g}")
            finals[(cand["method"], cand["theta"], cand["switch_epoch"])] = _lines(out / f"{name}-seed0")[-1]["val_top1"]
        else:
            assert cand["stopped_at"] == 2 and cand["score"] is None
    best = max(finals.values())
    assert (sel["chosen"]["method"], sel["chosen"]["theta"], sel["chosen"]["switch_epoch"]) == next(
        k for k, v in finals.items() if v == best)
    assert f"halving at epoch 2" in printed and "stopped by halving at epoch 2" in printed
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
    argv = _argv(data, out, "--halving", "--seeds", "0", "--thetas", "0.1,0.4")
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
        stopped = "theta0.1"
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
    (trunk / "metrics.jsonl").write_text((trunk / "metrics.jsonl").read_text()[:-40])
    (trunk / "checkpoint.pt").write_bytes((trunk / "checkpoint.pt").read_bytes()[:300])
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tsla: error: {trunk / 'metrics.jsonl'} line 2 is not JSON") and err.count("\n") == 1, err
    assert f"move {trunk} away and rerun to train it again" in err
