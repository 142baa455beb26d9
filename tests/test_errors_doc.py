"""docs/errors.md is executable: every row's command gives its exit code and message, on one line."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tsla.cli import main

from .conftest import FASHION_ROOT, write_idx
from .test_folder_datasets import CUB_IMAGES, make_cub

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


def _setup(kind, tmp, tiny, monkeypatch, cleanup):
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
    elif kind in ("trained-run", "corrupt-checkpoint"):
        assert main(["train", "--data-root", str(tiny), "--epochs", "1", "--out", str(tmp / "run"), "--no-progress"]) == 0
        if kind == "corrupt-checkpoint":
            path = tmp / "run" / "checkpoint.pt"
            path.write_bytes(path.read_bytes()[:200])
    elif kind == "live-lock":
        (tmp / "run").mkdir()
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; from pathlib import Path; from tsla.rundir import RunLock; "
             "RunLock(Path(sys.argv[1])).__enter__(); print('held', flush=True); time.sleep(60)", str(tmp / "run")],
            stdout=subprocess.PIPE, text=True)
        cleanup.append(holder)
        assert holder.stdout.readline().strip() == "held"
    elif kind == "full-disk":
        def no_space(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(torch, "save", no_space)
    else:
        raise AssertionError(f"unknown setup {kind!r} in docs/errors.md")


@pytest.mark.parametrize("row", _rows())
def test_row(row, tmp_path, tiny_fashion, monkeypatch, capsys):
    number, problem, command, setup, exit_code, message = row
    if "FASHION" in command and not (FASHION_ROOT / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("needs the real Fashion-MNIST")
    cleanup = []
    try:
        _setup(setup, tmp_path, tiny_fashion, monkeypatch, cleanup)
        capsys.readouterr()
        places = {"RUN": tmp_path / "run", "DATA": tiny_fashion, "FASHION": FASHION_ROOT, "PRIOR": tmp_path / "prior.txt",
                  "YAML": tmp_path / "c.yaml", "CUB": tmp_path / "cub", "FILE": tmp_path / "afile"}
        command = command.strip("`")
        argv = [re.sub(r"\b(RUN|DATA|FASHION|PRIOR|YAML|CUB|FILE)\b", lambda m: str(places[m.group(1)]), a)
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
