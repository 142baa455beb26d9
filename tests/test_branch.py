"""Branching (--branch-from/--at-epoch) and branched compare grids: a TSLA(S) branched from the LSR run after S
epochs must end bit-identical to the same TSLA(S) trained from epoch 0 (CPU, one machine, one thread count)."""

import json

import pytest
import torch

from tsla.cli import main
from tsla.experiments.grid import plan
from tsla.config import TrainConfig
from tsla.errors import ConfigError, RunDirError
from tsla.training.branch import plan_branches
from tsla.training.trainer import train


def _cfg(root, **kw):
    base = dict(dataset="fashion-mnist", data_root=str(root), model="resnet8", train_subset=30, test_subset=20,
                epochs=3, milestones=[2], method="lsr", theta=0.2, batch_size=8, device="cpu", augment=True)
    base.update(kw)
    return TrainConfig(**base)


def _metrics(run):
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    timing = ("epoch_seconds", "train_images_per_second", "train_seconds")
    return [{k: v for k, v in r.items() if k not in timing} for r in rows]


def test_a_branch_ends_bit_identical_to_a_run_trained_from_scratch(tiny_fashion, tmp_path):
    train(_cfg(tiny_fashion, keep_epochs=[1]), tmp_path / "lsr", progress_bar=False)
    assert (tmp_path / "lsr" / "checkpoints" / "epoch-0.pt").is_file()
    branched = train(_cfg(tiny_fashion, method="tsla@1"), tmp_path / "branch", progress_bar=False,
                     branch=(tmp_path / "lsr", 1))
    alone = train(_cfg(tiny_fashion, method="tsla@1"), tmp_path / "alone", progress_bar=False)
    assert _metrics(tmp_path / "branch") == _metrics(tmp_path / "alone")
    assert [r["theta"] for r in _metrics(tmp_path / "branch")] == [0.2, 0.0, 0.0]
    a = torch.load(tmp_path / "branch" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "alone" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert branched["final"]["test_top1"] == alone["final"]["test_top1"]
    assert branched["branched_from"] == {"run": str(tmp_path / "lsr"), "at_epoch": 1}
    assert alone["branched_from"] is None


@pytest.mark.parametrize("source, branch, at, thetas", [
    ({"method": "lsr"}, {"method": "tsla@1", "theta_after": -0.2, "allow_negative": True}, 1, [0.2, -0.2, -0.2]),
    ({"method": "baseline"}, {"method": "reverse@2", "theta": -0.3, "allow_negative": True}, 2, [0.0, 0.0, -0.3]),
    ({"method": "lsr", "epochs": 2, "milestones": [1]}, {"method": "tsla@2", "epochs": 3, "milestones": [1]}, 2,
     [0.2, 0.2, 0.0]),  # budget control: one-hot epochs at the final lr after the LSR run
])
def test_every_tail_branches_bit_identical_to_a_run_trained_from_scratch(tiny_fashion, tmp_path, source, branch,
                                                                         at, thetas):
    configs = {"source": _cfg(tiny_fashion, **source), "branch": _cfg(tiny_fashion, **branch)}
    planned, branches = plan_branches(configs)
    assert branches == {"branch": ("source", at)} and planned["source"].keep_epochs == [at]
    train(planned["source"], tmp_path / "source", progress_bar=False)
    branched = train(configs["branch"], tmp_path / "branch", progress_bar=False, branch=(tmp_path / "source", at))
    alone = train(configs["branch"], tmp_path / "alone", progress_bar=False)
    assert _metrics(tmp_path / "branch") == _metrics(tmp_path / "alone")
    assert [r["theta"] for r in _metrics(tmp_path / "alone")] == thetas
    a = torch.load(tmp_path / "branch" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "alone" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert branched["branched_from"] == {"run": str(tmp_path / "source"), "at_epoch": at}


def test_which_runs_share_a_prefix():
    def cfg(**kw):
        base = dict(dataset="fashion-mnist", epochs=4, milestones=[2], method="lsr", theta=0.4, device="cpu",
                    threads=1, allow_negative=True)
        return TrainConfig(**{**base, **kw})

    grid = {"baseline": cfg(method="baseline"), "lsr": cfg(), "tsla@3": cfg(method="tsla@3"),
            "tsla@3-neg": cfg(method="tsla@3", theta_after=-0.2), "tsla@1": cfg(method="tsla@1"),
            "reverse@2": cfg(method="reverse@2", theta=-0.2), "budget": cfg(method="tsla@4", epochs=6),
            "longer-lsr": cfg(epochs=6), "other-seed": cfg(method="tsla@3", seed=1),
            "lsr-0.2": cfg(theta=0.2), "auto": cfg(method="tsla-auto")}
    _, branches = plan_branches(grid)
    assert branches == {"tsla@3": ("lsr", 3), "tsla@3-neg": ("lsr", 3), "tsla@1": ("lsr", 1),
                        "reverse@2": ("baseline", 2), "budget": ("lsr", 4), "longer-lsr": ("lsr", 4)}
    # a cosine lr depends on the run length: the longer run's lr differs from epoch 1 on (the lr recorded as
    # next_lr after epoch 0), so it shares no epoch; with the same length it does
    cos = {"lsr": cfg(lr_schedule="cosine", milestones=[]),
           "budget": cfg(lr_schedule="cosine", milestones=[], method="tsla@4", epochs=6),
           "tsla@3": cfg(lr_schedule="cosine", milestones=[], method="tsla@3")}
    assert plan_branches(cos)[1] == {"tsla@3": ("lsr", 3)}
    # a step lr with other milestones is another experiment
    assert plan_branches({"lsr": cfg(), "tsla@3": cfg(method="tsla@3", milestones=[1])})[1] == {}


def test_a_branch_may_change_the_method_only_and_must_agree_before_the_branch_point(tiny_fashion, tmp_path):
    train(_cfg(tiny_fashion, keep_epochs=[2]), tmp_path / "lsr", progress_bar=False)
    with pytest.raises(RunDirError, match="seed=0, not 1"):
        train(_cfg(tiny_fashion, method="tsla@2", seed=1), tmp_path / "b1", progress_bar=False,
              branch=(tmp_path / "lsr", 2))
    with pytest.raises(ConfigError, match="gives theta 0 at epoch 1"):  # TSLA(1) differs from LSR at epoch 1
        train(_cfg(tiny_fashion, method="tsla@1"), tmp_path / "b2", progress_bar=False, branch=(tmp_path / "lsr", 2))
    with pytest.raises(RunDirError, match="--keep-epochs 1"):
        train(_cfg(tiny_fashion, method="tsla@1"), tmp_path / "b3", progress_bar=False, branch=(tmp_path / "lsr", 1))
    with pytest.raises(RunDirError, match="CPU thread"):  # another thread count would compute other numbers
        train(_cfg(tiny_fashion, method="tsla@2", threads=3), tmp_path / "b4", progress_bar=False,
              branch=(tmp_path / "lsr", 2))
    assert not (tmp_path / "b1").exists() and not (tmp_path / "b2").exists()  # nothing written on refusal


def test_cli_branch_from_takes_the_source_config_and_refuses_half_the_pair(tiny_fashion, tmp_path, capsys):
    src = tmp_path / "lsr"
    assert main(["train", "--data-root", str(tiny_fashion), "--train-subset", "30", "--test-subset", "20",
                 "--epochs", "2", "--batch-size", "8", "--method", "lsr", "--keep-epochs", "1", "--out", str(src),
                 "--no-progress"]) == 0
    assert main(["train", "--branch-from", str(src), "--at-epoch", "1", "--method", "tsla@1",
                 "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    assert "branching" in capsys.readouterr().out
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["config"]["train_subset"] == 30 and summary["config"]["method"] == "tsla@1"
    assert main(["train", "--branch-from", str(src), "--out", str(tmp_path / "c")]) == 2
    assert "go together" in capsys.readouterr().err


def test_compare_branches_each_tsla_from_its_lsr_run_and_trains_fewer_epochs(tiny_fashion, tmp_path, capsys):
    layers = [("test", dict(dataset="fashion-mnist", data_root=str(tiny_fashion), train_subset=30, test_subset=20,
                            epochs=4, milestones=[2], batch_size=8, device="cpu"))]
    grid = plan(layers, ["baseline", "lsr", "tsla@1", "tsla@3"], [0, 1], thetas=[0.1, 0.2])
    by_name = {g.name: g for g in grid}
    assert by_name["tsla@3-theta0.2-seed1"].branch == ("lsr-theta0.2-seed1", 3)
    assert by_name["lsr-theta0.2-seed1"].cfg.keep_epochs == [1, 3]
    assert by_name["baseline-seed0"].branch is None and by_name["baseline-seed0"].cfg.keep_epochs == []
    # epochs trained: 2 baselines + 4 LSR at 4 epochs, TSLA(1) 3 epochs and TSLA(3) 1 epoch, 4 runs each
    trained = sum(g.cfg.epochs - (g.branch[1] if g.branch else 0) for g in grid)
    assert trained == 2 * 4 + 4 * 4 + 4 * 3 + 4 * 1
    assert main(["compare", "--data-root", str(tiny_fashion), "--train-subset", "30", "--test-subset", "20",
                 "--epochs", "3", "--milestones", "2", "--batch-size", "8", "--methods", "lsr,tsla@2",
                 "--seeds", "0", "--out", str(tmp_path / "cmp"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "train 4 epochs instead of 6" in out
    alone = train(_cfg(tiny_fashion, method="tsla@2", theta=0.1, milestones=[2]), tmp_path / "alone",
                  progress_bar=False)
    assert _metrics(tmp_path / "cmp" / "tsla@2-seed0") == _metrics(tmp_path / "alone")
    summary = json.loads((tmp_path / "cmp" / "tsla@2-seed0" / "summary.json").read_text())
    assert summary["branched_from"]["at_epoch"] == 2
