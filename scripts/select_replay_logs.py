"""The committed logs scripts/replay_select.py replays, read into one shape: per group of seeds (a study-2 draw, or a
block of 4 seeds of study 1), per candidate, one run per seed with its metrics records and its test top-1 at the
best-validation epoch.

Study 2 (docs/evidence/study2/runs/REGIME/dD/LABEL-seedS) logged the test set at the last epoch only; its
summary.json's ``best_val.test_top1`` is the test top-1 of the best-validation weights (checked here to be the
epoch select_score.score picks). Study 1 (docs/evidence/study/runs/REGIME/LABEL-seedS) logged the test set every 5
epochs: its runs are cut to those epochs (the measure of scripts/study1_best_val.py, a user who checkpoints every 5
epochs), so that the epoch validation picks always has a test number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsla.experiments.select_score import Candidate, score

STUDY2_CELLS = {  # the committed run label -> the candidate it is (θ = 0.4; docs/study2.md)
    "baseline": Candidate("baseline", 0.0), "lsr": Candidate("lsr", 0.4), "tsla@15": Candidate("tsla", 0.4, 15),
    "tsla@25": Candidate("tsla", 0.4, 25), "lsr-neg@25": Candidate("tsla", 0.4, 25, -0.2),
}
STUDY2_REGIMES, STUDY2_DRAWS, STUDY2_SEEDS = ("sym40", "pair40", "clean"), (1, 2, 3), (0, 1, 2, 3)
STUDY1_REGIMES = {"r1-few": 12, "r2-noise": 8}  # seeds 0..n-1, one data draw (D = 0), blocks of 4 seeds
STUDY1_THETAS = (0.1, 0.2, 0.4)
N_TEST = 10000  # both studies: the full Fashion-MNIST test set


@dataclass(frozen=True)
class Run:
    """One run: its per-epoch records (cut to the tested epochs in study 1), test top-1 (%) at its best-validation
    epoch, and every epoch's records uncut (what a rule that reads validation each epoch, tsla-auto, sees)."""

    records: list[dict[str, Any]]
    test_at_best_val: float
    every_epoch: list[dict[str, Any]]


Group = dict[Candidate, list[Run]]  # candidate -> one run per seed, the seeds in the same order for every candidate


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def study2_run(folder: Path) -> Run:
    """A study-2 run; raises ``ValueError`` when summary.json's best-validation epoch is not the one score() picks."""
    records = _lines(folder / "metrics.jsonl")
    best = json.loads((folder / "summary.json").read_text())["best_val"]
    if score(records, "val_top1", "best-val")["epoch"] != best["epoch"]:
        raise ValueError(f"{folder}: summary.json's best-validation epoch {best['epoch']} is not the logged one")
    return Run(records, 100 * best["test_top1"], records)


def study2(root: Path) -> dict[str, dict[int, Group]]:
    """{regime: {draw: group}} for the five candidate cells."""
    return {regime: {d: {cand: [study2_run(root / regime / f"d{d}" / f"{label}-seed{s}") for s in STUDY2_SEEDS]
                         for label, cand in STUDY2_CELLS.items()} for d in STUDY2_DRAWS}
            for regime in STUDY2_REGIMES}


def study1_cells() -> dict[str, Candidate]:
    """The first study's grid: the baseline, and per θ its LSR, TSLA(15) and TSLA(25) runs."""
    cells = {"baseline": Candidate("baseline", 0.0)}
    for t in STUDY1_THETAS:
        cells.update({f"lsr-theta{t:g}": Candidate("lsr", t), f"tsla@15-theta{t:g}": Candidate("tsla", t, 15),
                      f"tsla@25-theta{t:g}": Candidate("tsla", t, 25)})
    return cells


def study1_run(folder: Path) -> Run:
    """A study-1 run cut to its epochs with a test evaluation; the test top-1 of its best-validation one."""
    every = _lines(folder / "metrics.jsonl")
    records = [r for r in every if "test_top1" in r and "val_top1" in r]
    best = score(records, "val_top1", "best-val")["epoch"]
    return Run(records, 100 * next(r["test_top1"] for r in records if r["epoch"] == best), every)


def study1(root: Path) -> dict[str, dict[int, Group]]:
    """{regime: {block: group}}: seeds 4b..4b+3 of the grid's cells, block b = 1, 2, ..."""
    out: dict[str, dict[int, Group]] = {}
    for regime, n in STUDY1_REGIMES.items():
        out[regime] = {b // 4 + 1: {cand: [study1_run(root / regime / f"{label}-seed{s}") for s in range(b, b + 4)]
                                    for label, cand in study1_cells().items()} for b in range(0, n, 4)}
    return out


def n_val(group: Group) -> int:
    """The validation split's size, read from the logs (``val_images``); raises ``ValueError`` if runs differ."""
    sizes = {r.records[0]["val_images"] for runs in group.values() for r in runs}
    if len(sizes) != 1:
        raise ValueError(f"runs with different validation sizes: {sorted(sizes)}")
    return sizes.pop()
