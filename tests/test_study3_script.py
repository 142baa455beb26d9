"""scripts/study3.sh's settings, run for real with a stand-in for the interpreter that only records each tsla command
(no training): a value that would train nothing, train a family twice or the same draw under two folder names is
refused in one line, exit 2, before anything trains."""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASH = shutil.which("bash")


def _study3(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "calls.txt"}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    settings = {"STUDY3_OUT": str(tmp_path / "out"), "STUDY3_PYTHON": str(fake),
                "STUDY3_EVIDENCE": str(tmp_path / "evidence"), "STUDY3_REGIMES": "clean", "STUDY3_DRAWS": "4",
                "STUDY3_SEEDS": "0", "STUDY3_THETAS": "0.4", "STUDY3_JOBS": "1", **env}
    done = subprocess.run([BASH, str(ROOT / "scripts" / "study3.sh")], env={**os.environ, **settings},
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    calls = tmp_path / "calls.txt"
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_a_good_setting_trains_each_run_of_the_family_once(tmp_path):
    done, calls = _study3(tmp_path, STUDY3_DRAWS="10 0")
    assert done.returncode == 0, done.stderr
    # per draw: the LSR trunk, TSLA(25), the negative end at 25, TSLA(15), the baseline (5 runs), in draw order
    assert [c.split("--subset-seed ")[1].split()[0] for c in calls] == ["10"] * 5 + ["0"] * 5


@pytest.mark.parametrize("setting, message", [
    ({"STUDY3_REGIMES": " "}, "STUDY3_REGIMES: the list is empty"),  # trained nothing and said "done"
    ({"STUDY3_SEEDS": "  "}, "STUDY3_SEEDS: the list is empty"),
    ({"STUDY3_DRAWS": "4 4"}, "STUDY3_DRAWS: '4 4' repeats a value"),  # two families into one folder
    ({"STUDY3_THETAS": "0.4 0.4"}, "STUDY3_THETAS: '0.4 0.4' repeats a value"),
    ({"STUDY3_DRAWS": "4 04"}, "'04' is not a whole number >= 0 (no leading zeros"),  # draw 4 again, in d04
    ({"STUDY3_SEEDS": "00"}, "'00' is not a whole number >= 0 (no leading zeros"),  # seed 0 again, as seed00
    ({"STUDY3_DRAWS": "*"}, "'*' is not a whole number"),  # was expanded to the repository's file names
    ({"STUDY3_DRAWS": "99999999999999999999"}, "'99999999999999999999' is not a whole number >= 0"),
    ({"STUDY3_JOBS": "99999999999999999999"}, "STUDY3_JOBS: '99999999999999999999' is not a whole number from 1"),
])
def test_study3_bad_settings_are_one_line_and_exit_2_before_anything_trains(tmp_path, setting, message):
    done, calls = _study3(tmp_path, **setting)
    assert (done.returncode, calls) == (2, [])
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and message in done.stderr
