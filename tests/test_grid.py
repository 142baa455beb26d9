"""The comparison grid: theta grids, shards that cover it exactly once, parallel jobs, preset grids."""

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tsla.cli import main
from tsla.experiments.grid import parse_shard, plan, select_shard
from tsla.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _layers(**values):
    return [("test", {"epochs": 10, **values})]


def test_theta_grid_runs_baseline_once():
    grid = plan(_layers(), ["baseline", "lsr", "tsla@5"], [0, 1], thetas=[0.1, 0.2, 0.4])
    names = [g.name for g in grid]
    assert len(names) == 2 + 2 * 3 * 2 and len(set(names)) == len(names)
    assert "baseline-seed0" in names and "lsr-theta0.2-seed1" in names and "tsla@5-theta0.4-seed0" in names
    assert {(g.cfg.method, g.cfg.theta) for g in grid if g.cfg.method == "lsr"} == {("lsr", 0.1), ("lsr", 0.2), ("lsr", 0.4)}


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 20])
def test_shards_cover_the_grid_exactly_once(n):
    grid = plan(_layers(), ["baseline", "lsr", "tsla@3", "tsla@6"], [0, 1, 2], thetas=[0.1, 0.3])
    covered = Counter(g.name for i in range(n) for g in select_shard(grid, (i, n)))
    assert covered == Counter(g.name for g in grid) and set(covered.values()) == {1}


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_shards_keep_each_branch_with_its_source(n):
    grid = plan(_layers(), ["baseline", "lsr", "tsla@3", "tsla@6"], [0, 1, 2], thetas=[0.1, 0.3])
    shards = [{g.name for g in select_shard(grid, (i, n))} for i in range(n)]
    branches = [g for g in grid if g.branch]
    assert len(branches) == 2 * 3 * 2  # tsla@3 and tsla@6 per theta and seed, each from lsr-theta<θ>-seed<k>
    for g in branches:
        # the branch and the LSR run named by seed and theta in its own folder name lie in the same shard
        source = g.name.replace(g.cfg.method, "lsr", 1)
        assert g.branch[0] == source
        assert [source in shard for shard in shards] == [g.name in shard for shard in shards]
    # 6 families of 10 + 7 + 4 = 21 epochs and 3 baselines of 10: 156 epochs, balanced to within one family
    loads = [sum(g.cfg.epochs - (g.branch[1] if g.branch else 0) for g in grid if g.name in shard) for shard in shards]
    assert sum(loads) == 6 * 21 + 3 * 10 and max(loads) - min(loads) <= 21


def test_shards_through_the_command_line(capsys, tmp_path):
    listed = []
    for i in range(3):
        argv = ["compare", "--methods", "baseline,lsr,tsla@5", "--seeds", "0,1", "--epochs", "10", "--out",
                str(tmp_path), "--dry-run", "--shard", f"{i}/3"]
        assert main(argv) == 0
        listed += [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]
    assert sorted(listed) == sorted(str(tmp_path / f"{m}-seed{s}") for m in ("baseline", "lsr", "tsla@5") for s in (0, 1))


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1", "a/b", "0/0"])
def test_bad_shards(text):
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(text)


def test_two_jobs_train_in_parallel_processes(tiny_fashion, tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["compare", "--data-root", str(tiny_fashion), "--methods", "baseline,lsr", "--seeds", "0", "--epochs", "1",
            "--batch-size", "20", "--device", "cpu", "--out", str(out), "--jobs", "2", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    cores = [set(json.loads(line.split(" on cores ")[1])) for line in printed.splitlines() if line.startswith("started ")]
    assert len(cores) == 2 and cores[0] and cores[1] and not cores[0] & cores[1]  # disjoint core sets
    summary = json.loads((out / "summary.json").read_text())
    assert summary["labels"] == ["baseline", "lsr"]
    # each run trained in its own process, logged to its own train.log, on all 40 training images
    for name in ("baseline-seed0", "lsr-seed0"):
        assert "done: final test top-1" in (out / name / "train.log").read_text()
        assert json.loads((out / name / "summary.json").read_text())["final"]["train_images"] == 40
    assert (out / "reliability.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPU cores")
def test_a_compare_killed_with_sigkill_stops_its_runs_and_a_rerun_resumes_them(tiny_fashion, tmp_path):
    """kill -9 of `tsla compare --jobs 2` (or `tsla select --jobs 2`) while its runs train: each run's process is
    told (SIGTERM) and stops with a checkpoint instead of training on as an orphan, so the rerun resumes every run
    and finishes (an orphan made it fail: its folder locked, or finished under the rerun)."""
    out = tmp_path / "cmp"
    argv = ["compare", "--data-root", str(tiny_fashion), "--methods", "baseline,lsr", "--seeds", "0", "--epochs", "60",
            "--batch-size", "20", "--device", "cpu", "--out", str(out), "--jobs", "2", "--no-progress"]
    compare = subprocess.Popen([sys.executable, "-m", "tsla", *argv], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    logs = [out / name / "train.log" for name in ("baseline-seed0", "lsr-seed0")]
    deadline = time.time() + 120
    while time.time() < deadline and not all(p.is_file() and "epoch   1 of" in p.read_text() for p in logs):
        time.sleep(0.05)
    compare.kill()  # SIGKILL: the compare cannot forward anything itself
    compare.wait()
    deadline = time.time() + 60
    while time.time() < deadline and not all("stopped by SIGTERM" in p.read_text() for p in logs):
        time.sleep(0.1)
    for p in logs:
        assert "stopped by SIGTERM" in p.read_text() and "done:" not in p.read_text()
    assert main(argv) == 0
    for p in logs:
        assert "resuming" in p.read_text()
        assert len((p.parent / "metrics.jsonl").read_text().splitlines()) == 60


def test_jobs_beyond_the_cores_is_refused(tiny_fashion, tmp_path, capsys):
    argv = ["compare", "--data-root", str(tiny_fashion), "--methods", "lsr", "--epochs", "1", "--out",
            str(tmp_path / "x"), "--jobs", "4096"]
    assert main(argv) == 2
    assert "--jobs 4096 is more than the" in capsys.readouterr().err


def test_preset_grid_is_the_default(capsys, tmp_path):
    assert main(["compare", "--preset", "cifar100-resnet18", "--out", str(tmp_path), "--dry-run"]) == 0
    methods = [line.split(": ")[1].split(",")[0] for line in capsys.readouterr().out.splitlines()]
    assert methods == ["baseline", "lsr", "tsla@100", "tsla@120", "tsla@140", "tsla@160", "tsla@180"]
