"""What ``tsla select`` reads back from its run folders and its earlier selection.json: the request a selection
answers, an earlier request's selection.json moved aside once a new request is accepted, each candidate's records
checked against its checksummed checkpoint, and the epochs the runs actually trained.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any, Sequence, TextIO

from ..config import TrainConfig
from ..errors import RunDirError
from ..training.checkpoint import CHECKPOINT, CONFIG, load_checkpoint
from ..training.run_binding import checked_history, run_checkpoint
from ..training.rundir import is_finished
from .grid import GridRun
from .grid_jobs import _check_same_config

SELECTION = "selection.json"


def request_of(thetas: Sequence[float], switch_at: Sequence[int], seeds: Sequence[int], criterion: str, at: str,
               halving: bool, theta_after: Sequence[float] = (), rule: str = "best-mean") -> dict[str, Any]:
    """The request a selection answers, as selection.json records it (``request``)."""
    return {"thetas": [float(t) for t in thetas], "switch_at": [int(s) for s in switch_at],
            "seeds": [int(s) for s in seeds], "criterion": criterion, "at": at, "halving": bool(halving),
            "theta_after": [float(a) for a in theta_after], "rule": rule}


def _earlier_request(path: Path) -> dict[str, Any] | None:
    """The ``request`` an existing selection.json answers; None when it records none (an earlier version) or
    cannot be read."""
    try:
        request = json.loads(path.read_text()).get("request")
    except (OSError, ValueError, AttributeError):
        return None
    return request if isinstance(request, dict) else None


def accept_request(out: Path, grid: Sequence[GridRun], request: dict[str, Any], log: TextIO) -> None:
    """Check that every run folder this request would reuse was made with its settings (``RunDirError`` otherwise,
    before anything is written), then, where ``out`` holds the selection.json of another request (or of an earlier
    version, which recorded none), move it aside to the first free ``selection-earlier-K.json`` and say so: a
    selection.json beside this request's runs is always this request's, never an earlier one that looks current."""
    for run in grid:
        folder = out / run.name
        if (folder / CONFIG).is_file():
            _check_same_config(folder, run.cfg, "a finished run" if is_finished(folder) else "an unfinished run")
    path = out / SELECTION
    if not path.is_file():
        return
    earlier = _earlier_request(path)
    if earlier == request:
        return
    differ = [key for key in request if earlier is None or earlier.get(key) != request[key]]
    moved = _move_aside(path)
    if moved is None:  # moved meanwhile by another shard of this request
        return
    why = (f"it answers another request (its {', '.join(differ)} differ{'s' if len(differ) == 1 else ''})"
           if earlier is not None
           else "it records no request (written by an earlier version of tsla)")
    print(f"moved {path} to {moved}: {why}; this request writes its own", file=log, flush=True)


def _move_aside(path: Path) -> Path | None:
    """Rename ``path`` to the first free ``selection-earlier-K.json`` beside it, never over an existing file (a hard
    link, which fails where the name is taken, then an unlink; a rename where the file system has no hard links).
    Returns the new path, or None when ``path`` was gone already. Raises ``RunDirError`` when it cannot be moved."""
    for k in itertools.count(1):
        moved = path.with_name(f"selection-earlier-{k}.json")
        if moved.exists() or moved.is_symlink():
            continue
        try:
            os.link(path, moved)
        except FileExistsError:  # taken meanwhile
            continue
        except FileNotFoundError:
            return None
        except OSError:
            try:
                path.rename(moved)  # no hard links on this file system; the name was free just now
                return moved
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise RunDirError(f"cannot move the earlier selection {path} aside ({exc.strerror or exc}): move "
                                  f"it yourself, or choose another --out") from None
        path.unlink(missing_ok=True)
        return moved
    return None  # unreachable: itertools.count never ends


def candidate_records(folder: Path, cfg: TrainConfig) -> list[dict[str, Any]]:
    """A finished candidate run's per-epoch records: RUN/metrics.jsonl, checked to be exactly the history of the
    run's own checksummed checkpoint (:mod:`tsla.training.run_binding`), so an edited value or a removed line is
    refused (``RunDirError`` naming the file and how to write it again), never scored."""
    return checked_history(folder, run_checkpoint(folder, cfg))


def epochs_trained_by_runs(out: Path, grid: Sequence[GridRun]) -> int:
    """Epochs the grid's runs actually trained, counted from their checkpoints: each run's epochs so far, less the
    epochs a branch took over from its source (a branch that found no kept checkpoint trained from epoch 0 and counts
    in full; a run that never started counts 0)."""
    total = 0
    for run in grid:
        path = out / run.name / CHECKPOINT
        if path.is_file():
            state = load_checkpoint(path)
            source = state.get("branched_from")
            total += int(state["next_epoch"]) - (int(source["at_epoch"]) if isinstance(source, dict) else 0)
    return total
