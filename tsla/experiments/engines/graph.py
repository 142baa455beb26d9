"""The task graph an engine runs: :class:`Task` and :func:`ordered` (checked, dependencies first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence


@dataclass(frozen=True)
class Task:
    """One unit of work: ``fn()`` runs once every task named in ``after`` has finished (their results are not
    passed to it: tasks share what they need through files, e.g. a trunk's kept checkpoint).

    ``fn`` must be picklable (a module-level function or a dataclass instance with ``__call__``) for an engine that
    runs it in another process, and safe to run again from the start: a retried task (its worker died) is called
    again, so it should resume from what an earlier attempt wrote rather than redo or duplicate it."""

    name: str
    fn: Callable[[], Any]
    after: tuple[str, ...] = ()
    cpus: float = 1.0
    """CPU cores the task holds while it runs (Ray's ``num_cpus``; the local engine runs one task at a time)."""
    gpus: float = 0.0
    """GPUs the task holds (Ray's ``num_gpus``, which also sets the task's ``CUDA_VISIBLE_DEVICES``)."""


class Engine(Protocol):
    """What every engine offers: run the tasks, dependencies first, and return ``{name: fn()'s result}``;
    ``on_done(name, result)`` is called as each task finishes. The first task that raises stops the run: its
    exception is raised (tsla's own errors as they are), the tasks not yet started are not started."""

    def run(self, tasks: Sequence[Task], on_done: Callable[[str, Any], None] | None = None) -> dict[str, Any]:
        ...


def ordered(tasks: Sequence[Task]) -> list[Task]:
    """The tasks with every task after those it names in ``after`` (otherwise in the given order). Raises
    ``ValueError`` for a repeated name, a dependency that names no task, or a cycle."""
    by_name: dict[str, Task] = {}
    for task in tasks:
        if task.name in by_name:
            raise ValueError(f"two tasks are named {task.name!r}: give every task its own name")
        by_name[task.name] = task
    for task in tasks:
        for dep in task.after:
            if dep not in by_name:
                raise ValueError(f"task {task.name!r} waits for {dep!r}, which is not among the tasks")
    done: dict[str, None] = {}
    visiting: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in visiting:
            raise ValueError(f"the tasks wait for each other in a cycle: {' -> '.join(path + (name,))}")
        visiting.add(name)
        for dep in by_name[name].after:
            visit(dep, path + (name,))
        visiting.discard(name)
        done[name] = None

    for task in tasks:
        visit(task.name, ())
    return [by_name[name] for name in done]
