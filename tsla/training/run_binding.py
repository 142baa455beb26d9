"""What ties a run folder's files to one another, checked before anything in it is scored or tested.

RUN/checkpoint.pt (checksummed) is the reference: its ``config`` must be the run's config.yaml (outside the fields a
resume may change), its ``history`` every line of RUN/metrics.jsonl and, once the run finished, summary.json's
``final`` record; RUN/best.pt must carry its own checksum and hold exactly the weights and epoch of the checkpoint's
``best_val``. So another run's checkpoint.pt or best.pt copied in, a metrics.jsonl line edited or removed, and a
best.pt left behind by an earlier run of the folder are each refused with one line naming the file, instead of being
scored or tested as this run's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig
from ..errors import RunDirError
from .best_val import BEST_WEIGHTS
from .checkpoint import CHECKPOINT, CHECKSUM, METRICS, SUMMARY, load_checkpoint, state_checksum
from .run_files import config_differences


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON (NaN equals NaN; a tuple equals the list JSON gives back)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _redo(run: Path) -> str:
    return f"write it again from the checkpoint with 'tsla train --out {run} --resume'"


def run_checkpoint(run: Path, cfg: TrainConfig) -> dict[str, Any]:
    """RUN/checkpoint.pt, loaded and checked (:func:`tsla.training.checkpoint.load_checkpoint`), and bound to the run
    whose config is ``cfg``: its config must match ``cfg`` outside the resume-free fields, and, when the run has
    finished, summary.json's ``final`` record must be the last record of its history. Raises ``RunDirError`` naming
    the file."""
    path = run / CHECKPOINT
    if not path.is_file():
        raise RunDirError(f"{path} is missing: the run's weights and history live there; train the run again "
                          f"(tsla train --out {run} --overwrite)")
    state = load_checkpoint(path)
    differ = config_differences(state["config"], cfg)
    if differ:
        k = differ[0]
        raise RunDirError(f"{path} is not this run's checkpoint: it was trained with {k}={state['config'].get(k)!r}, "
                          f"the run's config.yaml says {getattr(cfg, k)!r} (another run's file copied in?): restore "
                          f"the run's own checkpoint.pt, or train the run again with --overwrite")
    try:
        final = json.loads((run / SUMMARY).read_text()).get("final") if (run / SUMMARY).is_file() else None
    except (OSError, ValueError, AttributeError):
        final = None  # an unreadable summary.json is reported where it is read; it decides nothing here
    history = state["history"]
    if isinstance(final, dict) and history and not _same(final, history[-1]):
        raise RunDirError(f"{path} is not this run's checkpoint: its last epoch differs from summary.json's final "
                          f"record (another run's file copied in, or summary.json edited): restore the run's own "
                          f"checkpoint.pt, or train the run again with --overwrite")
    return state


def checked_history(run: Path, state: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-epoch records of RUN/metrics.jsonl, which must be exactly the ``history`` of the run's checkpoint
    ``state`` (checksummed): a line edited, removed, added or cut is ``RunDirError`` naming the first such line and
    how to write the file again."""
    path = run / METRICS
    history = state["history"]
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise RunDirError(f"cannot read {path} ({exc.strerror or exc}): {_redo(run)}") from None
    for i, (line, record) in enumerate(zip(lines, history), 1):
        try:
            same = _same(json.loads(line), record)
        except ValueError:
            same = False
        if not same:
            raise RunDirError(f"{path} line {i} differs from epoch {record.get('epoch')} in the run's checksummed "
                              f"checkpoint (edited or cut?): {_redo(run)}")
    if len(lines) != len(history):
        raise RunDirError(f"{path} has {len(lines)} epoch line(s), the run's checksummed checkpoint {len(history)} "
                          f"(a line removed or added?): {_redo(run)}")
    return list(history)


def load_best(run: Path, state: dict[str, Any]) -> dict[str, Any]:
    """RUN/best.pt, checked against its own checksum (a file without one is refused) and bound to the run's
    checkpoint ``state``: the same epoch and bit-identical weights as its ``best_val``. Raises ``RunDirError``
    naming the file: missing, cut, unchecked, or not this run's best epoch (another run's, or one left behind by an
    earlier run of the folder)."""
    path = run / BEST_WEIGHTS
    if not path.is_file():
        raise RunDirError(f"{path} is missing: only a finished run trained with --val-size has best-validation "
                          f"weights; evaluate its final weights instead")
    try:
        best = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - damaged bytes make torch.load raise almost any type (see load_checkpoint)
        best = None
    if (not isinstance(best, dict) or not isinstance(best.get("model"), dict)
            or best.get(CHECKSUM) != state_checksum(best)):
        raise RunDirError(f"{path} is truncated or corrupt, or lacks its checksum: {_redo(run)}")
    mine = state.get("best_val")
    if mine is None or mine["epoch"] < 0:
        raise RunDirError(f"{path} is not this run's: its checkpoint has no best-validation epoch (a file left by an "
                          f"earlier run of the folder, or copied in): delete it, and evaluate the final weights")
    same = (best.get("epoch") == mine["epoch"] and set(best["model"]) == set(mine["model"])
            and all(isinstance(best["model"][k], torch.Tensor) and best["model"][k].dtype == v.dtype
                    and best["model"][k].shape == v.shape and torch.equal(best["model"][k], v)
                    for k, v in mine["model"].items()))
    if not same:
        raise RunDirError(f"{path} is not this run's best-validation weights (epoch {best.get('epoch')}, the "
                          f"checkpoint's best is epoch {mine['epoch']}; another run's file, or one left by an earlier "
                          f"run of the folder): {_redo(run)}")
    return best
