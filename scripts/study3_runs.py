"""Study 3's runs.csv (docs/study3.md): every finished run folder replayed under every stopping rule and validation
labelling, and the strict reader of the file it writes.

A run folder is RUNS/<regime>/d<D>/<label>-theta<T>-seed<S>/ (the baseline: RUNS/<regime>/d<D>/baseline-seed<S>/), as
scripts/study3.sh writes it, holding summary.json (``status`` "finished", ``git_commit``) and metrics.jsonl (one line
per epoch, epochs 0, 1, ... in order; a branch's file holds its trunk's epochs before the switch). One runs.csv row
per (run, val_noise, stop_rule): ``val_noise`` is ``clean`` (the rules read ``val_top1``) or, in the noisy regimes
only, ``noisy`` (they read ``val_noisy_top1``); ``stop_rule`` is one of :data:`STOP_RULES`. ``epoch`` is the epoch
the rule keeps, ``val_top1`` the validation top-1 *on the row's labelling* at that epoch, and the test columns are
that epoch's. Accuracies and ECEs are in percentage points, NLL in nats; the test set is never read by a rule.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

from study2_analyse import Unusable, _json, _read, parse_rows  # the strict readers and their one-line errors

REGIMES = ("clean", "sym20", "sym40", "pair40")
NOISY_REGIMES = ("sym20", "sym40", "pair40")
CELLS = ("baseline", "lsr", "tsla@15", "tsla@25", "lsr-neg@25")
SWITCH = {"tsla@15": 15, "tsla@25": 25, "lsr-neg@25": 25}  # the epoch a branch leaves its LSR trunk (from 0)
STOP_RULES = ("best-val", "patience5", "last")
PATIENCE = 5
VAL_KEY = {"clean": "val_top1", "noisy": "val_noisy_top1"}
COLUMNS = ("draw", "seed", "regime", "theta", "val_noise", "stop_rule", "cell", "epoch", "val_top1", "test_top1",
           "test_nll", "test_ece", "test_ts_ece", "ts_temperature", "n_epochs", "run", "commit")
NUMERIC = {"draw", "seed", "theta", "epoch", "val_top1", "test_top1", "test_nll", "test_ece", "test_ts_ece",
           "ts_temperature", "n_epochs"}
PERCENT = {"val_top1", "test_top1", "test_ece", "test_ts_ece"}  # fractions in metrics.jsonl
TEST_KEYS = ("test_top1", "test_nll", "test_ece", "test_ts_ece", "ts_temperature")
MAY_BE_NAN = {"test_ts_ece", "ts_temperature"}  # tsla's report/temperature.py logs NaN where T cannot be fitted
_NAME = re.compile(r"^(?:baseline|(?P<label>lsr|tsla@15|tsla@25|lsr-neg@25)-theta(?P<theta>[0-9.]+))"
                   r"-seed(?P<seed>[0-9]+)$")


def labellings(regime: str) -> tuple[str, ...]:
    """The validation labellings a regime's runs log: the noisy regimes a second, noisy one beside the clean one."""
    return ("clean", "noisy") if regime in NOISY_REGIMES else ("clean",)


def stop_epoch(values: Sequence[float], rule: str) -> int:
    """The epoch (index into ``values``, the per-epoch validation top-1) that ``rule`` keeps: ``best-val`` the
    highest, ties to the earliest; ``patience5`` the best so far when training stops, at the first epoch
    :data:`PATIENCE` epochs after the best so far without improvement (a tie is no improvement), or at the last
    epoch; ``last`` the last epoch. Raises ``ValueError`` for an unknown rule or no values."""
    if not values:
        raise ValueError("no epochs to stop in")
    if rule == "best-val":
        return max(range(len(values)), key=lambda e: (values[e], -e))
    if rule == "last":
        return len(values) - 1
    if rule != "patience5":
        raise ValueError(f"unknown stopping rule {rule!r}: choose one of {', '.join(STOP_RULES)}")
    best = 0
    for epoch in range(1, len(values)):
        if values[epoch] > values[best]:
            best = epoch
        elif epoch - best >= PATIENCE:
            break
    return best


def _number(run: Path, record: dict[str, Any], key: str) -> float | None:
    """The record's finite number ``key``; None for a temperature-scaling value that is NaN (a fit that failed on
    that epoch is no number, not a broken file). Raises ``Unusable`` for anything else that is not a number."""
    value = record.get(key)
    if key in MAY_BE_NAN and isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Unusable(f"{run / 'metrics.jsonl'} epoch {record.get('epoch')}: {key} is missing or not a finite "
                       f"number (a run of older code, or an edited file): train the run again with "
                       f"scripts/study3.sh")
    return float(value)


def run_rows(run: Path, root: Path) -> list[dict[str, Any]]:
    """The runs.csv rows of one run folder (none for an unfinished run). Raises ``Unusable`` naming the folder or
    file that breaks the layout: an unknown regime or cell, a cut or edited file, a missing metric."""
    regime, draw_dir, name = run.relative_to(root).parts
    if regime not in REGIMES:
        raise Unusable(f"{root / regime} is no regime of the plan ({', '.join(REGIMES)}): move it out of RUNS_DIR")
    match, draw = _NAME.match(name), re.fullmatch(r"d([0-9]+)", draw_dir)
    if match is None or draw is None:
        raise Unusable(f"{run} is no run of the plan (RUNS/<regime>/d<D>/<cell>-theta<T>-seed<S>, cells "
                       f"{', '.join(CELLS)}): move it out of RUNS_DIR")
    if not (run / "summary.json").exists():
        return []  # still training (or never started): not yet a run of the study
    summary = _json(run / "summary.json", _read(run / "summary.json", "restore the run's files"))
    if not isinstance(summary, dict):
        raise Unusable(f"{run / 'summary.json'} is not a JSON object (an edited file): restore it")
    if summary.get("status") != "finished":
        return []
    text = _read(run / "metrics.jsonl", "a finished run needs its metrics")
    records = [_json(run / "metrics.jsonl", line) for line in text.splitlines() if line.strip()]
    if not records or [r.get("epoch") if isinstance(r, dict) else None for r in records] != list(range(len(records))):
        raise Unusable(f"{run / 'metrics.jsonl'} does not hold epochs 0, 1, ... in order, one line each (a cut or "
                       f"edited file), though summary.json says finished: restore it or train the run again")
    planned = summary.get("epochs")
    if planned is not None and planned != len(records):
        raise Unusable(f"{run / 'metrics.jsonl'} holds {len(records)} epochs, though summary.json says the finished "
                       f"run trained {planned} (a cut or edited file): restore it or train the run again")
    label = match.group("label") or "baseline"
    theta = float(match.group("theta")) if match.group("theta") else 0.0
    rows = []
    for val_noise in labellings(regime):
        values = [_number(run, r, VAL_KEY[val_noise]) for r in records]
        for rule in STOP_RULES:
            epoch = stop_epoch(values, rule)
            row: dict[str, Any] = {"draw": int(draw.group(1)), "seed": int(match.group("seed")), "regime": regime,
                                   "theta": theta, "val_noise": val_noise, "stop_rule": rule, "cell": label,
                                   "epoch": epoch, "val_top1": 100.0 * values[epoch]}
            for key in TEST_KEYS:
                value = _number(run, records[epoch], key)
                row[key] = 100.0 * value if key in PERCENT and value is not None else value
            row.update({"n_epochs": len(records), "run": "/".join(run.relative_to(root).parts),
                        "commit": summary.get("git_commit")})
            rows.append(row)
    return rows


def collect(root: Path) -> list[dict[str, Any]]:
    """The runs.csv rows of every finished run under ``root``, in the order of :data:`COLUMNS`' keys. Raises
    ``Unusable`` when ``root`` is no folder or holds no finished run (an empty runs.csv must never replace the
    analysed one)."""
    if not root.is_dir():
        raise Unusable(f"RUNS_DIR {root} is not a folder: give the study's run folder, e.g. runs/study3")
    rows = []
    for run in sorted(p for p in root.glob("*/*/*") if p.is_dir()):
        rows += run_rows(run, root)
    if not rows:
        raise Unusable(f"no finished run in {root} (it should hold <regime>/d<D>/<cell>-theta<T>-seed<S>/"
                       f"summary.json)")
    order = {"regime": REGIMES, "cell": CELLS, "val_noise": tuple(VAL_KEY), "stop_rule": STOP_RULES}
    return sorted(rows, key=lambda r: (order["regime"].index(r["regime"]), -r["theta"], r["draw"], r["seed"],
                                       order["cell"].index(r["cell"]), order["val_noise"].index(r["val_noise"]),
                                       order["stop_rule"].index(r["stop_rule"])))


def parse_runs_text(text: str, source: str) -> list[dict[str, Any]]:
    """runs.csv's rows from its text, numbers as floats (draw, seed, epoch as ints) and empty cells as None. Raises
    ``Unusable`` naming a missing column, the line of a cut row or of a cell that is not a finite number, an unknown
    regime, labelling, rule or cell, an empty key cell, and a file without rows (study 2's reader,
    :func:`study2_analyse.parse_rows`)."""
    known = {"regime": REGIMES, "val_noise": tuple(VAL_KEY), "stop_rule": STOP_RULES, "cell": CELLS}
    return parse_rows(text, source, required=COLUMNS, numeric=NUMERIC, script="study3_analyse.py",
                      integers=("draw", "seed", "epoch", "n_epochs"), known=known,
                      nonempty=("draw", "seed", "theta", "epoch", "test_top1", "val_top1"))
