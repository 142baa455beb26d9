"""``train(cfg, out)``: wires data, model, loss, schedules and the epoch loop, and writes the run directory.

RUN/config.yaml      the fully resolved config
RUN/metrics.jsonl    one JSON line per epoch (train_*, val_*, test_*, diag_* metrics, lr, theta, timings; with
                     --label-noise or --val-size the memorisation instruments, :mod:`tsla.training.memorisation`)
RUN/checkpoint.pt    everything needed to continue: model, optimizer, scaler, the metrics so far, the tsla-auto
                     decision, and, after a SIGINT/SIGTERM, the position inside the interrupted epoch (atomic)
RUN/summary.json     final and best metrics, wall time, git commit, library versions (when finished)
RUN/best.pt          with --val-size: the weights of the best validation epoch (:mod:`tsla.training.best_val`)

Every random draw of an epoch (data order, augmentation) is seeded by (seed, epoch) rather than carried over in RNG
state, so a run resumed from any checkpoint, even one written in mid-epoch, ends exactly like an uninterrupted run
(on CPU; GPU kernels may not be bit-reproducible).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from ..smoothing.auto_switch import auto_switch_for
from .best_val import BEST_WEIGHTS, BestVal  # noqa: F401 (BestVal: public here)
from .branch import branch_state
from .checkpoint import CHECKPOINT, CONFIG, METRICS, SUMMARY, append_jsonl, atomic_write_text
from .checkpoint import load_checkpoint
from .checkpoint import save_checkpoint, write_metrics
from ..config import TrainConfig, config_text
from ..data import DataBundle, build_data
from ..theory.diagnose_epoch import diagnostic_setup
from ..distributed import DistInfo, any_rank, barrier, broadcast_buffers, check_batch, init_distributed
from .engine import EpochProgressState, evaluate, train_one_epoch
from .epoch_eval import evaluate_epoch
from .run_progress import CHECKPOINT_FORMAT, Best, checkpoint_state, restore  # noqa: F401 (CHECKPOINT_FORMAT: public here)
from .env_info import git_commit, versions
from ..errors import Interrupted, RunDirError
from .lr_schedule import make_lr_schedule
from .progress import EpochProgress, describe_schedule, format_epoch
from ..data.fingerprint import check_fingerprint
from .rundir import claim_run_dir, clear_run, has_run
from .run_files import (RESUME_FREE_FIELDS, _check_resume_config, _keep, _keeps, _killed_before_first_checkpoint,
                        _repair_kept, _save, _write, config_differences, load_run_config)  # noqa: F401 (public here)
from .threads import check_same_threads, using_threads
from .runtime import build_context, resolve_device, seed_everything
from ..smoothing.scheduler import SmoothingScheduler
from ..smoothing.methods import format_table
from .signals import StopRequest
from .tensorboard import TensorBoardLog, check_folder as check_tensorboard_folder, require_tensorboard

def train(
    cfg: TrainConfig,
    out: str | Path,
    resume: bool = False,
    data: DataBundle | None = None,
    log: TextIO | None = None,
    progress_bar: bool = True,
    overwrite: bool = False,
    branch: tuple[Path, int] | None = None,
    tensorboard: bool = False,
    until: int | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train as ``cfg`` says, writing the run directory ``out``; return the summary (also in RUN/summary.json).

    ``resume`` continues from RUN/checkpoint.pt (its config must match ``cfg`` except for the fields in
    ``RESUME_FREE_FIELDS``); ``branch=(RUN, S)`` starts from RUN's checkpoint kept after S epochs (see
    :mod:`tsla.training.branch`); ``overwrite`` deletes an earlier run's files first; with neither, a directory that
    already holds a run (or a config.yaml of another) is refused, so no result is ever lost. Nothing is written
    before the data and the model are ready. ``data`` lets a caller that trains several runs load it once.
    ``tensorboard`` also writes each epoch's metrics to RUN/tensorboard (:mod:`tsla.training.tensorboard`).

    Raises ``RunDirError`` (unusable or locked run directory), ``DataError``, ``ConfigError``, ``TrainingError``
    (non-finite loss, checkpoint not writable) and ``Interrupted`` (SIGINT/SIGTERM, after saving a checkpoint).

    ``until=E`` pauses the run after E epochs (counted like ``--epochs``), its checkpoint saved and no summary
    written: it returns ``{"status": "paused", "next_epoch": E}``, and a later call with ``resume=True`` continues it
    exactly (``tsla select``'s successive halving stops runs at a milestone this way).

    ``on_epoch(record)`` is called after each epoch, once its checkpoint and metrics line are written (the record is
    that line's content): what lets :mod:`tsla.experiments.trials.builtin` hand the trainer to ``tsla.select``.
    """
    log = log or sys.stdout
    out = Path(out)
    if tensorboard:
        require_tensorboard()  # before anything is written
        check_tensorboard_folder(out)
    info, device_name = init_distributed(cfg.device)  # a no-op outside torchrun
    device = resolve_device(device_name)
    if info.enabled:
        check_batch(cfg.batch_size, info)
        if not info.is_primary:  # only rank 0 prints and writes
            log, progress_bar = open(os.devnull, "w"), False
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite contradict each other: choose one")
    # claimed (created and locked) before any check: two runs started into one fresh --out at once cannot both pass
    with claim_run_dir(out, info.is_primary), using_threads(cfg.threads):
        return _start(cfg, out, resume, overwrite, branch, data, log, progress_bar, info, device, tensorboard, until,
                      on_epoch)


def _start(cfg, out, resume, overwrite, branch, data, log, progress_bar, info: DistInfo, device,
           tensorboard=False, until: int | None = None, on_epoch=None) -> dict[str, Any]:
    """The checks and set-up of :func:`train`, in the run directory it has claimed."""
    state = None
    if resume and _killed_before_first_checkpoint(out, cfg):
        print(f"tsla: {out} has no checkpoint yet (stopped during epoch 0): starting it from the beginning", file=log)
        resume, overwrite = False, True
    if resume and not (out / CHECKPOINT).exists() and (out / METRICS).is_file() and not (out / SUMMARY).exists():
        raise RunDirError(f"--resume: {out} holds metrics but no checkpoint (a branch stopped before its first "
                          f"checkpoint): run its 'tsla train --branch-from ... --at-epoch ...' command again, which "
                          f"starts it afresh")
    if branch is not None and not resume and not overwrite and _killed_before_first_checkpoint(out, cfg, True):
        if (out / METRICS).exists():
            print(f"tsla: {out} is this branch stopped before its first checkpoint: starting it again", file=log)
        overwrite = True
    if branch is not None:
        if resume:
            raise RunDirError("--branch-from starts a new run: drop --resume (a branched run resumes from its own "
                              "checkpoint, with --resume and without --branch-from)")
        state = branch_state(branch[0], branch[1], cfg, RESUME_FREE_FIELDS)
    if resume:
        state = load_checkpoint(out / CHECKPOINT)
        check_same_threads(state["config"], cfg.threads, out / CHECKPOINT)
        _check_resume_config(state["config"], cfg, out / CHECKPOINT)
    elif has_run(out, cfg) and not overwrite:
        # a branch resumes from its own checkpoint: --resume beside --branch-from is refused (above)
        how = ("continue it with 'tsla train --out {0} --resume' (without --branch-from and --at-epoch)".format(out)
               if branch is not None else "add --resume to continue it")
        raise RunDirError(f"{out} already holds a run or a config.yaml: {how}, --overwrite to replace it, or choose "
                          f"another --out")
    if data is None:
        data = build_data(cfg, device, info.rank, info.world_size)
    # a branch is checked against its source, and the message names the source, not the new folder
    check_fingerprint(state or {}, data.fingerprint, branch[0] if branch is not None else out, data.eval_fingerprint)
    ctx, prior = build_context(cfg, data, device, info.enabled)
    if info.is_primary:  # only now, with data and model in hand, are the run's files written
        if overwrite:
            clear_run(out)
        _write(out, CONFIG, lambda: atomic_write_text(out / CONFIG, config_text(cfg)))
    barrier()
    return _run(cfg, out, ctx, prior, data, state, log, progress_bar, info, tensorboard, until, on_epoch)


def _run(cfg, out, ctx, prior, data, state, log, progress_bar, info: DistInfo, tensorboard=False,
         until: int | None = None, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The epoch loop of :func:`train`, once the run directory is ours. Files are written by the primary rank."""
    schedule = cfg.schedule()
    # tsla-auto: the AutoSwitch decides (and, resumed, keeps its history and decision)
    smoothing = SmoothingScheduler(schedule, auto=auto_switch_for(cfg, schedule, state))
    lr_at = make_lr_schedule(cfg.lr_schedule, cfg.lr, cfg.epochs, tuple(cfg.milestones), cfg.lr_gamma)
    primary = info.is_primary
    progress = restore(state, ctx, cfg, data, out, primary, log)
    start_epoch = progress.start_epoch

    def save(next_epoch: int, mid_epoch: EpochProgressState | None = None) -> None:
        _save(out, checkpoint_state(progress, ctx, cfg, data, smoothing, next_epoch, mid_epoch))

    print(f"tsla: {cfg.method}: {describe_schedule(schedule, cfg.epochs)}; {cfg.dataset}, {cfg.model}, "
          f"seed {cfg.seed}, device {ctx.device}", file=log)
    print(format_table(smoothing.theta_at, cfg.epochs, lr_at), file=log)
    diag_set = diagnostic_setup(cfg, data, ctx.prepare) if cfg.diagnose_every else None
    bar = EpochProgress(progress_bar)
    board = TensorBoardLog(out, start_epoch) if tensorboard and primary else None
    progress.started = time.perf_counter()
    if primary and state is not None and state.get("branching"):
        # the branch's own checkpoint first, then its metrics (the source's epochs): killed at any point after this,
        # it resumes; killed before, it holds no metrics and simply starts again
        save(start_epoch)
        _write(out, METRICS, lambda: write_metrics(out / METRICS, progress.history))
    with StopRequest() as stop:
        should_stop = (lambda: any_rank(bool(stop), ctx.device)) if info.enabled else stop
        for epoch in range(start_epoch, cfg.epochs if until is None else min(until, cfg.epochs)):
            epoch_start = time.perf_counter()
            lr, theta = lr_at(epoch), smoothing.theta_at(epoch)
            for group in ctx.optimizer.param_groups:
                group["lr"] = lr
            seed_everything(cfg.seed * 1_000_003 + epoch)  # any global-RNG draw (data workers) depends on the epoch
            on_step = bar.start(epoch, cfg.epochs, data.train.num_images)
            carry = progress.carry
            try:
                batches = data.train.epoch(cfg.seed, epoch, start_batch=carry.step if carry else 0)
                train_metrics = train_one_epoch(ctx, batches, theta, epoch, on_step, should_stop, carry)
            finally:
                bar.close()
            progress.carry = None
            if "stopped" in train_metrics:
                at = train_metrics["stopped"]
                if primary:
                    save(epoch, at)
                barrier()
                signum = stop.signum or signal.SIGTERM  # a rank stopped because another was signalled
                raise Interrupted(f"stopped by {signal.Signals(signum).name} in epoch {epoch} after step {at.step - 1}; "
                                  f"checkpoint saved: continue with 'tsla train --out {out} --resume'", signum)
            broadcast_buffers(ctx.module)  # every rank evaluates rank 0's model, the one the checkpoint holds
            # next_lr: the lr of the next epoch, for tsla-auto's phase-plateau rule (acts at a decay)
            record = {"epoch": epoch, "lr": lr, "next_lr": lr_at(epoch + 1), "theta": theta, **train_metrics}
            record = evaluate_epoch(cfg, ctx, data, epoch, record, progress, info, diag_set, prior, smoothing, log)
            record["epoch_seconds"] = time.perf_counter() - epoch_start
            if record.get("test_top1", -1.0) > progress.best.test_top1:
                progress.best = Best(record["test_top1"], epoch)
            progress.history.append(record)
            if primary:
                save(epoch + 1)
                if _keeps(cfg, epoch + 1):
                    _keep(out, epoch + 1)
                # after the checkpoint, which holds every record for a resume
                _write(out, METRICS, lambda r=record: append_jsonl(out / METRICS, r))
                if board is not None:
                    board.epoch(record)
            print(format_epoch(record, cfg.epochs), file=log, flush=True)
            if on_epoch is not None:  # after every file of the epoch is written: it may stop the run here
                on_epoch(record)

    if board is not None:
        board.close()
    if until is not None and max(start_epoch, until) < cfg.epochs:  # paused: the checkpoint holds everything
        return {"status": "paused", "next_epoch": max(start_epoch, until)}
    best_val = progress.best_val
    best_val_summary = _finish_best_val(cfg, out, ctx, data, best_val, primary) if best_val is not None else None
    best = progress.best
    summary = {
        "status": "finished",
        "method": cfg.method,
        "theta": cfg.theta,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "switch_epoch": smoothing.switch_epoch,
        "final": progress.history[-1] if progress.history else {},
        # never evaluated on test (--test-every 0): no number rather than the placeholder -1
        "best": {"test_top1": best.test_top1, "epoch": best.epoch} if best.epoch >= 0 else {"test_top1": None,
                                                                                            "epoch": None},
        "best_val": best_val_summary,
        "final_calibration": progress.calibration,
        "wall_seconds": progress.wall_seconds(),
        "git_commit": git_commit(),
        "versions": versions(),
        "device": str(ctx.device),
        "world_size": info.world_size,
        "branched_from": progress.branched_from,
        "config": cfg.to_dict(),
    }
    if primary:
        _write(out, SUMMARY, lambda: atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2) + "\n"))
    barrier()
    return summary


def _finish_best_val(cfg, out, ctx, data, best_val: BestVal, primary: bool) -> dict[str, Any] | None:
    """Write RUN/best.pt and evaluate the test set once on the best validation epoch's weights (not with
    ``--test-every 0``); the model is left with its final weights. Returns summary.json's ``best_val``."""
    if best_val.epoch < 0:
        return None
    if primary:
        weights = {"model": best_val.model, "epoch": best_val.epoch, "val_top1": best_val.val_top1,
                   "val_nll": best_val.val_nll, "config": cfg.to_dict()}
        _write(out, BEST_WEIGHTS, lambda: save_checkpoint(out / BEST_WEIGHTS, weights))
    test = None
    if cfg.test_every > 0:
        model = ctx.module
        final = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(best_val.model)
        test = evaluate(ctx, data.test.epoch(cfg.seed, best_val.epoch))
        model.load_state_dict(final)
    return best_val.summary(test)
