"""docs/errors.md is executable: every row's command gives its exit code and message, on one line."""

import errno
import gzip
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import yaml
from matplotlib.figure import Figure

from tsla.training.checkpoint import load_checkpoint, save_checkpoint
from tsla.cli import main

from .conftest import FASHION_ROOT, write_idx
from .errors_doc_select import runs_csv_setup, select_setup
from .test_folder_datasets import CUB_IMAGES, make_cub
from .test_report import make_run

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"


def _rows():
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].isdigit():
            rows.append(pytest.param(cells, id=f"row{cells[0]}"))
    return rows


def test_the_catalogue_is_long_enough():
    assert len(_rows()) >= 20


def _no_write(code, text):
    def refuse(*args, **kwargs):
        raise OSError(code, text)

    return refuse


def _interrupted_run(tiny, run):
    """A run stopped after its first of two epochs: a 1-epoch run whose config and checkpoint say 2 epochs."""
    assert main(["train", "--data-root", str(tiny), "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    state = load_checkpoint(run / "checkpoint.pt")
    config["epochs"] = state["config"]["epochs"] = 2
    save_checkpoint(run / "checkpoint.pt", state)
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (run / "summary.json").unlink()


def _setup(kind, tmp, tiny, monkeypatch, cleanup):
    """Prepare what a row's setup column names; several kinds join with ' + ', applied in order."""
    if " + " in kind:
        for part in kind.split(" + "):
            _setup(part, tmp, tiny, monkeypatch, cleanup)
        return
    if kind == "-":
        return
    if kind.startswith("prior: "):
        (tmp / "prior.txt").write_text(kind[len("prior: "):])
    elif kind.startswith("yaml: "):
        (tmp / "c.yaml").write_text(kind[len("yaml: "):] + "\n")
    elif kind == "empty-dir":
        (tiny / "empty").mkdir()
    elif kind == "fashion-bad-label":
        labels = torch.arange(40) % 10
        labels[3] = 12
        write_idx(tiny / "train-labels-idx1-ubyte", labels, compress=False)
    elif kind == "cub-corrupt":
        root = make_cub(tmp / "cub" / "CUB_200_2011")
        (root / "images" / CUB_IMAGES[0][1]).write_bytes(b"not a jpeg")
    elif kind == "file":
        (tmp / "afile").write_text("a file, not a folder")
    elif kind == "old-runs-csv":  # a runs.csv written before the best-validation columns
        (tmp / "afile").write_text("regime,label,method,theta,switch_epoch,seed,val_top1,test_top1,test_nll,test_ece,"
                                   "train_top1,train_onehot_loss,epochs,commit\nr1,lsr-theta0.1,lsr,0.1,,0,,90,0.3,1,"
                                   "99,0.1,5,abc\n")
    elif kind in ("trained-run", "corrupt-checkpoint"):
        assert main(["train", "--data-root", str(tiny), "--epochs", "1", "--out", str(tmp / "run"), "--no-progress"]) == 0
        if kind == "corrupt-checkpoint":
            path = tmp / "run" / "checkpoint.pt"
            path.write_bytes(path.read_bytes()[:200])
    elif kind == "branched-run":  # RUN: 2 epochs, the first kept; DATA/branch: TSLA(1) branched from it, trained
        assert main(["train", "--data-root", str(tiny), "--epochs", "2", "--keep-epochs", "1", "--out",
                     str(tmp / "run"), "--no-progress"]) == 0
        assert main(["train", "--branch-from", str(tmp / "run"), "--at-epoch", "1", "--method", "tsla@1", "--out",
                     str(tiny / "branch"), "--no-progress"]) == 0
    elif kind == "live-lock":
        (tmp / "run").mkdir()
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; from pathlib import Path; from tsla.training.rundir import RunLock; "
             "RunLock(Path(sys.argv[1])).__enter__(); print('held', flush=True); time.sleep(60)", str(tmp / "run")],
            stdout=subprocess.PIPE, text=True)
        cleanup.append(holder)
        assert holder.stdout.readline().strip() == "held"
    elif kind == "full-disk":
        monkeypatch.setattr(torch, "save", _no_write(errno.ENOSPC, "No space left on device"))
    elif kind == "full-disk-files":  # every temporary file (atomic writes) and every figure fails
        monkeypatch.setattr(tempfile, "mkstemp", _no_write(errno.ENOSPC, "No space left on device"))
        monkeypatch.setattr(Figure, "savefig", _no_write(errno.ENOSPC, "No space left on device"))
    elif kind == "read-only-fs":  # tests may run as root, whom chmod does not stop: refuse at the calls instead
        for name in ("mkdir", "touch", "write_text"):
            monkeypatch.setattr(Path, name, _no_write(errno.EROFS, "Read-only file system"))
        monkeypatch.setattr(tempfile, "mkstemp", _no_write(errno.EROFS, "Read-only file system"))
    elif kind in ("random-checkpoint", "text-checkpoint"):
        content = os.urandom(3000) if kind == "random-checkpoint" else b"model: weights\n" * 20
        (tmp / "run" / "checkpoint.pt").write_bytes(content)
    elif kind == "damaged-checkpoint":  # one flipped bit inside the largest weight tensor
        path = tmp / "run" / "checkpoint.pt"
        data = path.read_bytes()
        weight = max(torch.load(path, weights_only=True)["model"].values(), key=lambda t: t.numel())
        at = data.find(weight.reshape(-1).view(torch.uint8).numpy().tobytes()[:64]) + 100
        path.write_bytes(data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :])
    elif kind == "interrupted-run":
        _interrupted_run(tiny, tmp / "run")
    elif kind == "other-data":  # DATA/other: DATA's files with other training images
        other = tiny / "other"
        other.mkdir()
        for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
            (other / name).write_bytes((tiny / name).read_bytes())
        write_idx(other / "train-images-idx3-ubyte", torch.zeros(40, 28, 28, dtype=torch.uint8), compress=False)
    elif kind == "other-test-data":  # DATA/other: DATA's files with other test images
        other = tiny / "other"
        other.mkdir()
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
            (other / name).write_bytes((tiny / name).read_bytes())
        write_idx(other / "t10k-images-idx3-ubyte", torch.zeros(20, 28, 28, dtype=torch.uint8), compress=False)
    elif kind.startswith("tampered: "):  # RUN/checkpoint.pt edited, its checksum recomputed (save_checkpoint)
        state = load_checkpoint(tmp / "run" / "checkpoint.pt")
        if kind.endswith("threads"):
            state["config"]["threads"] = "many"
        elif kind.endswith("best_val"):
            state["best_val"] = {"epoch": "best", "val_top1": 0.5, "val_nll": 1.0, "model": {}}
        else:
            state["mid_epoch"] = {"step": 1, "loss_sum": 0.0, "onehot_sum": 0.0, "correct": 0.0, "seen": 8,
                                  "seconds": 0.1, "momentum": 0.9}
        save_checkpoint(tmp / "run" / "checkpoint.pt", state)
    elif kind == "huge-yaml":  # a --config file of 300 kB (a config holds a few kB)
        (tmp / "c.yaml").write_text("epochs: 3\n" + "# a comment line of forty characters....\n" * 7500)
    elif kind == "latin1-yaml":
        (tmp / "c.yaml").write_bytes("epochs: 3  # réglé\n".encode("latin-1"))
    elif kind == "latin1-prior":
        (tmp / "prior.txt").write_bytes(("0.1 " * 10 + "# probabilit\xe9\n").encode("latin-1"))
    elif kind == "latin1-run-config":
        path = tmp / "run" / "config.yaml"
        path.write_bytes(path.read_bytes() + "# modifié\n".encode("latin-1"))
    elif kind == "fashion-bad-gzip":  # a gzip header and a broken deflate stream
        good = gzip.compress(bytes(range(256)) * 64)
        (tiny / "train-images-idx3-ubyte").unlink()
        (tiny / "train-images-idx3-ubyte.gz").write_bytes(good[:40] + bytes(200) + good[240:])
    elif kind == "fashion-bad-magic":
        path = tiny / "train-images-idx3-ubyte"
        path.write_bytes(b"\x00\x00\x99\x03" + path.read_bytes()[4:])
    elif kind == "fashion-32":
        images = torch.zeros(40, 32, 32, dtype=torch.uint8)
        write_idx(tiny / "train-images-idx3-ubyte", images, compress=False)
    elif kind == "summary-wrong-type":
        path = tmp / "run" / "summary.json"
        summary = json.loads(path.read_text())
        summary["final"]["test_top1"] = "high"
        path.write_text(json.dumps(summary))
    elif kind == "summary-best-val-number":  # summary.json's best_val a number, not the mapping tsla writes
        path = tmp / "run" / "summary.json"
        summary = json.loads(path.read_text())
        summary["best_val"] = 5
        path.write_text(json.dumps(summary))
    elif kind == "config-only":  # a run that wrote its config but no checkpoint yet
        (tmp / "run").mkdir()
        (tmp / "run" / "config.yaml").write_text(yaml.safe_dump({"data_root": str(tiny), "epochs": 1}))
    elif kind == "no-ray":  # Ray not installed, whether it is here or not
        monkeypatch.setitem(sys.modules, "ray", None)
    elif kind == "no-tensorboard":  # TensorBoard not installed, whether it is here or not
        monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    elif kind == "lock-link":  # RUN/.lock planted as a link to a file of the user's
        (tmp / "run").mkdir()
        (tmp / "victim.txt").write_text("precious")
        (tmp / "run" / ".lock").symlink_to(tmp / "victim.txt")
    elif kind == "linked-checkpoints":  # RUN/checkpoints a link to another run's kept checkpoints
        (tmp / "other").mkdir()
        (tmp / "other" / "epoch-0.pt").write_bytes(b"kept")
        (tmp / "run" / "checkpoints").symlink_to(tmp / "other")
    elif kind.startswith("runs-csv: "):  # RUN/runs.csv by hand: cells a and b at seeds 0-3, one row made bad
        rows = [[f"{label}-theta0.1", seed, 90.0 + seed] for label in ("a", "b") for seed in range(4)]
        bad = kind[len("runs-csv: "):]
        if bad == "nan":
            rows[1][2] = "nan"
        elif bad == "text":
            rows[1][2] = "high"
        elif bad == "duplicate":
            rows.append(list(rows[0]))
        elif bad == "huge-seed":
            rows[1][1] = 2**63
        elif bad == "unpaired":
            rows = [[label, seed + 4 * (label == "b-theta0.1"), value] for label, seed, value in rows]
        (tmp / "run").mkdir()
        header = "regime,label,method,theta,switch_epoch,seed,val_top1,test_top1,test_nll,test_ece,train_top1," \
                 "train_onehot_loss,epochs,commit\n"
        (tmp / "run" / "runs.csv").write_text(header + "".join(
            f"r,{label},{label[0]},0.1,,{seed},,{value},0.3,1.0,99,0.1,5,abc\n" for label, seed, value in rows))
    elif kind == "tensorboard-file":  # RUN/tensorboard a file of the user's
        (tmp / "run").mkdir()
        (tmp / "run" / "tensorboard").write_text("notes")
    elif kind == "tensorboard-broken-link":  # RUN/tensorboard a link to a folder that does not exist
        (tmp / "run").mkdir()
        (tmp / "run" / "tensorboard").symlink_to(tmp / "nowhere")
    elif kind == "tensorboard-full-disk":  # TensorBoard's event writes fail on a full disk
        from torch.utils.tensorboard import SummaryWriter

        monkeypatch.setattr(SummaryWriter, "add_scalar", _no_write(errno.ENOSPC, "No space left on device"))
    elif kind == "full-stdout":  # standard output on a full disk (> /dev/full)
        monkeypatch.setattr(sys.stdout, "write", _no_write(errno.ENOSPC, "No space left on device"))
    elif kind == "empty-file":  # FILE with no byte (a write cut at its start)
        (tmp / "afile").write_bytes(b"")
    elif kind == "two-experiments":  # one comparison folder, runs of 2 and of 4 epochs
        make_run(tmp / "run", "lsr", 0, [0.5, 0.6])
        make_run(tmp / "run", "lsr", 1, [0.5, 0.6, 0.7, 0.8])
    elif kind.startswith("select: "):  # rows 120-125: a finished tsla select in RUN, then damaged
        select_setup(kind, tmp, tiny)
    elif kind.startswith("runs-csv-30: "):
        runs_csv_setup(kind, tmp)
    else:
        raise AssertionError(f"unknown setup {kind!r} in docs/errors.md")


@pytest.mark.parametrize("row", _rows())
def test_row(row, tmp_path, tiny_fashion, monkeypatch, capsys):
    number, problem, command, setup, exit_code, message = row
    if "FASHION" in command and not (FASHION_ROOT / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("needs the real Fashion-MNIST")
    if "--jobs 2" in command and len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPU cores")
    cleanup = []
    try:
        _setup(setup, tmp_path, tiny_fashion, monkeypatch, cleanup)
        capsys.readouterr()
        places = {"RUN": tmp_path / "run", "DATA": tiny_fashion, "FASHION": FASHION_ROOT, "PRIOR": tmp_path / "prior.txt",
                  "YAML": tmp_path / "c.yaml", "CUB": tmp_path / "cub", "FILE": tmp_path / "afile", "LONG": "x" * 300}
        command = command.strip("`")
        argv = [re.sub(r"\b(RUN|DATA|FASHION|PRIOR|YAML|CUB|FILE|LONG)\b", lambda m: str(places[m.group(1)]), a)
                for a in shlex.split(command)]
        if argv[0] in ("train", "compare"):
            argv += ["--no-progress"] + (["--device", "cpu"] if "--device" not in argv else [])
        code = main(argv)
    finally:
        for proc in cleanup:
            proc.kill()
            proc.wait()
    err = capsys.readouterr().err
    assert code == int(exit_code), f"row {number} ({problem}): exit {code}, stderr {err!r}"
    assert err.startswith("tsla: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, f"row {number}: {message!r} not in {err!r}"


def _api_rows():
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"A\d+", cells[0]):
            rows.append(pytest.param(cells, id=f"row{cells[0]}"))
    return rows


def test_the_api_catalogue_exists():
    assert len(_api_rows()) >= 5


@pytest.mark.parametrize("row", _api_rows())
def test_api_row(row):
    import tsla

    number, problem, call, message = row
    with pytest.raises(ValueError) as info:
        eval(call.strip("`"), {"torch": torch, "tsla": tsla})
    text = str(info.value)
    assert message in text and "\n" not in text, f"row {number} ({problem}): {text!r}"
