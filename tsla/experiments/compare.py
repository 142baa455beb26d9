"""``tsla compare``: every method x theta x seed with everything else identical, then the report.

The grid is ordered method-major (then theta, then seed). A ``--methods`` entry may set the run's own theta,
theta_after or epochs (:func:`parse_cell`), e.g. ``tsla@30:theta_after=-0.2`` or ``tsla@30:epochs=35``, so one grid
holds LSR, TSLA ending on a negative theta and a budget control, each branching from the run it shares epochs with.
``--shard i/n`` takes whole families (a run with every run that branches from it) and balances them by epochs over
the n shards, so the shards cover the grid exactly once, whatever machine runs them, and no branch loses its source.
``--jobs K`` trains K runs at once, each in its own process pinned to its share of the CPU cores.
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

from ..training.branch import branch_order, kept_checkpoint, plan_branches
from ..training.checkpoint import CHECKPOINT, CONFIG, SUMMARY, atomic_write_text, load_checkpoint
from ..config import TrainConfig, build_config, config_text
from ..errors import ConfigError, Interrupted, RunDirError, TrainingError
from ..training.rundir import is_finished
from ..training.runtime import resolve_device
from ..training.signals import StopRequest
from ..training.trainer import config_differences, load_run_config, train


@dataclass(frozen=True)
class GridRun:
    """One cell of the grid: its config and the folder (relative to the comparison directory) it trains in."""

    name: str
    cfg: TrainConfig
    branch: tuple[str, int] | None = None
    """(name of another run of this grid, S): this run starts from that run's state after S epochs (e.g. TSLA(S)
    from the LSR run; see :func:`tsla.training.branch.plan_branches`)."""


def run_dir_name(method: str, seed: int, theta: float | None = None) -> str:
    """``<method>-seed<k>``, or ``<method>-theta<θ>-seed<k>`` when the grid spans several thetas (a cell's own
    settings are named after the method: ``tsla@30-after-0.2-seed0``, ``tsla@30-epochs35-seed0``)."""
    return f"{method}-seed{seed}" if theta is None else f"{method}-theta{theta:g}-seed{seed}"


# what a --methods entry may set for its own runs, and how the run folder names it
CELL_FIELDS = {"theta": ("theta", float), "theta_after": ("after", float), "epochs": ("epochs", int)}


def parse_cell(entry: str) -> tuple[str, dict[str, Any]]:
    """``METHOD[:field=value...]`` -> (method, {field: value}): the fields of :data:`CELL_FIELDS` (``theta-after``
    also spelt with a dash). Raises ``ConfigError`` naming the entry."""
    method, *settings = entry.strip().split(":")
    values: dict[str, Any] = {}
    for setting in settings:
        key, eq, text = setting.partition("=")
        key = key.strip().replace("-", "_")
        if key not in CELL_FIELDS or not eq:
            raise ConfigError(f"--methods entry {entry!r}: {setting!r} is not field=value with a field among "
                              f"{', '.join(CELL_FIELDS)}, e.g. tsla@30:theta_after=-0.2 or tsla@30:epochs=35")
        try:
            values[key] = CELL_FIELDS[key][1](text)
        except ValueError:
            raise ConfigError(f"--methods entry {entry!r}: {text!r} is not a valid {key}") from None
    return method.strip(), values


def _cell_folder(method: str, values: dict[str, Any]) -> str:
    return method + "".join(f"-{CELL_FIELDS[k][0]}{values[k]:g}" for k in CELL_FIELDS if k in values)


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n. Raises ``ConfigError``."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: write it as i/n, e.g. 0/4 for the first of four shards") from None
    if n < 1 or not (0 <= i < n):
        raise ConfigError(f"--shard {text!r}: need n >= 1 and 0 <= i < n (shards count from 0)")
    return i, n


def families(grid: list[GridRun]) -> list[list[GridRun]]:
    """The grid's runs grouped by family: a run that branches from none, with every run branching from it (directly
    or through another branch), in grid order; families ordered by their first run."""
    by_name = {run.name: run for run in grid}
    root: dict[str, str] = {}
    for run in grid:  # follow the branch chain up to a run that branches from none in this grid
        name = run.name
        while by_name[name].branch is not None and by_name[name].branch[0] in by_name:
            name = by_name[name].branch[0]
        root[run.name] = name
    groups: dict[str, list[GridRun]] = {}
    for run in grid:
        groups.setdefault(root[run.name], []).append(run)
    return sorted(groups.values(), key=lambda fam: min(grid.index(r) for r in fam))


def family_epochs(family: list[GridRun]) -> int:
    """Epochs a family trains with its branches: the source's, plus each branch's epochs after its branch point."""
    return sum(run.cfg.epochs - (run.branch[1] if run.branch else 0) for run in family)


def select_shard(grid: list[GridRun], shard: tuple[int, int]) -> list[GridRun]:
    """Shard i of n. Whole families (a trunk with all its branches) go to one shard, so every branch finds its
    source's checkpoint: largest family first, each to the shard with the fewest epochs so far (ties: the lowest
    shard). The assignment depends on the grid alone, so the n shards partition it on any machine; a shard keeps
    the grid's order."""
    index, count = shard
    load = [0] * count
    mine: set[str] = set()
    fams = families(grid)
    for fam in sorted(fams, key=lambda f: -family_epochs(f)):  # a stable sort keeps grid order among equals
        target = min(range(count), key=lambda k: (load[k], k))
        load[target] += family_epochs(fam)
        if target == index:
            mine.update(run.name for run in fam)
    return [run for run in grid if run.name in mine]


def _check_distinct(methods: Sequence[str], seeds: Sequence[int], thetas: Sequence[float] | None) -> None:
    """Refuse a grid that would train one run twice: a repeated seed or method, two spellings of one method
    (tsla@1 and tsla@01), or two thetas that name one run folder (0.1 and 0.1000001 are both 'theta0.1')."""
    if len(set(seeds)) != len(seeds):
        raise ConfigError("--seeds must not repeat an entry")
    seen: dict[str, str] = {}
    for method in methods:
        base, values = parse_cell(method)
        name, _, arg = base.partition("@")
        key = (f"{name}@{int(arg)}" if arg.strip().isdigit() else base) + repr(sorted(values.items()))
        if key in seen:
            raise ConfigError(f"--methods: {seen[key]!r} and {method!r} name the same schedule: list it once")
        seen[key] = method
    folders: dict[str, float] = {}
    for theta in thetas or []:
        folder = f"{theta:g}"
        if folder in folders:
            raise ConfigError(f"--thetas: {folders[folder]!r} and {theta!r} both give run folders named theta{folder}: "
                              f"give thetas that differ in their first 6 significant digits")
        folders[folder] = theta


def plan(
    layers: list, methods: Sequence[str], seeds: Sequence[int], thetas: Sequence[float] | None = None,
    branch: bool = True,
) -> list[GridRun]:
    """Every run of the grid, each config validated before anything trains.

    With several ``thetas`` each method runs once per theta, except ``baseline``, which does not depend on theta, and
    an entry that sets its own theta: those run once per seed. A grid-wide ``theta_after`` (``--theta-after``) applies
    to the grid's ``tsla@S`` runs only, the other methods having no second stage to apply it to. With ``branch``, every run that trains as another run of the grid for its first S epochs
    (TSLA(S) as the LSR run of its seed and theta, reverse@S as the baseline) branches from it after S epochs
    (:func:`tsla.training.branch.plan_branches`): the same result for the cost of the epochs after S.
    """
    if thetas is not None:  # -0 is 0: one run folder (theta0), not two (theta-0 and theta0)
        thetas = [theta + 0.0 for theta in thetas]
    _check_distinct(methods, seeds, thetas)
    grid: list[GridRun] = []
    multi = thetas is not None and len(thetas) > 1
    for entry in methods:
        method, cell = parse_cell(entry)
        once = method == "baseline" or "theta" in cell
        for theta in (thetas or [None]):
            if multi and once and theta != thetas[0]:
                continue
            for seed in seeds:
                values: dict[str, Any] = {"method": method, "seed": seed}
                if theta is not None:
                    values["theta"] = theta
                if not method.startswith("tsla@"):
                    values["theta_after"] = 0.0
                values.update(cell)
                name = run_dir_name(_cell_folder(method, cell), seed, theta if multi and not once else None)
                grid.append(GridRun(name, build_config(*layers, ("--methods/--thetas/--seeds", values))))
    if not branch:
        return grid
    configs, branches = plan_branches({run.name: run.cfg for run in grid})
    return [GridRun(run.name, configs[run.name], branches.get(run.name)) for run in grid]


def _check_not_a_run(out: Path) -> None:
    """A comparison folder holds runs one level down; one that is itself a training run's folder is refused (its
    report would go to RUN/report/ and miss the runs trained inside it)."""
    held = [name for name in (CONFIG, CHECKPOINT, "metrics.jsonl") if (out / name).is_file()]
    if held:
        raise RunDirError(f"--out {out} is the folder of a training run (it holds {held[0]}), not a comparison "
                          f"folder: choose another --out; a comparison trains each run in a folder inside it")


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


def _start_from(run: Path, branch: tuple[Path, int] | None, log: TextIO,
                threads: int | None = None) -> tuple[bool, tuple[Path, int] | None]:
    """How a run starts: (resume it, branch it from (source, S)). A branch whose source kept no readable checkpoint
    after S epochs (it finished in an earlier comparison, failed, or the copy was cut), or was trained on another
    thread count than ``threads`` (an earlier shard or --jobs), trains from epoch 0: its own result, at full cost."""
    if (run / CHECKPOINT).is_file():
        return True, None
    if branch is None:
        return False, None
    kept = kept_checkpoint(*branch)
    if is_finished(branch[0]) and kept.is_file():
        try:
            saved = load_checkpoint(kept)["config"].get("threads")
        except RunDirError as exc:  # cut by a kill during an older, non-atomic copy, or damaged since
            print(f"{run}: cannot branch from {kept} ({exc}): training from epoch 0", file=log, flush=True)
            return False, None
        if threads is not None and saved is not None and int(saved) != threads:
            print(f"{run}: {branch[0]} was trained on {saved} CPU thread(s), this run uses {threads}, which computes "
                  f"other numbers: training from epoch 0", file=log, flush=True)
            return False, None
        return False, branch
    print(f"{run}: {branch[0]} has no checkpoint after {branch[1]} epochs to branch from: training from epoch 0",
          file=log, flush=True)
    return False, None


def _ready(item: tuple, waiting: set[Path]) -> bool:
    """A branch waits until its source run is no longer pending or running (then finished, or failed)."""
    branch = item[2]
    return branch is None or branch[0] not in waiting


def _run_in_processes(todo: list[tuple[Path, TrainConfig, tuple[Path, int] | None]], jobs: int, log: TextIO) -> None:
    """Train each (run dir, config, branch) in a ``python -m tsla train`` subprocess, ``jobs`` at a time, each pinned
    to its own cores, a branch after its source; a run's output goes to RUN/train.log. Raises ``TrainingError``
    naming the runs that failed."""
    free = _core_sets(jobs)
    _prepare_folders(todo)
    for run, cfg, _ in todo:  # a run begun earlier with other settings is refused here, as in one process
        if (run / CONFIG).is_file():
            _check_same_config(run, cfg, "an unfinished run")
    pending, running, failed, stopped, forwarded = list(todo), [], [], [], False
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
                code = proc.returncode
                if code == 0:
                    state = "finished"
                elif code in (128 + signal.SIGINT, 128 + signal.SIGTERM):  # tsla's exit after saving a checkpoint
                    state = f"stopped by {signal.Signals(code - 128).name}, checkpoint saved (re-run compare to resume)"
                    stopped.append(run)
                else:
                    state = f"FAILED (exit {code}, see {run / 'train.log'})"
                    failed.append(run)
                print(f"{state}: {run}", file=log, flush=True)
    if stop:
        raise Interrupted(f"stopped by {stop.name}; every run saved a checkpoint: re-run the same compare to resume",
                          stop.signum)
    if failed:
        raise TrainingError(f"{len(failed)} run(s) failed, first {failed[0]}: see its train.log, fix, and re-run compare")
    if stopped:  # stopped from outside this compare (a signal sent to the run's own process)
        raise TrainingError(f"{len(stopped)} run(s) were stopped by a signal after saving a checkpoint, first "
                            f"{stopped[0]}: re-run the same compare to resume them")


def _refresh_unstarted(run: Path, cfg: TrainConfig) -> None:
    """A run folder holding only the config.yaml an earlier compare wrote (its run never reached a checkpoint, e.g.
    a branch refused for another thread count) gets this compare's config, where the two differ only in the fields a
    resume may change (``threads``, ``device``, ...); other differences are refused as for any begun run. Without
    this, a rerun with the advised ``--threads`` would train with the stale config.yaml, or be refused by it."""
    if not (run / CONFIG).is_file() or any((run / name).exists() for name in (CHECKPOINT, "metrics.jsonl", SUMMARY)):
        return
    if (run / CONFIG).read_text(errors="replace") != config_text(cfg):
        _check_same_config(run, cfg, "an unfinished run")
        atomic_write_text(run / CONFIG, config_text(cfg))


def _prepare_folders(todo: list) -> None:
    """Create every run's folder, config.yaml and train.log before any run starts, so that a read-only or full
    file system is one clear error (``RunDirError``) rather than a traceback with runs already started."""
    for run, cfg, *_ in todo:
        try:
            run.mkdir(parents=True, exist_ok=True)
            _refresh_unstarted(run, cfg)
            if not (run / CONFIG).is_file():
                atomic_write_text(run / CONFIG, config_text(cfg))  # the subprocess reads its resolved config here
            (run / "train.log").touch()
        except OSError as exc:
            raise RunDirError(f"cannot write to {run} ({exc.strerror or exc}): free some disk space or choose a "
                              f"writable --out") from None


def _launch(pending: list, free: list, running: list, log: TextIO) -> None:
    """Start pending runs while cores are free, each pinned to one free core set; a branch waits for its source."""
    while free:
        waiting = {item[0] for item in pending} | {r for _, r, _ in running}
        ready = [item for item in pending if _ready(item, waiting)]
        if not ready:
            return
        pending.remove(ready[0])
        run, cfg, branch = ready[0]
        cores = free.pop(0)
        run.mkdir(parents=True, exist_ok=True)
        if not (run / CONFIG).is_file():
            atomic_write_text(run / CONFIG, config_text(cfg))  # the subprocess reads its resolved config here
        cmd = [sys.executable, "-m", "tsla", "train", "--config", str(run / CONFIG), "--out", str(run), "--no-progress"]
        resume, branch = _start_from(run, branch, log, cfg.threads)
        if resume:
            cmd.append("--resume")
        elif branch is not None:
            cmd += ["--branch-from", str(branch[0]), "--at-epoch", str(branch[1])]
        env = {**os.environ, "OMP_NUM_THREADS": str(len(cores)), "MKL_NUM_THREADS": str(len(cores))}
        pin = (lambda c=cores: os.sched_setaffinity(0, c)) if hasattr(os, "sched_setaffinity") else None
        with open(run / "train.log", "a") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=pin)
        print(f"started {run} on cores {cores}", file=log, flush=True)
        running.append((proc, run, cores))


def _report_saving(grid: list[GridRun], log: TextIO) -> None:
    """Print the epochs the grid trains with branching against training every run from epoch 0."""
    full = sum(run.cfg.epochs for run in grid)
    saved = sum(run.branch[1] for run in grid if run.branch)
    if saved:
        print(f"branching: {len(grid)} runs train {full - saved} epochs instead of {full} "
              f"({100 * (full - saved) / full:.0f}%): each run that shares its first S epochs with another (TSLA(S) with "
              f"its LSR run) starts from it after S epochs", file=log)


def train_grid(mine: list[GridRun], out: Path, jobs: int = 1, progress_bar: bool = True,
               log: TextIO | None = None) -> None:
    """Train (or skip, or resume) ``mine`` in ``out``: a finished run with this config is skipped, an interrupted
    one resumed, a branch started from its source's kept checkpoint; ``jobs`` > 1 trains in pinned subprocesses.
    Raises ``RunDirError`` (a run there with other settings), ``TrainingError`` and ``Interrupted``."""
    from ..data import build_data

    log = log or sys.stdout
    todo: list[tuple[Path, TrainConfig, tuple[Path, int] | None]] = []
    for i, item in enumerate(mine, 1):
        run = out / item.name
        if is_finished(run):
            _check_same_config(run, item.cfg)
            print(f"[{i}/{len(mine)}] {run}: finished, skipped", file=log)
        else:
            todo.append((run, item.cfg, (out / item.branch[0], item.branch[1]) if item.branch else None))
    branches = {g.name: g.branch for g in mine if g.branch}
    depth = {item.name: branch_order(branches, item.name) for item in mine}
    todo.sort(key=lambda t: depth[t[0].name])  # sources before their branches (a stable sort keeps the grid order)
    _report_saving(mine, log)
    if jobs > 1 and todo:
        _run_in_processes(todo, jobs, log)
    else:
        data = None
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
) -> dict[str, Any] | None:
    """Train (or skip, or resume) this shard's runs of the grid in ``out``; with a single shard, write the report."""
    from ..report import format_markdown, write_report

    log = log or sys.stdout
    _check_not_a_run(out)
    if jobs > 1 and not any("threads" in values for _, values in layers):  # each process its share of the cores
        layers = [*layers, ("--jobs", {"threads": min(len(cores) for cores in _core_sets(jobs))})]
    grid = plan(layers, methods, seeds, thetas)
    index, count = shard
    mine = select_shard(grid, shard)
    if dry_run:
        for item in mine:
            cfg = item.cfg
            extra = f", theta_after {cfg.theta_after:g}" if cfg.theta_after else ""
            extra += f", {cfg.epochs} epochs" + (f", from {item.branch[0]} after {item.branch[1]}" if item.branch else "")
            print(f"{out / item.name}: {cfg.method}, theta {cfg.theta:g}, seed {cfg.seed}{extra}", file=log)
        return None
    train_grid(mine, out, jobs, progress_bar, log)
    if count > 1:
        print(f"shard {index}/{count} done; once every shard has finished: tsla report {out}", file=log)
        return None
    summary = write_report([out])
    print(format_markdown(summary), file=log)
    print(f"wrote {out / 'summary.md'}, {out / 'summary.json'}, {out / 'curves.png'} and {out / 'reliability.png'}",
          file=log)
    return summary
