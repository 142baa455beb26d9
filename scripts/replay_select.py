"""Replay select's noise-aware choice (tsla/experiments/select_rule.py), its noise-aware halving
(select_halving_rule.py) and tsla-auto (v3, and a look-ahead v4 candidate) on the committed logs of study 1 and
study 2; write the tables of docs/evidence/select-replay/ byte for byte.

    PYTHONPATH=$PWD python scripts/replay_select.py [--out docs/evidence/select-replay]

Selection reads validation only, each run scored at its best-validation epoch; the choice is then judged by test
top-1 at each chosen run's best-validation epoch against the **best fixed cell** (the candidate with the highest
mean test top-1 over the regime's runs: an oracle no user has), paired by (draw, seed), with 95 % t intervals, in
points. Study 2: per draw, its 4 seeds choose. Study 1 (one data draw): per block of 4 seeds.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the replay's helper modules beside this script

from select_replay_auto import LOOK, lookahead, v3  # noqa: E402
from select_replay_logs import N_TEST, STUDY2_CELLS, Group, n_val, study1, study2  # noqa: E402
from tsla.experiments.select_halving_rule import noise_aware_halving  # noqa: E402
from tsla.experiments.select_rule import VAL_DISAGREEMENT, choose_noise_aware  # noqa: E402
from tsla.experiments.select_score import Candidate, choose, epochs_trained, families, score  # noqa: E402
from tsla.report.stats import mean_ci  # noqa: E402

EPOCHS, MILESTONES, GOAL = 30, (15, 25), -0.25


def val_scores(group: Group) -> dict[Candidate, list[float]]:
    return {c: [score(r.records, "val_top1", "best-val")["score"] for r in runs] for c, runs in group.items()}


def ci(diffs: list[float]) -> str:
    mean, lo, hi = mean_ci(diffs)
    return f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def best_fixed(groups: dict[int, Group], cands: list[Candidate]) -> Candidate:
    total = {c: sum(r.test_at_best_val for g in groups.values() for r in g[c]) for c in cands}
    return max(cands, key=lambda c: (total[c], -cands.index(c)))


def constants_table(regimes: dict[str, dict[int, Group]]) -> str:
    """D per regime (module text of select_rule) and how shared the validation noise is across seeds."""
    lines = ["# The rule's validation floor, measured on the committed logs (study 1 and study 2 only)", "",
             "r = (val_a - val_b) - (test_a - test_b) for two candidate cells of the same (draw, seed), each at its "
             "run's best-validation epoch; D = mean(r^2) / (1/n_val + 1/n_test); sharing = mean over (group, pair) "
             "of (mean of r over the group's 4 seeds)^2, over the mean of r^2 (0.25: independent across seeds, "
             "1: shared).", "",
             "| regime | pairs | D | sharing |", "|---|---|---|---|"]
    ds = []
    for name, groups in regimes.items():
        rs, shared = [], []
        for g in groups.values():
            nv, val = n_val(g), val_scores(g)
            for a, b in itertools.combinations(list(g), 2):
                r = [(val[a][k] - val[b][k]) - (g[a][k].test_at_best_val - g[b][k].test_at_best_val) / 100
                     for k in range(len(g[a]))]
                rs += r
                shared.append((sum(r) / len(r)) ** 2)
        msq = sum(x * x for x in rs) / len(rs)
        ds.append(msq / (1 / nv + 1 / N_TEST))
        lines.append(f"| {name} | {len(rs)} | {ds[-1]:.3f} | {sum(shared) / len(shared) / msq:.2f} |")
    lines += ["", f"Mean D over the {len(ds)} regimes: {sum(ds) / len(ds):.3f}; the rule uses VAL_DISAGREEMENT = "
              f"{VAL_DISAGREEMENT:g}."]
    return "\n".join(lines) + "\n"


def regime_table(name: str, groups: dict[int, Group], cands: list[Candidate], group_word: str,
                 lsr_per_theta: int) -> tuple[list[str], dict[str, float]]:
    """One regime: per group the rule's choice, the plain argmax and halving; then each against the best fixed."""
    sub = {k: {c: g[c] for c in cands} for k, g in groups.items()}
    best = best_fixed(sub, cands)
    tests = [r.test_at_best_val for g in sub.values() for r in g[best]]
    best_mean = sum(tests) / len(tests)
    lines = [f"### {name}: best fixed cell {best.label} ({best_mean:.2f} % test top-1 at best-val)", "",
             f"| {group_word} | rule's choice | P(best) of it | best validation mean | separated? | plain argmax | "
             f"halving's choice | halving epochs/seed |", "|---|---|---|---|---|---|---|---|"]
    diffs: dict[str, list[float]] = {"rule": [], "argmax": [], "halving": []}
    epochs = []
    for k, g in sub.items():
        per_seed = val_scores(g)
        nv = n_val(g)
        got = choose_noise_aware(per_seed, n_val=nv)
        argmax = choose({c: sum(v) / len(v) for c, v in per_seed.items()}, "val_top1")
        half = noise_aware_halving(cands, lambda c: [r.records for r in g[c]], MILESTONES, EPOCHS, n_val=nv)
        epochs.append(half.epochs_per_seed)
        p = next(s.p_best for s in got.stats if s.candidate == got.chosen)
        sep = "yes" if got.separated else ("no: validation too small" if got.val_too_small else "no: seeds")
        lines.append(f"| {k} | {got.chosen.label} | {p:.2f} | {got.best.label} | {sep} | {argmax.label} | "
                     f"{half.choice.chosen.label} | {half.epochs_per_seed} |")
        for key, cand in (("rule", got.chosen), ("argmax", argmax), ("halving", half.choice.chosen)):
            diffs[key] += [a.test_at_best_val - b.test_at_best_val for a, b in zip(g[cand], g[best])]
    fams = families(cands)
    grid = epochs_trained(fams, {f: EPOCHS for f in fams})
    least = min(epochs_trained(fams, {g: EPOCHS if g == f else MILESTONES[0] for g in fams}) for f in fams)
    lsr = EPOCHS * lsr_per_theta
    mean_epochs = sum(epochs) / len(epochs)
    lines += ["", f"Minus the best fixed cell (test top-1 at best-val, points, {len(diffs['rule'])} pairs):", "",
              f"- rule: {ci(diffs['rule'])}; {grid} epochs per seed ({grid / lsr:.2f}x one LSR run per theta)",
              f"- plain argmax of the mean (for comparison): {ci(diffs['argmax'])}",
              f"- noise-aware halving: {ci(diffs['halving'])}; {mean_epochs:.1f} epochs per seed "
              f"({mean_epochs / lsr:.2f}x); the least any halving across these families can train is {least} "
              f"(one family to the end, the others stopped at {MILESTONES[0]}: {least / lsr:.2f}x)", ""]
    return lines, {k: sum(v) / len(v) for k, v in diffs.items()}


def goal_lines(means: dict[str, dict[str, float]]) -> list[str]:
    out = [f"Goal: select - best >= {GOAL:+.2f} points (mean over pairs) in every regime.", ""]
    for key in ("rule", "halving"):
        met = [r for r, m in means.items() if m[key] >= GOAL]
        missed = [f"{r} ({m[key]:+.2f})" for r, m in means.items() if m[key] < GOAL]
        out.append(f"- {key}: met in {', '.join(met) or 'none'}; missed in {', '.join(missed) or 'none'}")
    return out + [""]


def study_page(title: str, regimes: dict[str, dict[int, Group]], sets: dict[str, list[Candidate]],
               group_word: str, lsr_per_theta: Callable[[list[Candidate]], int], intro: str) -> str:
    lines = [f"# {title}", "", intro, ""]
    for set_name, cands in sets.items():
        lines += [f"## Candidates: {set_name}", ""]
        means = {}
        for regime, groups in regimes.items():
            rows, means[regime] = regime_table(regime, groups, cands, group_word, lsr_per_theta(cands))
            lines += rows
        lines += goal_lines(means)
    return "\n".join(lines).rstrip() + "\n"


def detail_page(regimes: dict[str, dict[int, Group]]) -> str:
    """What the rule reports per draw: each candidate's mean, its difference to the chosen one with a 95 % interval,
    P(best), and the sentence on separation."""
    lines = ["# The rule's report per draw of study 2 (validation top-1 at best-val, %)", "",
             "| regime | draw | candidate | mean | minus the chosen [95 % interval] | P(best) |",
             "|---|---|---|---|---|---|"]
    sentences = []
    for regime, groups in regimes.items():
        for k, g in groups.items():
            got = choose_noise_aware(val_scores(g), n_val=n_val(g))
            for st in got.stats:
                mark = " (chosen)" if st.candidate == got.chosen else ""
                d = st.vs_chosen
                lines.append(f"| {regime} | {k} | {st.candidate.label}{mark} | {100 * st.mean:.2f} | "
                             f"{100 * d.mean:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}] | {st.p_best:.2f} |")
            sentences.append(f"- {regime}, draw {k}: {got.sentence}")
    early = []
    for regime, groups in regimes.items():
        before = [score(r.records, "val_top1", "best-val")["epoch"] < c.switch_epoch
                  for g in groups.values() for c, rs in g.items() if c.switch_epoch for r in rs]
        early.append(f"- {regime}: {sum(before)} of {len(before)}")
    return "\n".join(lines + ["", "What it says:", ""] + sentences + [
        "", "Branch runs (TSLA(S), negative ends) whose best-validation epoch lies before their switch, so that "
        "early-stopped they are their LSR trunk's model (the same scores):", ""] + early) + "\n"


def sensitivity_page(pages: dict[str, tuple[dict[str, dict[int, Group]], list[Candidate]]]) -> str:
    """The rule's choice against the best fixed cell for other thresholds z and floors D: not used to fix them."""
    lines = ["# What other constants would have chosen (mean of select - best fixed cell, points)", "",
             "The rule uses z = 1 (its definition: one SE) and D = 0.08 (constants.md). Each row replays it with "
             "another z (0: any positive mean gain moves, i.e. the best mean) or D (0: the seeds' SE alone).", ""]
    cols = [(name, regime) for name, (regimes, _) in pages.items() for regime in regimes]
    lines += ["| z | D | " + " | ".join(f"{n} {r}" for n, r in cols) + " |", "|---|---|" + "---|" * len(cols)]
    for z in (0.0, 0.5, 1.0):
        for d in (0.0, VAL_DISAGREEMENT):
            cells = []
            for name, regime in cols:
                regimes, cands = pages[name]
                sub = {k: {c: g[c] for c in cands} for k, g in regimes[regime].items()}
                best, diffs = best_fixed(sub, cands), []
                for g in sub.values():
                    got = choose_noise_aware(val_scores(g), n_val=n_val(g), disagreement=d, z=z).chosen
                    diffs += [a.test_at_best_val - b.test_at_best_val for a, b in zip(g[got], g[best])]
                cells.append(f"{sum(diffs) / len(diffs):+.2f}")
            lines.append(f"| {z:g} | {d:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def auto_page(studies: dict[str, tuple[dict[str, dict[int, Group]], dict[str, Candidate]]]) -> str:
    """tsla-auto v3 and the look-ahead per (draw or block, seed), against the best fixed cell of ``cells``."""
    lines = ["# tsla-auto replayed on the committed logs (one run per seed; test top-1 at best-val, points)", "",
             f"Against the best fixed cell of the select candidates at theta 0.4, paired by (draw, seed). v4 = "
             f"look-ahead of {LOOK} epochs at each decay (scripts/select_replay_auto.py); 'v4 + SE' keeps the "
             f"simpler continuation unless another is better by more than sqrt(D / n_val). Study 1: one draw, "
             f"early-stopped among the epochs with a test evaluation; no negative end.", "",
             "| study | regime | rule | cells kept | minus the best fixed cell | epochs per seed |",
             "|---|---|---|---|---|---|"]
    for study, (regimes, cells) in studies.items():
        cands = list(cells.values())
        label_of = {c: label for label, c in cells.items()}
        for regime, groups in regimes.items():
            best = best_fixed(groups, cands)
            for rule in ("v3 noise-gap", "v4 look-ahead", "v4 + SE"):
                counts: dict[str, int] = {}
                diffs, epochs = [], []
                for g in groups.values():
                    margin = math.sqrt(VAL_DISAGREEMENT / n_val(g)) if rule == "v4 + SE" else 0.0
                    for k in range(len(g[best])):
                        runs = {label_of[c]: g[c][k] for c in cands}
                        kept, spent = (v3(runs), EPOCHS) if rule.startswith("v3") else lookahead(runs, margin)
                        counts[kept] = counts.get(kept, 0) + 1
                        diffs.append(runs[kept].test_at_best_val - g[best][k].test_at_best_val)
                        epochs.append(spent)
                kept_text = ", ".join(f"{lab} {n}" for lab, n in sorted(counts.items()))
                lines.append(f"| {study} | {regime} | {rule} | {kept_text} (of {len(diffs)}) | {ci(diffs)} "
                             f"(best: {label_of[best]}) | {sum(epochs) / len(epochs):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/evidence/select-replay"))
    parser.add_argument("--study1", type=Path, default=Path("docs/evidence/study/runs"))
    parser.add_argument("--study2", type=Path, default=Path("docs/evidence/study2/runs"))
    args = parser.parse_args()
    s1, s2 = study1(args.study1), study2(args.study2)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "constants.md").write_text(constants_table(
        {**{f"study 1 {r}": g for r, g in s1.items()}, **{f"study 2 {r}": g for r, g in s2.items()}}))
    (args.out / "study2.md").write_text(study_page(
        "select's noise-aware rule replayed on study 2", s2, {"baseline, LSR(0.4), TSLA(0.4, 15), TSLA(0.4, 25), "
        "LSR(0.4) -> -0.2 at 25": list(STUDY2_CELLS.values())}, "draw", lambda cands: 1,
        "Per draw, its 4 seeds choose; 3 draws x 4 seeds = 12 pairs per regime. Halving: milestones 15 and 25."))
    full = list(next(iter(s1["r1-few"].values())))
    theta4 = [c for c in full if c.method == "baseline" or c.theta == 0.4]
    (args.out / "study1.md").write_text(study_page(
        "select's noise-aware rule replayed on study 1", s1,
        {"baseline, LSR(0.4), TSLA(0.4, 15), TSLA(0.4, 25) (no negative end in study 1)": theta4,
         "the full grid: baseline and, per theta in 0.1, 0.2, 0.4, LSR, TSLA(15), TSLA(25)": full},
        "block of 4 seeds", lambda cands: len({c.theta for c in cands if c.method != "baseline"}),
        "One data draw; blocks of 4 seeds (r1-few: 12 seeds, 3 blocks; r2-noise: 8 seeds, 2 blocks). Runs cut to "
        "the epochs with a test evaluation (every 5 epochs): validation picks among those."))
    cells1 = {"baseline": full[0], **{label: Candidate(method, 0.4, switch) for label, method, switch in
                                      (("lsr", "lsr", None), ("tsla@15", "tsla", 15), ("tsla@25", "tsla", 25))}}
    (args.out / "tsla-auto.md").write_text(auto_page({"study 2": (s2, STUDY2_CELLS), "study 1": (s1, cells1)}))
    (args.out / "study2-detail.md").write_text(detail_page(s2))
    (args.out / "sensitivity.md").write_text(sensitivity_page(
        {"study 2": (s2, list(STUDY2_CELLS.values())), "study 1 theta 0.4": (s1, theta4), "study 1 grid": (s1, full)}))
    for name in ("constants.md", "study2.md", "study2-detail.md", "study1.md", "tsla-auto.md", "sensitivity.md"):
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
