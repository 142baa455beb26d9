"""Branching: a new run that starts from another run's checkpoint kept after S epochs, with another schedule.

TSLA(S) is LSR for its first S epochs, so a grid of LSR and TSLA(S1), TSLA(S2), ... of one seed and theta need not
train the shared prefix again: ``tsla train --branch-from LSR_RUN --at-epoch S --method tsla@S --out NEW`` loads the
LSR run's model, optimizer, metrics and position after S epochs (kept by ``--keep-epochs S``) and trains epochs
S.. with the new schedule. Every random draw of an epoch is seeded by (seed, epoch), so on one machine a branched run
ends bit-identical to the same run trained from scratch (tested), at the cost of the epochs after S only.

The same holds for every run that shares a prefix with another: TSLA(S) ending on a negative theta (from LSR),
``reverse@S`` (from the baseline), a longer run of the same schedule (``--epochs 35 --method tsla@30`` from the
30-epoch LSR). A branch must be the same experiment as its source up to S: its config may differ only in the
schedule fields (method, theta, theta_after, epochs, allow_negative) and in the fields that change where or how fast a
run trains, not what it computes; and up to S it must train with the source's theta and learning rate and evaluate
the test set at the same epochs (:func:`departure`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .checkpoint import CONFIG, SUMMARY, load_checkpoint
from .lr_schedule import make_lr_schedule
from ..config import TrainConfig, field_default, read_yaml
from ..errors import ConfigError, RunDirError
from .threads import check_same_threads

# fields a branch may change besides those a resume may change: the schedule (checked epoch by epoch up to the branch
# point), the run length (the lr schedule and the test epochs are checked the same way) and which checkpoints are kept
BRANCH_FREE_FIELDS = ("method", "theta", "theta_after", "allow_negative", "epochs", "keep_epochs",
                      "keep_checkpoints")


def kept_checkpoint(run: Path, finished_epochs: int) -> Path:
    """Where a run keeps its checkpoint after ``finished_epochs`` epochs (``--keep-epochs``/``--keep-checkpoints``):
    ``RUN/checkpoints/epoch-<E>.pt`` with E = finished_epochs - 1, the last epoch it contains (epochs from 0)."""
    return Path(run) / "checkpoints" / f"epoch-{finished_epochs - 1}.pt"


def tested_after(cfg: TrainConfig, epoch: int) -> bool:
    """Whether a run evaluates the test set after ``epoch`` (epochs from 0): every ``test_every`` epochs and after the
    last one; never with ``test_every`` 0. The trainer's rule, shared so that branching checks what it runs."""
    return cfg.test_every > 0 and ((epoch + 1) % cfg.test_every == 0 or epoch + 1 == cfg.epochs)


def _first_difference(source: TrainConfig, cfg: TrainConfig, limit: int) -> tuple[int, str] | None:
    """The first epoch < ``limit`` at which ``cfg`` trains otherwise than ``source`` — another theta, another
    learning rate (also the one recorded as next_lr at the epoch before), or another test evaluation — with the
    reason in words; None if they agree on every epoch below ``limit``."""
    old, new = source.schedule(), cfg.schedule()
    lr_old, lr_new = (make_lr_schedule(c.lr_schedule, c.lr, c.epochs, tuple(c.milestones), c.lr_gamma)
                      for c in (source, cfg))
    for epoch in range(limit):
        if old(epoch) != new(epoch):
            return epoch, (f"--method {cfg.method} gives theta {new(epoch):g} at epoch {epoch}, the source's "
                           f"{source.method} gave {old(epoch):g}")
        if lr_old(epoch + 1) != lr_new(epoch + 1) or lr_old(epoch) != lr_new(epoch):
            at = epoch if lr_old(epoch) != lr_new(epoch) else epoch + 1
            return epoch, (f"the learning rate at epoch {at} is {lr_new(at):g}, the source's was {lr_old(at):g} "
                           f"(a cosine schedule depends on --epochs)")
        if tested_after(source, epoch) != tested_after(cfg, epoch):
            return epoch, f"the test set is evaluated after epoch {epoch} in one run only (--test-every, --epochs)"
    return None


def _same_experiment(saved: dict[str, Any], cfg: TrainConfig, free_fields: tuple[str, ...]) -> list[str]:
    """The fields outside ``free_fields`` and ``BRANCH_FREE_FIELDS`` where ``cfg`` differs from a saved config (a
    field saved before it existed counts as its default)."""
    return [k for k, v in cfg.to_dict().items()
            if k not in free_fields + BRANCH_FREE_FIELDS and saved.get(k, field_default(k)) != v]


def departure(source: TrainConfig, cfg: TrainConfig) -> int | None:
    """The largest S at which ``cfg`` can branch from ``source``: the first epoch where it trains otherwise (its
    schedule's switch), provided the two are one experiment and 0 < S < cfg.epochs and S <= source.epochs; None
    otherwise (also for tsla-auto, whose switch depends on its own run)."""
    if "tsla-auto" in (cfg.method, source.method) or _same_experiment(source.to_dict(), cfg, ()):
        return None
    limit = min(source.epochs, cfg.epochs)
    found = _first_difference(source, cfg, limit)
    at = limit if found is None else found[0]
    return at if 0 < at < cfg.epochs else None
def branch_state(source: Path, at_epoch: int, cfg: TrainConfig, free_fields: tuple[str, ...]) -> dict[str, Any]:
    """The training state to continue ``cfg`` from: ``source``'s checkpoint after ``at_epoch`` epochs, checked to be
    this very experiment up to that epoch. ``free_fields`` are the fields a resume may change (device, ...).

    Raises ``RunDirError`` (no such checkpoint, or a config that differs) and ``ConfigError`` (a schedule, learning
    rate or test epoch that disagrees with the source's before ``at_epoch``, or tsla-auto, whose switch depends on
    the run itself).
    """
    source = Path(source)
    if at_epoch < 1:
        raise ConfigError(f"--at-epoch {at_epoch}: give the number of epochs to take from the source, at least 1")
    path = kept_checkpoint(source, at_epoch)
    if not path.is_file():
        raise RunDirError(_no_kept_checkpoint(source, at_epoch, path))
    state = load_checkpoint(path)
    if int(state["next_epoch"]) != at_epoch or state.get("mid_epoch"):
        raise RunDirError(f"{path} holds the state after {state['next_epoch']} epochs, not {at_epoch}: it is not a "
                          f"checkpoint kept by --keep-epochs; train the source again")
    saved = state["config"]
    check_same_threads(saved, cfg.threads, path, "--branch-from")  # another count computes other numbers
    if "tsla-auto" in (cfg.method, saved.get("method")):
        raise ConfigError("--branch-from: tsla-auto decides its switch from its own run; train it from the start")
    current = cfg.to_dict()
    differ = _same_experiment(saved, cfg, free_fields)
    if differ:
        k = differ[0]
        raise RunDirError(f"--branch-from {source} was trained with {k}={saved.get(k)!r}, not {current[k]!r} "
                          f"({', '.join(differ)} differ): a branch may change the schedule (--method, --theta, "
                          f"--theta-after, --epochs) only")
    if at_epoch > cfg.epochs:
        raise ConfigError(f"--at-epoch {at_epoch} is beyond --epochs {cfg.epochs}")
    found = _first_difference(TrainConfig(**{**saved, "keep_epochs": [], "keep_checkpoints": 0}), cfg, at_epoch)
    if found is not None:
        raise ConfigError(f"{found[1]}: a branch must agree with its source before --at-epoch {at_epoch}")
    state["config"] = current
    state["branched_from"] = {"run": str(source), "at_epoch": at_epoch}
    state["branching"] = True  # this start only: not saved in the branch's own checkpoints
    return state


def _no_kept_checkpoint(source: Path, at_epoch: int, path: Path) -> str:
    """Why ``source`` holds no checkpoint after ``at_epoch`` epochs, and the remedy that works for that case."""
    try:
        saved = read_yaml(source / CONFIG)
    except ConfigError:
        saved = {}
    epochs, keeps = saved.get("epochs"), saved.get("keep_epochs") or []
    where = f"--branch-from {source}: no checkpoint kept after {at_epoch} epochs ({path} is missing)"
    if isinstance(epochs, int) and epochs < 2:
        return (f"{where}: the source trains {epochs} epoch, too few to branch from (a branch takes at least 1 "
                f"epoch from its source and trains 1 of its own)")
    if isinstance(epochs, int) and at_epoch >= epochs:
        return (f"{where}: the source trains {epochs} epochs, so --at-epoch must lie between 1 and {epochs - 1} "
                f"(a branch trains at least one epoch of its own)")
    if isinstance(keeps, list) and at_epoch in keeps and not (source / SUMMARY).is_file():
        return (f"{where}: the source keeps it once it has trained {at_epoch} epochs, and it has not yet (it is "
                f"running, or was stopped earlier: resume it); branch after that")
    return f"{where}: train the source with --keep-epochs {at_epoch}"


def plan_branches(configs: dict[str, TrainConfig]) -> tuple[dict[str, TrainConfig], dict[str, tuple[str, int]]]:
    """For a comparison grid ``{run name: config}``, which runs can branch from which: each run R branches from the
    run Q of the grid with the largest :func:`departure` S (R trains as Q for S epochs), ties going to a Q of
    constant theta (LSR, the baseline), then to the earlier run of the grid; no run branches from its own branch.
    Every TSLA(S) whose grid holds the LSR run of the same config thus branches from it after S epochs, as before.
    Returns the configs with ``keep_epochs`` added to the sources, and ``{run: (source run, S)}``."""
    names = list(configs)
    groups: dict[tuple, list[str]] = {}  # only runs of one experiment (outside the schedule fields) can share epochs
    for name in names:
        key = tuple(sorted((k, repr(v)) for k, v in configs[name].to_dict().items() if k not in BRANCH_FREE_FIELDS))
        groups.setdefault(key, []).append(name)
    edges = []
    for members in groups.values():
        for r in members:
            for q in members:
                at = None if q == r else departure(configs[q], configs[r])
                if at is not None:
                    constant = configs[q].schedule().switch_epoch is None
                    edges.append((-at, not constant, names.index(q), names.index(r), q, r))
    branches: dict[str, tuple[str, int]] = {}
    for minus_at, _, _, _, q, r in sorted(edges):
        if r in branches:
            continue
        source = q
        while source in branches and source != r:  # no cycle: Q must not descend from R
            source = branches[source][0]
        if source != r:
            branches[r] = (q, -minus_at)
    for r, (q, at) in list(branches.items()):  # a branch keeps no epoch before its own start: go to the run that does
        while q in branches and branches[q][1] >= at:
            q = branches[q][0]
        branches[r] = (q, at)
    keep: dict[str, set[int]] = {}
    for q, at in branches.values():
        keep.setdefault(q, set()).add(at)
    out = dict(configs)
    for name, epochs in keep.items():
        cfg = configs[name]
        out[name] = TrainConfig(**{**cfg.to_dict(), "keep_epochs": sorted(set(cfg.keep_epochs) | epochs)})
    return out, branches


def branch_order(branches: dict[str, tuple[str, int]], name: str) -> int:
    """How many branchings separate ``name`` from a run trained from epoch 0 (sources train before their branches)."""
    depth = 0
    while name in branches:
        name, depth = branches[name][0], depth + 1
    return depth
