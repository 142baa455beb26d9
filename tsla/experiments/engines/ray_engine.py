"""The Ray engine: each task a Ray task holding its CPUs and GPUs, its dependencies passed as ``ObjectRef``s (so it
starts when they have finished, on whichever node has room), retried by Ray when its worker or node dies.

Ray is imported here only, and only when an engine runs: ``import tsla`` and ``--engine local`` never load it.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from ...errors import ConfigError, TrainingError
from .graph import Task, ordered

EXTRA = "pip install 'tsla[ray]'"


def require_ray() -> Any:
    """The ``ray`` module. Raises ``ConfigError`` naming the extra when Ray is not installed."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--engine ray needs Ray, which is not installed here: {EXTRA} (or use --engine local)") \
            from None
    return ray


def _call(fn: Callable[[], Any], *dependencies: Any) -> Any:
    """The body of every Ray task: the dependencies are only waited for (Ray resolves them before the call)."""
    return fn()


class RayEngine:
    """Runs tasks on Ray. ``address``: None starts a local Ray on this machine's cores (shut down after the run),
    ``"auto"`` or ``"HOST:PORT"`` joins a running cluster; in a process where Ray is already initialised, that
    session is used as it is. ``max_retries``: how often Ray runs a task again after its worker process or node died
    (a task's callable must then resume from what the earlier attempt wrote, see :class:`Task`); an exception raised
    by the callable itself is not retried."""

    def __init__(self, address: str | None = None, max_retries: int = 3) -> None:
        self.address = address
        self.max_retries = max_retries

    def _connect(self, ray: Any) -> bool:
        """Initialise Ray unless it is; True when this call started the session (and must shut it down)."""
        if ray.is_initialized():
            return False
        try:
            if self.address is None:
                cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
                ray.init(address="local", num_cpus=cores, include_dashboard=False)
            else:
                ray.init(address=self.address)
        except (ConnectionError, TimeoutError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"--ray-address {self.address}: cannot reach a Ray cluster there ({first}): start one "
                              f"with 'ray start --head', or leave --ray-address out to start Ray on this machine") \
                from None
        return True

    def run(self, tasks: Sequence[Task], on_done: Callable[[str, Any], None] | None = None) -> dict[str, Any]:
        """Submit every task (dependencies first), then collect them as they finish. A task that raises stops the
        run: the tasks not yet finished are cancelled and its exception is raised (tsla's own errors unwrapped, so
        the command line prints their one line); a task whose worker died more than ``max_retries`` times raises
        ``TrainingError``."""
        ray = require_ray()
        started = self._connect(ray)
        try:
            remote = ray.remote(_call)
            refs: dict[str, Any] = {}
            for task in ordered(tasks):
                refs[task.name] = remote.options(
                    name=task.name, num_cpus=task.cpus, num_gpus=task.gpus, max_retries=self.max_retries,
                    retry_exceptions=False,
                ).remote(task.fn, *[refs[dep] for dep in task.after])
            names = {ref: name for name, ref in refs.items()}
            pending, results = list(refs.values()), {}
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        results[names[ref]] = ray.get(ref)
                    except Exception as exc:
                        for other in pending:  # a task not yet started never starts; a running one is stopped
                            ray.cancel(other, force=True)
                        raise self._one_error(ray, names[ref], exc) from None
                    if on_done is not None:
                        on_done(names[ref], results[names[ref]])
            return results
        finally:
            if started:
                ray.shutdown()

    def _one_error(self, ray: Any, name: str, exc: Exception) -> Exception:
        """The error to raise for task ``name``: the callable's own exception when it raised one (a tsla error
        keeps its one-line message and exit code), else ``TrainingError`` saying the worker died."""
        cause = getattr(exc, "cause", None) if isinstance(exc, ray.exceptions.RayTaskError) else None
        if isinstance(cause, Exception) and not isinstance(cause, ray.exceptions.RayError):
            return cause  # the callable's own exception (a TslaError keeps its message and exit code)
        return TrainingError(f"Ray task {name} failed ({type(exc).__name__}: "
                             f"{(str(exc).strip().splitlines() or [''])[0][:200]}) after {self.max_retries} retries: "
                             f"rerun the same command, which resumes every run from its last checkpoint")
