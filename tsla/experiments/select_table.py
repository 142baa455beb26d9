"""The table ``tsla select`` prints: one row per candidate, its validation score and metrics, the choice marked."""

from __future__ import annotations

from typing import Any, Sequence

from .select_score import Candidate


def format_table(cands: Sequence[Candidate], rows: Sequence[dict[str, Any]], chosen: Candidate, criterion: str,
                 at: str) -> str:
    """A markdown table of the candidates (validation only, mean over seeds): method, theta, switch epoch, the
    score, validation top-1 (%) and NLL, and the epoch scored (the last, or the best-validation epoch per seed)."""
    lines = [f"| candidate | method | theta | S | {criterion} ({at}) | val top-1 (%) | val NLL | epoch scored |",
             "|---|---|---|---|---|---|---|---|"]
    for cand, row in zip(cands, rows):
        mark = " **chosen**" if cand == chosen else ""
        s = "-" if cand.switch_epoch is None else str(cand.switch_epoch)
        if row.get("stopped_at") is not None:
            lines.append(f"| {cand.label} | {cand.method} | {row['theta']:g} | {s} | stopped by halving at epoch "
                         f"{row['stopped_at']} | - | - | - |")
            continue
        top1 = "-" if row["val_top1"] is None else f"{100 * row['val_top1']:.2f}"
        nll = "-" if row["val_nll"] is None else f"{row['val_nll']:.4f}"
        epochs = ",".join(str(e) for e in sorted(set(row["epochs"])))
        lines.append(f"| {cand.label}{mark} | {cand.method} | {row['theta']:g} | {s} | {row['score']:.4f} | {top1} | "
                     f"{nll} | {epochs} |")
    return "\n".join(lines)
