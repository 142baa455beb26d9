"""Study 3's analysis (docs/study3.md): runs.csv from the run folders, then every table from runs.csv alone.

    python scripts/study3_analyse.py RUNS_DIR [--out docs/evidence/study3]
    python scripts/study3_analyse.py --runs-csv docs/evidence/study3/runs.csv [--out ...]

RUNS_DIR is scripts/study3.sh's layout (scripts/study3_runs.py says how each run is read and replayed). Writes into
--out: ``runs.csv`` (one row per run, validation labelling and stopping rule), ``derived.csv`` (each question's
per-pair outcome: scripts/study3_outcomes.py), ``contrasts.csv`` (families P, S1-S6 with Holm within each, the
verdicts and the questions' words: scripts/study3_families.py), ``q4.csv`` (noisy − clean validation per P
question), ``mixed.csv`` (MixedLM per decided P contrast, random intercept per draw), ``superiority.csv`` (P(a > b)
with a bootstrap stratified by draw, decided P contrasts), ``variance.csv`` (between-draw and within-draw variance of
each cell's test top-1), ``posthoc-machine.csv`` (post hoc, amendment 5: the P contrasts split by the machine that
trained the pairs: scripts/study3_posthoc.py), ``cells.csv`` and ``results3-tables.md`` (the tables in
markdown). The same input gives the same bytes. Everything is computed first, then written under temporary names
and renamed into place: a RUNS_DIR that is no folder or holds no finished run, a cut or edited run file or
runs.csv, or a failed write is one line ``study3_analyse.py: error: ...``, exit 2, and the earlier analysis in
--out is left as it was.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the study3_* modules and study2_analyse beside it

import numpy as np  # noqa: E402

from study2_analyse import Unusable, _read, variance_split  # noqa: E402
from study3_families import CONTRAST_COLUMNS, contrast_rows, q4_rows, superiority  # noqa: E402
from study3_outcomes import DERIVED_COLUMNS, derived_rows  # noqa: E402
from study3_posthoc import MACHINE_COLUMNS, machine_rows  # noqa: E402
from study3_runs import COLUMNS, collect, parse_runs_text  # noqa: E402
from study3_tables import tables_markdown  # noqa: E402

from tsla.report.paired import csv_text  # noqa: E402
from tsla.report.write_files import write_together  # noqa: E402

CELL_KEYS = ("regime", "theta", "val_noise", "stop_rule", "cell")


def _decided_p(contrasts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in contrasts if r["family"] == "P" and "p_holm" in r]


def _name(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("question", "regime", "val_noise", "a", "b")}


def mixed_rows(contrasts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """statsmodels' MixedLM on each decided P contrast's paired differences, diff ~ 1 with a random intercept per
    draw; differences that are all equal (identical runs) leave nothing to fit and are said so."""
    import pandas as pd
    import statsmodels.formula.api as smf

    out = []
    for r in _decided_p(contrasts):
        frame = pd.DataFrame([(p["draw"], p["diff"]) for p in r["_diffs"]], columns=["draw", "diff"])
        row = {**_name(r), "n_pairs": len(frame)}
        if frame["diff"].nunique() == 1:
            out.append({**row, "intercept": frame["diff"].iloc[0], "note": "every difference equal: no model"})
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = smf.mixedlm("diff ~ 1", frame, groups=frame["draw"]).fit(reml=True)
        low, high = fit.conf_int().loc["Intercept"]
        out.append({**row, "intercept": fit.params["Intercept"], "ci_low": low, "ci_high": high,
                    "p": fit.pvalues["Intercept"], "var_draw": float(fit.cov_re.iloc[0, 0]),
                    "var_residual": fit.scale, "converged": bool(fit.converged),
                    "note": "; ".join(sorted({type(w.message).__name__ for w in caught}))})
    return out


def superiority_rows(contrasts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """P(a > b) and its interval per decided P contrast (10,000 resamples, seed 0, seeds resampled within draws)."""
    out = []
    for r in _decided_p(contrasts):
        by_draw: dict[Any, list[float]] = {}
        for p in r["_diffs"]:
            by_draw.setdefault(p["draw"], []).append(p["diff"])
        share, low, high = superiority(by_draw)
        out.append({**_name(r), "n_pairs": r["n_pairs"], "p_a_gt_b": share, "ci_low": low, "ci_high": high})
    return out


def variance_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Between-draw and within-draw (seed) variance of each cell's test top-1 (study 2's one-way ANOVA)."""
    groups: dict[tuple, dict[Any, list[float]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in CELL_KEYS), {}).setdefault(r["draw"], []).append(r["test_top1"])
    out = []
    for key, by_draw in groups.items():
        split = variance_split(by_draw)
        if split is not None:
            out.append({**dict(zip(CELL_KEYS, key)), **split})
    return out


def cell_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per cell (regime, θ, labelling, stopping rule, cell): runs, draws, mean and sample std of each measure."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in CELL_KEYS), []).append(r)
    out = []
    for key, mine in groups.items():
        row: dict[str, Any] = {**dict(zip(CELL_KEYS, key)), "n_runs": len(mine),
                               "n_draws": len({r["draw"] for r in mine})}
        for measure in ("test_top1", "epoch", "val_top1", "test_nll", "test_ece", "test_ts_ece"):
            values = [r[measure] for r in mine if r.get(measure) is not None]
            row[measure] = float(np.mean(values)) if values else None
            row[measure + "_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
        out.append(row)
    return out


def analyse(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Every output file's text from runs.csv's rows (as read back from the file)."""
    derived = derived_rows(rows)
    contrasts = contrast_rows(rows, derived)
    machine = machine_rows(contrasts)
    texts = {"derived.csv": csv_text(derived, DERIVED_COLUMNS),
             "contrasts.csv": csv_text(contrasts, CONTRAST_COLUMNS),
             "posthoc-machine.csv": csv_text(machine, MACHINE_COLUMNS)}
    tables = {"q4.csv": q4_rows(contrasts), "mixed.csv": mixed_rows(contrasts),
              "superiority.csv": superiority_rows(contrasts), "variance.csv": variance_rows(rows),
              "cells.csv": cell_rows(rows)}
    for name, found in tables.items():
        columns = list(dict.fromkeys(k for row in found for k in row))
        texts[name] = csv_text(found, columns)
    texts["results3-tables.md"] = tables_markdown(rows, contrasts, {**tables, "posthoc-machine.csv": machine})
    return texts


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="?", type=Path, help="the study's run folder (RUNS/<regime>/d<D>/...)")
    parser.add_argument("--runs-csv", type=Path, help="analyse this runs.csv instead of collecting run folders")
    parser.add_argument("--out", type=Path, default=Path("docs/evidence/study3"))
    args = parser.parse_args(argv)
    if (args.runs is None) == (args.runs_csv is None):
        parser.error("give RUNS_DIR or --runs-csv FILE (one of them)")
    try:
        if args.runs is not None:
            text = csv_text(collect(args.runs), COLUMNS)
            rows = parse_runs_text(text, "runs.csv")  # analysed as read back, as --runs-csv does
        else:
            text = _read(args.runs_csv, "give the runs.csv this script wrote")
            rows = parse_runs_text(text, str(args.runs_csv))
        texts = {"runs.csv": text, **analyse(rows)}
        if args.out.exists() and not args.out.is_dir():
            raise Unusable(f"--out {args.out} is a file, not a folder: choose a folder")
        args.out.mkdir(parents=True, exist_ok=True)
        write_together(args.out, {name: (lambda path, t=body: path.write_text(t)) for name, body in texts.items()})
    except Unusable as exc:  # nothing was written
        print(f"study3_analyse.py: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"study3_analyse.py: error: cannot write in {args.out} ({exc.strerror or exc}): free some disk space "
              f"or choose a writable --out (the files there are left as they were)", file=sys.stderr)
        return 2
    print(f"study3_analyse.py: wrote {len(texts)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
