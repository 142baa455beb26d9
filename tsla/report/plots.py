"""Figures: learning curves per method. Drawn on a bare matplotlib Figure (Agg), without pyplot's global state."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .collect import RunRecord, _grouped
from .summary import _stats

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
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(13, 5))
    axes = fig.subplots(1, 2)
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
