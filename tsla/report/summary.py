"""Statistics over seeds and the markdown table."""

from __future__ import annotations

import math
from typing import Any, Sequence

from .collect import FINAL_KEYS, RunRecord, _grouped

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


def _best_val(run: RunRecord, key: str) -> Any:
    """summary.json's ``best_val[key]`` (the best validation epoch, or a metric of the model then); None for a run
    without a validation set or written before tsla recorded it."""
    return (run.summary.get("best_val") or {}).get(key)


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
            "switch_epochs": [r.switch_epoch for r in group],
            "final": {k: _stats([_final(r).get(k) for r in group]) for k in (*FINAL_KEYS, *keys)},
            "best_test_top1": _stats([_best_top1(r) for r in group]),
            "best_val": {k: _stats([_best_val(r, k) for r in group]) for k in ("epoch", "test_top1")},
            "epochs_to_reach_baseline": {**_stats(per_seed), "per_seed": per_seed},
        }
        for run, reach in zip(group, per_seed):
            final = _final(run)
            rows.append({"label": label, "seed": run.seed, "path": str(run.path),
                         **{f"final_{k}": final.get(k) for k in FINAL_KEYS}, "best_test_top1": _best_top1(run),
                         "best_val_epoch": _best_val(run, "epoch"), "test_top1_at_best_val": _best_val(run, "test_top1"),
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
    lines = ["| method | seeds | θ off from epoch | final top-1 (%) | top-1 at best val (%) | best val epoch "
             "| final top-5 (%) | best top-1 (%) | final one-hot train loss | test NLL | test ECE (%) | test Brier "
             "| epochs to baseline acc |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
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
        switches = sorted({e for e in m.get("switch_epochs", []) if e is not None})
        off = ", ".join(map(str, switches)) or "—"
        best_val = m["best_val"]
        lines.append(f"| {label} | {seeds} | {off} | {_cell(final['test_top1'], 100, 2)} "
                     f"| {_cell(best_val['test_top1'], 100, 2)} | {_cell(best_val['epoch'], 1, 1)} "
                     f"| {_cell(final['test_top5'], 100, 2)} "
                     f"| {_cell(m['best_test_top1'], 100, 2)} | {_cell(final['train_onehot_loss'], 1, 4)} "
                     f"| {_cell(final['test_loss'], 1, 4)} | {_cell(final['test_ece'], 100, 2)} "
                     f"| {_cell(final['test_brier'], 1, 4)} | {epochs} |")
    lines.append("")
    target = summary.get("baseline_final_test_top1")
    lines.append("mean ± std: the sample standard deviation over seeds (ddof=1); a single seed shows its value alone. "
                 "Top-1 at best val: test top-1 of the model at the epoch of its best validation top-1 (early "
                 "stopping; runs with --val-size). Best top-1: the highest test top-1 of any epoch (chosen on test, "
                 "optimistic).")
    if target is not None:
        lines[-1] += (f" Epochs to baseline acc: epochs trained until test top-1 first reaches the baseline's mean "
                      f"final top-1 ({target * 100:.2f}%), averaged over the seeds that reach it.")
    if summary.get("notes"):
        lines += ["", "Notes:", *(f"- {note}" for note in summary["notes"])]
    return "\n".join(lines) + "\n"
