"""scripts/study2.sh and scripts/study_collect.sh, run for real on temporary folders: study2.sh with a stand-in for
the interpreter that only records each tsla command (no training), study_collect.sh in a throw-away git repository."""

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASH = shutil.which("bash")
GIT = shutil.which("git")


def _recorder(tmp_path: Path) -> Path:
    """An executable standing in for STUDY2_PYTHON: it appends its arguments, one call per line, to calls.txt."""
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "calls.txt"}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake


def _study2(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    settings = {"STUDY2_OUT": str(tmp_path / "out"), "STUDY2_PYTHON": str(_recorder(tmp_path)),
                "STUDY2_EVIDENCE": str(tmp_path / "evidence"), "STUDY2_REGIMES": "sym40", "STUDY2_DRAWS": "1",
                "STUDY2_SEEDS": "0", "STUDY2_JOBS": "1", **env}
    return subprocess.run([BASH, str(ROOT / "scripts" / "study2.sh")], env={**os.environ, **settings},
                          capture_output=True, text=True, timeout=60)


def _calls(tmp_path: Path) -> dict[str, str]:
    """The recorded tsla commands by run folder name."""
    path = tmp_path / "calls.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return {line.split("--out ")[1].split()[0].rsplit("/", 1)[1]: line for line in lines}


@pytest.mark.skipif(BASH is None, reason="needs bash")
@pytest.mark.parametrize("setting, message", [
    ({"STUDY2_JOBS": "0"}, "STUDY2_JOBS: '0' is not a whole number >= 1"),  # xargs -P 0: every family at once
    ({"STUDY2_JOBS": "two"}, "STUDY2_JOBS: 'two' is not a whole number >= 1"),
    ({"STUDY2_REGIMES": "sym40 sym4O"}, "STUDY2_REGIMES: unknown regime 'sym4O'"),  # after sym40 had trained
    ({"STUDY2_SEEDS": "0 one"}, "'one' is not a whole number >= 0"),
    ({"STUDY2_PYTHON": "/nowhere/python"}, "STUDY2_PYTHON: /nowhere/python is not an executable"),
])
def test_study2_bad_settings_are_one_line_and_exit_2_before_anything_trains(tmp_path, setting, message):
    done = _study2(tmp_path, **setting)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr
    assert _calls(tmp_path) == {} and not (tmp_path / "out").exists()


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_study2_resumes_from_a_checkpoint_and_starts_a_branch_stopped_before_its_first_one_as_a_branch(tmp_path):
    """A branch killed before its first checkpoint holds only config.yaml: its own command starts it again from the
    source's kept checkpoint (--resume made it train from epoch 0, all 30 epochs, and lose its branched_from). A run
    with a checkpoint resumes from it, without --branch-from; a finished run is skipped."""
    family = tmp_path / "out" / "sym40" / "d1"
    for name, files in (("lsr-seed0", ("config.yaml", "checkpoint.pt")), ("tsla@25-seed0", ("config.yaml",)),
                        ("tsla@28-seed0", ("config.yaml", "checkpoint.pt")), ("baseline-seed0", ())):
        (family / name).mkdir(parents=True)
        for f in files:
            (family / name / f).write_text("x")
    (family / "lsr-seed0" / "summary.json").write_text(json.dumps({"status": "finished"}, indent=2))
    done = _study2(tmp_path)
    assert done.returncode == 0, done.stderr
    calls = _calls(tmp_path)
    assert "lsr-seed0" not in calls  # finished
    assert "--branch-from" in calls["tsla@25-seed0"] and "--resume" not in calls["tsla@25-seed0"]
    assert "--resume" in calls["tsla@28-seed0"] and "--branch-from" not in calls["tsla@28-seed0"]
    assert "--resume" not in calls["baseline-seed0"] and "--resume" not in calls["tsla@15-seed0"]


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run([GIT, *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def _collect(repo: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run([BASH, str(repo / "scripts" / "study_collect.sh")], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(BASH is None or GIT is None, reason="needs bash and git")
def test_study_collect_never_replaces_committed_evidence_but_rewrites_a_cut_copy(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "study_collect.sh", repo / "scripts")
    _git(repo, "init", "-q")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "init")
    run = repo / "runs" / "study" / "r1" / "lsr-seed0"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"status": "finished", "final": {"test_top1": 0.8}}, indent=2))
    (run / "metrics.jsonl").write_text('{"epoch": 0, "test_top1": 0.8}\n')
    first = _collect(repo)
    assert first.returncode == 0 and "committed 1 new runs (1 finished in all)" in first.stdout
    # a second finished run: the commit names the one run it adds, not every finished run found
    other = repo / "runs" / "study" / "r1" / "tsla-seed0"
    other.mkdir(parents=True)
    (other / "summary.json").write_text(json.dumps({"status": "finished"}, indent=2))
    second = _collect(repo)
    assert second.returncode == 0 and "committed 1 new runs (2 finished in all)" in second.stdout
    assert _git(repo, "log", "-1", "--format=%s").startswith("Study: 1 finished runs' small files")
    evidence = repo / "docs" / "evidence" / "study" / "runs" / "r1" / "lsr-seed0" / "metrics.jsonl"
    commits = _git(repo, "rev-list", "--count", "HEAD")
    # the run trained again with another result: the committed evidence was replaced and committed silently
    (run / "metrics.jsonl").write_text('{"epoch": 0, "test_top1": 0.9}\n')
    again = _collect(repo)
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert "r1/lsr-seed0/metrics.jsonl is committed with other content" in again.stderr
    assert evidence.read_text() == '{"epoch": 0, "test_top1": 0.8}\n'
    assert _git(repo, "rev-list", "--count", "HEAD") == commits
    # a working-tree copy cut by an interrupted collect (not committed) is simply written again
    (run / "metrics.jsonl").write_text('{"epoch": 0, "test_top1": 0.8}\n')
    evidence.write_text('{"epoch": 0, "te')
    assert _collect(repo).returncode == 0
    assert evidence.read_text() == '{"epoch": 0, "test_top1": 0.8}\n'


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_study2_gives_each_flag_once_and_the_budget_run_its_own_length(tmp_path):
    """tsla refuses a flag given twice: every recorded command must parse with tsla's own parser, each run 30 epochs
    long but the budget control, 35 (it gave --epochs 35 after the common --epochs 30, which argparse let win)."""
    from tsla.cli import build_parser

    done = _study2(tmp_path)
    assert done.returncode == 0, done.stderr
    calls = _calls(tmp_path)
    assert len(calls) == 8
    for name, line in calls.items():
        argv = line.split()[2:]  # after "-m tsla"
        args = build_parser().parse_args(argv)  # ConfigError for a flag given twice
        assert args.epochs == (35 if name.startswith("budget") else 30), name
