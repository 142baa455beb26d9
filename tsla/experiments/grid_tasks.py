"""A comparison's grid as a task graph for an engine (:mod:`tsla.experiments.engines`): every run split into
segments at the epochs its branches start from, so a branch waits for its trunk's checkpoint after S epochs, not
for the trunk's end.

A run with branches at S1 < S2 < ... trains as the tasks ``RUN@S1`` (epochs 0..S1-1, then paused with its checkpoint
and the kept checkpoint at S1 written), ``RUN@S2`` (after ``RUN@S1``), ..., ``RUN`` (to the end); a branch at S waits
for ``RUN@S``. Each task is a :class:`Segment`, which resumes from the run's own checkpoint when there is one, so a
task that Ray runs again after its worker died continues where the last attempt's checkpoint left off, bit for bit
(every epoch's random draws are seeded by (seed, epoch)). No step of a comparison deletes the kept checkpoints
branches start from: they stay after every branch has started, as ``--keep-epochs`` asks.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from ..config import TrainConfig
from ..training.branch import kept_checkpoint
from ..training.rundir import is_finished
from .engines import Engine, Task
from .engines.storage import check_marker, write_marker
from .grid_jobs import _check_same_config, _prepare_folders, _start_from

Todo = list[tuple[Path, TrainConfig, "tuple[Path, int] | None"]]


@dataclass(frozen=True)
class RayOptions:
    """``tsla compare --engine ray``'s settings."""

    address: str | None = None
    """``--ray-address``: None starts a local Ray on this machine, ``auto`` or ``HOST:PORT`` joins a cluster."""
    cpus_per_run: int = 1
    """``--cpus-per-run``: the cores each run holds, and its ``--threads`` unless given."""
    gpus_per_run: float = 0.0
    """``--gpus-per-run``: the GPUs each run holds (fractions share one GPU)."""


@dataclass(frozen=True)
class Segment:
    """Train ``run`` up to ``until`` epochs (None: to its end), as one engine task, writing to RUN/train.log.

    A run with a checkpoint resumes from it; a branch without one starts from its source's kept checkpoint (which
    the task it waits for has written); a finished run is left as it is. First of all it checks that it sees the
    driver's ``storage`` marker (:func:`check_marker`). Returns ``{"run", "status", "next_epoch"}``."""

    run: Path
    cfg: TrainConfig
    until: int | None
    branch: tuple[Path, int] | None
    storage: tuple[Path, str]

    def __call__(self) -> dict[str, Any]:
        check_marker(*self.storage)
        if is_finished(self.run):  # an earlier attempt finished it and died before reporting
            return {"run": self.run.name, "status": "finished", "next_epoch": self.cfg.epochs}
        from ..training.trainer import train

        task = self.run.name if self.until is None else f"{self.run.name}@{self.until}"
        with open(self.run / "train.log", "a") as log:
            stamp = datetime.now().isoformat(timespec="milliseconds")
            print(f"[{stamp}] task {task}: process {os.getpid()} on {socket.gethostname()}", file=log, flush=True)
            resume, branch = self._start(log)
            summary = train(self.cfg, self.run, resume=resume, branch=branch, log=log, progress_bar=False,
                            until=self.until)
            print(f"[{datetime.now().isoformat(timespec='milliseconds')}] task {task}: {summary['status']}",
                  file=log, flush=True)
        return {"run": self.run.name, "status": summary["status"],
                "next_epoch": summary.get("next_epoch", self.cfg.epochs)}

    def _start(self, log: TextIO) -> tuple[bool, tuple[Path, int] | None]:
        """(resume, branch): a source trained in this job is not finished when its kept checkpoint is ready."""
        source_running = self.branch is not None and not is_finished(self.branch[0])
        if source_running and not (self.run / "checkpoint.pt").is_file() and kept_checkpoint(*self.branch).is_file():
            return False, self.branch
        return _start_from(self.run, self.branch, log, self.cfg.threads)


def grid_tasks(todo: Todo, storage: tuple[Path, str], cpus: float = 1.0, gpus: float = 0.0) -> list[Task]:
    """The tasks that train ``todo`` ((run folder, config, (source folder, S) or None) each): per run, one segment
    per branch point S of the branches in ``todo`` that start from it, then one to the end; a branch's first
    segment waits for its source's segment ending at S (none when the source is not in ``todo``: finished
    earlier), every later segment for the one before it."""
    points: dict[Path, set[int]] = {}
    names = {run for run, _, _ in todo}
    for _, _, branch in todo:
        if branch is not None and branch[0] in names:
            points.setdefault(branch[0], set()).add(branch[1])
    tasks: list[Task] = []
    for run, cfg, branch in todo:
        before: tuple[str, ...] = ()
        if branch is not None and branch[0] in names:
            before = (f"{branch[0].name}@{branch[1]}",)
        for until in [*sorted(points.get(run, ())), None]:
            name = run.name if until is None else f"{run.name}@{until}"
            tasks.append(Task(name, Segment(run, cfg, until, branch, storage), before, cpus, gpus))
            before = (name,)
    return tasks


def train_grid_on(engine: Engine, todo: Todo, out: Path, cpus: float = 1.0, gpus: float = 0.0,
                  log: TextIO | None = None) -> None:
    """Train ``todo`` in ``out`` on ``engine``: every run folder and config.yaml first (a read-only or full disk, or
    a run begun with other settings, is refused before anything trains), then the storage marker, then the task
    graph, printing each task as it ends. Raises what the tasks raise (``RunDirError``, ``TrainingError``, ...)."""
    log = log or sys.stdout
    _prepare_folders(todo)
    for run, cfg, _ in todo:
        if (run / "config.yaml").is_file() and not is_finished(run):
            _check_same_config(run, cfg, "an unfinished run")
    storage = (out.resolve(), write_marker(out))
    tasks = grid_tasks([(run.resolve(), cfg, None if b is None else (b[0].resolve(), b[1])) for run, cfg, b in todo],
                       storage, cpus, gpus)

    def report(name: str, result: dict[str, Any]) -> None:
        what = (f"paused after {result['next_epoch']} epochs, its branches may start" if result["status"] == "paused"
                else result["status"])
        print(f"{what}: {out / result['run']} (task {name})", file=log, flush=True)

    print(f"{len(todo)} runs as {len(tasks)} tasks (runs split where their branches start)", file=log, flush=True)
    engine.run(tasks, on_done=report)
