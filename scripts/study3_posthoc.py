"""Study 3's post-hoc line declared in docs/study3.md's amendment 5: the primary (P) contrasts split by the machine
that trained the pairs. The first session's machine trained every run of ``sym40`` draws 4-6; later sessions' machine
every other run (a family is always trained whole on one machine). Float results differ between the two CPUs, so the
split shows whether the machine moved a contrast. Descriptive only: means and 95 % t intervals, no test, no verdict."""

from __future__ import annotations

from typing import Any

from tsla.report.stats import mean_ci

FIRST_MACHINE = {("sym40", 4), ("sym40", 5), ("sym40", 6)}
"""(regime, draw) of the families the first session's machine trained (amendment 5)."""

MACHINE_COLUMNS = ("question", "regime", "val_noise", "machine", "draws", "n_pairs", "mean_diff", "ci_low",
                   "ci_high")


def machine_of(regime: str, draw: int) -> str:
    return "first" if (regime, draw) in FIRST_MACHINE else "second"


def machine_rows(contrasts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per P contrast of a regime whose pairs come from both machines: each machine's pairs' mean a − b and its
    interval (a single pair has no interval)."""
    out = []
    for r in contrasts:
        if r["family"] != "P":
            continue
        groups: dict[str, list[dict[str, Any]]] = {}
        for p in r["_diffs"]:
            groups.setdefault(machine_of(r["regime"], p["draw"]), []).append(p)
        if len(groups) < 2:
            continue
        for machine in ("first", "second"):
            pairs = groups[machine]
            mean, low, high = mean_ci([p["diff"] for p in pairs])
            out.append({"question": r["question"], "regime": r["regime"], "val_noise": r["val_noise"],
                        "machine": machine, "draws": " ".join(str(d) for d in sorted({p["draw"] for p in pairs})),
                        "n_pairs": len(pairs), "mean_diff": mean, "ci_low": low, "ci_high": high})
    return out
