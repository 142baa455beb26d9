"""tsla-auto replayed on the committed logs, one (draw, seed) at a time: v3 (noise-gap, constants fixed on study 1
in docs/selection.md) and the v4 candidate, a look-ahead.

The look-ahead, at each lr decay of an LSR run (epochs 15 and 25 here), trains the continuations for LOOK epochs
and keeps the one with the highest mean validation top-1 over them (ties: the first listed): at 15, LSR or TSLA(15);
if LSR is kept, at 25, LSR, TSLA(25) or (where it was run: study 2) LSR ending on θ = -0.2. Every continuation is a
committed run of the same (draw, seed), so the decision (read from every epoch's validation) and its outcome (the
kept run, early-stopped: its test top-1 at its best-validation epoch) come from the logs. Cost per seed: 30 epochs
+ LOOK per continuation not kept. ``margin`` > 0 keeps the simpler continuation unless another beats it by more
than ``margin`` (the noise-aware variant: one validation SE of one seed, sqrt(D / n_val)).
"""

from __future__ import annotations

from typing import Sequence

from select_replay_logs import Run
from tsla.smoothing.switch_rules import replay

LOOK = 3  # epochs of look-ahead: fixed before the replay, not tuned (the first 3 epochs after a decay)
V3 = ("noise-gap", {"val_window": 5, "margin": 0.0, "last_decay": 25})  # docs/selection.md, fixed on study 1


def _look(run: Run, start: int) -> float:
    values = [r["val_top1"] for r in run.every_epoch if start <= r["epoch"] < start + LOOK]
    return sum(values) / len(values)


def _keep(runs: Sequence[Run], start: int, margin: float) -> int:
    """The index of the continuation kept at ``start``: the first (the simplest) unless another's look-ahead mean
    is higher by more than ``margin``, then the highest."""
    means = [_look(r, start) for r in runs]
    best = max(range(len(runs)), key=lambda i: (means[i], -i))
    return best if means[best] - means[0] > margin else 0


def lookahead(seed_runs: dict[str, Run], margin: float = 0.0) -> tuple[str, int]:
    """(the cell label kept, epochs trained) for one (draw, seed): ``seed_runs`` maps the labels lsr, tsla@15,
    tsla@25 and, if run, lsr-neg@25 to that seed's runs."""
    epochs = 30 + LOOK
    if _keep([seed_runs["lsr"], seed_runs["tsla@15"]], 15, margin) == 1:
        return "tsla@15", epochs
    options = [x for x in ("lsr", "tsla@25", "lsr-neg@25") if x in seed_runs]
    kept = _keep([seed_runs[x] for x in options], 25, margin)
    return options[kept], epochs + LOOK * (len(options) - 1)


def v3(seed_runs: dict[str, Run]) -> str:
    """The cell tsla-auto v3's noise-gap rule names on this seed's LSR log (LSR itself if it never switches)."""
    switch = replay(V3[0], seed_runs["lsr"].every_epoch, V3[1])
    label = "lsr" if switch is None else f"tsla@{switch}"
    if label not in seed_runs:
        raise ValueError(f"noise-gap switched at {switch}: no committed run of that cell")
    return label
