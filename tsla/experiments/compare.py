"""``tsla compare``: every method x theta x seed with everything else identical, then the report.

The grid is ordered method-major (then theta, then seed). A ``--methods`` entry may set the run's own theta,
theta_after or epochs (:func:`parse_cell`), e.g. ``tsla@30:theta_after=-0.2`` or ``tsla@30:epochs=35``, so one grid
holds LSR, TSLA ending on a negative theta and a budget control, each branching from the run it shares epochs with.
``--shard i/n`` takes whole families (a run with every run that branches from it) and balances them by epochs over
the n shards, so the shards cover the grid exactly once, whatever machine runs them, and no branch loses its source.
``--jobs K`` trains K runs at once, each in its own process pinned to its share of the CPU cores. ``--engine ray``
trains the grid as Ray tasks instead (:mod:`tsla.experiments.grid_tasks`): a cluster's workers, a branch started as
soon as its trunk has kept its checkpoint at the branch point.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence, TextIO

from ..config import TrainConfig
from ..errors import RunDirError
from ..training.branch import branch_order
from ..training.checkpoint import CHECKPOINT, CONFIG
from ..training.rundir import is_finished
from ..training.runtime import resolve_device
from ..training.trainer import train
from .grid import GridRun, plan, select_shard
from .grid_tasks import RayOptions
from .grid_jobs import (_check_same_config, _core_sets, _refresh_unstarted, _run_in_processes,
                        _start_from, check_reused_data)


def _check_not_a_run(out: Path) -> None:
    """A comparison folder holds runs one level down; one that is itself a training run's folder is refused (its
    report would go to RUN/report/ and miss the runs trained inside it)."""
    held = [name for name in (CONFIG, CHECKPOINT, "metrics.jsonl") if (out / name).is_file()]
    if held:
        raise RunDirError(f"--out {out} is the folder of a training run (it holds {held[0]}), not a comparison "
                          f"folder: choose another --out; a comparison trains each run in a folder inside it")


def _report_saving(grid: list[GridRun], log: TextIO) -> None:
    """Print the epochs the grid trains with branching against training every run from epoch 0."""
    full = sum(run.cfg.epochs for run in grid)
    saved = sum(run.branch[1] for run in grid if run.branch)
    if saved:
        print(f"branching: {len(grid)} runs train {full - saved} epochs instead of {full} "
              f"({100 * (full - saved) / full:.0f}%): each run that shares its first S epochs with another (TSLA(S) with "
              f"its LSR run) starts from it after S epochs", file=log)


def train_grid(mine: list[GridRun], out: Path, jobs: int = 1, progress_bar: bool = True,
               log: TextIO | None = None, ray: RayOptions | None = None) -> None:
    """Train (or skip, or resume) ``mine`` in ``out``: a finished run with this config and this data (its checkpoint's
    fingerprints) is skipped, an interrupted one resumed (its data checked by the trainer), a branch started from its
    source's kept checkpoint; ``jobs`` > 1 trains in pinned subprocesses, ``ray`` as Ray tasks.
    Raises ``RunDirError`` (a run there with other settings), ``DataError`` (a run there trained on other data),
    ``TrainingError``, ``Interrupted`` and, with ``ray``, ``ConfigError`` (Ray missing or its cluster unreachable)."""
    from ..data import build_data

    log = log or sys.stdout
    todo: list[tuple[Path, TrainConfig, tuple[Path, int] | None]] = []
    data = None
    for i, item in enumerate(mine, 1):
        run = out / item.name
        if is_finished(run):
            _check_same_config(run, item.cfg)
            if data is None:  # every run shares the data settings: load it once
                data = build_data(item.cfg, resolve_device(item.cfg.device))
            check_reused_data(run, data)  # another --data-root must not reuse scores of the old images
            print(f"[{i}/{len(mine)}] {run}: finished, skipped", file=log)
        else:
            todo.append((run, item.cfg, (out / item.branch[0], item.branch[1]) if item.branch else None))
    branches = {g.name: g.branch for g in mine if g.branch}
    depth = {item.name: branch_order(branches, item.name) for item in mine}
    todo.sort(key=lambda t: depth[t[0].name])  # sources before their branches (a stable sort keeps the grid order)
    _report_saving(mine, log)
    if ray is not None and todo:
        from .engines.ray_engine import RayEngine
        from .grid_tasks import train_grid_on

        train_grid_on(RayEngine(ray.address), todo, out, ray.cpus_per_run, ray.gpus_per_run, log)
    elif jobs > 1 and todo:
        _run_in_processes(todo, jobs, log)
    else:
        done = len(mine) - len(todo)
        for i, (run, cfg, branch) in enumerate(todo, done + 1):
            print(f"[{i}/{len(mine)}] {run}", file=log, flush=True)
            _refresh_unstarted(run, cfg)
            if data is None:  # every run shares the data settings: load it once
                data = build_data(cfg, resolve_device(cfg.device))
            resume, branch = _start_from(run, branch, log, cfg.threads)
            train(cfg, run, resume=resume, data=data, log=log, progress_bar=progress_bar, branch=branch)


def run_compare(
    layers: list,
    methods: Sequence[str],
    seeds: Sequence[int],
    out: Path,
    thetas: Sequence[float] | None = None,
    shard: tuple[int, int] = (0, 1),
    jobs: int = 1,
    progress_bar: bool = True,
    dry_run: bool = False,
    log: TextIO | None = None,
    ray: RayOptions | None = None,
) -> dict[str, Any] | None:
    """Train (or skip, or resume) this shard's runs of the grid in ``out``; with a single shard, write the report.
    ``ray`` trains on Ray (``--engine ray``) instead of this machine's processes (``jobs``)."""
    from ..report import format_markdown, write_report

    log = log or sys.stdout
    _check_not_a_run(out)
    if jobs > 1 and not any("threads" in values for _, values in layers):  # each process its share of the cores
        layers = [*layers, ("--jobs", {"threads": min(len(cores) for cores in _core_sets(jobs))})]
    if ray is not None and not any("threads" in values for _, values in layers):  # each run its own cores
        layers = [*layers, ("--cpus-per-run", {"threads": ray.cpus_per_run})]
    grid = plan(layers, methods, seeds, thetas)
    index, count = shard
    mine = select_shard(grid, shard)
    if dry_run:
        for item in mine:
            cfg = item.cfg
            extra = f", theta_after {cfg.theta_after:g}" if cfg.theta_after else ""
            extra += f", {cfg.epochs} epochs" + (f", from {item.branch[0]} after {item.branch[1]}" if item.branch else "")
            theta = cfg.schedule().theta  # what the run trains: the baseline's is 0 whatever --thetas says
            print(f"{out / item.name}: {cfg.method}, theta {theta:g}, seed {cfg.seed}{extra}", file=log)
        return None
    train_grid(mine, out, jobs, progress_bar, log, ray)
    if count > 1:
        print(f"shard {index}/{count} done; once every shard has finished: tsla report {out}", file=log)
        return None
    summary = write_report([out])
    print(format_markdown(summary), file=log)
    print(f"wrote {out / 'summary.md'}, {out / 'summary.json'}, {out / 'curves.png'} and {out / 'reliability.png'}",
          file=log)
    return summary
