"""``tsla.select`` on a task engine (:mod:`tsla.experiments.engines`: ``local`` or ``ray``): every run cut into
segments at the epochs its branches start from, so that a branch starts as soon as its trunk has reported epoch
S - 1 (not when the trunk ends) and the trunk trains on beside it; with halving, each milestone is a barrier across
families (one engine run per phase). A segment is :func:`tsla.experiments.trials.execute.execute` with ``until``:
retried after its worker died, it resumes from the run's last checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..engines import Task
from ..engines.storage import check_marker
from .execute import execute
from .plan import PlannedRun


@dataclass(frozen=True)
class SelectSegment:
    """Train ``run`` through ``train_fn`` up to epoch ``until`` (None: to its end); returns the epochs reported."""

    train_fn: Callable[..., Any]
    run: PlannedRun
    out: Path
    epochs: int
    keep: tuple[int, ...]
    criterion: str
    until: int | None
    storage: str

    def __call__(self) -> int:
        check_marker(self.out, self.storage)
        return execute(self.train_fn, self.run, self.out, self.epochs, list(self.keep), self.criterion, self.until)


def phase_tasks(train_fn: Callable[..., Any], runs: Sequence[PlannedRun], keep: dict[str, list[int]], out: Path,
                epochs: int, criterion: str, milestone: int | None, storage: str, cpus: float = 1.0,
                gpus: float = 0.0) -> list[Task]:
    """The tasks that train ``runs`` to ``milestone`` (None: to the end): per run one segment per branch point
    before the milestone, then one to the milestone; a branch waits for its trunk's segment ending at its switch."""
    names = {r.name for r in runs}
    tasks: list[Task] = []
    for run in runs:
        cuts: list[int | None] = [s for s in keep.get(run.name, []) if milestone is None or s < milestone]
        cuts.append(milestone)
        before: tuple[str, ...] = ()
        if run.trunk is not None and run.trunk in names:
            before = (f"{run.trunk}@{run.branch_at}",)
        for until in cuts:
            name = f"{run.name}@{until}" if until is not None else run.name
            fn = SelectSegment(train_fn, run, out, epochs, tuple(keep.get(run.name, [])), criterion, until, storage)
            tasks.append(Task(name, fn, before, cpus, gpus))
            before = (name,)
    return tasks
