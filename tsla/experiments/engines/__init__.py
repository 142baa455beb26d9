"""Engines that run a task graph: a list of :class:`Task` (a name, a picklable zero-argument callable, the names of
the tasks it waits for). ``local`` runs them one after another in this process; ``ray`` submits each as a Ray task
with retries (``pip install 'tsla[ray]'``, imported only when used).

    from tsla.experiments.engines import Task, make_engine
    tasks = [Task("trunk@15", part1), Task("branch", part2, after=("trunk@15",)), Task("trunk", part3, after=("trunk@15",))]
    results = make_engine("ray", address="auto").run(tasks)    # {name: what its callable returned}
"""

from __future__ import annotations

from typing import Any

from .graph import Engine, Task, ordered
from .local import LocalEngine

ENGINES = ("local", "ray")


def make_engine(name: str, **options: Any) -> Engine:
    """The engine called ``name`` (one of :data:`ENGINES`) with its options (``RayEngine``'s: ``address``,
    ``max_retries``). Raises ``ConfigError`` for an unknown name, or for ``ray`` when Ray is not installed."""
    from ...errors import ConfigError

    if name == "local":
        return LocalEngine(**options)
    if name == "ray":
        from .ray_engine import RayEngine, require_ray

        require_ray()
        return RayEngine(**options)
    raise ConfigError(f"engine {name!r} is unknown: choose {' or '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "LocalEngine", "Task", "make_engine", "ordered"]
