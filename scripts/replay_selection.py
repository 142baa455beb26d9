"""Replay ``tsla select`` (grid and successive halving) and tsla-auto's switch rules on the first study's committed
logs (docs/evidence/study/runs/r1-few and r2-noise); prints the tables of docs/selection.md.

    PYTHONPATH=$PWD python scripts/replay_selection.py [docs/evidence/study/runs]

Selection reads only val_* fields (final epoch, as ``tsla select --at last``); the test top-1 of the final epoch is
read afterwards, to judge the choice against the best fixed cell (the cell with the highest mean final test top-1:
an oracle no user has). tsla-auto trains exactly as LSR until it switches, so each rule's decision follows from the
LSR run's metrics.jsonl, and its outcome is the TSLA(S) run of that seed and theta (LSR itself for 'never').
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tsla.experiments.select_score import (Candidate, candidates, choose, epochs_trained, families, halving_round,
                                          mean_score, score)
from tsla.report.stats import mean_ci
from tsla.smoothing.switch_rules import replay

REGIMES = ("r1-few", "r2-noise")
THETAS, SWITCH_AT, EPOCHS, MILESTONES = (0.1, 0.2, 0.4), (15, 25), 30, (15, 25)
RULES = {  # the constants docs/selection.md fixes (phase-plateau: v2's, from docs/theory.md)
    "phase-plateau": {"window": 3, "rate": 0.08},
    "noise-gap": {"val_window": 5, "margin": 0.0, "last_decay": 25},
    "val-plateau": {"val_window": 5, "min_delta": 0.0},
}


def load(root: Path, regime: str) -> dict[tuple[str, int], list[dict]]:
    """{(cell label, seed): metric records} for the grid's cells."""
    logs = {}
    for run in sorted((root / regime).iterdir()):
        label, _, seed = run.name.rpartition("-seed")
        if (run / "metrics.jsonl").is_file():
            logs[(label, int(seed))] = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return logs


def seeds_with_all(logs: dict, grid: list[Candidate]) -> list[int]:
    seeds = {s for _, s in logs}
    return sorted(s for s in seeds if all((c.label, s) in logs for c in grid))


def test_top1(logs: dict, cand: Candidate, seed: int) -> float:
    return 100 * logs[(cand.label, seed)][-1]["test_top1"]


def select(logs: dict, grid: list[Candidate], seeds: list[int], halving: bool, criterion: str = "val_top1"):
    """(chosen candidate, epochs trained per seed): the grid, or successive halving of the families at each
    milestone (scored at the epoch before it, mean over seeds)."""
    fams = families(grid)
    stop = {name: EPOCHS for name in fams}
    alive = list(fams)
    if halving:
        for m in MILESTONES:
            _, kept = halving_round(fams, alive, m, lambda c: [logs[(c.label, s)] for s in seeds], criterion, "last")
            for name in alive:
                if name not in kept:
                    stop[name] = m
            alive = kept
    eligible = [c for name in alive for c in fams[name]]
    scores = {c: mean_score([score(logs[(c.label, s)], criterion, "last") for s in seeds])["score"] for c in eligible}
    return choose(scores, criterion), epochs_trained(fams, stop)


def ci_text(diffs: list[float]) -> str:
    mean, lo, hi = mean_ci(diffs)
    return f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def main(root: Path) -> None:
    grid = candidates(THETAS, SWITCH_AT)
    independent = sum(EPOCHS for _ in grid)
    print(f"epochs per seed: independent runs {independent}, one LSR run per theta {EPOCHS * len(THETAS)}\n")
    for regime in REGIMES:
        logs = load(root, regime)
        seeds = seeds_with_all(logs, grid)
        oracle = max(grid, key=lambda c: sum(test_top1(logs, c, s) for s in seeds))
        print(f"## {regime}: {len(seeds)} seeds; best fixed cell by mean test top-1: {oracle.label}")
        for halving in (False, True):
            name = "halving" if halving else "grid"
            chosen, epochs = select(logs, grid, seeds, halving)
            diffs = [test_top1(logs, chosen, s) - test_top1(logs, oracle, s) for s in seeds]
            print(f"select {name}, mean over {len(seeds)} seeds: {chosen.label}; test top-1 minus best fixed "
                  f"{ci_text(diffs) if chosen != oracle else '+0.00 (the same cell)'}; {epochs} epochs per seed "
                  f"({epochs / (EPOCHS * len(THETAS)):.2f}x one LSR run per theta)")
            per_seed = [select(logs, grid, [s], halving) for s in seeds]
            grid_choice = [select(logs, grid, [s], False)[0] for s in seeds]
            same = sum(c == g for (c, _), g in zip(per_seed, grid_choice))
            diffs = [test_top1(logs, c, s) - test_top1(logs, oracle, s) for (c, _), s in zip(per_seed, seeds)]
            picks = {}
            for c, _ in per_seed:
                picks[c.label] = picks.get(c.label, 0) + 1
            kept = f"same as the grid's pick in {same} of {len(seeds)}; " if halving else ""
            print(f"select {name}, one seed at a time: picks {picks}; {kept}test top-1 minus best fixed {ci_text(diffs)}; "
                  f"{sum(e for _, e in per_seed) / len(seeds):.0f} epochs per seed")
        for rule, params in RULES.items():
            got = {(t, s): replay(rule, logs[(f"lsr-theta{t:g}", s)], params) for t in THETAS for s in seeds}
            counts = {}
            for v in got.values():
                key = "never" if v is None else str(v)
                counts[key] = counts.get(key, 0) + 1
            print(f"rule {rule} {params}: switch epochs {dict(sorted(counts.items()))}")
            for t in THETAS:
                fixed = [Candidate("lsr", t)] + [Candidate("tsla", t, e) for e in SWITCH_AT]
                best = max(fixed, key=lambda c: sum(test_top1(logs, c, s) for s in seeds))
                named = {s: (Candidate("lsr", t) if got[(t, s)] is None else Candidate("tsla", t, got[(t, s)]))
                         for s in seeds}
                diffs = [test_top1(logs, named[s], s) - test_top1(logs, best, s) for s in seeds]
                print(f"  theta {t:g}: minus best fixed S ({best.label}) {ci_text(diffs)}")
        print()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/evidence/study/runs"))
