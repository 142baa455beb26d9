"""Study 3's tables in markdown (results3-tables.md), from the rows scripts/study3_analyse.py computed: which regimes
are decided, every cell side by side under each stopping rule, every family's contrasts with their verdicts and
words, Q4's noisy − clean differences, the mixed models, P(a > b) and the variance split. Numbers only, fixed
formats, so the same rows give the same bytes."""

from __future__ import annotations

import math
from typing import Any

from study3_families import INTERIM, PAIRS_PLANNED, THETA, THETA_LOW, complete
from study3_runs import REGIMES


def _f(value: Any, fmt: str = "+.2f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return format(value, fmt)


def _table(header: list[str], lines: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(line) + " |" for line in lines] + [""])


def tables_markdown(rows: list[dict[str, Any]], contrasts: list[dict[str, Any]],
                    tables: dict[str, list[dict[str, Any]]]) -> str:
    """The whole file's text."""
    out = ["# Study 3: tables", "", "Written by `scripts/study3_analyse.py` from `runs.csv`; do not edit. Test top-1,",
           "ECE in percentage points; differences a − b paired by (draw, seed); margin ±0.5. At the last epoch",
           "no validation labelling is read: S3's last-epoch contrasts are listed once, under clean.", "",
           "## Regimes decided", ""]
    status = []
    for regime in REGIMES:
        for theta in (THETA, THETA_LOW):
            runs = {r["run"] for r in rows
                    if r["regime"] == regime and (r["theta"] == theta or r["cell"] == "baseline")}
            if any(r["regime"] == regime and r["theta"] == theta for r in rows):
                state = "complete: decided" if complete(rows, regime, theta) else f"{INTERIM} (fewer than " \
                    f"{PAIRS_PLANNED} pairs in a cell)"
                status.append([regime, f"{theta:g}", str(len(runs)), state])
    out += _table(["regime", "θ", "finished runs (baseline included)", "status"], status)
    out += ["## Cells (test top-1 at the epoch each rule keeps, mean ± std over runs)", ""]
    cells: dict[tuple, dict[tuple, dict[str, Any]]] = {}
    for c in tables["cells.csv"]:
        cells.setdefault((c["regime"], c["theta"], c["cell"]), {})[(c["val_noise"], c["stop_rule"])] = c
    columns = [("clean", "best-val"), ("noisy", "best-val"), ("clean", "patience5"), ("noisy", "patience5"),
               ("clean", "last")]
    lines = []
    for (regime, theta, cell), by in cells.items():
        def show(key: tuple) -> str:
            c = by.get(key)
            return "" if c is None else f"{c['test_top1']:.2f} ± {_f(c['test_top1_std'], '.2f') or '–'} " \
                                        f"(ep {c['epoch']:.1f}, n {c['n_runs']})"
        lines.append([regime, f"{theta:g}", cell] + [show(k) for k in columns])
    out += _table(["regime", "θ", "cell", "best-val (clean val)", "best-val (noisy val)", "patience5 (clean val)",
                   "patience5 (noisy val)", "last"], lines)
    for family in dict.fromkeys(r["family"] for r in contrasts):
        out += [f"## Family {family}", ""]
        lines = [[r["question"] or "", r["regime"], f"{r['theta']:g}", r["val_noise"], r["stop_rule"], r["measure"],
                  r["a"], r["b"], str(r["n_pairs"]), _f(r.get("zero_by_construction"), ".2f"), _f(r["mean_diff"]),
                  f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}]", _f(r.get("p_raw"), ".4f"), _f(r.get("p_holm"), ".4f"),
                  _f(r.get("tost_p_holm"), ".4f"), _f(r.get("ni_p_holm"), ".4f"), _f(r.get("mde"), ".2f"),
                  r["verdict"], r.get("answer") or ""] for r in contrasts if r["family"] == family]
        out += _table(["question", "regime", "θ", "val labels", "stop rule", "measure", "a", "b", "pairs",
                       "0 by construction", "mean a − b", "95% CI", "sign-flip p", "Holm p", "TOST p (Holm)",
                       "non-inferiority p (Holm)", "MDE", "verdict", "answer"], lines)
    out += ["## Family P: the verdicts that stand whatever the other regimes give", "",
            "Holm's set above holds only the decided regimes' P contrasts. With all 21 of the plan it can only grow,",
            "and Holm's adjusted p never exceeds min(1, 21 × p): the verdict with these bounds stands however the",
            "interim regimes come out.", ""]
    out += _table(["question", "regime", "val labels", "sign-flip p × 21", "TOST p × 21", "non-inferiority p × 21",
                   "verdict", "answer"],
                  [[r["question"], r["regime"], r["val_noise"], _f(r["p_full_bound"], ".4f"),
                    _f(r["tost_p_full_bound"], ".4f"), _f(r["ni_p_full_bound"], ".4f"), r["verdict_full_bound"],
                    r["answer_full_bound"]] for r in contrasts if "p_full_bound" in r])
    out += ["## Q4: noisy − clean validation labels, per P question (descriptive)", ""]
    out += _table(["question", "regime", "pairs", "a − b: noisy − clean", "95% CI", "a alone: noisy − clean",
                   "95% CI"],
                  [[r["question"], r["regime"], str(r["n_pairs"]), _f(r["noisy_minus_clean"]),
                    f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}]", _f(r["a_noisy_minus_clean"]),
                    f"[{_f(r['a_ci_low'])}, {_f(r['a_ci_high'])}]"] for r in tables["q4.csv"]])
    out += ["## P: mixed model (random intercept per draw) and P(a > b) (bootstrap within draws)", ""]
    sup = {(r["question"], r["regime"], r["val_noise"]): r for r in tables["superiority.csv"]}
    lines = []
    for m in tables["mixed.csv"]:
        s = sup[(m["question"], m["regime"], m["val_noise"])]
        lines.append([m["question"], m["regime"], m["val_noise"], str(m["n_pairs"]), _f(m["intercept"]),
                      f"[{_f(m.get('ci_low'))}, {_f(m.get('ci_high'))}]", _f(m.get("var_draw"), ".3f"),
                      _f(m.get("var_residual"), ".3f"), m.get("note") or "", _f(s["p_a_gt_b"], ".3f"),
                      f"[{_f(s['ci_low'], '.3f')}, {_f(s['ci_high'], '.3f')}]"])
    out += _table(["question", "regime", "val labels", "pairs", "intercept", "95% CI", "draw variance",
                   "residual variance", "fit notes", "P(a > b)", "95% CI"], lines)
    out += ["## Post hoc (amendment 5): P contrasts by the machine that trained the pairs (descriptive)", ""]
    out += _table(["question", "regime", "val labels", "machine", "draws", "pairs", "mean a − b", "95% CI"],
                  [[m["question"], m["regime"], m["val_noise"], m["machine"], m["draws"], str(m["n_pairs"]),
                    _f(m["mean_diff"]), f"[{_f(m['ci_low'])}, {_f(m['ci_high'])}]"]
                   for m in tables.get("posthoc-machine.csv", [])])
    out += ["## Variance of each cell's test top-1: between draws and within draws (seeds)", ""]
    out += _table(["regime", "θ", "val labels", "stop rule", "cell", "runs", "draws", "mean", "var draw", "var seed"],
                  [[v["regime"], f"{v['theta']:g}", v["val_noise"], v["stop_rule"], v["cell"], str(v["n_runs"]),
                    str(v["n_draws"]), _f(v["mean"], ".2f"), _f(v["var_draw"], ".3f"), _f(v["var_seed"], ".3f")]
                   for v in tables["variance.csv"]])
    return "\n".join(out)
