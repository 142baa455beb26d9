"""``tsla select --halving``: successive halving over the families (the baseline, and per theta the LSR trunk with its
TSLA(S) branches). At each lr milestone every family still training is scored by its best member's mean validation
score at the epoch before it, the better half (rounded up) trains on and the rest stop there (their runs paused,
with a checkpoint). Only the candidates of the families left at the end can be chosen.

Runs train one at a time in this process; a rerun resumes every paused or interrupted run and re-derives each
halving decision from the logged validation metrics, so it reaches the same choice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence, TextIO

from ..errors import TrainingError
from ..training.branch import kept_checkpoint
from ..training.checkpoint import CHECKPOINT
from ..training.rundir import is_finished
from ..training.runtime import resolve_device
from ..training.trainer import train
from .grid import GridRun
from .grid_jobs import _check_same_config, check_reused_data
from .select_runs import candidate_records
from .select_score import Candidate, epochs_trained, families as group_families, family_of, halving_round


def _records(run: Path) -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []


class _Trainer:
    """Trains the runs of the grid to a given epoch, loading the data once."""

    def __init__(self, out: Path, progress_bar: bool, log: TextIO) -> None:
        self.out, self.progress_bar, self.log, self.data = out, progress_bar, log, None

    def to(self, run: GridRun, until: int | None) -> None:
        """Train ``run`` to ``until`` epochs (None: to the end): skip it when finished or already there, resume it
        from its checkpoint, branch it from its trunk's kept checkpoint, or start it."""
        folder = self.out / run.name
        if is_finished(folder):
            _check_same_config(folder, run.cfg)
            check_reused_data(folder, self._data(run))
            return
        if until is not None and len(_records(folder)) >= until and (folder / CHECKPOINT).is_file():
            check_reused_data(folder, self._data(run))  # a paused run is reused as it is, as a finished one
            return
        branch = None
        resume = (folder / CHECKPOINT).is_file()
        if not resume and run.branch is not None:
            source = (self.out / run.branch[0], run.branch[1])
            branch = source if kept_checkpoint(*source).is_file() else None
        print(f"{folder}: training to epoch {run.cfg.epochs if until is None else until} of {run.cfg.epochs}",
              file=self.log, flush=True)
        train(run.cfg, folder, resume=resume, data=self._data(run), log=self.log, progress_bar=self.progress_bar,
              branch=branch, until=until)

    def _data(self, run: GridRun):
        """The grid's data (every run shares its settings), loaded on first use."""
        from ..data import build_data

        if self.data is None:
            self.data = build_data(run.cfg, resolve_device(run.cfg.device))
        return self.data


def run_halving(grid: list[GridRun], cands: Sequence[Candidate], runs_of, out: Path, criterion: str, at: str,
                progress_bar: bool, log: TextIO) -> tuple[list[Candidate], list[dict[str, Any]], int]:
    """Train the grid with successive halving at the milestones. Returns (the candidates that may be chosen, one
    record per halving: epoch, family scores, families kept, and the epochs trained)."""
    cfg = grid[0].cfg
    epochs = cfg.epochs
    milestones = [m for m in cfg.milestones if 0 < m < epochs] if cfg.lr_schedule == "step" else []
    families = group_families(cands)
    alive, stop, rounds = list(families), {name: epochs for name in families}, []
    trainer = _Trainer(out, progress_bar, log)
    for m in milestones:
        for name in alive:  # trunks first: a branch starts from its trunk's checkpoint kept at S < m
            for cand in sorted(families[name], key=lambda c: c.switch_epoch or 0):
                if cand.switch_epoch is None or cand.switch_epoch < m:
                    for run in runs_of(cand):
                        trainer.to(run, m)
        try:
            fam_score, kept = halving_round(families, alive, m,  # each run's metrics checked against its checkpoint
                                            lambda c: [candidate_records(out / r.name, r.cfg) for r in runs_of(c)],
                                            criterion, at)
        except ValueError as exc:  # a diverged candidate (a non-finite score): one line, not a traceback
            raise TrainingError(str(exc)) from None
        for name in alive:
            if name not in kept:
                stop[name] = m
        print(f"halving at epoch {m}: " + ", ".join(f"{n} {fam_score[n]:.4f}" for n in alive)
              + f" -> kept {', '.join(kept)}", file=log, flush=True)
        rounds.append({"at_epoch": m, "scores": fam_score, "kept": kept})
        alive = kept
    for name in alive:
        for cand in sorted(families[name], key=lambda c: c.switch_epoch or 0):
            for run in runs_of(cand):
                trainer.to(run, None)
    trained = len(runs_of(cands[0])) * epochs_trained(families, stop)  # every candidate has one run per seed
    return [c for c in cands if family_of(c) in alive], rounds, trained
