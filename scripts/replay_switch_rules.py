"""Replay tsla-auto's switch rules on logged LSR runs: tsla-auto trains exactly like LSR until it switches, so the
epoch a rule would have switched at follows from the LSR run's metrics.jsonl alone.

    python scripts/replay_switch_rules.py RULE 'name=v1,v2 name2=v3' RUN [RUN ...]

prints, for every combination of the constants, the switch epoch per run ('-' = never) and, where the run with
that outcome exists beside the LSR run (compare's names: lsr-thetaT-seedS -> tsla@E-thetaT-seedS), the mean final
validation top-1 and NLL that the rule's choices would have given (the validation split, never the test set).
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

from tsla.smoothing.switch_rules import replay


def main(argv: list[str]) -> None:
    rule, grid, runs = argv[0], argv[1], argv[2:]
    axes = {k: [float(x) for x in v.split(",")] for k, v in (p.split("=") for p in grid.split())}
    logs = {r: [json.loads(x) for x in (Path(r) / "metrics.jsonl").read_text().splitlines()] for r in runs}
    for values in itertools.product(*axes.values()):
        params = dict(zip(axes, values))
        got = [replay(rule, logs[r], params) for r in runs]
        finals = [_final(r, s) for r, s in zip(runs, got)]
        val = ""
        if all(f is not None for f in finals):
            top1 = sum(f["val_top1"] for f in finals) / len(finals)
            nll = sum(f["val_nll"] for f in finals) / len(finals)
            val = f"   val top-1 {100 * top1:.2f}%  val NLL {nll:.4f}"
        print(rule, params, " ".join("-" if s is None else str(s) for s in got) + val)


def _final(lsr_run: str, switch: int | None) -> dict | None:
    """The last record of the run the switch decision stands for (the LSR run itself for 'never')."""
    path = Path(lsr_run)
    if switch is not None:
        path = path.with_name(path.name.replace("lsr-", f"tsla@{switch}-", 1))
    metrics = path / "metrics.jsonl"
    if not metrics.is_file():
        return None
    last = json.loads(metrics.read_text().splitlines()[-1])
    return last if "val_top1" in last else None


if __name__ == "__main__":
    main(sys.argv[1:])
