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


def _rule_by_hand(per_seed: dict, order: list, n_val: int, z: float = 0.0) -> tuple:
    """docs/selection.md's rule, written again from its text: start at the baseline; for LSR, then TSLA, move to the
    level's best mean when its mean paired gain over the current choice exceeds z SE (z = 0 for the default
    best-mean rule, 1 for noise-aware), the SE being the larger of the seeds' SE of the differences and
    sqrt(0.08 / (K n_val))."""
    import statistics

    level = {"baseline": 0, "lsr": 1, "tsla": 2}
    current = order[0]
    for lv in (1, 2):
        members = [c for c in order if level[c[0]] == lv]
        challenger = max(members, key=lambda c: (statistics.mean(per_seed[c]), -order.index(c)))
        d = [a - b for a, b in zip(per_seed[challenger], per_seed[current])]
        se = max(statistics.stdev(d) / len(d) ** 0.5, (0.08 / (len(d) * n_val)) ** 0.5)
        if statistics.mean(d) > z * se:
            current = challenger
    return current


def test_select_chooses_by_the_noise_aware_rule_on_its_own_validation_table(selected):
    out, sel, printed = selected
    # the candidates by hand: baseline, LSR, TSLA(1), TSLA(2); folders as compare names them for a single theta
    folders = {("baseline", 0.0, None): "baseline", ("lsr", 0.4, None): "lsr", ("tsla", 0.4, 1): "tsla@1",
               ("tsla", 0.4, 2): "tsla@2"}
    # the default score: each run's best validation top-1 (early stopping), read from its metrics.jsonl
    per_seed = {key: [max(json.loads(x)["val_top1"] for x in (out / f"{name}-seed{seed}" / "metrics.jsonl")
                          .read_text().splitlines()) for seed in (0, 1)] for key, name in folders.items()}
    listed = {(c["method"], c["theta"], c["switch_epoch"]): c for c in sel["candidates"]}
    assert set(listed) == set(per_seed)
    for key, values in per_seed.items():
        assert listed[key]["seed_scores"] == pytest.approx(values, abs=1e-12)
        assert not any(k.startswith("test") for k in listed[key])  # validation metrics only
    chosen = _rule_by_hand(per_seed, list(folders), 60)
    assert (sel["chosen"]["method"], sel["chosen"]["theta"], sel["chosen"]["switch_epoch"]) == chosen
    assert (sel["criterion"], sel["at"]) == ("val_top1", "best-val")
    assert sel["rule"]["sentence"] and f"how sure: {sel['rule']['sentence']}" in printed
    # no candidate ever touched the test set; only the chosen one was evaluated, afterwards
    for run in out.glob("*-seed*"):
        assert not any(k.startswith("test_") for line in (run / "metrics.jsonl").read_text().splitlines()
                       for k in json.loads(line))
    assert 0 <= sel["test"]["test_top1"] <= 1 and len(sel["test"]["per_seed"]) == 2
    assert sel["test"]["weights"] == "best-val"
    # cost by hand, per seed: baseline 4 + LSR 4 + TSLA(1) 3 + TSLA(2) 2 = 13 trained, 4 x 4 = 16 independent
    assert (sel["epochs_trained"], sel["epochs_independent"]) == (2 * 13, 2 * 16)
    label = {"baseline": "baseline", "lsr": "lsr-theta0.4"}.get(folders[chosen], f"{folders[chosen]}-theta0.4")
    assert printed.count("/4] ") == 4 and f"chosen: {label}" in printed
    assert "26 epochs trained" in printed and "against 32" in printed


def test_negative_ends_are_candidates(tmp_path):
    data = _fake_fashion(tmp_path / "data")
    out = tmp_path / "sel"
    assert main(_argv(data, out, "--switch-at", "2", "--theta-after", "0,-0.2", "--seeds", "0", "--at", "last")) == 0
    sel = json.loads((out / "selection.json").read_text())
    ends = [c for c in sel["candidates"] if c["theta_after"] == -0.2]
    assert [(c["method"], c["switch_epoch"]) for c in ends] == [("tsla", 2)]
    rows = [json.loads(x) for x in (out / "tsla@2-after-0.2-seed0" / "metrics.jsonl").read_text().splitlines()]
    assert [r["theta"] for r in rows] == [0.4, 0.4, -0.2, -0.2]  # LSR until S, then the negative end
    assert ends[0]["seed_scores"] == [rows[-1]["val_top1"]]


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
    (("--theta-after", "0.3"), "--theta-after: 0.3 is outside [-1, 0]"),  # a final theta above 0 is no end
])
def test_bad_input_gets_one_line_and_exit_2(tmp_path, capsys, change, message):
    argv = _argv(tmp_path / "data", tmp_path / "sel", *change)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "sel").exists()


def _diverge(run: Path) -> None:
    """Make ``run``'s last validation NLL infinite, as a diverged run logs it: in its checkpoint's history (checksum
    recomputed), metrics.jsonl and summary.json alike."""
    from tsla.training.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(run / "checkpoint.pt")
    state["history"][-1]["val_nll"] = float("inf")
    save_checkpoint(run / "checkpoint.pt", state)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in state["history"]))
    summary = json.loads((run / "summary.json").read_text())
    summary["final"] = state["history"][-1]
    (run / "summary.json").write_text(json.dumps(summary))


def test_a_diverged_candidate_is_one_line_and_the_earlier_selection_is_moved_aside(selected, tmp_path, capsys):
    """A candidate whose validation NLL is not finite: exit 1 and one line naming it (a ValueError traceback
    before). The selection.json of the earlier request (another --criterion) no longer stays beside the refused
    rerun as if it were its result: it was moved aside, whole, when the new request was accepted."""
    import shutil

    out, _, _ = selected
    again = tmp_path / "sel"
    shutil.copytree(out, again)
    _diverge(again / "lsr-seed0")
    before = (again / "selection.json").read_bytes()
    data = _fake_fashion(tmp_path / "data")
    assert main(_argv(data, again, "--criterion", "val_nll")) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("tsla: error: lsr-theta0.4: its validation score is inf")
    assert captured.err.count("\n") == 1
    assert not (again / "selection.json").exists()
    assert (again / "selection-earlier-1.json").read_bytes() == before
    assert f"moved {again / 'selection.json'} to {again / 'selection-earlier-1.json'}: it answers another request " \
           f"(its criterion differs)" in captured.out


@pytest.mark.parametrize("command", ["select", "compare"])
def test_a_dry_run_prints_the_theta_each_run_trains(tmp_path, capsys, command):
    # issue 30 item 16: the baseline was listed as "baseline, theta 0.2"; it trains one-hot labels (theta 0)
    extra = ["--switch-at", "1", "--val-size", "10"] if command == "select" else ["--methods", "baseline,lsr,tsla@1"]
    argv = [command, "--thetas", "0.2", "--epochs", "3", "--seeds", "0", *extra, "--out", str(tmp_path / "o"),
            "--dry-run"]
    assert main(argv) == 0
    lines = {line.split(": ", 1)[1].split(", seed")[0] for line in capsys.readouterr().out.splitlines()}
    assert lines == {"baseline, theta 0", "lsr, theta 0.2", "tsla@1, theta 0.2"}
