"""Training a grid's runs in ``python -m tsla train`` subprocesses, ``--jobs`` at a time, each pinned to its own
cores, a branch after its source; and the checks that let a rerun reuse what an earlier one trained.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from ..config import TrainConfig, config_text
from ..data.fingerprint import check_fingerprint
from ..errors import ConfigError, Interrupted, RunDirError, TrainingError
from ..training.branch import kept_checkpoint
from ..training.checkpoint import CHECKPOINT, CONFIG, SUMMARY, atomic_write_text, load_checkpoint
from ..training.rundir import is_finished
from ..training.signals import StopRequest
from ..training.run_files import config_differences, load_run_config


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


def check_reused_data(run: Path, data) -> None:
    """A run a rerun reuses without training it (finished, or paused by halving) must have been trained and
    evaluated on the data found now (``data``, a :class:`tsla.data.DataBundle` built from this request's config):
    the fingerprints stored in its checkpoint are compared, as ``tsla train --resume`` does. Raises ``DataError``
    (other data: its scores would come from the images it was trained on) or ``RunDirError`` (no checkpoint)."""
    if not (run / CHECKPOINT).is_file():
        raise RunDirError(f"{run / CHECKPOINT} is missing, so the data {run} was trained on cannot be checked: "
                          f"train it again (delete the folder {run}) or restore the file")
    check_fingerprint(load_checkpoint(run / CHECKPOINT), data.fingerprint, run, data.eval_fingerprint)


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


def _child_setup(cores: list[int], parent: int):
    """What a run's process does before it starts: pin itself to ``cores`` and, on Linux, ask for a SIGTERM when
    this process dies. Killed with SIGKILL, a compare (or select) cannot pass its stop on; without this its runs
    trained on as orphans, and a rerun meanwhile found their folders locked, or finished under it ("already holds a
    run"). With it, each run saves a checkpoint and stops, and the rerun resumes it exactly."""
    def setup() -> None:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cores)
        if sys.platform.startswith("linux"):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the compare died before the request took effect
                os.kill(os.getpid(), signal.SIGTERM)

    return setup


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
        with open(run / "train.log", "a") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    preexec_fn=_child_setup(cores, os.getpid()))
        print(f"started {run} on cores {cores}", file=log, flush=True)
        running.append((proc, run, cores))
