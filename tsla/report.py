"""Reports over finished runs: collect run directories, summarise over seeds, write a table and learning curves.

A run directory RUN/ holds ``metrics.jsonl`` (one JSON object per epoch, epochs from 0), ``config.yaml`` and, once
the run has finished, ``summary.json``. A comparison directory holds runs one level down (``DIR/tsla@6-seed0/``).
:func:`write_report` writes ``summary.json``, ``summary.md`` and ``curves.png`` into an output directory.

Spreads are sample standard deviations over seeds (ddof=1); with a single seed the std is reported as 0.0 and the
seed count ``n`` is always recorded beside it.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from .errors import RunDirError

RUN_FILES = ("metrics.jsonl", "config.yaml")
FINAL_KEYS = ("test_top1", "test_top5", "train_onehot_loss", "test_loss")


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
    config = {**(config if isinstance(config, dict) else {}), **(summary.get("config") or {})}

    def pick(key: str, default: Any) -> Any:
        return next((v for v in (summary.get(key), config.get(key)) if v is not None), default)

    method = str(pick("method", "?"))
    switch = summary.get("switch_epoch")
    if switch is None and method.startswith("tsla@") and method[5:].isdigit():
        switch = int(method[5:])
    return RunRecord(path=path, method=method, theta=float(pick("theta", 0.0)), seed=int(pick("seed", 0)),
                     switch_epoch=switch, summary=summary, metrics=_read_metrics(path / "metrics.jsonl", notes))


def collect_runs(dirs: Sequence[Path], notes: list[str] | None = None) -> list[RunRecord]:
    """Finished runs in ``dirs``, each a run directory itself or a directory of run directories one level down.

    Unfinished or unreadable runs are skipped; a repeated (method, theta, seed) keeps the first one found. Each such
    event is appended to ``notes`` when given, else issued with ``warnings.warn``. Raises ``RunDirError`` naming a
    directory that does not exist. Returns runs in directory order (sorted names within a directory).
    """
    found: list[str] = []
    runs: list[RunRecord] = []
    seen: dict[tuple[str, float | None, int], Path] = {}
    for directory in map(Path, dirs):
        if not directory.is_dir():
            raise RunDirError(f"{directory} is not a directory: give a run directory or a directory of runs")
        candidates = [directory] if _is_run_dir(directory) else sorted(
            p for p in directory.iterdir() if p.is_dir() and _is_run_dir(p))
        for path in candidates:
            run = _load_run(path, found)
            if run is None:
                continue
            key = (run.method, None if run.method == "baseline" else run.theta, run.seed)
            if key in seen:
                found.append(f"skipped {path}: duplicate of {seen[key]} ({run.method}, seed {run.seed})")
                continue
            seen[key] = path
            runs.append(run)
    if notes is not None:
        notes.extend(found)
    else:
        for note in found:
            warnings.warn(note, stacklevel=2)
    return runs


def _method_key(method: str) -> tuple[int, int, list[Any]]:
    """Sort key: baseline, lsr, tsla@S by S, then other methods by name with numbers compared as numbers."""
    name, _, arg = method.partition("@")
    natural = [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", method)]
    if name in ("baseline", "lsr"):
        return (0 if name == "baseline" else 1, 0, [])
    if name == "tsla" and arg.isdigit():
        return (2, int(arg), [])
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


def _stats(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean and sample std (ddof=1; 0.0 for one value) of the values that are present; None when none are."""
    xs = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not xs:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(xs)}


def _final(run: RunRecord) -> dict[str, Any]:
    """The metrics of the last epoch, from summary.json's ``final``, else the last metrics row."""
    return run.summary.get("final") or (run.metrics[-1] if run.metrics else {})


def _best_top1(run: RunRecord) -> float | None:
    """summary.json's best test_top1, else the highest in metrics.jsonl (None when there is none)."""
    best = (run.summary.get("best") or {}).get("test_top1")
    if best is None:
        values = [m["test_top1"] for m in run.metrics if isinstance(m.get("test_top1"), (int, float))]
        best = max(values) if values else None
    return best


def _epochs_to(run: RunRecord, target: float | None) -> int | None:
    """Epochs trained (1-based) until test_top1 first reaches ``target``; None if it never does or no target."""
    if target is None:
        return None
    for index, row in enumerate(run.metrics):
        if isinstance(row.get("test_top1"), (int, float)) and row["test_top1"] >= target:
            return int(row.get("epoch", index)) + 1
    return None


def summarize(runs: Sequence[RunRecord]) -> dict[str, Any]:
    """Statistics over seeds per label, JSON-ready.

    Returns ``{"labels": [...ordered], "methods": {label: {...}}, "baseline_final_test_top1",
    "epochs_to_reach_baseline": {label: mean or None}, "runs": [per-run rows], "std": "..."}``.
    Each ``methods[label]`` has ``method``, ``theta``, ``n_seeds``, ``seeds``, ``switch_epoch``, ``final``
    (``{key: {mean, std, n}}`` for every numeric key of the final epoch, including test_top1, test_top5,
    train_onehot_loss, test_loss), ``best_test_top1`` and ``epochs_to_reach_baseline`` (``{mean, std, n, per_seed}``:
    epochs trained, 1-based, until test_top1 first reaches the target; mean over the seeds that reach it). The target
    is the mean final test_top1 of the ``baseline`` label; without one, every epochs-to-baseline value is None.
    """
    groups = _grouped(runs)
    base = groups.get("baseline")
    target = _stats([_final(r).get("test_top1") for r in base])["mean"] if base else None
    methods: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for label, group in groups.items():
        keys = sorted({k for r in group for k, v in _final(r).items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch"})
        per_seed = [_epochs_to(r, target) for r in group]
        methods[label] = {
            "method": group[0].method, "theta": group[0].theta, "n_seeds": len(group), "seeds": [r.seed for r in group],
            "switch_epoch": group[0].switch_epoch,
            "final": {k: _stats([_final(r).get(k) for r in group]) for k in (*FINAL_KEYS, *keys)},
            "best_test_top1": _stats([_best_top1(r) for r in group]),
            "epochs_to_reach_baseline": {**_stats(per_seed), "per_seed": per_seed},
        }
        for run, reach in zip(group, per_seed):
            final = _final(run)
            rows.append({"label": label, "seed": run.seed, "path": str(run.path),
                         **{f"final_{k}": final.get(k) for k in FINAL_KEYS}, "best_test_top1": _best_top1(run),
                         "wall_seconds": run.summary.get("wall_seconds"), "epochs_to_reach_baseline": reach})
    return {"labels": list(groups), "methods": methods, "baseline_final_test_top1": target,
            "epochs_to_reach_baseline": {k: m["epochs_to_reach_baseline"]["mean"] for k, m in methods.items()},
            "runs": rows, "std": "sample standard deviation over seeds (ddof=1); 0.0 when n=1"}


def _cell(stats: dict[str, Any], scale: float, digits: int) -> str:
    """``"mean ± std"`` scaled and rounded; the mean alone for a single value (no spread to show); an em dash when
    there is no value."""
    if stats.get("mean") is None:
        return "—"
    if stats.get("n") == 1:
        return f"{stats['mean'] * scale:.{digits}f}"
    return f"{stats['mean'] * scale:.{digits}f} ± {stats['std'] * scale:.{digits}f}"


def format_markdown(summary: dict[str, Any]) -> str:
    """A markdown table of ``summarize``'s output, one row per label, "mean ± std" cells, then a note on the std.

    Accuracies are in percent with 2 decimals, losses with 4. Notes in ``summary["notes"]`` are listed at the end.
    """
    lines = ["| method | seeds | final top-1 (%) | final top-5 (%) | best top-1 (%) | final one-hot train loss "
             "| test loss | epochs to baseline acc |", "|---|---|---|---|---|---|---|---|"]
    for label in summary["labels"]:
        m = summary["methods"][label]
        final = m["final"]
        reach = m["epochs_to_reach_baseline"]
        if summary.get("baseline_final_test_top1") is None:
            epochs = "n/a (no baseline)"
        elif reach["n"] == 0:
            epochs = "never"
        else:
            partial = "" if reach["n"] == m["n_seeds"] else f" ({reach['n']}/{m['n_seeds']} seeds)"
            epochs = _cell(reach, 1.0, 1) + partial
        seeds = f"{m['n_seeds']} ({', '.join(map(str, m['seeds']))})"
        lines.append(f"| {label} | {seeds} | {_cell(final['test_top1'], 100, 2)} | {_cell(final['test_top5'], 100, 2)} "
                     f"| {_cell(m['best_test_top1'], 100, 2)} | {_cell(final['train_onehot_loss'], 1, 4)} "
                     f"| {_cell(final['test_loss'], 1, 4)} | {epochs} |")
    lines.append("")
    target = summary.get("baseline_final_test_top1")
    lines.append("mean ± std: the sample standard deviation over seeds (ddof=1); a single seed shows its value alone.")
    if target is not None:
        lines[-1] += (f" Epochs to baseline acc: epochs trained until test top-1 first reaches the baseline's mean "
                      f"final top-1 ({target * 100:.2f}%), averaged over the seeds that reach it.")
    if summary.get("notes"):
        lines += ["", "Notes:", *(f"- {note}" for note in summary["notes"])]
    return "\n".join(lines) + "\n"


def _curve(group: Sequence[RunRecord], key: str) -> tuple[list[int], list[float], list[float]]:
    """Epochs, mean and sample std (0 where one value) of ``key`` over the seeds that have that epoch."""
    by_epoch: dict[int, list[float]] = {}
    for run in group:
        for row in run.metrics:
            if isinstance(row.get(key), (int, float)):
                by_epoch.setdefault(int(row["epoch"]), []).append(float(row[key]))
    epochs = sorted(by_epoch)
    stats = [_stats(by_epoch[e]) for e in epochs]
    return epochs, [s["mean"] for s in stats], [s["std"] for s in stats]


def plot_curves(runs: Sequence[RunRecord], path: Path) -> None:
    """Save a two-panel PNG at ``path``: test top-1 (%) and one-hot train loss (log scale) against epoch.

    One line per label (mean over seeds), a ± std band where a label has two or more seeds, and a dashed vertical line
    in the label's colour at the epoch where TSLA drops smoothing (the first epoch trained with θ=0).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    panels = (("test_top1", 100.0, "test top-1 (%)"), ("train_onehot_loss", 1.0, "one-hot train loss (log scale)"))
    for index, (label, group) in enumerate(_grouped(runs).items()):
        color = f"C{index % 10}"
        switch = group[0].switch_epoch
        for ax, (key, scale, _) in zip(axes, panels):
            epochs, mean, std = _curve(group, key)
            if not epochs:
                continue
            ax.plot(epochs, [v * scale for v in mean], color=color, label=f"{label} (n={len(group)})")
            if len(group) >= 2:
                low = [(m - s) * scale if key == "test_top1" else max(m - s, m / 10) for m, s in zip(mean, std)]
                ax.fill_between(epochs, low, [(m + s) * scale for m, s in zip(mean, std)], color=color, alpha=0.2)
            if switch is not None:
                ax.axvline(switch, color=color, linestyle="--", linewidth=1.2,
                           label=f"{label}: θ→0 from epoch {switch}" if key == "test_top1" else None)
    for ax, (key, _, ylabel) in zip(axes, panels):
        ax.set(xlabel="epoch (from 0)", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    axes[0].set_title("Test top-1 accuracy (mean ± std over seeds)")
    axes[1].set_title("One-hot training loss (mean ± std over seeds)")
    axes[1].set_yscale("log")
    axes[0].legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _jsonable(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None, so the file is strict JSON."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_report(dirs: Sequence[Path], out: Path | None = None) -> dict[str, Any]:
    """Collect the finished runs in ``dirs`` and write ``summary.json``, ``summary.md`` and ``curves.png`` into ``out``.

    ``out`` defaults to the first directory (its ``report/`` subdirectory when that is itself a run). Returns the
    summary (``summarize``'s dict plus ``run_paths`` and ``notes``). Raises ``RunDirError`` when a directory does not
    exist or no finished run is found.
    """
    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise RunDirError("no run directory given: run `tsla compare` first and pass its output directory")
    notes: list[str] = []
    runs = collect_runs(dirs, notes)
    if not runs:
        raise RunDirError(f"no finished runs in {', '.join(map(str, dirs))}: run `tsla compare` first")
    summary = summarize(runs)
    summary["run_paths"] = [str(r.path) for r in runs]
    summary["notes"] = notes
    if out is None:  # never overwrite a run's own summary.json
        out = dirs[0] / "report" if _is_run_dir(dirs[0]) else dirs[0]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2, ensure_ascii=False) + "\n")
    (out / "summary.md").write_text(format_markdown(summary))
    plot_curves(runs, out / "curves.png")
    return summary
