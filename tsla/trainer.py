"""``train(cfg, out)``: wires data, model, loss, schedules and the epoch loop, and writes the run directory.

RUN/config.yaml      the fully resolved config
RUN/metrics.jsonl    one JSON line per epoch (train_*, test_* metrics, lr, theta, timings)
RUN/checkpoint.pt    model, optimizer and scaler state after the last finished epoch (atomic)
RUN/summary.json     final and best metrics, wall time, git commit, library versions (when finished)

Every random draw of an epoch (data order, augmentation) is seeded by (seed, epoch), so resuming from a checkpoint
gives the same result as an uninterrupted run.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from .checkpoint import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    SUMMARY,
    append_jsonl,
    atomic_write_text,
    load_checkpoint,
    save_checkpoint,
    write_metrics,
)
from .config import TrainConfig, build_config, config_text, read_yaml
from .auto_switch import should_switch, unbiased_grad_norm2
from .data import DataBundle, build_data
from .diagnostics import gradient_noise
from .engine import StepContext, evaluate, train_one_epoch
from .env_info import git_commit, versions
from .errors import ConfigError, RunDirError
from .loss import LabelSmoothingCrossEntropy
from .lr_schedule import make_lr_schedule
from .models import build_model
from .priors import resolve_prior
from .progress import EpochProgress, format_epoch
from .schedules import AutoTwoStage, format_table, parse_method, switch_epoch

CHECKPOINT_FORMAT = 1
# fields that may differ between a checkpoint and a --resume: they change where and how fast, not what is computed
RESUME_FREE_FIELDS = ("device", "eval_batch_size", "data_root", "download")


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU. Raises ``ConfigError`` for a device that is not there."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name!r} is not supported: use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"--device {name}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def has_run(out: Path, cfg: TrainConfig | None = None) -> bool:
    """Whether ``out`` holds something a fresh run would overwrite: a checkpoint, metrics, a summary, or a
    config.yaml other than the one this run would write (a user's own file, or another run's)."""
    if any((out / name).exists() for name in (CHECKPOINT, METRICS, SUMMARY)):
        return True
    config = out / CONFIG
    if not config.exists():
        return False
    return cfg is None or config.read_text() != config_text(cfg)


def is_finished(out: Path) -> bool:
    return (out / SUMMARY).is_file()


@dataclass
class _Best:
    test_top1: float = -1.0
    epoch: int = -1


def _check_resume_config(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    current = cfg.to_dict()
    differ = [k for k in current if k not in RESUME_FREE_FIELDS and saved.get(k) != current[k]]
    if differ:
        k = differ[0]
        raise RunDirError(
            f"--resume: {path} was made with {k}={saved.get(k)!r}, not {current[k]!r} "
            f"({len(differ)} field(s) differ: {', '.join(differ)}); resume with the run's own config.yaml or use a new --out"
        )


def train(
    cfg: TrainConfig,
    out: str | Path,
    resume: bool = False,
    data: DataBundle | None = None,
    log: TextIO | None = None,
    progress_bar: bool = True,
) -> dict[str, Any]:
    """Train as ``cfg`` says, writing the run directory ``out``; return the summary (also in RUN/summary.json).

    ``resume`` continues from RUN/checkpoint.pt (its config must match ``cfg`` except for the fields in
    ``RESUME_FREE_FIELDS``); without it, a directory that already holds a run (or a config.yaml of another) is
    refused, so no result is ever overwritten. Nothing is written before the data and the model are ready. ``data`` lets a caller that trains several runs on the same data load it once.

    Raises ``RunDirError`` for an unusable run directory, ``DataError`` for missing data, ``ConfigError`` for a
    bad setting, ``TrainingError`` when the loss becomes non-finite.
    """
    log = log or sys.stdout
    out = Path(out)
    device = resolve_device(cfg.device)
    schedule = parse_method(cfg.method, cfg.theta, cfg.epochs)
    lr_at = make_lr_schedule(cfg.lr_schedule, cfg.lr, cfg.epochs, tuple(cfg.milestones), cfg.lr_gamma)

    state = None
    if resume:
        state = load_checkpoint(out / CHECKPOINT)
        _check_resume_config(state["config"], cfg, out / CHECKPOINT)
    elif has_run(out, cfg):
        raise RunDirError(f"{out} already holds a run or a config.yaml: add --resume to continue it, or choose another --out")

    seed_everything(cfg.seed)
    if data is None:
        data = build_data(cfg, device)
    prior = resolve_prior(cfg.prior, data.train_targets, data.num_classes)
    model = build_model(cfg.model, data.num_classes, data.in_channels, cfg.pretrained).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
    )
    scaler = torch.amp.GradScaler(device.type) if cfg.amp == "fp16" else None
    ctx = StepContext(
        model=model,
        optimizer=optimizer,
        # labels were range-checked when the data was loaded: skip the per-step check that would sync a GPU
        loss_fn=LabelSmoothingCrossEntropy(prior, check_targets=device.type == "cpu").to(device),
        device=device,
        amp=cfg.amp,
        channels_last=cfg.channels_last,
        scaler=scaler,
    )
    try:  # only now, with data and model in hand, does the run directory get written
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / CONFIG, config_text(cfg))
    except OSError as exc:
        raise RunDirError(f"cannot write to {out} ({exc.strerror}): choose a writable --out") from None

    start_epoch, best, wall_before, history, calibration = 0, _Best(), 0.0, [], {}
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch = int(state["next_epoch"])
        best = _Best(**state["best"])
        wall_before = float(state["wall_seconds"])
        history = list(state["history"])
        calibration = state.get("calibration", {})
        if isinstance(schedule, AutoTwoStage):  # a decision already taken is kept
            schedule = replace(schedule, switch_epoch=state.get("auto_switch_epoch"))
        write_metrics(out / METRICS, history)  # exactly the epochs the checkpoint covers
        print(f"resuming {out} at epoch {start_epoch} of {cfg.epochs}", file=log)

    print(f"tsla: {cfg.method} (theta={cfg.theta}) on {cfg.dataset}, {cfg.model}, seed {cfg.seed}, device {device}", file=log)
    print(format_table(schedule, cfg.epochs, lr_at), file=log)
    diag_set = None
    if cfg.diagnose_every:
        n = min(cfg.diagnose_examples, len(data.train_targets))
        diag_x, diag_y = data.diagnostic_examples(n, cfg.subset_seed + 1)
        diag_set = (ctx.prepare(diag_x), diag_y)
    progress = EpochProgress(progress_bar)
    started = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        epoch_start = time.perf_counter()
        lr, theta = lr_at(epoch), schedule(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        seed_everything(cfg.seed * 1_000_003 + epoch)  # any global-RNG draw (data workers) depends on the epoch only
        on_step = progress.start(epoch, cfg.epochs, data.train.num_images)
        try:
            train_metrics = train_one_epoch(ctx, data.train.epoch(cfg.seed, epoch), theta, epoch, on_step)
        finally:
            progress.close()
        test_metrics = evaluate(ctx, data.test.epoch(cfg.seed, epoch))
        calibration = test_metrics.pop("test_calibration")  # per-bin lists: kept for the summary, not every line
        record = {"epoch": epoch, "lr": lr, "theta": theta, **train_metrics, **test_metrics}
        if diag_set is not None and (epoch + 1) % cfg.diagnose_every == 0:
            diag = gradient_noise(model, *diag_set, prior=prior, theta=cfg.theta, batch_size=32)
            record.update({f"diag_{k}": v for k, v in diag.items()})
            record["diag_grad_norm2_unbiased"] = unbiased_grad_norm2(diag)
        if isinstance(schedule, AutoTwoStage):
            if schedule.switch_epoch is None:
                switch, reason = should_switch(
                    [*history, record], cfg.auto_rule, cfg.auto_window, cfg.auto_tolerance, cfg.auto_factor
                )
                if switch:
                    schedule = replace(schedule, switch_epoch=epoch + 1)
                    print(f"tsla-auto: smoothing off from epoch {epoch + 1}: {reason}", file=log)
            record["switch_epoch"] = schedule.switch_epoch
        record["epoch_seconds"] = time.perf_counter() - epoch_start
        if record["test_top1"] > best.test_top1:
            best = _Best(record["test_top1"], epoch)
        history.append(record)
        save_checkpoint(
            out / CHECKPOINT,
            {
                "format": CHECKPOINT_FORMAT,
                "next_epoch": epoch + 1,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else {},
                "best": {"test_top1": best.test_top1, "epoch": best.epoch},
                "wall_seconds": wall_before + time.perf_counter() - started,
                "config": cfg.to_dict(),
                "history": history,
                "calibration": calibration,
                "auto_switch_epoch": switch_epoch(schedule) if isinstance(schedule, AutoTwoStage) else None,
            },
        )
        if cfg.keep_checkpoints and (epoch + 1) % cfg.keep_checkpoints == 0:
            (out / "checkpoints").mkdir(exist_ok=True)
            shutil.copyfile(out / CHECKPOINT, out / "checkpoints" / f"epoch-{epoch}.pt")
        append_jsonl(out / METRICS, record)  # after the checkpoint, which holds every record for a resume
        print(format_epoch(record, cfg.epochs), file=log, flush=True)

    records = history
    summary = {
        "status": "finished",
        "method": cfg.method,
        "theta": cfg.theta,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "switch_epoch": switch_epoch(schedule),
        "final": records[-1] if records else {},
        "best": {"test_top1": best.test_top1, "epoch": best.epoch},
        "final_calibration": calibration,
        "wall_seconds": wall_before + time.perf_counter() - started,
        "git_commit": git_commit(),
        "versions": versions(),
        "device": str(device),
        "config": cfg.to_dict(),
    }
    atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return summary


def load_run_config(out: Path) -> TrainConfig:
    """The resolved config a run directory was made with."""
    path = out / CONFIG
    if not path.is_file():
        raise RunDirError(f"{out} holds no run ({CONFIG} is missing): check the path")
    return build_config((str(path), read_yaml(path)))
