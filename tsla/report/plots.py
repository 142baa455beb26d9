"""Figures: learning curves per method. Drawn on a bare matplotlib Figure (Agg), without pyplot's global state."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

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


def plot_curves(runs: Sequence[RunRecord], path: Path, accuracy: str = "test") -> None:
    """Save a two-panel PNG at ``path``: ``accuracy`` top-1 (%, "test" or "val") and one-hot train loss (log scale)
    against epoch; a third panel, where runs logged them (``--label-noise``), shows the memorisation fractions: of the
    flipped training images, the share predicted as their given, wrong label (solid) and as their true label (dotted).

    One line per label (mean over seeds), a ± std band where a label has two or more seeds, and a dashed vertical line
    in the label's colour at the epoch where TSLA drops smoothing (the first epoch trained with θ=0).
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    groups = _grouped(runs)
    many = len(groups) > 10  # more lines than the default 10 colours: 20 colours, and the legend beside the panels
    memo = any("noise_memorised" in row for run in runs for row in run.metrics)
    width = (16 if many else 13) * (1.5 if memo else 1)
    fig = Figure(figsize=(width, 5.5 if many else 5))
    axes = fig.subplots(1, 3 if memo else 2)
    top1 = f"{accuracy}_top1"
    panels = ((top1, 100.0, f"{accuracy} top-1 (%)"), ("train_onehot_loss", 1.0, "one-hot train loss (log scale)"))
    for index, (label, group) in enumerate(groups.items()):
        color = _colour(index, many)
        switches = sorted({r.switch_epoch for r in group if r.switch_epoch is not None})  # tsla-auto: one per seed
        for ax, (key, scale, _) in zip(axes, panels):
            epochs, mean, std = _curve(group, key)
            if not epochs:
                continue
            ax.plot(epochs, [v * scale for v in mean], color=color, label=f"{label} (n={len(group)})")
            if len(group) >= 2:
                low = [(m - s) * scale if key == top1 else max(m - s, m / 10) for m, s in zip(mean, std)]
                ax.fill_between(epochs, low, [(m + s) * scale for m, s in zip(mean, std)], color=color, alpha=0.2)
            for i, switch in enumerate(switches):
                text = f"{label}: θ→0 from epoch {', '.join(map(str, switches))}" if i == 0 and key == top1 else None
                ax.axvline(switch, color=color, linestyle="--", linewidth=1.2, label=text)
        if memo:
            for key, style in (("noise_memorised", "-"), ("noise_corrected", ":")):
                epochs, mean, _ = _curve(group, key)
                if epochs:
                    axes[2].plot(epochs, [100 * v for v in mean], color=color, linestyle=style,
                                 label=f"{label}: {key.split('_')[1]}")
            for switch in switches:
                axes[2].axvline(switch, color=color, linestyle="--", linewidth=1.2)
    for ax, (key, _, ylabel) in zip(axes, panels):
        ax.set(xlabel="epoch (from 0)", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    axes[0].set_title(f"{'Validation' if accuracy == 'val' else 'Test'} top-1 accuracy (mean ± std over seeds)")
    axes[1].set_title("One-hot training loss (mean ± std over seeds)")
    axes[1].set_yscale("log")
    if memo:
        axes[2].set(xlabel="epoch (from 0)", ylabel="% of the flipped training images",
                    title="Noisy labels memorised (solid) and corrected (dotted)")
        axes[2].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[2].grid(True, alpha=0.3)
        axes[2].legend(fontsize="x-small", loc="best")
    if many:
        fig.legend(*axes[0].get_legend_handles_labels(), fontsize="x-small", loc="center right")
        fig.tight_layout(rect=(0, 0, 0.76, 1))
    else:
        axes[0].legend(fontsize="small", loc="lower right")
        fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def _colour(index: int, many: bool) -> Any:
    """Line colour of the ``index``-th label: matplotlib's 10-colour cycle, or the 20 colours of tab20 when there are
    more than 10 labels (so that no two labels share a colour)."""
    if not many:
        return f"C{index % 10}"
    from matplotlib import colormaps
    return colormaps["tab20"](index % 20)


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

    from .calibration import expected_calibration_error

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

    Panels (mean over seeds per label; switch epochs dotted): delta (corrected, log scale); ||grad F||^2 (corrected
    for the class-stratified draw, solid) against the LSR bias term theta^2 ||grad F_yhat - grad F||^2 (dashed),
    symlog; the cosine between grad F and the LSR gradient's mean; the one-step gain of LSR over one-hot (per-example
    estimate at the run's batch, solid; train-mode mini-batch estimate, dashed). Runs logged before the corrected
    keys existed (tsla < issue 10) fall back to v1's keys where there is one.
    """
    from matplotlib.figure import Figure

    groups = {label: g for label, g in _grouped(runs).items() if any("diag_delta" in row for r in g for row in r.metrics)}
    if not groups:
        return False
    for run in runs:  # v1 runs: their closest keys, and theta^2 ||b||^2 from the corrected bias
        for row in run.metrics:
            row.setdefault("diag_delta_corrected", row.get("diag_delta"))
            row.setdefault("diag_grad_norm2_corrected", row.get("diag_grad_norm2_unbiased"))
            if isinstance(row.get("diag_bias2_corrected"), (int, float)):
                row["diag_lsr_bias_term"] = run.theta**2 * row["diag_bias2_corrected"]  # the run's theta, not 0
    fig = Figure(figsize=(22, 4.8))
    axes = fig.subplots(1, 4)
    for index, (label, group) in enumerate(groups.items()):
        color = f"C{index % 10}"
        panels = (("diag_delta_corrected", 0, "-"), ("diag_grad_norm2_corrected", 1, "-"),
                  ("diag_lsr_bias_term", 1, "--"), ("diag_lsr_cosine", 2, "-"), ("diag_one_step_gain", 3, "-"),
                  ("diag_mb_one_step_gain", 3, "--"))
        for key, ax, style in panels:
            epochs, mean, _ = _curve(group, key)
            if epochs:
                axes[ax].plot(epochs, mean, color=color, marker=".", linestyle=style,
                              label=f"{label}: {key[len('diag_'):]}")
        for switch in sorted({r.switch_epoch for r in group if r.switch_epoch is not None}):
            for ax in axes:
                ax.axvline(switch, color=color, linestyle=":", linewidth=1)
    axes[0].set(yscale="log", ylabel="δ = E||∇ℓ(ŷ) − ∇F||² / σ²", title="δ (corrected; > 1: no gain predicted)")
    axes[1].set(yscale="symlog", ylabel="||∇F||² and θ²||∇F_ŷ − ∇F||²",
                title="||∇F||² (solid) vs the LSR bias term (dashed)")
    axes[2].set(ylabel="cos(∇F, E g_LSR)", title="cosine between ∇F and the mean LSR gradient")
    axes[3].axhline(1.0, color="grey", linewidth=1)
    axes[3].set(ylabel="best one-step decrease, LSR / one-hot", title="one-step gain (< 1: one-hot descends F faster)")
    for ax in axes:
        ax.set_xlabel("epoch (from 0)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return True
