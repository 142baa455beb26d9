"""Where a run stands between epochs: what a checkpoint restores (weights, optimizer, the metrics so far, the best
epochs, a position inside an interrupted epoch) and what the next checkpoint saves. One small object instead of a
dozen loop variables, so that the epoch loop of :mod:`tsla.training.trainer` reads as a loop."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .best_val import BestVal
from .checkpoint import METRICS, write_metrics
from .engine import EpochProgressState
from .run_files import _repair_kept

CHECKPOINT_FORMAT = 2  # 2: with a checksum (tsla.training.checkpoint) and the data fingerprint


@dataclass
class Best:
    """The epoch of the best test top-1 so far (-1: never tested)."""

    test_top1: float = -1.0
    epoch: int = -1


@dataclass
class RunProgress:
    """The state of a run between epochs (restored from a checkpoint, or fresh)."""

    start_epoch: int = 0
    best: Best = field(default_factory=Best)
    wall_before: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)
    carry: EpochProgressState | None = None
    branched_from: dict[str, Any] | None = None
    """{"run", "at_epoch"} of a run started by --branch-from."""
    best_val: BestVal | None = None
    """The best validation epoch's weights; None without a validation set, or when its record is incomplete."""
    started: float = field(default_factory=time.perf_counter)

    def wall_seconds(self) -> float:
        return self.wall_before + time.perf_counter() - self.started


def restore(state: dict[str, Any] | None, ctx, cfg, data, out: Path, primary: bool, log: TextIO) -> RunProgress:
    """A fresh :class:`RunProgress`, or the one ``state`` (a checked checkpoint) holds, with the model, optimizer and
    scaler of ``ctx`` loaded from it; a resumed run's metrics.jsonl is rewritten to exactly the checkpoint's epochs."""
    progress = RunProgress(best_val=BestVal() if data.val is not None else None)
    if state is None:
        return progress
    ctx.module.load_state_dict(state["model"])
    ctx.optimizer.load_state_dict(state["optimizer"])
    if ctx.scaler is not None and state.get("scaler"):
        ctx.scaler.load_state_dict(state["scaler"])
    progress.start_epoch, progress.best = int(state["next_epoch"]), Best(**state["best"])  # types checked on load
    progress.wall_before, progress.history = float(state["wall_seconds"]), list(state["history"])
    progress.calibration = state.get("calibration", {})
    if state.get("mid_epoch"):  # the sums are global: carried by one rank only, as they are summed again
        mid = state["mid_epoch"]
        progress.carry = EpochProgressState(**mid) if primary else EpochProgressState(mid["step"])
    if primary and not state.get("branching"):  # a branch writes them once its own checkpoint exists
        write_metrics(out / METRICS, progress.history)  # exactly the epochs the checkpoint covers
        _repair_kept(out, cfg, state, log)
    progress.branched_from = state.get("branched_from")
    if state.get("best_val") is not None:
        progress.best_val = BestVal.from_state(state["best_val"])
    elif progress.best_val is not None and progress.start_epoch > 0:  # a checkpoint from before best.pt existed
        progress.best_val = None
        print("tsla: the checkpoint predates best-validation tracking: summary.json will have no best_val", file=log)
    if state.get("branching"):
        print(f"branching {out} from {progress.branched_from['run']} after {progress.start_epoch} epochs", file=log)
    else:
        where = f" step {progress.carry.step}" if progress.carry else ""
        print(f"resuming {out} at epoch {progress.start_epoch}{where} (epochs 0-{cfg.epochs - 1})", file=log)
    return progress


def checkpoint_state(progress: RunProgress, ctx, cfg, data, smoothing, next_epoch: int,
                     mid_epoch: EpochProgressState | None) -> dict[str, Any]:
    """Everything a resume needs after ``next_epoch`` epochs (and, after a signal, the position in the epoch)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "next_epoch": next_epoch,
        "mid_epoch": asdict(mid_epoch) if mid_epoch else None,
        "model": ctx.module.state_dict(),
        "optimizer": ctx.optimizer.state_dict(),
        "scaler": ctx.scaler.state_dict() if ctx.scaler is not None else {},
        "best": {"test_top1": progress.best.test_top1, "epoch": progress.best.epoch},
        "wall_seconds": progress.wall_seconds(),
        "config": cfg.to_dict(),
        "history": progress.history,
        "calibration": progress.calibration,
        "auto_switch": smoothing.auto.state_dict() if smoothing.auto else None,
        "branched_from": progress.branched_from,
        "data_fingerprint": data.fingerprint,
        "best_val": progress.best_val.state_dict() if progress.best_val is not None else None,
        "eval_fingerprint": data.eval_fingerprint,
    }
