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

from ..errors import RunDirError, TrainingError
from ..training.branch import kept_checkpoint
from ..training.checkpoint import CHECKPOINT, METRICS, load_checkpoint, write_metrics
from ..training.rundir import is_finished
from ..training.runtime import resolve_device
from ..training.trainer import train
from .grid import GridRun
from .grid_jobs import _check_same_config, check_reused_data
from .select_halving_rule import noise_aware_halving
from .select_runs import candidate_records
from .select_score import Candidate, epochs_trained, families as group_families, family_of


def _records(run: Path, log: TextIO) -> list[dict[str, Any]]:
    """A run's metrics.jsonl lines ([] before its first epoch). A line cut by a crash or a full disk (each epoch is
    appended after the checkpoint that holds it) is repaired as a resume repairs it: the file is written again from
    RUN/checkpoint.pt, whose checksummed history holds every epoch trained. Raises ``RunDirError`` when the
    checkpoint cannot restore it."""
    path = run / METRICS
    if not path.is_file():
        return []
    lines = path.read_text(errors="replace").splitlines()
    try:
        return [json.loads(x) for x in lines if x.strip()]
    except json.JSONDecodeError:
        pass
    bad = next(k for k, x in enumerate(lines, 1) if x.strip() and not _parses(x))
    try:
        history = load_checkpoint(run / CHECKPOINT)["history"]
        write_metrics(path, history)
    except (RunDirError, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise RunDirError(f"{path} line {bad} is not JSON (cut by a crash or a full disk?) and cannot be written "
                          f"again from {CHECKPOINT} ({why}): move {run} away and rerun to train it again") from None
    print(f"{path}: line {bad} was cut; written again from {run / CHECKPOINT} ({len(history)} epochs)", file=log,
          flush=True)
    return history


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def _branch_source(run: Path, source: tuple[Path, int], log: TextIO) -> tuple[Path, int] | None:
    """``source`` (run, S) when its checkpoint kept after S epochs loads; else None, and the run trains from epoch 0,
    as compare's grid does: its own result, at full cost. A kept checkpoint damaged or cut on disk would otherwise
    stop every rerun."""
    kept = kept_checkpoint(*source)
    if not kept.is_file():
        return None
    try:
        load_checkpoint(kept)
    except RunDirError as exc:
        print(f"{run}: cannot branch from {kept} ({exc}): training from epoch 0", file=log, flush=True)
        return None
    return source


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
        if until is not None and len(_records(folder, self.log)) >= until and (folder / CHECKPOINT).is_file():
            check_reused_data(folder, self._data(run))  # a paused run is reused as it is, as a finished one
            return
        branch = None
        resume = (folder / CHECKPOINT).is_file()
        if not resume and run.branch is not None:
            branch = _branch_source(folder, (self.out / run.branch[0], run.branch[1]), self.log)
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
        done = [x for x in milestones if x <= m]
        existing = [c for c in cands if c.switch_epoch is None or c.switch_epoch < m]
        try:  # noise-aware: a family stops only when validation shows it worse than the best by more than its SE;
            # each run's metrics checked against its checkpoint
            last = noise_aware_halving(existing, lambda c: [candidate_records(out / r.name, r.cfg) for r in runs_of(c)],
                                       done, epochs, criterion, at, cfg.val_size).rounds[-1]
        except ValueError as exc:  # a diverged candidate (a non-finite score): one line, not a traceback
            raise TrainingError(str(exc)) from None
        fam_score, kept = last.scores, last.kept
        for name in alive:
            if name not in kept:
                stop[name] = m
        print(f"halving at epoch {m}: " + ", ".join(f"{n} {fam_score[n]:.4f}" for n in alive)
              + f" -> kept {', '.join(kept)}", file=log, flush=True)
        rounds.append({"at_epoch": m, "scores": fam_score, "se": last.se, "kept": kept})
        alive = kept
    for name in alive:
        for cand in sorted(families[name], key=lambda c: c.switch_epoch or 0):
            for run in runs_of(cand):
                trainer.to(run, None)
    trained = len(runs_of(cands[0])) * epochs_trained(families, stop)  # every candidate has one run per seed
    return [c for c in cands if family_of(c) in alive], rounds, trained
