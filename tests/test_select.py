"""``tsla select`` on a tiny learnable fake Fashion-MNIST: it chooses the argmax of its own validation table, the
test set never decides (the same training data with another test set gives the same choice), a SIGKILLed select
resumes to the same choice, and bad input gets one line and exit 2."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from .conftest import with_flags, write_idx
from tsla.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _fake_fashion(folder: Path, test_label_shift: int = 0) -> Path:
    """300 training and 100 test 28x28 images; class c is a bright 7x7 block at one of 10 places plus noise, so a
    tiny ResNet learns it in a few epochs. ``test_label_shift`` relabels the test images (c -> c + shift mod 10)."""
    g = torch.Generator().manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 300), ("t10k", 100)):
        labels = torch.arange(n) % 10
        images = torch.randint(0, 120, (n, 28, 28), generator=g)
        for i, c in enumerate(labels.tolist()):
            r, col = 7 * (c // 4), 7 * (c % 4)
            images[i, r:r + 7, col:col + 7] += 120
        if split == "t10k":
            labels = (labels + test_label_shift) % 10
        write_idx(folder / f"{split}-images-idx3-ubyte", images, compress=False)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels, compress=False)
    return folder


def _argv(data: Path, out: Path, *extra: str) -> list[str]:
    """select's command on ``data``; ``extra`` replaces the value of a flag given here (see conftest.with_flags)."""
    return with_flags(["select", "--data-root", str(data), "--train-subset", "100", "--val-size", "60", "--epochs", "4",
            "--milestones", "2", "--lr", "0.05", "--batch-size", "20", "--thetas", "0.4", "--switch-at", "1,2",
            "--seeds", "0,1", "--no-augment", "--threads", "1", "--device", "cpu", "--out", str(out),
            "--no-progress"], extra)


@pytest.fixture(scope="module")
def selected(tmp_path_factory):
    """One uninterrupted select: (its folder, selection.json, what it printed)."""
    base = tmp_path_factory.mktemp("select")
    data = _fake_fashion(base / "data")
    out = base / "sel"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(_argv(data, out)) == 0
    return out, json.loads((out / "selection.json").read_text()), printed.getvalue()


def _final(run: Path) -> dict:
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])


def test_select_picks_the_argmax_of_its_own_validation_table(selected):
    out, sel, printed = selected
    # the candidates by hand: baseline, LSR, TSLA(1), TSLA(2); folders as compare names them for a single theta
    folders = {("baseline", 0.0, None): "baseline", ("lsr", 0.4, None): "lsr", ("tsla", 0.4, 1): "tsla@1",
               ("tsla", 0.4, 2): "tsla@2"}
    mean_val = {key: sum(_final(out / f"{name}-seed{seed}")["val_top1"] for seed in (0, 1)) / 2
                for key, name in folders.items()}
    listed = {(c["method"], c["theta"], c["switch_epoch"]): c for c in sel["candidates"]}
    assert set(listed) == set(mean_val)
    for key, value in mean_val.items():
        assert listed[key]["score"] == pytest.approx(value, abs=1e-12)
        assert not any(k.startswith("test") for k in listed[key])  # validation metrics only
    best = max(mean_val.values())
    first_best = next(k for k in folders if mean_val[k] == best)  # ties: the first listed
    assert (sel["chosen"]["method"], sel["chosen"]["theta"], sel["chosen"]["switch_epoch"]) == first_best
    assert (sel["criterion"], sel["at"]) == ("val_top1", "last")
    # no candidate ever touched the test set; only the chosen one was evaluated, afterwards
    for run in out.glob("*-seed*"):
        assert not any(k.startswith("test_") for line in (run / "metrics.jsonl").read_text().splitlines()
                       for k in json.loads(line))
    assert 0 <= sel["test"]["test_top1"] <= 1 and len(sel["test"]["per_seed"]) == 2
    # cost by hand, per seed: baseline 4 + LSR 4 + TSLA(1) 3 + TSLA(2) 2 = 13 trained, 4 x 4 = 16 independent
    assert (sel["epochs_trained"], sel["epochs_independent"]) == (2 * 13, 2 * 16)
    label = {"baseline": "baseline", "lsr": "lsr-theta0.4"}.get(folders[first_best], f"{folders[first_best]}-theta0.4")
    assert printed.count("/4] ") == 4 and f"chosen: {label}" in printed
    assert "26 epochs trained" in printed and "against 32" in printed


def test_the_test_set_never_decides(selected, tmp_path):
    """Same training and validation images, test labels shifted: every candidate's validation scores, and so the
    choice, are the same; only the chosen configuration's test numbers change."""
    out, sel, _ = selected
    data = _fake_fashion(tmp_path / "data", test_label_shift=3)
    other = tmp_path / "sel"
    assert main(_argv(data, other)) == 0
    again = json.loads((other / "selection.json").read_text())
    assert again["chosen"] == sel["chosen"] and again["candidates"] == sel["candidates"]
    assert again["test"]["test_top1"] != sel["test"]["test_top1"]


def test_a_killed_select_resumes_to_the_same_choice(selected, tmp_path):
    out, sel, _ = selected
    data = _fake_fashion(tmp_path / "data")
    again = tmp_path / "sel"
    proc = subprocess.Popen([sys.executable, "-m", "tsla", *_argv(data, again)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 300
    while not list(again.glob("*/summary.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # after its first finished run, somewhere in the next
    proc.wait()
    assert not (again / "selection.json").exists()
    assert main(_argv(data, again)) == 0
    resumed = json.loads((again / "selection.json").read_text())
    assert resumed["chosen"] == sel["chosen"] and resumed["candidates"] == sel["candidates"]
    assert resumed["test"] == sel["test"]


@pytest.mark.parametrize("change, message", [
    (("--val-size", "none"), "pass --val-size N"),
    (("--thetas", "0,0.1"), "--thetas: 0 is outside (0, 1]"),
    (("--switch-at", "4"), "--switch-at 4: give switch epochs between 1 and --epochs - 1 (3)"),
    (("--criterion", "test_top1"), "--criterion 'test_top1' is unknown"),
    (("--at", "first"), "--at 'first' is unknown"),
    (("--seeds", "-1"), "--seeds: -1 is outside [0, 4294967295]"),  # named --seed, a flag select does not have
    (("--switch-at", ""), "--switch-at is empty"),  # it silently left out every TSLA candidate
    (("--test-every", "2"), "--test-every 2: tsla select never evaluates a candidate on test"),  # was ignored
    (("--theta-after", "-0.2", "--allow-negative"), "--theta-after -0.2: tsla select's TSLA(S) candidates end on "
     "one-hot labels"),  # refused naming --method 'lsr', which select has not
])
def test_bad_input_gets_one_line_and_exit_2(tmp_path, capsys, change, message):
    argv = _argv(tmp_path / "data", tmp_path / "sel", *change)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "sel").exists()


def test_a_diverged_candidate_is_one_line_and_the_earlier_selection_is_kept(selected, tmp_path, capsys):
    """A candidate whose validation NLL is not finite: exit 1 and one line naming it (a ValueError traceback
    before), and the selection.json already in the folder is left as it was."""
    import shutil

    out, _, _ = selected
    again = tmp_path / "sel"
    shutil.copytree(out, again)
    lsr = next(again.glob("lsr-seed0"))
    rows = (lsr / "metrics.jsonl").read_text().splitlines()
    last = json.loads(rows[-1])
    last["val_nll"] = float("inf")
    (lsr / "metrics.jsonl").write_text("\n".join(rows[:-1] + [json.dumps(last)]) + "\n")
    before = (again / "selection.json").read_bytes()
    data = _fake_fashion(tmp_path / "data")
    assert main(_argv(data, again, "--criterion", "val_nll")) == 1
    err = capsys.readouterr().err
    assert err.startswith("tsla: error: lsr-theta0.4: its validation score is inf") and err.count("\n") == 1
    assert (again / "selection.json").read_bytes() == before
