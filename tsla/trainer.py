"""``train(cfg, out)``: wires data, model, loss, schedules and the epoch loop, and writes the run directory.

RUN/config.yaml      the fully resolved config
RUN/metrics.jsonl    one JSON line per epoch (train_*, test_*, diag_* metrics, lr, theta, timings)
RUN/checkpoint.pt    everything needed to continue: model, optimizer, scaler, the metrics so far, the tsla-auto
                     decision, and, after a SIGINT/SIGTERM, the position inside the interrupted epoch (atomic)
RUN/summary.json     final and best metrics, wall time, git commit, library versions (when finished)

Every random draw of an epoch (data order, augmentation) is seeded by (seed, epoch) rather than carried over in RNG
state, so a run resumed from any checkpoint, even one written in mid-epoch, ends exactly like an uninterrupted run
(on CPU; GPU kernels may not be bit-reproducible).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from .auto_switch import should_switch, unbiased_grad_norm2
from .checkpoint import CHECKPOINT, CONFIG, METRICS, SUMMARY, append_jsonl, atomic_write_text, load_checkpoint
from .checkpoint import save_checkpoint, write_metrics
from .config import TrainConfig, build_config, config_text, read_yaml
from .data import DataBundle, build_data, diagnostic_set
from .diagnostics import gradient_noise
from .distributed import DistInfo, any_rank, barrier, broadcast_buffers, broadcast_int, check_batch, init_distributed
from .engine import EpochProgressState, evaluate, train_one_epoch
from .env_info import git_commit, versions
from .errors import Interrupted, RunDirError, TrainingError
from .lr_schedule import make_lr_schedule
from .progress import EpochProgress, format_epoch
from .rundir import RunLock, clear_run, has_run
from .runtime import build_context, resolve_device, seed_everything
from .schedules import AutoTwoStage, format_table, parse_method, switch_epoch
from .signals import StopRequest

CHECKPOINT_FORMAT = 1
# fields that may differ between a checkpoint and a --resume: they change where and how fast, not what is computed
RESUME_FREE_FIELDS = ("device", "eval_batch_size", "data_root", "download")


@dataclass
class _Best:
    test_top1: float = -1.0
    epoch: int = -1


def config_differences(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """The fields (outside ``RESUME_FREE_FIELDS``) where ``cfg`` differs from a saved config dict."""
    return [k for k, v in cfg.to_dict().items() if k not in RESUME_FREE_FIELDS and saved.get(k) != v]


def _check_resume_config(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    current = cfg.to_dict()
    differ = config_differences(saved, cfg)
    if differ:
        k = differ[0]
        raise RunDirError(
            f"--resume: {path} was made with {k}={saved.get(k)!r}, not {current[k]!r} "
            f"({len(differ)} field(s) differ: {', '.join(differ)}); resume with the run's own config.yaml or use a new --out"
        )


def _killed_before_first_checkpoint(out: Path, cfg: TrainConfig) -> bool:
    """A run that wrote its config.yaml (this very config) but was stopped before its first checkpoint."""
    return (not (out / CHECKPOINT).exists() and not (out / METRICS).exists() and not (out / SUMMARY).exists()
            and (out / CONFIG).is_file() and (out / CONFIG).read_text() == config_text(cfg))


def _write(out: Path, what: str, write) -> None:
    """Run ``write()``; a full or read-only disk becomes one clear error instead of a traceback."""
    try:
        write()
    except OSError as exc:
        raise TrainingError(f"cannot write {what} in {out} ({exc.strerror or exc}): free some disk space or fix the "
                            f"permissions, then resume; the last checkpoint is kept") from None


def _save(out: Path, state: dict[str, Any]) -> None:
    try:
        save_checkpoint(out / CHECKPOINT, state)
    except OSError as exc:
        raise TrainingError(
            f"cannot write the checkpoint in {out} ({exc.strerror or exc}): free some disk space and resume; "
            f"the previous checkpoint is kept"
        ) from None


def train(
    cfg: TrainConfig,
    out: str | Path,
    resume: bool = False,
    data: DataBundle | None = None,
    log: TextIO | None = None,
    progress_bar: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train as ``cfg`` says, writing the run directory ``out``; return the summary (also in RUN/summary.json).

    ``resume`` continues from RUN/checkpoint.pt (its config must match ``cfg`` except for the fields in
    ``RESUME_FREE_FIELDS``); ``overwrite`` deletes an earlier run's files first; with neither, a directory that
    already holds a run (or a config.yaml of another) is refused, so no result is ever lost. Nothing is written
    before the data and the model are ready. ``data`` lets a caller that trains several runs load it once.

    Raises ``RunDirError`` (unusable or locked run directory), ``DataError``, ``ConfigError``, ``TrainingError``
    (non-finite loss, checkpoint not writable) and ``Interrupted`` (SIGINT/SIGTERM, after saving a checkpoint).
    """
    log = log or sys.stdout
    out = Path(out)
    info, device_name = init_distributed(cfg.device)  # a no-op outside torchrun
    device = resolve_device(device_name)
    if info.enabled:
        check_batch(cfg.batch_size, info)
        if not info.is_primary:  # only rank 0 prints and writes
            log, progress_bar = open(os.devnull, "w"), False
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite contradict each other: choose one")
    state = None
    if resume and _killed_before_first_checkpoint(out, cfg):
        print(f"tsla: {out} has no checkpoint yet (stopped during epoch 0): starting it from the beginning", file=log)
        resume, overwrite = False, True
    if resume:
        state = load_checkpoint(out / CHECKPOINT)
        _check_resume_config(state["config"], cfg, out / CHECKPOINT)
    elif has_run(out, cfg) and not overwrite:
        raise RunDirError(
            f"{out} already holds a run or a config.yaml: add --resume to continue it, --overwrite to replace it, "
            f"or choose another --out"
        )
    if data is None:
        data = build_data(cfg, device, info.rank, info.world_size)
    ctx, prior = build_context(cfg, data, device, info.enabled)
    lock = RunLock(out)
    if info.is_primary:
        try:  # only now, with data and model in hand, does the run directory get written
            out.mkdir(parents=True, exist_ok=True)
            lock.__enter__()
        except OSError as exc:
            raise RunDirError(f"cannot write to {out} ({exc.strerror}): choose a writable --out") from None
    try:
        if info.is_primary:
            if overwrite:
                clear_run(out)
            _write(out, CONFIG, lambda: atomic_write_text(out / CONFIG, config_text(cfg)))
        barrier()
        return _run(cfg, out, ctx, prior, data, state, log, progress_bar, info)
    finally:
        lock.__exit__()


def _run(cfg, out, ctx, prior, data, state, log, progress_bar, info: DistInfo) -> dict[str, Any]:
    """The epoch loop of :func:`train`, once the run directory is ours. Files are written by the primary rank."""
    schedule = parse_method(cfg.method, cfg.theta, cfg.epochs)
    lr_at = make_lr_schedule(cfg.lr_schedule, cfg.lr, cfg.epochs, tuple(cfg.milestones), cfg.lr_gamma)
    model, optimizer, scaler = ctx.module, ctx.optimizer, ctx.scaler
    primary = info.is_primary
    start_epoch, best, wall_before, history, calibration, carry = 0, _Best(), 0.0, [], {}, None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, best = int(state["next_epoch"]), _Best(**state["best"])
        wall_before, history = float(state["wall_seconds"]), list(state["history"])
        calibration = state.get("calibration", {})
        if state.get("mid_epoch"):  # the sums are global: carried by one rank only, as they are summed again
            carry = EpochProgressState(**state["mid_epoch"]) if primary else EpochProgressState(state["mid_epoch"]["step"])
        if isinstance(schedule, AutoTwoStage):  # a decision already taken is kept
            schedule = replace(schedule, switch_epoch=state.get("auto_switch_epoch"))
        if primary:
            write_metrics(out / METRICS, history)  # exactly the epochs the checkpoint covers
        where = f" step {carry.step}" if carry else ""
        print(f"resuming {out} at epoch {start_epoch}{where} of {cfg.epochs}", file=log)

    def checkpoint_state(next_epoch: int, mid_epoch: EpochProgressState | None) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "next_epoch": next_epoch,
            "mid_epoch": asdict(mid_epoch) if mid_epoch else None,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "best": {"test_top1": best.test_top1, "epoch": best.epoch},
            "wall_seconds": wall_before + time.perf_counter() - started,
            "config": cfg.to_dict(),
            "history": history,
            "calibration": calibration,
            "auto_switch_epoch": switch_epoch(schedule) if isinstance(schedule, AutoTwoStage) else None,
        }

    print(f"tsla: {cfg.method} (theta={cfg.theta}) on {cfg.dataset}, {cfg.model}, seed {cfg.seed}, "
          f"device {ctx.device}", file=log)
    print(format_table(schedule, cfg.epochs, lr_at), file=log)
    diag_set = None
    if cfg.diagnose_every:
        diag_x, diag_y = diagnostic_set(cfg, data)
        diag_set = (ctx.prepare(diag_x), diag_y)
    progress = EpochProgress(progress_bar)
    started = time.perf_counter()
    with StopRequest() as stop:
        should_stop = (lambda: any_rank(bool(stop), ctx.device)) if info.enabled else stop
        for epoch in range(start_epoch, cfg.epochs):
            epoch_start = time.perf_counter()
            lr, theta = lr_at(epoch), schedule(epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            seed_everything(cfg.seed * 1_000_003 + epoch)  # any global-RNG draw (data workers) depends on the epoch
            on_step = progress.start(epoch, cfg.epochs, data.train.num_images)
            try:
                batches = data.train.epoch(cfg.seed, epoch, start_batch=carry.step if carry else 0)
                train_metrics = train_one_epoch(ctx, batches, theta, epoch, on_step, should_stop, carry)
            finally:
                progress.close()
            carry = None
            if "stopped" in train_metrics:
                at = train_metrics["stopped"]
                if primary:
                    _save(out, checkpoint_state(epoch, at))
                barrier()
                signum = stop.signum or signal.SIGTERM  # a rank stopped because another was signalled
                raise Interrupted(f"stopped by {signal.Signals(signum).name} in epoch {epoch} after step {at.step - 1}; "
                                  f"checkpoint saved: continue with 'tsla train --out {out} --resume'", signum)
            broadcast_buffers(model)  # every rank evaluates rank 0's model, the one the checkpoint holds
            test_metrics = evaluate(ctx, data.test.epoch(cfg.seed, epoch))
            if not math.isfinite(test_metrics["test_loss"]):
                raise TrainingError(f"the test loss became non-finite after epoch {epoch}: lower --lr or turn off "
                                    f"--amp fp16; the last good checkpoint is kept")
            calibration = test_metrics.pop("test_calibration")  # per-bin lists: for the summary, not every line
            record = {"epoch": epoch, "lr": lr, "theta": theta, **train_metrics, **test_metrics}
            if primary and diag_set is not None and (epoch + 1) % cfg.diagnose_every == 0:  # logged by rank 0 only
                diag = gradient_noise(model, *diag_set, prior=prior, theta=cfg.theta)
                record.update({f"diag_{k}": v for k, v in diag.items()})
                record["diag_grad_norm2_unbiased"] = unbiased_grad_norm2(diag)
            if isinstance(schedule, AutoTwoStage):
                if schedule.switch_epoch is None:
                    rule = (cfg.auto_rule, cfg.auto_window, cfg.auto_tolerance, cfg.auto_factor)
                    switch, reason = should_switch([*history, record], *rule) if primary else (False, "")
                    # rank 0 decides (its diagnostics), every rank follows
                    if broadcast_int(epoch + 1 if switch else None, ctx.device) is not None:
                        schedule = replace(schedule, switch_epoch=epoch + 1)
                        print(f"tsla-auto: smoothing off from epoch {epoch + 1}: {reason}", file=log)
                record["switch_epoch"] = schedule.switch_epoch
            record["epoch_seconds"] = time.perf_counter() - epoch_start
            if record["test_top1"] > best.test_top1:
                best = _Best(record["test_top1"], epoch)
            history.append(record)
            if primary:
                _save(out, checkpoint_state(epoch + 1, None))
                if cfg.keep_checkpoints and (epoch + 1) % cfg.keep_checkpoints == 0:
                    kept = out / "checkpoints" / f"epoch-{epoch}.pt"
                    _write(out, str(kept), lambda k=kept: (k.parent.mkdir(exist_ok=True),
                                                           shutil.copyfile(out / CHECKPOINT, k)))
                # after the checkpoint, which holds every record for a resume
                _write(out, METRICS, lambda r=record: append_jsonl(out / METRICS, r))
            print(format_epoch(record, cfg.epochs), file=log, flush=True)

    summary = {
        "status": "finished",
        "method": cfg.method,
        "theta": cfg.theta,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "switch_epoch": switch_epoch(schedule),
        "final": history[-1] if history else {},
        "best": {"test_top1": best.test_top1, "epoch": best.epoch},
        "final_calibration": calibration,
        "wall_seconds": wall_before + time.perf_counter() - started,
        "git_commit": git_commit(),
        "versions": versions(),
        "device": str(ctx.device),
        "world_size": info.world_size,
        "config": cfg.to_dict(),
    }
    if primary:
        _write(out, SUMMARY, lambda: atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2) + "\n"))
    barrier()
    return summary


def load_run_config(out: Path) -> TrainConfig:
    """The resolved config a run directory was made with."""
    path = out / CONFIG
    if not path.is_file():
        raise RunDirError(f"{out} holds no run ({CONFIG} is missing): check the path")
    return build_config((str(path), read_yaml(path)))
