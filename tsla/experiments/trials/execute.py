"""Running one planned run through the user's ``train_fn``: fresh, resumed from its own last checkpoint, or branched
from its trunk's state at S; skipped when finished. A run paused at a halving milestone resumes exactly later."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

from ...errors import RunDirError, TrainingError
from . import store
from .plan import PlannedRun
from .trial import Pause, Trial


def check_identity(run_dir: Path, identity: dict[str, Any]) -> None:
    """Refuse a folder that holds another request's run (another candidate, seed or length) in one line."""
    path = run_dir / store.IDENTITY
    if not path.is_file():
        return
    saved = store.read_json(path)
    if not isinstance(saved, dict):
        raise RunDirError(f"{path} is not a run's identity (a JSON object): delete {run_dir} to train that run again")
    if saved != identity:
        diff = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
        raise RunDirError(f"{run_dir} holds a run of another request ({', '.join(diff)} differ: "
                          f"{ {k: saved.get(k) for k in diff} } there, { {k: identity.get(k) for k in diff} } now): "
                          f"use another out, or delete that folder to train it again")


def finished(run_dir: Path) -> bool:
    return (run_dir / store.SUMMARY).is_file()


def history(out: Path, run: PlannedRun) -> list[dict[str, Any]]:
    """A run's reports, from its checksummed state (never from reports.jsonl, which only mirrors it)."""
    path = out / run.name / store.STATE
    if path.is_file() or finished(out / run.name):  # a finished run without its state: refused, naming the file
        return list(store.load_state(path, run.name)["history"])
    return []


def execute(train_fn: Callable[[Trial], Any], run: PlannedRun, out: Path, epochs: int, keep: list[int],
            criterion: str, until: int | None = None) -> int:
    """Train ``run`` to the end (or to epoch ``until``, pausing there) through ``train_fn``. Returns the epochs the
    loop reported in this call. Raises ``RunDirError`` for a folder of another request or damaged files,
    ``TrainingError`` when ``train_fn`` returns before reporting every epoch, and whatever ``train_fn`` raises."""
    run_dir = out / run.name
    identity = run.identity(epochs)
    check_identity(run_dir, identity)
    if finished(run_dir):
        return 0
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / store.IDENTITY).is_file():
        store.write_json(run_dir / store.IDENTITY, identity)
    if (run_dir / store.STATE).is_file():  # resumed: its own last checkpoint
        state = store.load_state(run_dir / store.STATE, run.name)
        start, checkpoint, past, best = state["epoch"] + 1, state["checkpoint"], list(state["history"]), state["best"]
        repair_derived(run_dir, run, state, keep)
        store.write_reports(run_dir, past)  # a cut or edited reports.jsonl is rewritten from the checksummed state
    elif run.trunk is not None:  # a branch: its trunk's state after S epochs
        s = run.branch_at
        if not store.kept_path(out / run.trunk, s).is_file() and finished(out / run.trunk):
            raise RunDirError(f"{out / run.trunk} no longer keeps its state after {s} epochs (pruned once the "
                              f"branches planned with it had finished), which {run.name} starts from: delete "
                              f"{out / run.trunk} to train the trunk again, or use another out")
        kept = store.load_state(store.kept_path(out / run.trunk, s), run.trunk, s - 1)
        start, checkpoint, past, best = s, kept["checkpoint"], list(kept["history"])[:s], kept["best"]
        inherited = out / run.trunk / store.KEPT / f"best-after-{s}.pt"
        if best["epoch"] >= 0 and inherited.is_file():
            store.copy_state(inherited, run_dir / store.BEST)
        store.write_reports(run_dir, past)
    else:
        start, checkpoint, past, best = 0, None, [], None
        for name in (store.REPORTS, store.BEST):
            (run_dir / name).unlink(missing_ok=True)
    if until is not None and start >= until:
        return 0
    trial = Trial(run, epochs, run_dir, start, checkpoint, past, keep, criterion, until, best)
    try:
        train_fn(trial)
    except Pause:
        return trial.reported
    if trial.next_epoch != epochs:
        raise TrainingError(f"train_fn returned after reporting epochs {start}..{trial.next_epoch - 1} of run "
                            f"{run.name} (0..{epochs - 1}): it must call trial.report(epoch, ...) for every epoch in "
                            f"range(trial.start_epoch, trial.epochs); rerun the same select to continue it")
    store.write_json(run_dir / store.SUMMARY, {"status": "finished", "name": run.name, "epochs": epochs,
                                                "best": trial._best, "reported_last_call": trial.reported})
    return trial.reported


def best_owner(run: PlannedRun, best_epoch: int) -> str:
    """The run whose state a best checkpoint of ``run`` at ``best_epoch`` is: a branch's best before its switch epoch
    is its trunk's (inherited at the branch's start)."""
    return run.trunk if run.trunk is not None and best_epoch < run.branch_at else run.name


def repair_derived(run_dir: Path, run: PlannedRun, state: dict[str, Any], keep: list[int]) -> None:
    """Write again what ``Trial.report`` derives from the state after saving it, when a kill fell in between: the
    best checkpoint (the state's own epoch was the best), and for a trunk its state after S epochs (and the best so
    far with it) that the branches at S start from. Raises ``RunDirError`` when trial_best.pt holds another epoch
    than the reports' best and the state cannot replace it."""
    epoch, best = state["epoch"], state["best"]
    best_path = run_dir / store.BEST
    if best["epoch"] >= 0:
        held = None
        if best_path.is_file():
            saved = store.load_state(best_path, tuple(r for r in (run.name, run.trunk) if r))
            held = (saved["run"], saved["epoch"])
        if held != (best_owner(run, best["epoch"]), best["epoch"]):
            if best["epoch"] != epoch:
                raise RunDirError(f"{best_path} holds {held!r}, not the best validation epoch {best['epoch']} of "
                                  f"the reports: delete {run_dir} to train that run again")
            store.copy_state(run_dir / store.STATE, best_path)
    if epoch + 1 in keep:
        if not store.kept_path(run_dir, epoch + 1).is_file():
            store.copy_state(run_dir / store.STATE, store.kept_path(run_dir, epoch + 1))
        inherited = run_dir / store.KEPT / f"best-after-{epoch + 1}.pt"
        if best_path.is_file() and not inherited.is_file():
            store.copy_state(best_path, inherited)


def prune_kept(out: Path, trunk: str, branches: list[PlannedRun]) -> None:
    """Delete a trunk's kept states once every branch that starts from them has finished."""
    if all(finished(out / b.name) for b in branches):
        kept = out / trunk / store.KEPT
        if kept.is_dir():
            shutil.rmtree(kept)
