"""``tsla compare``: every method x theta x seed with everything else identical, then the report.

The grid is ordered method-major (then theta, then seed); ``--shard i/n`` takes every n-th run starting at i, so the
n shards of a grid cover it exactly once, whatever machine runs them. ``--jobs K`` trains K runs at once, each in its
own process pinned to its share of the CPU cores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, TextIO

from .checkpoint import CHECKPOINT, CONFIG, atomic_write_text
from .config import TrainConfig, build_config, config_text
from .errors import ConfigError, Interrupted, RunDirError, TrainingError
from .rundir import is_finished
from .runtime import resolve_device
from .signals import StopRequest
from .trainer import config_differences, load_run_config, train


@dataclass(frozen=True)
class GridRun:
    """One cell of the grid: its config and the folder (relative to the comparison directory) it trains in."""

    name: str
    cfg: TrainConfig


def run_dir_name(method: str, seed: int, theta: float | None = None) -> str:
    """``<method>-seed<k>``, or ``<method>-theta<θ>-seed<k>`` when the grid spans several thetas."""
    return f"{method}-seed{seed}" if theta is None else f"{method}-theta{theta:g}-seed{seed}"


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n. Raises ``ConfigError``."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: write it as i/n, e.g. 0/4 for the first of four shards") from None
    if n < 1 or not (0 <= i < n):
        raise ConfigError(f"--shard {text!r}: need n >= 1 and 0 <= i < n (shards count from 0)")
    return i, n


def select_shard(grid: list[GridRun], shard: tuple[int, int]) -> list[GridRun]:
    """Shard i of n: every n-th run of the grid, starting at run i (so the shards partition the grid)."""
    index, count = shard
    return grid[index::count]


def plan(
    layers: list, methods: Sequence[str], seeds: Sequence[int], thetas: Sequence[float] | None = None
) -> list[GridRun]:
    """Every run of the grid, each config validated before anything trains.

    With several ``thetas`` each method runs once per theta, except ``baseline``, which does not depend on theta and
    runs once per seed.
    """
    if len(set(methods)) != len(methods) or len(set(seeds)) != len(seeds):
        raise ConfigError("--methods and --seeds must not repeat an entry")
    grid: list[GridRun] = []
    multi = thetas is not None and len(thetas) > 1
    for method in methods:
        for theta in (thetas or [None]):
            if multi and method == "baseline" and theta != thetas[0]:
                continue
            for seed in seeds:
                values: dict[str, Any] = {"method": method, "seed": seed}
                if theta is not None:
                    values["theta"] = theta
                name = run_dir_name(method, seed, theta if multi and method != "baseline" else None)
                grid.append(GridRun(name, build_config(*layers, ("--methods/--thetas/--seeds", values))))
    return grid


def _check_same_config(run: Path, cfg: TrainConfig, what: str = "a finished run") -> None:
    """A finished (or begun) run is reused only if it was trained with this comparison's settings."""
    saved = load_run_config(run).to_dict()
    differ = config_differences(saved, cfg)
    if differ:
        k = differ[0]
        raise RunDirError(
            f"{run} is {what} with {k}={saved[k]!r}, not {getattr(cfg, k)!r} as asked now: "
            f"use another --out for different settings"
        )


def _core_sets(jobs: int) -> list[list[int]]:
    """Split the cores this process may use into ``jobs`` disjoint, near-equal sets."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    if jobs > len(cores):
        raise ConfigError(f"--jobs {jobs} is more than the {len(cores)} cores available: pass at most {len(cores)}")
    size, extra = divmod(len(cores), jobs)
    sets, start = [], 0
    for j in range(jobs):
        end = start + size + (1 if j < extra else 0)
        sets.append(cores[start:end])
        start = end
    return sets


def _run_in_processes(todo: list[tuple[Path, TrainConfig]], jobs: int, log: TextIO) -> None:
    """Train each (run dir, config) in a ``python -m tsla train`` subprocess, ``jobs`` at a time, each pinned to its
    own cores; a run's output goes to RUN/train.log. Raises ``TrainingError`` naming the runs that failed."""
    free = _core_sets(jobs)
    for run, cfg in todo:  # a run begun earlier with other settings is refused here, as in one process
        if (run / CONFIG).is_file():
            _check_same_config(run, cfg, "an unfinished run")
    pending, running, failed, forwarded = list(todo), [], [], False
    with StopRequest() as stop:
        while pending or running:
            if stop and not forwarded:  # pass the stop on, once: each run saves a checkpoint and stops
                for proc, _, _ in running:  # SIGTERM even for a Ctrl-C, which the runs may have had already:
                    if proc.poll() is None:  # a second SIGINT would make them stop without a checkpoint
                        proc.send_signal(signal.SIGTERM)
                pending.clear()
                forwarded = True
            _launch(pending, free, running, log)
            time.sleep(0.5)
            for item in list(running):
                proc, run, cores = item
                if proc.poll() is None:
                    continue
                running.remove(item)
                free.append(cores)
                state = "finished" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}, see {run / 'train.log'})"
                print(f"{state}: {run}", file=log, flush=True)
                if proc.returncode != 0:
                    failed.append(run)
    if stop:
        raise Interrupted(f"stopped by {stop.name}; every run saved a checkpoint: re-run the same compare to resume",
                          stop.signum)
    if failed:
        raise TrainingError(f"{len(failed)} run(s) failed, first {failed[0]}: see its train.log, fix, and re-run compare")


def _launch(pending: list, free: list, running: list, log: TextIO) -> None:
    """Start pending runs while cores are free, each pinned to one free core set."""
    while pending and free:
        run, cfg = pending.pop(0)
        cores = free.pop(0)
        run.mkdir(parents=True, exist_ok=True)
        if not (run / CONFIG).is_file():
            atomic_write_text(run / CONFIG, config_text(cfg))  # the subprocess reads its resolved config here
        cmd = [sys.executable, "-m", "tsla", "train", "--config", str(run / CONFIG), "--out", str(run), "--no-progress"]
        if (run / CHECKPOINT).is_file():
            cmd.append("--resume")
        env = {**os.environ, "OMP_NUM_THREADS": str(len(cores)), "MKL_NUM_THREADS": str(len(cores))}
        pin = (lambda c=cores: os.sched_setaffinity(0, c)) if hasattr(os, "sched_setaffinity") else None
        with open(run / "train.log", "a") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=pin)
        print(f"started {run} on cores {cores}", file=log, flush=True)
        running.append((proc, run, cores))


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
) -> dict[str, Any] | None:
    """Train (or skip, or resume) this shard's runs of the grid in ``out``; with a single shard, write the report."""
    from .data import build_data
    from .report import format_markdown, write_report

    log = log or sys.stdout
    grid = plan(layers, methods, seeds, thetas)
    index, count = shard
    mine = select_shard(grid, shard)
    if dry_run:
        for item in mine:
            cfg = item.cfg
            print(f"{out / item.name}: {cfg.method}, theta {cfg.theta}, seed {cfg.seed}", file=log)
        return None
    todo: list[tuple[Path, TrainConfig]] = []
    for i, item in enumerate(mine, 1):
        run = out / item.name
        if is_finished(run):
            _check_same_config(run, item.cfg)
            print(f"[{i}/{len(mine)}] {run}: finished, skipped", file=log)
        else:
            todo.append((run, item.cfg))
    if jobs > 1 and todo:
        _run_in_processes(todo, jobs, log)
    else:
        data = None
        done = len(mine) - len(todo)
        for i, (run, cfg) in enumerate(todo, done + 1):
            print(f"[{i}/{len(mine)}] {run}", file=log, flush=True)
            if data is None:  # every run shares the data settings: load it once
                data = build_data(cfg, resolve_device(cfg.device))
            train(cfg, run, resume=(run / CHECKPOINT).is_file(), data=data, log=log, progress_bar=progress_bar)
    if count > 1:
        print(f"shard {index}/{count} done; once every shard has finished: tsla report {out}", file=log)
        return None
    summary = write_report([out])
    print(format_markdown(summary), file=log)
    print(f"wrote {out / 'summary.md'}, {out / 'summary.json'}, {out / 'curves.png'} and {out / 'reliability.png'}",
          file=log)
    return summary
