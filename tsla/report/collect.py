"""Finding finished runs in comparison directories, and grouping them into labelled methods."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from ..errors import RunDirError
from .pooling import check_poolable

RUN_FILES = ("metrics.jsonl", "config.yaml")
FINAL_KEYS = ("test_top1", "test_top5", "train_onehot_loss", "test_loss", "test_ece", "test_brier")


@dataclass
class RunRecord:
    """One finished run: where it is, what it trained, its ``summary.json`` and its per-epoch metrics (by epoch)."""

    path: Path
    method: str
    theta: float
    seed: int
    switch_epoch: int | None
    summary: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    """The run's resolved config (config.yaml, overridden by summary.json's ``config``)."""
    epochs: int | None = None
    """The run's length (a run whose length differs from the baseline's/LSR's is labelled with it)."""


def _is_run_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in RUN_FILES)


def _read_metrics(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    """Per-epoch rows sorted by epoch; a repeated epoch (after a resume) keeps its last row; bad lines are noted."""
    rows: dict[int, dict[str, Any]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows[int(row["epoch"])] = row
        except (ValueError, KeyError, TypeError):
            notes.append(f"{path}:{number}: unreadable metrics line skipped")
    return [rows[epoch] for epoch in sorted(rows)]


def _load_run(path: Path, notes: list[str]) -> RunRecord | None:
    """The run at ``path`` if it finished and is readable, else None with a note saying why it was skipped."""
    if not (path / "summary.json").is_file():
        notes.append(f"skipped {path}: no summary.json (unfinished run)")
        return None
    try:
        summary = json.loads((path / "summary.json").read_text())
        config = yaml.safe_load((path / "config.yaml").read_text()) if (path / "config.yaml").is_file() else {}
    except (ValueError, yaml.YAMLError) as exc:
        notes.append(f"skipped {path}: unreadable summary.json or config.yaml ({exc})")
        return None
    if not isinstance(summary, dict) or summary.get("status") != "finished" or not (path / "metrics.jsonl").is_file():
        notes.append(f"skipped {path}: summary.json does not say 'finished', or metrics.jsonl is missing")
        return None
    saved = summary.get("config")
    config = {**(config if isinstance(config, dict) else {}), **(saved if isinstance(saved, dict) else {})}

    def pick(key: str, default: Any) -> Any:
        return next((v for v in (summary.get(key), config.get(key)) if v is not None), default)

    method = str(pick("method", "?"))
    switch = summary.get("switch_epoch")
    if switch is None and method.startswith("tsla@") and method[5:].isdigit():
        switch = int(method[5:])
    try:
        theta, seed = float(pick("theta", 0.0)), int(pick("seed", 0))
        theta_after, epochs = float(pick("theta_after", 0.0)), pick("epochs", None)
        epochs = None if epochs is None else int(epochs)
        if theta_after:  # TSLA ending on another theta is its own cell, named as in 'tsla compare --methods'
            method += f":theta_after={theta_after:g}"
        if switch is not None:
            switch = int(switch)
        _check_numbers(summary)
    except (TypeError, ValueError) as exc:
        notes.append(f"skipped {path}: summary.json has a field of the wrong type ({exc})")
        return None
    return RunRecord(path=path, method=method, theta=theta, seed=seed, switch_epoch=switch, summary=summary,
                     metrics=_read_metrics(path / "metrics.jsonl", notes), config=config, epochs=epochs)


BEST_VAL_KEYS = ("epoch", "val_top1", "val_nll", "test_top1", "test_nll", "test_ece")


def _check_numbers(summary: dict[str, Any]) -> None:
    """The parts of summary.json a report computes with must hold numbers: raise ``TypeError`` otherwise."""
    for part, keys in (("final", FINAL_KEYS), ("best", FINAL_KEYS), ("best_val", BEST_VAL_KEYS)):
        values = summary.get(part) or {}
        if not isinstance(values, dict):
            raise TypeError(f"{part!r} is a {type(values).__name__}, not a mapping")
        for key in keys:
            value = values.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise TypeError(f"{part}.{key} is {value!r:.40}, not a number")


def collect_runs(dirs: Sequence[Path], notes: list[str] | None = None) -> list[RunRecord]:
    """Finished runs in ``dirs``, each a run directory itself or a directory of run directories one level down.

    A run of another length than the baseline and LSR runs (when those agree on one) is its own cell, its method
    labelled ``<method>:epochs=<n>`` (a budget control, ``tsla compare --methods tsla@30:epochs=35``); TSLA ending on
    a nonzero theta is labelled ``<method>:theta_after=<θ>``.

    Unfinished or unreadable runs are skipped; a repeated (method, theta, seed) keeps the first one found. Each such
    event is appended to ``notes`` when given, else issued with ``warnings.warn``. Raises ``RunDirError`` naming a
    directory that does not exist, and (:func:`tsla.report.pooling.check_poolable`) runs that are not one experiment.
    Returns runs in directory order (sorted names within a directory).
    """
    found: list[str] = []
    loaded: list[RunRecord] = []
    for directory in map(Path, dirs):
        if not directory.is_dir():
            raise RunDirError(f"{directory} is not a directory: give a run directory or a directory of runs")
        candidates = [directory] if _is_run_dir(directory) else sorted(
            p for p in directory.iterdir() if p.is_dir() and _is_run_dir(p))
        loaded += [run for run in (_load_run(path, found) for path in candidates) if run is not None]
    lengths = {r.epochs for r in loaded if r.method in ("baseline", "lsr")}
    length = lengths.pop() if len(lengths) == 1 else None
    pooled: list[dict[str, Any]] = []
    runs: list[RunRecord] = []
    seen: dict[tuple[str, float | None, int], Path] = {}
    for run in loaded:
        config = run.config
        if length is not None and run.epochs is not None and run.epochs != length:
            run.method += f":epochs={run.epochs}"
            config = {**config, "epochs": length}  # its length is in its label: pooled as one cell of its own
        key = (run.method, None if run.method == "baseline" else run.theta, run.seed)
        if key in seen:
            found.append(f"skipped {run.path}: duplicate of {seen[key]} ({run.method}, seed {run.seed})")
            continue
        seen[key] = run.path
        runs.append(run)
        pooled.append(config)
    if notes is not None:
        notes.extend(found)
    else:
        for note in found:
            warnings.warn(note, stacklevel=2)
    check_poolable([r.path for r in runs], pooled)
    return runs


def _method_key(method: str) -> tuple[int, int, list[Any]]:
    """Sort key: baseline, lsr, tsla@S by S, then other methods by name with numbers compared as numbers."""
    method, _, cell = method.partition(":")  # a cell's own settings (:theta_after=..., :epochs=...) sort after it
    name, _, arg = method.partition("@")
    natural = [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", method)] + [cell]
    if name in ("baseline", "lsr"):
        return (0 if name == "baseline" else 1, 0, [cell])
    if name == "tsla" and arg.isdigit():
        return (2, int(arg), [cell])
    return (3, 0, natural)


def run_labels(runs: Sequence[RunRecord]) -> list[str]:
    """The group label of each run: its method, or ``"method (θ=...)"`` where that method ran with several thetas."""
    thetas: dict[str, set[float]] = {}
    for run in runs:
        thetas.setdefault(run.method, set()).add(run.theta)
    return [f"{r.method} (θ={r.theta:g})" if r.method != "baseline" and len(thetas[r.method]) > 1 else r.method
            for r in runs]


def _grouped(runs: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    """Runs by label, labels in the natural method order (baseline, lsr, tsla@S by S, others by name), then theta."""
    groups: dict[str, list[RunRecord]] = {}
    order: dict[str, tuple[Any, ...]] = {}
    for run, label in zip(runs, run_labels(runs)):
        groups.setdefault(label, []).append(run)
        order[label] = (_method_key(run.method), run.theta)
    return {label: sorted(groups[label], key=lambda r: r.seed) for label in sorted(groups, key=order.__getitem__)}
