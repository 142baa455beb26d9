"""The local engine: the tasks one after another in this process, dependencies first (no Ray needed)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .graph import Task, ordered


class LocalEngine:
    """Runs each task in this process, in :func:`ordered` order; a task that raises stops the run (the tasks after
    it are not started) and its exception propagates unchanged."""

    def run(self, tasks: Sequence[Task], on_done: Callable[[str, Any], None] | None = None) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for task in ordered(tasks):
            results[task.name] = task.fn()
            if on_done is not None:
                on_done(task.name, results[task.name])
        return results
