"""A selection run's files under ``out/<run>/``, each written atomically, the checkpoints bound to their run:

    trial.json          the run's identity (candidate, seed, epochs, trunk): a rerun with another request is refused
    reports.jsonl       one JSON line per reported epoch (the loop's numbers, the epoch, theta); rewritten on resume
                        from the checkpoint's history, so a cut or edited line never decides anything
    trial_state.pt      the last checkpoint the loop reported, with the history of reports (checksummed)
    trial_best.pt       the checkpoint of the best validation epoch so far (highest val_top1, ties to the earliest)
    kept/after-S.pt     a trunk's state after S epochs, kept for the branches that start at S
    trial_summary.json  written when the run has reported its last epoch

Checkpoints are ``torch.save`` dictionaries read back with ``weights_only=True``; each carries a SHA-256 of its
contents and the run's name and epoch, checked on loading.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import torch

from ...errors import RunDirError
from ...training.checkpoint import CHECKSUM, atomic_copy, atomic_write_text, save_checkpoint, state_checksum

IDENTITY = "trial.json"
REPORTS = "reports.jsonl"
STATE = "trial_state.pt"
BEST = "trial_best.pt"
SUMMARY = "trial_summary.json"
KEPT = "kept"


def kept_path(run: Path, epoch: int) -> Path:
    """Where a trunk keeps its state after ``epoch`` epochs (the start of the branches at S = epoch)."""
    return run / KEPT / f"after-{epoch}.pt"


def write_json(path: Path, value: Any) -> None:
    try:
        atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True, allow_nan=True) + "\n")
    except OSError as exc:
        remedy = ("a folder is in its place: move it away" if exc.errno == errno.EISDIR
                  else "free some disk space or choose another out")
        raise RunDirError(f"cannot write {path} ({exc.strerror or exc}): {remedy}") from None


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} is unreadable or not JSON ({type(exc).__name__}): delete that run's folder to "
                          f"train it again") from None


def save_state(path: Path, run: str, epoch: int, checkpoint: Any, history: list[dict[str, Any]],
               extra: dict[str, Any] | None = None) -> None:
    """Save the loop's checkpoint of ``run`` after ``epoch`` (counted from 0) with the reports so far."""
    state = {"run": run, "epoch": epoch, "checkpoint": checkpoint, "history": history, **(extra or {})}
    try:
        save_checkpoint(path, state)
    except OSError as exc:
        raise RunDirError(f"cannot write {path} ({exc.strerror or exc}): free some disk space or choose another "
                          f"out") from None


def load_state(path: Path, run: str | tuple[str, ...], epoch: int | None = None) -> dict[str, Any]:
    """A checkpoint saved by :func:`save_state` for ``run`` (or one of the runs named: a branch's best checkpoint
    may be its trunk's, from before the switch) and ``epoch``, when given, its checksum checked. Raises
    ``RunDirError`` naming the file when it is missing, damaged, another run's or another epoch's."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing: delete that run's folder to train it again") from None
    except Exception as exc:  # noqa: BLE001 - damaged bytes make torch.load raise almost any type
        raise RunDirError(f"{path} is truncated or corrupt ({type(exc).__name__}): delete that run's folder to "
                          f"train it again") from None
    if not isinstance(state, dict) or state.get(CHECKSUM) != state_checksum(state):
        raise RunDirError(f"{path} is damaged (its contents do not match its checksum): delete that run's folder "
                          f"to train it again")
    runs = (run,) if isinstance(run, str) else run
    if state.get("run") not in runs or (epoch is not None and state.get("epoch") != epoch):
        run = " or ".join(repr(r) for r in runs)
        raise RunDirError(f"{path} belongs to run {state.get('run')!r} after epoch {state.get('epoch')!r}, not to "
                          f"{run}{'' if epoch is None else f' after epoch {epoch}'}: it was copied or moved "
                          f"there; delete that run's folder to train it again")
    return state


def copy_state(source: Path, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_copy(source, target)
    except OSError as exc:
        raise RunDirError(f"cannot write {target} ({exc.strerror or exc}): free some disk space or choose another "
                          f"out") from None


def write_reports(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """reports.jsonl rewritten from ``history`` (the checksummed truth)."""
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in history)
    try:
        atomic_write_text(run_dir / REPORTS, text)
    except OSError as exc:
        raise RunDirError(f"cannot write {run_dir / REPORTS} ({exc.strerror or exc}): free some disk space") from None
