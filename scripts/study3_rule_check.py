"""Check promised by docs/study3.md's amendment 5: Q3 (and S5, S6) choose the same cells with ``select_rule.py`` as
frozen at b9e72e4 (amendment 2) as with the version in this checkout (594c21c changed one line, for a NaN standard
error, which Q3's two seeds and n_val = 1,000 never give).

    python scripts/study3_rule_check.py docs/evidence/study3/runs.csv [--frozen b9e72e4]

Reads b9e72e4's file from git, replays every select choice of runs.csv with both versions and prints one line: how
many choices were compared and how many differ (exit 1 if any differs, 2 if the input is unusable)."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import study3_outcomes  # noqa: E402
from study2_analyse import Unusable, _read  # noqa: E402
from study3_runs import parse_runs_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def frozen_rule(commit: str):
    """``tsla.experiments.select_rule`` as committed at ``commit``, loaded as a module of the tsla package."""
    source = subprocess.run(["git", "show", f"{commit}:tsla/experiments/select_rule.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(f"tsla.experiments._select_rule_{commit}", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "tsla.experiments"
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    exec(compile(source, f"{commit}:tsla/experiments/select_rule.py", "exec"), module.__dict__)
    return module


def choices(rows, choose) -> list[tuple]:
    """Every (question, regime, θ, val_noise, stop_rule, draw, chosen cell) that the select questions make."""
    study3_outcomes.choose_noise_aware = choose
    derived = study3_outcomes.derived_rows(rows)
    return sorted({(d["question"], d["regime"], d["theta"], d["val_noise"], d["stop_rule"], d["draw"], d["a"])
                   for d in derived if d["question"] in study3_outcomes.SELECT_RULES})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_csv", type=Path)
    parser.add_argument("--frozen", default="b9e72e4")
    args = parser.parse_args(argv)
    try:
        rows = parse_runs_text(_read(args.runs_csv, "give the runs.csv study3_analyse.py wrote"), str(args.runs_csv))
    except Unusable as exc:
        print(f"study3_rule_check.py: error: {exc}", file=sys.stderr)
        return 2
    now = choices(rows, study3_outcomes.choose_noise_aware)
    then = choices(rows, frozen_rule(args.frozen).choose_noise_aware)
    differ = len(set(now) ^ set(then))
    print(f"study3_rule_check.py: {len(now)} select choices (Q3, S5, S6; every regime, labelling, stopping rule and "
          f"draw) compared with select_rule.py at {args.frozen}: {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
