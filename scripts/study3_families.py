"""Study 3's families (docs/study3.md, "Families and multiplicity" and "Analysis"): the declared contrasts, their
paired statistics, Holm within each family per kind of p, the verdicts and the questions' words.

A contrast is a − b of a measure, paired by (draw, seed). The statistics are tsla's (:mod:`tsla.report.stats`):
mean, 95 % paired t interval, exact sign-flip p, TOST ±0.5, the one-sided non-inferiority p (H0: a − b <= −0.5), the
minimum detectable effect. Only a regime whose θ = 0.4 cells all have their 16 pairs is decided ("complete"): its
contrasts form the family's Holm set and get verdicts; every other regime's contrasts are "interim, descriptive"
(mean and interval only). S2 holds only the regimes whose θ = 0.1 grid is complete; its missing cells are absent.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from study3_outcomes import SELECT_CELLS
from study3_runs import REGIMES, labellings

from tsla.report.paired import analyse
from tsla.report.stats import holm, mean_ci, noninferiority_p, verdict

MARGIN = 0.5
PAIRS_PLANNED = 16  # 8 draws x 2 seeds
THETA, THETA_LOW = 0.4, 0.1
INTERIM = "interim, descriptive"
FIXED_CONTRASTS = (("tsla@25", "lsr"), ("tsla@15", "lsr"), ("lsr-neg@25", "tsla@25"), ("lsr", "baseline"))
CALIBRATION = (("lsr", "baseline"), ("tsla@15", "baseline"), ("tsla@25", "baseline"))
P_PLANNED = 21  # the primary family's contrasts when every regime is complete (docs/study3.md)
CONTRAST_COLUMNS = ("family", "question", "regime", "theta", "val_noise", "stop_rule", "measure", "a", "b",
                    "n_pairs", "n_draws", "n_zero", "zero_by_construction", "mean_diff", "ci_low", "ci_high",
                    "p_raw", "p_holm", "tost_p", "tost_p_holm", "ni_p", "ni_p_holm", "mde", "verdict", "answer",
                    "p_full_bound", "tost_p_full_bound", "ni_p_full_bound", "verdict_full_bound",
                    "answer_full_bound")


def complete(rows: list[dict[str, Any]], regime: str, theta: float) -> bool:
    """Whether every cell of ``regime`` at ``theta`` (and its baseline) has :data:`PAIRS_PLANNED` finished runs."""
    runs = {(r["cell"], r["draw"], r["seed"]) for r in rows if r["regime"] == regime and r["stop_rule"] == "last"
            and r["val_noise"] == "clean" and (r["theta"] == theta or r["cell"] == "baseline")}
    return all(sum(1 for c, _, _ in runs if c == cell) >= PAIRS_PLANNED for cell in SELECT_CELLS)


def declared(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plan's contrasts, in order, as specs {family, question, regime, theta, val_noise, stop_rule, measure, a,
    b}: a question's (Q1-Q3, S6's select) pairs come from the derived outcomes, a fixed contrast's from runs.csv."""
    specs: list[dict[str, Any]] = []

    def question(family: str, q: str, theta: float, rule: str, regimes: Iterable[str]) -> None:
        a, b = {"Q1": ("switch chosen", "lsr"), "Q2": ("lsr-neg@25 (last)", "lsr"),
                "Q3": ("select", "best fixed"), "S6": ("select (noise-aware)", "best fixed")}[q]
        for val_noise in ("clean", "noisy"):
            for regime in regimes:
                if val_noise in labellings(regime):
                    specs.append({"family": family, "question": q, "regime": regime, "theta": theta,
                                  "val_noise": val_noise, "stop_rule": rule, "measure": "test_top1", "a": a, "b": b})

    for family, rule in (("P", "best-val"), ("S1", "patience5")):
        for q in ("Q1", "Q2", "Q3"):
            question(family, q, THETA, rule, REGIMES)
    low = [r for r in REGIMES if complete(rows, r, THETA_LOW)]
    for q in ("Q1", "Q2", "Q3"):
        question("S2", q, THETA_LOW, "best-val", low)
    for regime in REGIMES:
        for rule, noises in (("best-val", labellings(regime)), ("last", ("clean",))):
            for val_noise in noises:
                specs += [{"family": "S3", "question": "", "regime": regime, "theta": THETA, "val_noise": val_noise,
                           "stop_rule": rule, "measure": "test_top1", "a": a, "b": b} for a, b in FIXED_CONTRASTS]
    for regime in REGIMES:
        for measure in ("test_ece", "test_ts_ece"):
            for rule in ("best-val", "last"):
                specs += [{"family": "S4", "question": "", "regime": regime, "theta": THETA, "val_noise": "clean",
                           "stop_rule": rule, "measure": measure, "a": a, "b": b} for a, b in CALIBRATION]
    question("S5", "Q3", THETA, "last", REGIMES)
    question("S6", "S6", THETA, "best-val", REGIMES)
    return specs


def pairs_of(spec: dict[str, Any], rows: list[dict[str, Any]],
             derived: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The spec's pairs: [{draw, seed, diff, zero}] (zero: Q1's "0 by construction" flag, else None), by (draw,
    seed)."""
    where = (spec["regime"], spec["theta"], spec["val_noise"], spec["stop_rule"])
    if spec["question"]:
        return [{"draw": d["draw"], "seed": d["seed"], "diff": d["diff"], "zero": d["zero_by_construction"],
                 "a": d["a_test_top1"]}
                for d in derived if d["question"] == spec["question"]
                and (d["regime"], d["theta"], d["val_noise"], d["stop_rule"]) == where]

    def values(cell: str) -> dict[tuple[int, int], float]:
        return {(r["draw"], r["seed"]): r[spec["measure"]] for r in rows
                if (r["regime"], r["val_noise"], r["stop_rule"], r["cell"]) == (*where[:1], *where[2:], cell)
                and (r["theta"] == spec["theta"] or cell == "baseline") and r.get(spec["measure"]) is not None}
    va, vb = values(spec["a"]), values(spec["b"])
    return [{"draw": d, "seed": s, "diff": va[(d, s)] - vb[(d, s)], "zero": None} for d, s in sorted(set(va) & set(vb))]


def answer(question: str, verdict_: str, ni_p_holm: float) -> str:
    """The plan's words for a decided question: Q1 holds iff "a > b", is refuted iff "a < b" or equivalent; Q2
    holds ("matches or beats") iff the Holm-adjusted non-inferiority p < 0.05, "beats" iff also "a > b", fails iff
    "a < b"; Q3 (and S6, S5) holds iff equivalent or "a > b", fails iff "a < b"; otherwise "undecided"."""
    if question == "Q1":
        return {"a > b": "holds", "a < b": "refuted"}.get(verdict_, "refuted" if verdict_.startswith("equivalent")
                                                           else "undecided")
    if question == "Q2":
        holds = ni_p_holm < 0.05
        if holds and verdict_ == "a < b":
            return "holds (non-inferior within -0.5) and fails (a < b)"  # both of the plan's conditions are met
        if holds:
            return "holds (beats)" if verdict_ == "a > b" else "holds (matches)"
        return "fails" if verdict_ == "a < b" else "undecided"
    if question in ("Q3", "S6"):
        return "holds" if verdict_ == "a > b" or verdict_.startswith("equivalent") else \
            "fails" if verdict_ == "a < b" else "undecided"
    return ""


def contrast_rows(rows: list[dict[str, Any]], derived: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every declared contrast with at least 2 pairs, family by family: statistics, then Holm over the family's
    contrasts in complete regimes (each kind of p on its own), the verdict and the question's word; the other
    regimes' contrasts keep mean and interval only."""
    decided = {regime: complete(rows, regime, THETA) for regime in REGIMES}
    out: list[dict[str, Any]] = []
    for spec in declared(rows):
        pairs = pairs_of(spec, rows, derived)
        if len(pairs) < 2:
            continue
        diffs = [p["diff"] for p in pairs]
        zeros = [p["zero"] for p in pairs if p["zero"] is not None]
        row = {**spec, "n_pairs": len(pairs), "n_draws": len({p["draw"] for p in pairs}),
               "n_zero": sum(1 for d in diffs if d == 0.0),
               "zero_by_construction": sum(zeros) / len(zeros) if zeros else None}
        if decided[spec["regime"]]:
            row.update(analyse(diffs, MARGIN), ni_p=noninferiority_p(diffs, MARGIN))
        else:
            mean, low, high = mean_ci(diffs)
            row.update(mean_diff=mean, ci_low=low, ci_high=high, verdict=INTERIM)
        row["_diffs"] = pairs
        out.append(row)
    for family in dict.fromkeys(r["family"] for r in out):
        mine = [r for r in out if r["family"] == family and r.get("verdict") != INTERIM]
        for kind in ("p_raw", "tost_p", "ni_p"):
            name = "p_holm" if kind == "p_raw" else f"{kind}_holm"
            for r, p in zip(mine, holm([r[kind] for r in mine])):
                r[name] = p
        for r in mine:
            r["verdict"] = verdict(r["mean_diff"], r["p_holm"], r["tost_p_holm"], MARGIN)
            r["answer"] = answer(r["question"], r["verdict"], r["ni_p_holm"])
            if family == "P":
                full_bound(r)
    return out


def full_bound(r: dict[str, Any]) -> None:
    """While some regimes are still interim, a decided P contrast's Holm set holds fewer than the family's
    :data:`P_PLANNED` contrasts, and adding the others can only raise its adjusted p's. Holm's adjusted p never
    exceeds Bonferroni's, min(1, m × p): so the verdict and answer with those bounds (m = 21) are the ones that stand
    however the other regimes come out."""
    for kind, name in (("p_raw", "p_full_bound"), ("tost_p", "tost_p_full_bound"), ("ni_p", "ni_p_full_bound")):
        r[name] = min(1.0, P_PLANNED * r[kind])
    r["verdict_full_bound"] = verdict(r["mean_diff"], r["p_full_bound"], r["tost_p_full_bound"], MARGIN)
    r["answer_full_bound"] = answer(r["question"], r["verdict_full_bound"], r["ni_p_full_bound"])


def superiority(diffs_by_draw: dict[Any, list[float]], resamples: int = 10_000,
                seed: int = 0) -> tuple[float, float, float]:
    """P(a > b) over pairs (a tie counts one half) and its bootstrap 95 % interval, resampling pairs with
    replacement within each draw (study 2's statistic, drawn for all resamples at once: study 2's loop takes seconds
    per contrast)."""
    rng = np.random.default_rng(seed)
    everything = np.concatenate([np.asarray(v, dtype=float) for v in diffs_by_draw.values()])
    wins = (everything > 0) + 0.5 * (everything == 0)
    drawn = []
    for values in diffs_by_draw.values():
        v = np.asarray(values, dtype=float)
        w = (v > 0) + 0.5 * (v == 0)
        drawn.append(w[rng.integers(0, v.size, size=(resamples, v.size))])
    stats = np.concatenate(drawn, axis=1).mean(axis=1)
    return float(wins.mean()), float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))


def q4_rows(contrasts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Q4's descriptive part: per P question and noisy regime, paired by (draw, seed), noisy − clean validation of
    the question's difference a − b (``noisy_minus_clean``) and of its side a alone, the test top-1 the user keeps
    (``a_noisy_minus_clean``: the switch chosen, the negative end, select's choice): means and 95 % t intervals."""
    out = []
    by_key = {(r["question"], r["regime"], r["val_noise"]): r for r in contrasts if r["family"] == "P"}
    for (q, regime, val_noise), noisy in by_key.items():
        clean = by_key.get((q, regime, "clean"))
        if val_noise != "noisy" or clean is None:
            continue
        c = {(p["draw"], p["seed"]): p for p in clean["_diffs"]}
        both = [(p, c[(p["draw"], p["seed"])]) for p in noisy["_diffs"] if (p["draw"], p["seed"]) in c]
        if len(both) >= 2:
            mean, low, high = mean_ci([n["diff"] - k["diff"] for n, k in both])
            a_mean, a_low, a_high = mean_ci([n["a"] - k["a"] for n, k in both])
            out.append({"question": q, "regime": regime, "n_pairs": len(both), "noisy_minus_clean": mean,
                        "ci_low": low, "ci_high": high, "a_noisy_minus_clean": a_mean, "a_ci_low": a_low,
                        "a_ci_high": a_high})
    return out
