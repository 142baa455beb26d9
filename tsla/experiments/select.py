"""``tsla select``: choose (method, theta, switch epoch) on validation only, then evaluate only the choice on test.

It trains the baseline and one LSR trunk per theta and branches TSLA(S) from each trunk (compare's grid, prefix
shared, ``--test-every 0``: no candidate touches the test set), scores every candidate on its validation metrics
(mean over seeds; :mod:`tsla.experiments.select_score`), prints the table and the cost, evaluates the chosen
configuration's runs on test, and writes DIR/selection.json. Rerun after an interruption: finished runs are skipped
(once their data fingerprint matches the data found now), interrupted ones resumed, and the choice, a function of the
logged validation metrics (each run's metrics.jsonl checked against its checksummed checkpoint), is the same. A
selection.json of another request is moved aside once the new request is accepted
(:mod:`tsla.experiments.select_runs`).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence, TextIO

from ..config import build_config
from ..errors import ConfigError, RunDirError, TrainingError
from ..training.checkpoint import atomic_write_text
from .compare import _check_not_a_run, train_grid
from .grid import GridRun, plan, select_shard
from .grid_tasks import RayOptions
from .select_runs import SELECTION, accept_request, candidate_records, epochs_trained_by_runs, request_of
from .select_rule import DEFAULT_RULE, RULES, choose_noise_aware
from .select_score import AT, CRITERIA, Candidate, candidates, check_finite, mean_score, score
from .select_table import format_table


def check_request(thetas: Sequence[float], switch_at: Sequence[int], seeds: Sequence[int], criterion: str,
                  at: str, theta_after: Sequence[float] = ()) -> None:
    """Refuse a request ``tsla select`` cannot honour, with one line naming the flag. Raises ``ConfigError``."""
    if not thetas:
        raise ConfigError("--thetas is required: list the smoothing strengths to try, e.g. --thetas 0.1,0.2,0.4")
    for theta in thetas:
        if not 0 < theta <= 1:
            raise ConfigError(f"--thetas: {theta:g} is outside (0, 1]; the baseline (theta 0) is always a candidate")
    if len({f"{t:g}" for t in thetas}) != len(thetas):
        raise ConfigError("--thetas must not repeat a value (to 6 significant digits)")
    if len(set(switch_at)) != len(switch_at):
        raise ConfigError("--switch-at must not repeat an epoch")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError("--seeds needs distinct seeds, e.g. --seeds 0,1,2")
    if criterion not in CRITERIA:
        raise ConfigError(f"--criterion {criterion!r} is unknown: choose {' or '.join(CRITERIA)}")
    if at not in AT:
        raise ConfigError(f"--at {at!r} is unknown: choose last or best-val")
    for after in theta_after:
        if not -1 <= after <= 0:
            raise ConfigError(f"--theta-after: {after:g} is outside [-1, 0]: 0 ends on one-hot labels (TSLA), a "
                              f"negative value on negative smoothing, e.g. --theta-after 0,-0.2")
    if len({f"{a:g}" for a in theta_after}) != len(theta_after):
        raise ConfigError("--theta-after must not repeat a value")


def refuse_theta_after(layers: list) -> None:
    """Refuse a nonzero ``theta_after`` (a number or a list) from a --config file or a preset, naming where it came
    from: it would end every TSLA candidate on that theta, unnamed, while select's final thetas are candidates given
    by --theta-after. A value that is no number is left to the config's own check. Raises ``ConfigError``."""
    given = [(source, values["theta_after"]) for source, values in layers
             if isinstance(values, dict) and "theta_after" in values]
    if not given:
        return
    source, after = given[-1]
    values = after if isinstance(after, list) else [after]
    if not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in values) or not any(values):
        return
    shown = ",".join(f"{a:g}" for a in values)
    wanted = shown if isinstance(after, list) else f"0,{shown}"
    raise ConfigError(f"theta_after {shown} in {source}: tsla select's final thetas are candidates of their own (it "
                      f"would end every TSLA candidate on it, unnamed): remove it there and pass --theta-after {wanted}")


def _grid(layers: list, thetas: Sequence[float], switch_at: Sequence[int], seeds: Sequence[int],
          theta_after: Sequence[float] = ()) -> list[GridRun]:
    """Compare's grid of the candidates, every run with the test set off; checked for what select needs. A negative
    end is the cell ``tsla@S:theta_after=A`` (its folder ``tsla@S-afterA-...``), a branch of the LSR trunk at S."""
    negative = [a for a in theta_after if a < 0]
    settings: dict[str, Any] = {"test_every": 0}
    if negative:
        settings["allow_negative"] = True
    refuse_theta_after(layers)
    layers = [*layers, ("tsla select", settings)]
    cfg = build_config(*layers)
    if cfg.val_size is None:
        raise ConfigError("tsla select scores candidates on a validation split: pass --val-size N (e.g. 1000)")
    for s in switch_at:
        if not 0 < s < cfg.epochs:
            raise ConfigError(f"--switch-at {s}: give switch epochs between 1 and --epochs - 1 ({cfg.epochs - 1})")
    methods = ["baseline", "lsr"]
    for s in switch_at:
        methods += [f"tsla@{s}", *[f"tsla@{s}:theta_after={a:g}" for a in negative]]
    return plan(layers, methods, seeds, list(thetas))


def _runs_of(grid: list[GridRun], cand: Candidate) -> list[GridRun]:
    """The runs (one per seed) of a candidate."""
    return [r for r in grid if r.cfg.method == cand.train_method and r.cfg.theta_after == cand.theta_after
            and (cand.method == "baseline" or f"{r.cfg.theta:g}" == f"{cand.theta:g}")]


def epochs_cost(grid: list[GridRun]) -> tuple[int, int]:
    """(epochs the plan trains with branching, epochs the same runs would take trained independently); what the runs
    actually trained is :func:`tsla.experiments.select_runs.epochs_trained_by_runs`."""
    independent = sum(r.cfg.epochs for r in grid)
    return independent - sum(r.branch[1] for r in grid if r.branch), independent


def run_select(
    layers: list,
    thetas: Sequence[float],
    switch_at: Sequence[int],
    seeds: Sequence[int],
    out: Path,
    criterion: str = "val_top1",
    at: str = "best-val",
    shard: tuple[int, int] = (0, 1),
    jobs: int = 1,
    halving: bool = False,
    progress_bar: bool = True,
    dry_run: bool = False,
    log: TextIO | None = None,
    theta_after: Sequence[float] = (),
    rule: str = DEFAULT_RULE,
    ray: RayOptions | None = None,
) -> dict[str, Any] | None:
    """Train this shard's candidates in ``out`` (with ``halving``, successive halving at the milestones:
    :mod:`tsla.experiments.select_halving`); with a single shard, choose on validation, evaluate the choice on test
    and write ``out``/selection.json (returned). Raises ``ConfigError`` for a bad request, and what
    :func:`tsla.experiments.compare.train_grid` raises."""
    log = log or sys.stdout
    check_request(thetas, switch_at, seeds, criterion, at, theta_after)
    if rule not in RULES:
        raise ConfigError(f"--rule {rule!r} is unknown: choose {' or '.join(RULES)}")
    if halving and (jobs > 1 or shard[1] > 1 or ray is not None):
        raise ConfigError("--halving trains one run at a time in this process: drop --jobs, --shard and --engine ray "
                          "(from Python, tsla.select(..., halving=True, engine='ray') halves on Ray)")
    grid = _grid(layers, thetas, switch_at, seeds, theta_after)
    cands = candidates(thetas, switch_at, theta_after or (0.0,))
    n_val = grid[0].cfg.val_size
    index, count = shard
    mine = select_shard(grid, shard)
    if dry_run:
        for item in mine:
            theta = item.cfg.schedule().theta  # what the run trains: the baseline's is 0 whatever --thetas says
            print(f"{out / item.name}: {item.cfg.method}, theta {theta:g}, seed {item.cfg.seed}", file=log)
        return None
    _check_not_a_run(out)
    request = request_of(thetas, switch_at, seeds, criterion, at, halving, theta_after, rule)
    accept_request(out, grid, request, log)  # an earlier request's selection.json never stays beside this one's runs
    independent = epochs_cost(grid)[1]
    eligible, rounds = cands, []
    if halving:
        from .select_halving import run_halving

        eligible, rounds, _ = run_halving(grid, cands, lambda c: _runs_of(grid, c), out, criterion, at, progress_bar,
                                          log)
    else:
        train_grid(mine, out, jobs, progress_bar, log, ray)
    if count > 1:
        print(f"shard {index}/{count} done; once every shard has finished, rerun this tsla select without --shard "
              f"to choose (finished runs are skipped)", file=log)
        return None
    rows = [_row(out, grid, cand, k, len(cands), criterion, at, cand in eligible, rounds, log)
            for k, cand in enumerate(cands, 1)]
    scores = {c: r["seed_scores"] for c, r in zip(cands, rows) if c in eligible}
    try:
        check_finite({c: r["score"] for c, r in zip(cands, rows) if c in eligible})
        choice = choose_noise_aware(scores, criterion, n_val, z=RULES[rule])
    except ValueError as exc:  # a diverged candidate (a non-finite score): one line, not a traceback
        raise TrainingError(str(exc)) from None
    chosen = choice.chosen
    print(format_table(cands, rows, chosen, criterion, at), file=log)
    print(f"chosen: {chosen.label} (method {chosen.method}, theta {chosen.as_dict()['theta']:g}, switch epoch "
          f"{chosen.switch_epoch if chosen.switch_epoch is not None else '-'}"
          f"{f', then theta {chosen.theta_after:g}' if chosen.theta_after else ''}) by the {rule} rule on "
          f"{criterion} at {at} over {len(seeds)} seed(s) and {n_val} validation images", file=log)
    print(f"how sure: {choice.sentence}; P(best) " + ", ".join(
        f"{s.candidate.label} {s.p_best:.2f}" for s in sorted(choice.stats, key=lambda s: -s.p_best)[:3]), file=log)
    how = "successive halving and prefix-shared branches" if halving else "prefix-shared branches"
    trained = epochs_trained_by_runs(out, grid)  # a branch that trained from epoch 0 counts in full
    print(f"cost: {trained} epochs trained ({how}) against {independent} for independent runs "
          f"({100 * trained / independent:.0f}%)", file=log)
    test = _test_chosen(out, _runs_of(grid, chosen), at)
    print(f"test (only the chosen configuration): top-1 {100 * test['test_top1']:.2f}%, NLL {test['test_nll']:.4f}, "
          f"ECE {100 * test['test_ece']:.2f}% (mean over {len(seeds)} seed(s))", file=log)
    stop = {str(r.cfg.seed): e for r, e in zip(_runs_of(grid, chosen), next(
        row["epochs"] for c, row in zip(cands, rows) if c == chosen))}
    recommended = int(round(statistics.median(stop.values()))) + 1 if at == "best-val" else grid[0].cfg.epochs
    print(f"stop epochs ({at}): " + ", ".join(f"seed {k}: {v}" for k, v in stop.items())
          + f"; retrain without validation for {recommended} epochs", file=log)
    selection = {
        "chosen": chosen.as_dict(), "stop_epochs": stop, "recommended_epochs": recommended,
        "criterion": criterion, "at": at, "request": request, "candidates": rows,
        "rule": {"name": rule, **choice.as_dict()},
        "epochs_trained": trained, "epochs_independent": independent, "test": test,
    }
    if halving:
        selection["halving"] = rounds
    try:
        atomic_write_text(out / SELECTION, json.dumps(selection, indent=2) + "\n")
    except OSError as exc:
        raise RunDirError(f"cannot write {out / SELECTION} ({exc.strerror or exc}): free some disk space") from None
    print(f"wrote {out / SELECTION}", file=log)
    return selection


def _row(out: Path, grid: list[GridRun], cand: Candidate, k: int, n: int, criterion: str, at: str, eligible: bool,
         rounds: list[dict[str, Any]], log: TextIO) -> dict[str, Any]:
    """One candidate's entry (validation only) and its progress line; a candidate stopped by halving has no score."""
    if not eligible:
        from .select_halving import family_of

        stopped = next(r["at_epoch"] for r in rounds if family_of(cand) not in r["kept"])
        print(f"[{k}/{n}] {cand.label}: stopped by halving at epoch {stopped}", file=log)
        return {**cand.as_dict(), "score": None, "val_top1": None, "val_nll": None, "seed_scores": [], "epochs": [],
                "stopped_at": stopped}
    per_seed = [score(candidate_records(out / r.name, r.cfg), criterion, at) for r in _runs_of(grid, cand)]
    row = {**cand.as_dict(), **mean_score(per_seed), "epochs": [s["epoch"] for s in per_seed]}
    shown = ", ".join(f"{v:.4f}" for v in row["seed_scores"])
    print(f"[{k}/{n}] {cand.label}: {criterion} {row['score']:.4f} at {at} (seeds {shown})", file=log)
    return row


def _test_chosen(out: Path, runs: list[GridRun], at: str) -> dict[str, Any]:
    """Test metrics of the chosen candidate's runs: the final weights (``at='last'``) or the best-validation ones,
    per seed and their mean."""
    from ..training.evaluate_run import evaluate_run

    weights = "final" if at == "last" else "best-val"
    per_seed = []
    for run in runs:
        metrics = evaluate_run(out / run.name, weights)
        per_seed.append({"seed": run.cfg.seed, **{k: metrics[k] for k in ("test_top1", "test_nll", "test_ece")}})
    mean = {k: sum(s[k] for s in per_seed) / len(per_seed) for k in ("test_top1", "test_nll", "test_ece")}
    return {**mean, "weights": weights, "per_seed": per_seed}
