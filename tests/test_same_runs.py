"""scripts/same_runs.py, the tool behind results.md's "bit-identical" claims: it must see a difference in one weight
or one metric, and call two trainings of one config identical (on one machine, at one thread count)."""

import importlib.util
import json
from pathlib import Path

import torch

from tsla.training.checkpoint import load_checkpoint, save_checkpoint
from tsla.cli import main as tsla_main

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "same_runs.py"


def _load():
    spec = importlib.util.spec_from_file_location("same_runs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train(root, out, seed):
    assert tsla_main(["train", "--data-root", str(root), "--epochs", "2", "--batch-size", "8", "--device", "cpu",
                      "--threads", "1", "--no-progress", "--seed", str(seed), "--out", str(out)]) == 0


def test_same_config_twice_is_identical_and_one_changed_weight_or_metric_is_seen(tiny_fashion, tmp_path, capsys):
    same_runs = _load()
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        _train(tiny_fashion, tmp_path / name, seed)
    a, b, c = (tmp_path / n for n in "abc")
    assert same_runs.main([str(a), str(b)]) == 0
    assert "1 of 1 pairs identical" in capsys.readouterr().out
    assert same_runs.compare(a, c).startswith("epoch 0: ")  # another seed: the first epoch's metrics differ

    state = load_checkpoint(b / "checkpoint.pt")  # one weight moved by one float32 step, metrics untouched
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    flat = state["model"][name].view(-1)
    flat[0] = torch.nextafter(flat[0], torch.tensor(float("inf")))
    save_checkpoint(b / "checkpoint.pt", state)
    assert same_runs.compare(a, b) == f"final weights differ in {name}"

    rows = (b / "metrics.jsonl").read_text().splitlines()
    last = json.loads(rows[-1])
    last["test_top1"] += 1e-12
    (b / "metrics.jsonl").write_text("\n".join(rows[:-1] + [json.dumps(last)]) + "\n")
    assert same_runs.compare(a, b).startswith("epoch 1: test_top1 ")
    assert same_runs.main([str(a), str(b)]) == 1


def _fake_run(folder, rows, weight):
    folder.mkdir()
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    state = {"format": 2, "next_epoch": len(rows), "model": {"w": torch.tensor(weight)}, "optimizer": {},
             "config": {}, "history": rows, "best": {}, "wall_seconds": 0.0}
    save_checkpoint(folder / "checkpoint.pt", state)
    return folder


def test_comparisons_are_bit_for_bit_over_every_key(tmp_path):
    # issue 22, item 15: +0.0 and -0.0 differ, a NaN equals the same NaN, a key of one run only is a difference
    same_runs = _load()
    nan = float("nan")
    a = _fake_run(tmp_path / "a", [{"epoch": 0, "train_loss": nan, "test_top1": 0.0}], [0.0, nan])
    assert same_runs.compare(a, _fake_run(tmp_path / "b", [{"epoch": 0, "train_loss": nan, "test_top1": 0.0}],
                                          [0.0, nan])) is None
    minus = _fake_run(tmp_path / "c", [{"epoch": 0, "train_loss": nan, "test_top1": -0.0}], [0.0, nan])
    assert same_runs.compare(a, minus) == "epoch 0: test_top1 0.0 against -0.0"
    extra = _fake_run(tmp_path / "d", [{"epoch": 0, "train_loss": nan, "test_top1": 0.0, "val_top1": 0.5}], [0.0, nan])
    assert same_runs.compare(a, extra) == f"epoch 0: val_top1 logged by {extra} only"
    weights = _fake_run(tmp_path / "e", [{"epoch": 0, "train_loss": nan, "test_top1": 0.0}], [-0.0, nan])
    assert same_runs.compare(a, weights) == "final weights differ in w"


def test_an_unreadable_run_is_one_line_and_exit_2(tmp_path, capsys):
    same_runs = _load()
    a = _fake_run(tmp_path / "a", [{"epoch": 0, "test_top1": 0.5}], [1.0])
    cut = _fake_run(tmp_path / "cut", [{"epoch": 0, "test_top1": 0.5}], [1.0])
    (cut / "metrics.jsonl").write_text('{"epoch": 0, "test_to')
    damaged = _fake_run(tmp_path / "damaged", [{"epoch": 0, "test_top1": 0.5}], [1.0])
    (damaged / "checkpoint.pt").write_bytes((damaged / "checkpoint.pt").read_bytes()[:100])
    for other, message in ((tmp_path / "nowhere", "metrics.jsonl is missing"), (cut, "line 1 is not JSON"),
                           (damaged, "truncated or corrupt")):
        assert same_runs.main([str(a), str(other)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_a_missing_checkpoint_a_missing_regime_and_one_run_twice_are_one_line_exit_2(tmp_path, capsys):
    """Each named without advice that does not apply here (the checkpoint message advised --resume), and a folder
    given twice is refused rather than reported "identical", true of any folder against itself."""
    same_runs = _load()
    a = _fake_run(tmp_path / "a", [{"epoch": 0, "test_top1": 0.5}], [1.0])
    bare = _fake_run(tmp_path / "bare", [{"epoch": 0, "test_top1": 0.5}], [1.0])
    (bare / "checkpoint.pt").unlink()
    for argv, message in (([str(a), str(bare)], "checkpoint.pt is missing: give a run folder that tsla trained"),
                          (["--cells", str(tmp_path / "nowhere"), "lsr", "tsla@5"], "is not a folder"),
                          ([str(a), str(tmp_path / "a" / ".")], "are the same folder: give two runs to compare")):
        try:
            code = same_runs.main(argv)
        except SystemExit as exit:  # argparse's error: one usage line and one error line, exit 2
            code = exit.code
        err = capsys.readouterr().err
        assert code == 2 and message in err and "--resume" not in err and "Traceback" not in err
        assert "error: " in err.strip().splitlines()[-1]
