"""The runs of a selection: one per (candidate, seed), the LSR run of each (theta, seed) the trunk that every TSLA
candidate of that theta and seed branches from at its switch epoch S (from the trunk's state after S epochs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..select_score import Candidate


@dataclass(frozen=True)
class PlannedRun:
    """One run: its folder name under ``out``, candidate, seed, and the trunk it branches from (None: from epoch 0)."""

    name: str
    candidate: Candidate
    seed: int
    trunk: str | None = None
    branch_at: int | None = None
    """The epoch the branch starts at (S): it starts from the state the trunk reported at the end of epoch S - 1."""

    def identity(self, epochs: int) -> dict:
        """What the run's trial.json records, checked when ``select`` finds the folder again."""
        return {"name": self.name, "candidate": self.candidate.as_dict(), "seed": self.seed, "epochs": epochs,
                "trunk": self.trunk, "branch_at": self.branch_at}


def run_name(cand: Candidate, seed: int) -> str:
    return f"{cand.label}-seed{seed}"


def plan_runs(cands: Sequence[Candidate], seeds: Sequence[int]) -> list[PlannedRun]:
    """Every run, trunks before their branches, seed by seed. A TSLA candidate branches from the LSR run of its
    theta and seed (every TSLA candidate's theta has an LSR candidate: :func:`joint_space` adds it)."""
    runs: list[PlannedRun] = []
    for seed in seeds:
        lsr = {f"{c.theta:g}": run_name(c, seed) for c in cands if c.method == "lsr"}
        for cand in cands:
            if cand.method == "tsla":
                runs.append(PlannedRun(run_name(cand, seed), cand, seed, lsr[f"{cand.theta:g}"], cand.switch_epoch))
            else:
                runs.append(PlannedRun(run_name(cand, seed), cand, seed))
    order = {r.name: k for k, r in enumerate(runs)}
    return sorted(runs, key=lambda r: (r.seed, order[r.trunk] if r.trunk else order[r.name], r.branch_at or 0))


def kept_epochs(runs: Sequence[PlannedRun]) -> dict[str, list[int]]:
    """Per trunk, the switch epochs S its branches start at (its state after S epochs is kept for them)."""
    kept: dict[str, set[int]] = {}
    for run in runs:
        if run.trunk is not None:
            kept.setdefault(run.trunk, set()).add(run.branch_at)
    return {name: sorted(s) for name, s in kept.items()}


def epochs_independent(runs: Sequence[PlannedRun], epochs: int) -> int:
    """Epochs the runs would take trained independently, each from epoch 0."""
    return len(runs) * epochs
