"""The run lock and --overwrite never write or delete outside the run folder, and the lock is exclusive."""

import os
import subprocess
import sys
import textwrap

import pytest

from tsla.cli import main
from tsla.errors import RunDirError
from tsla.training.rundir import RunLock

# each worker takes and releases the lock in a loop; inside, it creates a marker with O_EXCL, which fails if another
# process is inside too (it then counts an overlap)
WORKER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from tsla.errors import RunDirError
    from tsla.training.rundir import RunLock
    run, until = Path(sys.argv[1]), time.time() + float(sys.argv[2])
    taken = overlaps = 0
    while time.time() < until:
        try:
            lock = RunLock(run).__enter__()
        except RunDirError:
            continue
        taken += 1
        try:
            os.close(os.open(run / "inside", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            overlaps += 1
        else:
            os.unlink(run / "inside")
        lock.__exit__()
    print(taken, overlaps)
""")


def test_two_processes_never_hold_the_lock_at_once(tmp_path):
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), "4"], stdout=subprocess.PIPE, text=True)
               for _ in range(3)]
    counts = [tuple(map(int, w.communicate(timeout=60)[0].split())) for w in workers]
    assert sum(t for t, _ in counts) > 1000  # the loop really contended
    assert sum(o for _, o in counts) == 0


def test_a_planted_link_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(victim)
    with pytest.raises(RunDirError, match="is not a regular file"):
        RunLock(run).__enter__()
    assert victim.read_text() == "precious"
    (run / ".lock").unlink()
    os.link(victim, run / ".lock")  # a hard link: the same file under two names
    with pytest.raises(RunDirError, match="is not a regular file of its own"):
        RunLock(run).__enter__()
    assert victim.read_text() == "precious"


def test_overwrite_never_deletes_through_a_linked_checkpoints_folder(tiny_fashion, tmp_path, capsys):
    other = tmp_path / "other" / "checkpoints"
    other.mkdir(parents=True)
    (other / "epoch-0.pt").write_bytes(b"another run's kept checkpoint")
    out = tmp_path / "run"
    argv = ["train", "--data-root", str(tiny_fashion), "--epochs", "1", "--batch-size", "20", "--device", "cpu",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    (out / "checkpoints").symlink_to(other)
    capsys.readouterr()
    assert main([*argv, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a link to" in err and "remove the link" in err
    assert (other / "epoch-0.pt").read_bytes() == b"another run's kept checkpoint"
    assert (out / "checkpoint.pt").is_file()  # nothing of the run deleted either
