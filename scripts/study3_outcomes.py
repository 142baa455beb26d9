"""Study 3's derived outcomes (docs/study3.md, "Questions"), per (regime, θ, val_noise, stop_rule, draw, seed), from
runs.csv's rows alone: one paired difference a − b of test top-1 per question and pair.

- ``Q1``: the switch chosen on validation among LSR, TSLA(15), TSLA(25) (the highest validation top-1 at the epoch
  the stopping rule keeps, on the row's labelling; ties in the order LSR, TSLA(25), TSLA(15)) minus LSR. A pair is 0
  *by construction* when the choice is LSR or the chosen run's kept epoch lies before its switch (it is LSR there).
- ``Q2``: ``lsr-neg@25`` at its last epoch minus LSR under the stopping rule.
- ``Q3`` (and ``S6``): per draw, with every seed of the draw, ``tsla select``'s frozen rule
  (:func:`tsla.experiments.select_rule.choose_noise_aware`, ``n_val`` = 1,000, ``z`` = ``RULES["best-mean"]``;
  ``RULES["noise-aware"]`` for S6) chooses among {baseline, LSR, TSLA(15), TSLA(25), LSR→−0.2 at 25}, scored by
  their validation top-1 (as fractions, the rule's units) at the stopping rule's epoch; the chosen cell's run of the
  seed, minus *best*: the cell with the highest mean test top-1 (ties to the one listed first) over the pairs where
  all five cells exist (an oracle, as the plan says). With ``stop_rule`` "last" this is S5 (select scoring the last
  epoch); "best-val" is the plan's Q3 (select's default ``at="best-val"``).
"""

from __future__ import annotations

from typing import Any, Iterable

from study3_runs import SWITCH

from tsla.experiments.select_rule import RULES, choose_noise_aware
from tsla.experiments.select_score import Candidate

Q1_ORDER = ("lsr", "tsla@25", "tsla@15")  # the tie order of Q1's choice: the simpler run first
SELECT_CELLS = ("baseline", "lsr", "tsla@15", "tsla@25", "lsr-neg@25")
SELECT_RULES = {"Q3": "best-mean", "S6": "noise-aware"}
N_VAL = 1000
DERIVED_COLUMNS = ("question", "regime", "theta", "val_noise", "stop_rule", "draw", "seed", "a", "a_epoch",
                   "a_test_top1", "b", "b_epoch", "b_test_top1", "diff", "zero_by_construction")

Key = tuple  # (regime, theta, val_noise, stop_rule)


def candidate(cell: str, theta: float) -> Candidate:
    """The ``tsla select`` candidate of a study-3 cell at θ."""
    return {"baseline": Candidate("baseline", 0.0), "lsr": Candidate("lsr", theta),
            "tsla@15": Candidate("tsla", theta, 15), "tsla@25": Candidate("tsla", theta, 25),
            "lsr-neg@25": Candidate("tsla", theta, 25, -0.2)}[cell]


def index(rows: Iterable[dict[str, Any]]) -> dict[Key, dict[tuple[int, int], dict[str, dict[str, Any]]]]:
    """{(regime, θ, val_noise, stop_rule): {(draw, seed): {cell: row}}}, the baseline (θ 0 in runs.csv) filed
    under every θ of its regime's smoothed runs."""
    out: dict[Key, dict[tuple[int, int], dict[str, dict[str, Any]]]] = {}
    rows = list(rows)
    thetas = {(r["regime"], r["theta"]) for r in rows if r["cell"] != "baseline"}
    for r in rows:
        keys = [r["theta"]] if r["cell"] != "baseline" else [t for g, t in thetas if g == r["regime"]]
        for theta in keys:
            key = (r["regime"], theta, r["val_noise"], r["stop_rule"])
            out.setdefault(key, {}).setdefault((r["draw"], r["seed"]), {})[r["cell"]] = r
    return out


def _pair(question: str, key: Key, draw: int, seed: int, a: dict[str, Any], b: dict[str, Any],
          zero: Any = None) -> dict[str, Any]:
    regime, theta, val_noise, stop_rule = key
    return {"question": question, "regime": regime, "theta": theta, "val_noise": val_noise, "stop_rule": stop_rule,
            "draw": draw, "seed": seed, "a": a["cell"], "a_epoch": a["epoch"], "a_test_top1": a["test_top1"],
            "b": b["cell"], "b_epoch": b["epoch"], "b_test_top1": b["test_top1"],
            "diff": a["test_top1"] - b["test_top1"], "zero_by_construction": zero}


def best_fixed(cases: dict[tuple[int, int], dict[str, dict[str, Any]]]) -> tuple[str | None, list[tuple[int, int]]]:
    """Q3's comparator: the cell of SELECT_CELLS with the highest mean test top-1 over the pairs where all of them
    exist (ties to the one listed first), and those pairs; (None, []) without such a pair."""
    pairs = sorted(p for p, cells in cases.items() if all(c in cells for c in SELECT_CELLS))
    if not pairs:
        return None, []
    means = {c: sum(cases[p][c]["test_top1"] for p in pairs) / len(pairs) for c in SELECT_CELLS}
    return max(SELECT_CELLS, key=lambda c: (means[c], -SELECT_CELLS.index(c))), pairs


def select_choice(cases: dict[tuple[int, int], dict[str, dict[str, Any]]], draw: int, seeds: list[int],
                  theta: float, rule: str) -> str:
    """The cell ``tsla select``'s rule ``rule`` chooses for one draw from its seeds' validation top-1."""
    per_seed = {candidate(c, theta): [cases[(draw, s)][c]["val_top1"] / 100.0 for s in seeds] for c in SELECT_CELLS}
    chosen = choose_noise_aware(per_seed, "val_top1", n_val=N_VAL, z=RULES[rule]).chosen
    return next(c for c in SELECT_CELLS if candidate(c, theta) == chosen)


def derived_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every question's per-pair difference (columns :data:`DERIVED_COLUMNS`) that the rows allow: a pair lacking
    a cell the question needs is left out (for Q3, a pair lacking any of the five cells)."""
    out = []
    everything = index(rows)
    for key, cases in everything.items():
        last = everything.get((*key[:3], "last"), {})
        for (draw, seed), cells in sorted(cases.items()):
            if all(c in cells for c in Q1_ORDER):
                chosen = cells[max(Q1_ORDER, key=lambda c: (cells[c]["val_top1"], -Q1_ORDER.index(c)))]
                zero = chosen["cell"] == "lsr" or chosen["epoch"] < SWITCH[chosen["cell"]]
                out.append(_pair("Q1", key, draw, seed, chosen, cells["lsr"], int(zero)))
            negative = last.get((draw, seed), {}).get("lsr-neg@25")
            if "lsr" in cells and negative is not None:
                out.append(_pair("Q2", key, draw, seed, negative, cells["lsr"]))
        best, pairs = best_fixed(cases)
        for question, rule in SELECT_RULES.items():
            for draw in sorted({d for d, _ in pairs}):
                seeds = [s for d, s in pairs if d == draw]
                chosen = select_choice(cases, draw, seeds, key[1], rule)
                out += [_pair(question, key, draw, s, cases[(draw, s)][chosen], cases[(draw, s)][best])
                        for s in seeds]
    return out
