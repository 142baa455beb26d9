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
        switches = sorted({r.switch_epoch for r in group if r.switch_epoch is not None})  # tsla-auto: one per seed
        for ax, (key, scale, _) in zip(axes, panels):
            epochs, mean, std = _curve(group, key)
            if not epochs:
                continue
            ax.plot(epochs, [v * scale for v in mean], color=color, label=f"{label} (n={len(group)})")
            if len(group) >= 2:
                low = [(m - s) * scale if key == "test_top1" else max(m - s, m / 10) for m, s in zip(mean, std)]
                ax.fill_between(epochs, low, [(m + s) * scale for m, s in zip(mean, std)], color=color, alpha=0.2)
            for i, switch in enumerate(switches):
                text = f"{label}: θ→0 from epoch {', '.join(map(str, switches))}" if i == 0 and key == "test_top1" else None
                ax.axvline(switch, color=color, linestyle="--", linewidth=1.2, label=text)
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


def pooled_calibration(group: Sequence[RunRecord]) -> dict[str, list[float]] | None:
    """Per-bin sums of the final evaluation, added over the seeds of a label (None when no run has them)."""
    pooled: dict[str, list[float]] | None = None
    for run in group:
        bins = run.summary.get("final_calibration") or {}
        if not bins.get("bin_count"):
            continue
        if pooled is None:
            pooled = {k: [0.0] * len(bins["bin_count"]) for k in ("bin_count", "bin_confidence", "bin_correct")}
        for key in pooled:
            pooled[key] = [a + b for a, b in zip(pooled[key], bins[key])]
    return pooled


def plot_reliability(runs: Sequence[RunRecord], path: Path) -> bool:
    """Save reliability diagrams (one panel per label, seeds pooled) at ``path``; False when no run has the bins.

    Bars: accuracy per equal-width confidence bin; the diagonal is perfect calibration; each panel gives the pooled
    ECE and the share of test images per bin as a thin grey bar.
    """
    from matplotlib.figure import Figure

    from ..calibration import expected_calibration_error

    panels = [(label, pooled_calibration(group)) for label, group in _grouped(runs).items()]
    panels = [(label, bins) for label, bins in panels if bins is not None]
    if not panels:
        return False
    cols = min(4, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig = Figure(figsize=(3.6 * cols, 3.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (label, bins) in zip(axes.flat, panels):
        m = len(bins["bin_count"])
        edges = [i / m for i in range(m)]
        total = sum(bins["bin_count"]) or 1.0
        acc = [c / n if n else 0.0 for c, n in zip(bins["bin_correct"], bins["bin_count"])]
        ax.bar(edges, acc, width=1 / m, align="edge", color="C0", edgecolor="white", label="accuracy")
        ax.bar(edges, [n / total for n in bins["bin_count"]], width=1 / m, align="edge", color="grey", alpha=0.35,
               label="share of images")
        ax.plot([0, 1], [0, 1], color="C3", linestyle="--", linewidth=1, label="perfect calibration")
        ece = expected_calibration_error(bins["bin_count"], bins["bin_confidence"], bins["bin_correct"])
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy",
               title=f"{label}: ECE {100 * ece:.2f}%")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    axes.flat[0].legend(fontsize="x-small", loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return True


def plot_diagnostics(runs: Sequence[RunRecord], path: Path) -> bool:
    """Save the theory diagnostics against epoch at ``path`` (False when no run logged ``diag_*`` keys).

    Panels: delta (log scale); theta* = 1/(1+delta); ||grad F||^2 (noise-corrected, solid) with the LSR floor
    2 delta sigma^2 / (1+delta) (dashed), log scale; the LSR gradient variance at the run's theta over sigma^2. Mean over seeds per label; switch epochs dotted.
    """
    from matplotlib.figure import Figure

    groups = {label: g for label, g in _grouped(runs).items() if any("diag_delta" in row for r in g for row in r.metrics)}
    if not groups:
        return False
    for run in runs:  # runs logged before the ratio was a key of its own
        for row in run.metrics:
            if "diag_lsr_variance" in row and "diag_lsr_variance_ratio" not in row and row.get("diag_sigma2"):
                row["diag_lsr_variance_ratio"] = row["diag_lsr_variance"] / row["diag_sigma2"]
    fig = Figure(figsize=(22, 4.8))
    axes = fig.subplots(1, 4)
    for index, (label, group) in enumerate(groups.items()):
        color = f"C{index % 10}"
        for ax, key in zip(axes, ("diag_delta", "diag_theta_star", "diag_grad_norm2_unbiased")):
            epochs, mean, _ = _curve(group, key)
            ax.plot(epochs, mean, color=color, marker=".", label=label)
        epochs, floor, _ = _curve(group, "diag_lsr_floor")
        axes[2].plot(epochs, floor, color=color, linestyle="--", label=f"{label}: LSR floor")
        epochs, ratio, _ = _curve(group, "diag_lsr_variance_ratio")
        if epochs:
            axes[3].plot(epochs, ratio, color=color, marker=".", label=label)
        for switch in sorted({r.switch_epoch for r in group if r.switch_epoch is not None}):
            for ax in axes:
                ax.axvline(switch, color=color, linestyle=":", linewidth=1)
    axes[0].set(yscale="log", ylabel="δ = E||∇ℓ(ŷ) − ∇F||² / σ²", title="δ (how far the prior's gradient strays)")
    axes[1].set(ylabel="θ* = 1 / (1 + δ)", title="θ*, the variance-minimising smoothing")
    axes[2].set(yscale="symlog", ylabel="||∇F||² (noise-corrected) and floor",
                title="||∇F||² on the diagnostic set vs the LSR floor")
    axes[3].axhline(1.0, color="grey", linewidth=1)
    axes[3].set(ylabel="E||g_LSR − ∇F||² / σ²", title="LSR gradient variance at the run's θ, relative to one-hot")
    for ax in axes:
        ax.set_xlabel("epoch (from 0)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return True
