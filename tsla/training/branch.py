"""Branching: a new run that starts from another run's checkpoint kept after S epochs, with another schedule.

TSLA(S) is LSR for its first S epochs, so a grid of LSR and TSLA(S1), TSLA(S2), ... of one seed and theta need not
train the shared prefix again: ``tsla train --branch-from LSR_RUN --at-epoch S --method tsla@S --out NEW`` loads the
LSR run's model, optimizer, metrics and position after S epochs (kept by ``--keep-epochs S``) and trains epochs
S.. with the new schedule. Every random draw of an epoch is seeded by (seed, epoch), so on one machine a branched run
ends bit-identical to the same run trained from scratch (tested), at the cost of the epochs after S only.

A branch must be the same experiment as its source up to S: its config may differ only in the method (and in the
fields that change where or how fast a run trains, not what it computes), and its schedule must give the source's
theta at every epoch before S.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .checkpoint import load_checkpoint
from ..config import TrainConfig
from ..errors import ConfigError, RunDirError
from ..smoothing.schedules import parse_method
from .threads import check_same_threads

# fields a branch may change besides those a resume may change: the schedule and which checkpoints are kept
BRANCH_FREE_FIELDS = ("method", "keep_epochs", "keep_checkpoints")


def kept_checkpoint(run: Path, finished_epochs: int) -> Path:
    """Where a run keeps its checkpoint after ``finished_epochs`` epochs (``--keep-epochs``/``--keep-checkpoints``):
    ``RUN/checkpoints/epoch-<E>.pt`` with E = finished_epochs - 1, the last epoch it contains (epochs from 0)."""
    return Path(run) / "checkpoints" / f"epoch-{finished_epochs - 1}.pt"


def branch_state(source: Path, at_epoch: int, cfg: TrainConfig, free_fields: tuple[str, ...]) -> dict[str, Any]:
    """The training state to continue ``cfg`` from: ``source``'s checkpoint after ``at_epoch`` epochs, checked to be
    this very experiment up to that epoch. ``free_fields`` are the fields a resume may change (device, ...).

    Raises ``RunDirError`` (no such checkpoint, or a config that differs) and ``ConfigError`` (a schedule that
    disagrees with the source's before ``at_epoch``, or tsla-auto, whose switch depends on the run itself).
    """
    source = Path(source)
    if at_epoch < 1:
        raise ConfigError(f"--at-epoch {at_epoch}: give the number of epochs to take from the source, at least 1")
    path = kept_checkpoint(source, at_epoch)
    if not path.is_file():
        raise RunDirError(f"--branch-from {source}: no checkpoint kept after {at_epoch} epochs ({path} is missing): "
                          f"train the source with --keep-epochs {at_epoch}")
    state = load_checkpoint(path)
    if int(state["next_epoch"]) != at_epoch or state.get("mid_epoch"):
        raise RunDirError(f"{path} holds the state after {state['next_epoch']} epochs, not {at_epoch}: it is not a "
                          f"checkpoint kept by --keep-epochs; train the source again")
    saved = state["config"]
    check_same_threads(saved, cfg.threads, path, "--branch-from")  # another count computes other numbers
    if "tsla-auto" in (cfg.method, saved.get("method")):
        raise ConfigError("--branch-from: tsla-auto decides its switch from its own run; train it from the start")
    current = cfg.to_dict()
    differ = [k for k, v in current.items() if k not in free_fields + BRANCH_FREE_FIELDS and saved.get(k) != v]
    if differ:
        k = differ[0]
        raise RunDirError(f"--branch-from {source} was trained with {k}={saved.get(k)!r}, not {current[k]!r} "
                          f"({', '.join(differ)} differ): a branch may change --method only")
    if at_epoch > cfg.epochs:
        raise ConfigError(f"--at-epoch {at_epoch} is beyond --epochs {cfg.epochs}")
    old = parse_method(saved["method"], saved["theta"], saved["epochs"])
    new = parse_method(cfg.method, cfg.theta, cfg.epochs)
    for epoch in range(at_epoch):
        if old(epoch) != new(epoch):
            raise ConfigError(f"--method {cfg.method} gives theta {new(epoch):g} at epoch {epoch}, the source's "
                              f"{saved['method']} gave {old(epoch):g}: a branch must agree with its source before "
                              f"--at-epoch {at_epoch}")
    state["config"] = current
    state["branched_from"] = {"run": str(source), "at_epoch": at_epoch}
    state["branching"] = True  # this start only: not saved in the branch's own checkpoints
    return state


def branch_points(method: str, theta: float, epochs: int) -> int | None:
    """The epoch S at which ``method`` leaves LSR at ``theta`` for good (TSLA(S): ``tsla@S`` with 0 < S < epochs),
    or None when the method is not an LSR prefix followed by one-hot training."""
    if not method.startswith("tsla@"):
        return None
    schedule = parse_method(method, theta, epochs)
    drop = getattr(schedule, "drop_epoch", None)
    return drop if drop is not None and 0 < drop < epochs else None


def _experiment(cfg: TrainConfig) -> tuple:
    """The config without the fields a branch may change: equal for a TSLA run and the LSR run it can branch from."""
    return tuple(sorted((k, repr(v)) for k, v in cfg.to_dict().items() if k not in BRANCH_FREE_FIELDS))


def plan_branches(configs: dict[str, TrainConfig]) -> tuple[dict[str, TrainConfig], dict[str, tuple[str, int]]]:
    """For a comparison grid ``{run name: config}``, which runs can branch from which: every TSLA(S) whose grid also
    holds the LSR run of the same config (same seed, theta, everything but the method) branches from it after S
    epochs. Returns the configs with ``keep_epochs`` added to those LSR runs, and ``{tsla run: (lsr run, S)}``."""
    lsr = {_experiment(cfg): name for name, cfg in configs.items() if cfg.method == "lsr"}
    branches: dict[str, tuple[str, int]] = {}
    keep: dict[str, set[int]] = {}
    for name, cfg in configs.items():
        at = branch_points(cfg.method, cfg.theta, cfg.epochs)
        if at is None:
            continue
        key = _experiment(cfg)
        if key in lsr:
            branches[name] = (lsr[key], at)
            keep.setdefault(lsr[key], set()).add(at)
    out = dict(configs)
    for name, epochs in keep.items():
        cfg = configs[name]
        out[name] = TrainConfig(**{**cfg.to_dict(), "keep_epochs": sorted(set(cfg.keep_epochs) | epochs)})
    return out, branches
