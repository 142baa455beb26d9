"""Study 2's analysis (docs/study2.md): runs.csv from the run folders, then everything else from runs.csv alone.

    python scripts/study2_analyse.py RUNS_DIR [--out docs/evidence/study2] [--figure docs/figures/study2-profile.png]
    python scripts/study2_analyse.py --runs-csv docs/evidence/study2/runs.csv [--out ...]

RUNS_DIR holds OUT/<regime>/d<D>/<label>-seed<S>/ (scripts/study2.sh's layout, or its committed small files under
docs/evidence/study2/runs). Writes into --out: ``runs.csv`` (one row per finished run, plus the derived ``select``
and ``auto-v3`` rows), ``contrasts.csv`` (the plan's families, Holm within each, a ``measure`` column),
``mixed.csv`` (MixedLM intercept per P/S1/S4 contrast, random intercept per draw), ``superiority.csv`` (P(a > b)
with a bootstrap interval stratified by draw), ``variance.csv`` (between-draw and within-draw variance per cell) and
the performance-profile figure. A family with fewer than 12 pairs in any contrast gets the verdict "interim" (the
plan's stopping rule): its numbers are descriptive only.

Every file is computed first and written under a temporary name, then renamed into place: a RUNS_DIR that is no
folder or holds no finished run, a missing, empty or cut runs.csv, a cut run file, or a full disk is one line
``study2_analyse.py: error: ...`` and exit 2, and the earlier analysis in --out is left as it was.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import yaml

from tsla.report.paired import analyse, csv_text, write_csv
from tsla.report.write_files import write_together
from tsla.report.stats import holm, verdict

COLUMNS = ("regime", "label", "method", "theta", "switch_epoch", "theta_after", "draw", "seed", "noise", "noise_rate",
           "val_top1", "test_top1", "best_val_epoch", "test_top1_at_best_val", "test_nll", "test_ece",
           "noise_memorised_final", "commit")
MEASURES = {"best-val": "test_top1_at_best_val", "last": "test_top1"}
MARGIN = 0.5
PAIRS_PLANNED = 12
NOISY = ("sym40", "pair40")
SELECT_FROM = ("baseline", "lsr", "tsla@15", "tsla@25", "tsla@28")  # the candidates tsla select scores
FIXED = ("baseline", "lsr", "tsla@15", "tsla@25", "tsla@28", "budget", "lsr-neg@25", "wei@15")
CONTROLS = [("budget", "tsla@25"), ("tsla@28", "lsr"), ("tsla@15", "lsr"), ("lsr", "baseline")]
NEGATIVE = [("lsr-neg@25", "tsla@25"), ("wei@15", "tsla@25"), ("wei@15", "baseline")]
# (family, measure, [(regime, a, b)]) as declared in docs/study2.md
FAMILIES = [
    ("P", "best-val", [(r, "tsla@25", "lsr") for r in NOISY]),
    ("S1", "last", [(r, "tsla@25", "lsr") for r in NOISY + ("clean",)]),
    ("S2", "best-val", [(r, a, b) for r in NOISY for a, b in CONTROLS]),
    ("S3", "best-val", [(r, a, b) for r in NOISY for a, b in NEGATIVE]),
    ("S4", "best-val", [("clean", "tsla@25", "lsr"), ("clean", "lsr", "baseline")]),
    ("S5", "last", [(r, a, b) for r in NOISY for a, b in CONTROLS + NEGATIVE]),
]
MIXED_FAMILIES = ("P", "S1", "S4")


# ---------------------------------------------------------------- runs.csv from run folders

def _pct(x: Optional[float]) -> Optional[float]:
    return None if x is None else 100.0 * float(x)


class Unusable(Exception):
    """An input that cannot be analysed (a missing folder, a cut file): one line, exit 2, nothing written."""


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise Unusable(f"{path} cannot be read ({getattr(exc, 'strerror', None) or exc}): {what}") from None


def _json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise Unusable(f"{path} is not JSON (a cut or edited file): restore it, or train the run again") from None


def run_row(run: Path, regime: str) -> Optional[dict[str, Any]]:
    """One runs.csv row for a finished run folder (None for an unfinished one). Raises ``Unusable`` naming a file
    that is missing, cut or of the wrong shape."""
    summary = _json(run / "summary.json", _read(run / "summary.json", "restore the run's files"))
    if not isinstance(summary, dict) or summary.get("status") != "finished":
        return None
    try:
        cfg = yaml.safe_load(_read(run / "config.yaml", "a finished run needs its config.yaml"))
    except yaml.YAMLError:
        raise Unusable(f"{run / 'config.yaml'} is not valid YAML: restore it") from None
    lines = [line for line in _read(run / "metrics.jsonl", "a finished run needs its metrics").splitlines()
             if line.strip()]
    if not lines:
        raise Unusable(f"{run / 'metrics.jsonl'} is empty, though summary.json says finished: restore it")
    last = _json(run / "metrics.jsonl", lines[-1])
    try:
        best = summary.get("best_val") or {}
        label = run.name.rpartition("-seed")[0]
        return {
            "regime": regime, "label": label, "method": cfg["method"], "theta": cfg["theta"],
            "switch_epoch": summary.get("switch_epoch"), "theta_after": cfg.get("theta_after", 0.0),
            "draw": cfg["subset_seed"], "seed": cfg["seed"],
            "noise": cfg.get("label_noise_type", "symmetric") if cfg.get("label_noise") else "none",
            "noise_rate": cfg.get("label_noise", 0.0),
            "val_top1": _pct(last.get("val_top1")), "test_top1": _pct(last.get("test_top1")),
            "best_val_epoch": best.get("epoch"), "test_top1_at_best_val": _pct(best.get("test_top1")),
            "test_nll": last.get("test_nll"), "test_ece": _pct(last.get("test_ece")),
            "noise_memorised_final": _pct(last.get("noise_memorised")), "commit": summary.get("git_commit"),
        }
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise Unusable(f"{run} has a config.yaml, summary.json or metrics.jsonl of the wrong shape "
                       f"({type(exc).__name__}: {exc}): restore the run's files") from None


def collect(root: Path) -> list[dict[str, Any]]:
    """The rows of every finished run under ``root`` (OUT/<regime>/d<D>/<label>-seed<S>/). Raises ``Unusable`` when
    ``root`` is no folder or holds no finished run: an empty runs.csv must never replace the analysed one."""
    if not root.is_dir():
        raise Unusable(f"RUNS_DIR {root} is not a folder: give the study's run folder, e.g. runs/study2")
    rows = []
    for summary in sorted(root.glob("*/d*/*-seed*/summary.json")):
        run = summary.parent
        row = run_row(run, run.parent.parent.name)
        if row is not None:
            rows.append(row)
    if not rows:
        raise Unusable(f"no finished run in {root} (it should hold <regime>/d<D>/<label>-seed<S>/summary.json)")
    return rows


def derived_rows(rows: list[dict[str, Any]], auto_switch: Optional[Callable[[Path], Optional[int]]] = None,
                 root: Optional[Path] = None) -> list[dict[str, Any]]:
    """The ``select`` cell (per regime, draw and seed: the candidate with the highest final validation top-1; ties
    to the earlier candidate of SELECT_FROM) and, given a replay ``auto_switch(lsr_run) -> switch epoch``, the
    ``auto-v3`` cell (the tsla@S run its decision names)."""
    out = []
    cases = sorted({(r["regime"], r["draw"], r["seed"]) for r in rows})
    for regime, draw, seed in cases:
        mine = {r["label"]: r for r in rows if (r["regime"], r["draw"], r["seed"]) == (regime, draw, seed)}
        if all(label in mine for label in SELECT_FROM):
            chosen = max(SELECT_FROM, key=lambda label: (mine[label]["val_top1"], -SELECT_FROM.index(label)))
            out.append({**mine[chosen], "label": "select"})
        if auto_switch is not None and root is not None and "lsr" in mine:
            epoch = auto_switch(root / regime / f"d{draw}" / f"lsr-seed{seed}")
            named = "lsr" if epoch is None else f"tsla@{epoch}"
            if named in mine:
                out.append({**mine[named], "label": "auto-v3"})
    return out


NUMERIC = {"theta", "switch_epoch", "theta_after", "draw", "seed", "noise_rate", "val_top1", "test_top1",
           "best_val_epoch", "test_top1_at_best_val", "test_nll", "test_ece", "noise_memorised_final"}


def parse_rows(text: str, source: str, *, required: tuple[str, ...], numeric: set[str], script: str,
               integers: tuple[str, ...] = (), known: Optional[dict[str, tuple[str, ...]]] = None,
               nonempty: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """A study's runs.csv rows from its text (studies 2 and 3 share this strict reader): cells of ``numeric`` columns
    as floats (those in ``integers`` as ints), other cells as text, empty cells as None. Raises ``Unusable`` naming a
    missing ``required`` column, the line of a cut row, of a cell that is not a finite number, of a cell of a
    ``known`` column outside its values or of an empty ``nonempty`` cell, and a file without rows; each message says
    to write the file again with ``scripts/<script>``."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise Unusable(f"{source} has no {missing[0]} column (an empty, cut or older file?): write it again with "
                       f"'python scripts/{script} RUNS_DIR'")
    known = known or {}
    rows = []
    for line, r in enumerate(reader, 2):
        if None in r or any(v is None for v in r.values()):
            raise Unusable(f"{source} line {line} has {'more' if None in r else 'fewer'} cells than the header (a "
                           f"cut or edited file): write it again from the run folders")
        row: dict[str, Any] = {}
        for k, v in r.items():
            if k in known and v not in known[k]:
                raise Unusable(f"{source} line {line}: {k} = {v!r} is not one of {', '.join(known[k])}: fix the row "
                               f"or write the file again from the run folders")
            if k not in numeric or v == "":
                row[k] = v if v != "" else None
                continue
            try:
                number = float(v)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise Unusable(f"{source} line {line}: {k} = {v!r} is not a finite number: fix the row or write the "
                               f"file again from the run folders")
            row[k] = int(number) if k in integers else number
        for k in nonempty:
            if row[k] is None:
                raise Unusable(f"{source} line {line}: {k} is empty: write the file again from the run folders")
        rows.append(row)
    if not rows:
        raise Unusable(f"{source} holds no run: write it again with 'python scripts/{script} RUNS_DIR'")
    return rows


def parse_runs_text(text: str, source: str) -> list[dict[str, Any]]:
    """Study 2's runs.csv rows from its text, numbers as floats and empty cells as None (:func:`parse_rows`)."""
    return parse_rows(text, source, required=("regime", "label", "draw", "seed", "test_top1"), numeric=NUMERIC,
                      script="study2_analyse.py")


def read_runs_csv(path: Path) -> list[dict[str, Any]]:
    return parse_runs_text(_read(path, "give the runs.csv this script wrote"), str(path))


# ---------------------------------------------------------------- analysis from runs.csv alone

def paired(rows: list[dict[str, Any]], regime: str, a: str, b: str, key: str) -> list[tuple[Any, Any, float]]:
    """(draw, seed, a − b) for every (draw, seed) where both cells have the measure."""
    def values(label):
        return {(r["draw"], r["seed"]): r[key] for r in rows
                if r["regime"] == regime and r["label"] == label and r.get(key) is not None}
    va, vb = values(a), values(b)
    return [(d, s, va[(d, s)] - vb[(d, s)]) for d, s in sorted(set(va) & set(vb))]


def _pairs_of(rows: list[dict[str, Any]], families: tuple[str, ...]):
    """(family, measure, regime, a, b, pairs) for every declared contrast of the named families."""
    for family, measure, contrasts in FAMILIES:
        if family in families:
            for regime, a, b in contrasts:
                yield family, measure, regime, a, b, paired(rows, regime, a, b, MEASURES[measure])


def family_rows(rows: list[dict[str, Any]], family: str,
                contrasts: list[tuple[str, str, str, Optional[str]]]) -> list[dict[str, Any]]:
    """One family's contrasts ``(measure, regime, a, b)``, each paired by (draw, seed) (one with fewer than 2 pairs,
    or no ``b``, is left out); Holm over those present; "interim" for all of them until every declared contrast has
    its 12 pairs (the plan's stopping rule)."""
    fam = []
    for measure, regime, a, b in contrasts:
        pairs = paired(rows, regime, a, b, MEASURES[measure]) if b else []
        if len(pairs) < 2:
            continue
        diffs = [d for _, _, d in pairs]
        fam.append({"family": family, "measure": measure, "regime": regime, "a": a, "b": b,
                    "n_draws": len({d for d, _, _ in pairs}), **analyse(diffs, MARGIN)})
    interim = len(fam) < len(contrasts) or any(r["n_pairs"] < PAIRS_PLANNED for r in fam)
    for row, p in zip(fam, holm([r["p_raw"] for r in fam])):
        row["p_holm"] = p
        row["verdict"] = "interim" if interim else verdict(row["mean_diff"], p, row["tost_p"], MARGIN)
    return fam


def contrast_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every declared family of FAMILIES (P, S1-S5), in order."""
    return [row for family, measure, contrasts in FAMILIES
            for row in family_rows(rows, family, [(measure, regime, a, b) for regime, a, b in contrasts])]


REGIMES = NOISY + ("clean",)
DERIVED = ("select", "auto-v3")


def best_fixed(rows: list[dict[str, Any]], regime: str) -> Optional[str]:
    """The fixed cell (FIXED) with the highest mean final validation top-1 in ``regime`` (ties to the one listed
    first): family G's reference, chosen on validation as the plan says, never on test."""
    means = {}
    for label in FIXED:
        vals = [r["val_top1"] for r in rows if r["regime"] == regime and r["label"] == label
                and r.get("val_top1") is not None]
        if vals:
            means[label] = sum(vals) / len(vals)
    return max(means, key=lambda label: (means[label], -FIXED.index(label))) if means else None


def goal_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Family G (goal checks, not hypotheses): ``select − best`` and ``auto-v3 − best`` per regime and measure, where
    *best* is :func:`best_fixed`; Holm over the family, "interim" until every contrast has its 12 pairs. A derived
    run that *is* the best cell's run gives a difference of exactly 0 for that pair."""
    best = {regime: best_fixed(rows, regime) for regime in REGIMES}
    planned = [(measure, regime, derived, best[regime])
               for regime in REGIMES for measure in ("best-val", "last") for derived in DERIVED]
    return family_rows(rows, "G", planned)


def mixed_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """statsmodels' MixedLM on the paired differences, diff ~ 1 with a random intercept per draw."""
    import pandas as pd
    import statsmodels.formula.api as smf

    out = []
    for family, measure, regime, a, b, pairs in _pairs_of(rows, MIXED_FAMILIES):
        if len({d for d, _, _ in pairs}) < 2:
            continue
        frame = pd.DataFrame(pairs, columns=["draw", "seed", "diff"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = smf.mixedlm("diff ~ 1", frame, groups=frame["draw"]).fit(reml=True)
        low, high = fit.conf_int().loc["Intercept"]
        out.append({"family": family, "measure": measure, "regime": regime, "a": a, "b": b,
                    "n_pairs": len(pairs), "intercept": fit.params["Intercept"], "ci_low": low, "ci_high": high,
                    "p": fit.pvalues["Intercept"], "var_draw": float(fit.cov_re.iloc[0, 0]),
                    "var_residual": fit.scale, "converged": bool(fit.converged),
                    "warnings": "; ".join(sorted({type(w.message).__name__ for w in caught}))})
    return out


def superiority(diffs_by_draw: dict[Any, list[float]], resamples: int = 10_000, seed: int = 0) -> tuple[float, ...]:
    """P(a > b) over pairs (a tie counts one half) and its bootstrap 95 % interval, resampling pairs with
    replacement within each draw."""
    def share(values):
        v = np.asarray(values)
        return float(np.mean((v > 0) + 0.5 * (v == 0)))
    everything = [d for ds in diffs_by_draw.values() for d in ds]
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    for i in range(resamples):
        drawn = [rng.choice(np.asarray(ds), size=len(ds), replace=True) for ds in diffs_by_draw.values()]
        stats[i] = share(np.concatenate(drawn))
    return share(everything), float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))


def superiority_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for family, measure, regime, a, b, pairs in _pairs_of(rows, MIXED_FAMILIES):
        if not pairs:
            continue
        by_draw: dict[Any, list[float]] = {}
        for d, _, diff in pairs:
            by_draw.setdefault(d, []).append(diff)
        p, low, high = superiority(by_draw)
        out.append({"family": family, "measure": measure, "regime": regime, "a": a, "b": b,
                    "n_pairs": len(pairs), "p_a_gt_b": p, "ci_low": low, "ci_high": high})
    return out


def variance_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One-way random-effects ANOVA by draw: between-draw and within-draw (seed) variance of each cell."""
    out = []
    for measure, key in MEASURES.items():
        for regime, label in sorted({(r["regime"], r["label"]) for r in rows}):
            groups: dict[Any, list[float]] = {}
            for r in rows:
                if r["regime"] == regime and r["label"] == label and r.get(key) is not None:
                    groups.setdefault(r["draw"], []).append(r[key])
            split = variance_split(groups)
            if split is not None:
                out.append({"measure": measure, "regime": regime, "label": label, **split})
    return out


def variance_split(groups: dict[Any, list[float]]) -> Optional[dict[str, float]]:
    """One-way random-effects ANOVA of values grouped by draw: {n_runs, n_draws, mean, var_draw (between draws,
    floored at 0), var_seed (within draws)}; None with fewer than 2 draws or a draw with fewer than 2 values."""
    sizes = [len(g) for g in groups.values()]
    if len(groups) < 2 or min(sizes) < 2:
        return None
    n, k = sum(sizes), len(groups)
    grand = np.mean([v for g in groups.values() for v in g])
    ms_between = sum(len(g) * (np.mean(g) - grand) ** 2 for g in groups.values()) / (k - 1)
    ms_within = sum(((np.asarray(g) - np.mean(g)) ** 2).sum() for g in groups.values()) / (n - k)
    n0 = (n - sum(s * s for s in sizes) / n) / (k - 1)  # the per-group size for unequal groups
    return {"n_runs": n, "n_draws": k, "mean": grand, "var_draw": max(0.0, (ms_between - ms_within) / n0),
            "var_seed": ms_within}


def cell_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Descriptive per (regime, cell): runs, draws, mean and sample std of each measure."""
    keys = ("test_top1_at_best_val", "test_top1", "val_top1", "best_val_epoch", "test_nll", "test_ece",
            "noise_memorised_final")
    out = []
    for regime in dict.fromkeys(r["regime"] for r in rows):
        for label in dict.fromkeys(r["label"] for r in rows if r["regime"] == regime):
            mine = [r for r in rows if r["regime"] == regime and r["label"] == label]
            row: dict[str, Any] = {"regime": regime, "label": label, "n_runs": len(mine),
                                   "n_draws": len({r["draw"] for r in mine})}
            for key in keys:
                values = [r[key] for r in mine if r.get(key) is not None]
                row[key] = float(np.mean(values)) if values else None
                row[key + "_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
            out.append(row)
    return out


def profile_figure(rows: list[dict[str, Any]], path: Path, key: str = MEASURES["best-val"]) -> None:
    """Performance profile over every (regime, draw, seed): the share of cases where a cell is within τ points of
    the best cell of that case, τ from 0 to 5."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases: dict[tuple, dict[str, float]] = {}
    for r in rows:
        if r.get(key) is not None:
            cases.setdefault((r["regime"], r["draw"], r["seed"]), {})[r["label"]] = r[key]
    labels = [label for label in FIXED + ("select", "auto-v3") if any(label in c for c in cases.values())]
    taus = np.linspace(0, 5, 101)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label in labels:
        short = [max(c.values()) - c[label] for c in cases.values() if label in c]
        ax.plot(taus, [np.mean([s <= t + 1e-9 for s in short]) for t in taus], label=f"{label} ({len(short)})")
    ax.set_xlabel("τ: points of test top-1 below the best cell of the same (regime, draw, seed)")
    ax.set_ylabel("share of cases within τ")
    ax.set_title("Study 2 performance profile (early-stopped test top-1, all regimes)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="?", type=Path, help="the study's run folder (OUT/<regime>/d<D>/<label>-seed<S>)")
    parser.add_argument("--runs-csv", type=Path, help="analyse this runs.csv instead of collecting run folders")
    parser.add_argument("--out", type=Path, default=Path("docs/evidence/study2"))
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/study2-profile.png"))
    args = parser.parse_args(argv)
    if (args.runs is None) == (args.runs_csv is None):
        parser.error("give RUNS_DIR or --runs-csv FILE (one of them)")
    try:
        cells, cons = _analyse(args)
    except Unusable as exc:  # nothing was written
        print(f"study2_analyse.py: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"study2_analyse.py: error: cannot write in {args.out} or {args.figure.parent} "
              f"({exc.strerror or exc}): free some disk space or choose a writable --out / --figure (the files "
              f"there are left as they were)", file=sys.stderr)
        return 2
    _print_tables(cells, cons)
    return 0


def _analyse(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Everything computed first, then every file written under a temporary name and renamed into place, so an
    unusable input or a failed write leaves the earlier analysis whole. Returns (cells, contrasts) to print."""
    texts: dict[str, str] = {}
    if args.runs is not None:
        rows = collect(args.runs)
        rows += derived_rows(rows, auto_switch=_auto_v3(), root=args.runs)
        texts["runs.csv"] = csv_text(rows, COLUMNS)
        rows = parse_runs_text(texts["runs.csv"], "runs.csv")  # analysed as read back, as --runs-csv does
    else:
        rows = read_runs_csv(args.runs_csv)
    cons = contrast_rows(rows) + goal_rows(rows)
    texts["contrasts.csv"] = csv_text(cons, ["family", "measure", "regime", "a", "b", "n_pairs", "n_draws",
                                             "mean_diff", "ci_low", "ci_high", "p_raw", "p_holm", "mde", "tost_p",
                                             "verdict"])
    for name, found in (("mixed.csv", mixed_rows(rows)), ("superiority.csv", superiority_rows(rows))):
        if found:
            texts[name] = csv_text(found, list(found[0]))
    cells = cell_rows(rows)
    texts["cells.csv"] = csv_text(cells, list(cells[0]))
    var = variance_rows(rows)
    if var:
        texts["variance.csv"] = csv_text(var, list(var[0]))
    args.out.mkdir(parents=True, exist_ok=True)
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    figure = args.figure.with_name(f".tmp-{args.figure.name}")
    try:
        profile_figure(rows, figure)
        write_together(args.out, {name: (lambda path, t=text: path.write_text(t)) for name, text in texts.items()})
        os.replace(figure, args.figure)
    finally:
        figure.unlink(missing_ok=True)
    return cells, cons


def _print_tables(cells: list[dict[str, Any]], cons: list[dict[str, Any]]) -> None:
    print("| regime | cell | runs | draws | test top-1 at best val (%) | test top-1 last (%) | best-val epoch | "
          "test NLL | test ECE (%) | noise memorised (last) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in cells:
        def f(key, digits=2):
            v, s = c[key], c.get(key + "_std")
            return "" if v is None else (f"{v:.{digits}f}" + ("" if s is None else f" ± {s:.{digits}f}"))
        print(f"| {c['regime']} | {c['label']} | {c['n_runs']} | {c['n_draws']} | {f('test_top1_at_best_val')} | "
              f"{f('test_top1')} | {f('best_val_epoch', 1)} | {f('test_nll', 3)} | {f('test_ece', 1)} | "
              f"{f('noise_memorised_final', 3)} |")
    print()
    print("| family | measure | regime | a | b | pairs | draws | mean diff | 95% CI | sign-flip p | Holm p | verdict |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in cons:
        print(f"| {r['family']} | {r['measure']} | {r['regime']} | {r['a']} | {r['b']} | {r['n_pairs']} | "
              f"{r['n_draws']} | {r['mean_diff']:+.2f} | [{r['ci_low']:.2f}, {r['ci_high']:.2f}] | "
              f"{r['p_raw']:.4f} | {r['p_holm']:.4f} | {r['verdict']} |")


AUTO_V3 = ("noise-gap", {"val_window": 5, "margin": 0.0, "last_decay": 25})  # docs/selection.md, fixed on study 1


def _auto_v3() -> Callable[[Path], Optional[int]]:
    """The tsla-auto v3 replay: the switch epoch its rule (constants fixed in docs/selection.md on the first study's
    logs) takes on an LSR run's metrics.jsonl; tsla-auto is LSR until it switches, so that TSLA(S) run is its run."""
    from tsla.smoothing.switch_rules import replay

    rule, params = AUTO_V3

    def switch_epoch(lsr_run: Path) -> Optional[int]:
        lines = (lsr_run / "metrics.jsonl").read_text().splitlines()
        return replay(rule, [json.loads(line) for line in lines if line.strip()], params)
    return switch_epoch


if __name__ == "__main__":
    sys.exit(main())
