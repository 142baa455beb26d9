"""``tsla.select(train_fn, ...)``: train every candidate × seed through the user's own loop, prefix shared (each TSLA
candidate a branch of its theta's LSR run from epoch S), optionally with noise-aware successive halving, then choose
by the noise-aware rule (:mod:`tsla.experiments.select_rule`) on validation only, and write ``out/selection.json``.

Rerun the same call after a kill: finished runs are skipped, interrupted ones resume from the last checkpoint their
loop reported, and the choice — a function of the checksummed reports — is the same.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from ...errors import ConfigError, RunDirError
from ...training.rundir import RunLock
from ..select_rule import DEFAULT_RULE, RULES, choose_noise_aware
from ..select_score import AT, CRITERIA, Candidate, score
from . import store
from .execute import best_owner, execute, history, prune_kept
from .plan import PlannedRun, epochs_independent, kept_epochs, plan_runs
from .result import SelectionResult
from .space import as_list, is_whole, joint_space
from .trial import Trial

SELECTION = "selection.json"


def _check(seeds: Sequence[int], at: str, criterion: str, n_val: int | None, halving_at: Sequence[int],
           epochs: int, engine: str) -> None:
    if not seeds or len(set(seeds)) != len(seeds) or any(not is_whole(s) or s < 0 for s in seeds):
        raise ConfigError(f"seeds={list(seeds)!r}: give distinct whole numbers >= 0, e.g. seeds=[0, 1, 2]")
    if at not in AT:
        raise ConfigError(f"at={at!r} is unknown: choose 'best-val' (each run at its best validation epoch) or 'last'")
    if criterion not in CRITERIA:
        raise ConfigError(f"criterion={criterion!r} is unknown: choose {' or '.join(CRITERIA)}")
    if n_val is not None and not (is_whole(n_val) and n_val >= 1):
        raise ConfigError(f"n_val={n_val!r}: give the validation split's size in examples, or None")
    for m in halving_at:
        if not (is_whole(m) and 0 < m < epochs):
            raise ConfigError(f"halving_at: {m!r} is not an epoch between 1 and epochs - 1 ({epochs - 1})")
    if engine not in ("local", "ray"):
        raise ConfigError(f"engine={engine!r} is unknown: choose 'local' (every run in this process) or 'ray' "
                          f"(every run a Ray task)")


def select(train_fn: Callable[[Trial], Any], *, thetas: Sequence[float], epochs: int, out: str | Path,
           switch_at: Sequence[int] = (), theta_after: Sequence[float] = (), seeds: Sequence[int] = (0,),
           at: str = "best-val", criterion: str = "val_top1", n_val: int | None = None, halving: bool = False,
           halving_at: Sequence[int] | None = None, engine: str = "local", rule: str = DEFAULT_RULE,
           ray_address: str | None = None, cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
           log: TextIO | None = None) -> SelectionResult:
    """Choose (method, theta, switch epoch, final theta) and the stopping epoch for ``train_fn``'s loop.

    ``train_fn(trial)`` is called once per run (candidate × seed; a branch from its switch epoch only) and must call
    ``trial.report(epoch, val_top1=..., checkpoint=...)`` at the end of every epoch (:class:`Trial`). Candidates:
    the baseline, LSR at each of ``thetas``, TSLA(theta, S) for each S in ``switch_at``, and LSR ending on each
    negative value of ``theta_after`` at each S. Each run is scored by ``criterion`` at its best-validation epoch
    (``at="best-val"``) or its last (``"last"``); scores are paired by seed. ``n_val``, the validation split's size,
    lets the rule account for validation sampling noise (strongly advised with few seeds; with one seed, the
    noise-aware rule and halving need it). ``halving``: noise-aware
    successive halving across theta families at ``halving_at`` (default: the switch epochs). ``rule``: "best-mean"
    (the default: the best mean score, ties to the simpler candidate) or "noise-aware" (move to a more complex
    candidate only when its paired gain exceeds one SE); either way the result says how sure the choice is.
    ``engine``: "local" (every run in this process, one after another) or "ray" (``pip install 'tsla[ray]'``: every
    run a Ray task holding ``cpus_per_run`` / ``gpus_per_run``, cut at its branch points so that a branch starts once
    its trunk reached S, retried from its last checkpoint when its worker dies; ``ray_address``: None starts Ray on
    this machine, "auto" or "HOST:PORT" joins a cluster, whose nodes must all see ``out``; ``train_fn`` must then be
    picklable, as Ray's cloudpickle allows for closures).

    Returns a :class:`SelectionResult` (also written to ``out/selection.json``). Raises ``ConfigError`` for a bad
    request, ``RunDirError`` for an unusable ``out`` or damaged run files, ``TrainingError`` when the loop skips
    epochs, and whatever ``train_fn`` raises (rerun the same call to continue)."""
    log = log or sys.stdout
    if not callable(getattr(log, "write", None)) or getattr(log, "closed", False):
        # checked before any training: the summary printed at the end would otherwise fail after the work is done
        what = "a closed stream" if callable(getattr(log, "write", None)) else f"a {type(log).__name__}, not a stream"
        raise ConfigError(f"log= is {what}: pass an open text stream (sys.stdout, an open file, io.StringIO) or "
                          f"leave log out")
    out = Path(out)
    cands = joint_space(thetas, switch_at, theta_after, epochs)
    seeds, switch_at = as_list("seeds", seeds), as_list("switch_at", switch_at)
    if halving_at is not None and not halving:
        raise ConfigError("halving_at is for halving=True: add halving=True, or leave halving_at out")
    halving_at = as_list("halving_at", switch_at if halving_at is None else halving_at) if halving else []
    if halving and not halving_at:  # nothing would be halved: every run would train to the end
        raise ConfigError("halving=True has no epoch to halve at: give switch_at (the default milestones) or "
                          "halving_at=[...]")
    _check(seeds, at, criterion, n_val, halving_at, epochs, engine)
    # numpy's numbers accepted above become Python's: they name folders and are written to JSON
    epochs, seeds, switch_at = int(epochs), [int(s) for s in seeds], [int(s) for s in switch_at]
    halving_at, n_val = sorted({int(m) for m in halving_at}), None if n_val is None else int(n_val)
    if rule not in RULES:
        raise ConfigError(f"rule={rule!r} is unknown: choose {' or '.join(repr(r) for r in RULES)}")
    if halving and len(seeds) < 2 and n_val is None:  # a family stops only beyond its SE: none would ever stop
        raise ConfigError("halving stops a family only when it is behind by more than its standard error, which one "
                          "seed without n_val cannot give: pass n_val (the validation split's size) or two seeds or "
                          "more")
    if RULES[rule] and len(seeds) < 2 and n_val is None:  # its SE would be unknown: it could never move
        raise ConfigError(f"rule={rule!r} compares gains with their standard error, which one seed without n_val "
                          f"cannot give: pass n_val (the validation split's size) or two seeds or more")
    if halving and len({c.theta for c in cands if c.method != "baseline"}) + 1 < 2:
        raise ConfigError("halving needs at least two families to compare")
    runs = plan_runs(cands, list(seeds))
    if out.exists() and not out.is_dir():
        raise RunDirError(f"out={str(out)!r} is a file: give a folder for the selection's runs")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create {out} ({exc.strerror or exc}): choose a writable out") from None
    with RunLock(out):
        if engine == "local" and ray_address is None:
            trained, rounds, eligible = _train_local(train_fn, runs, cands, out, epochs, criterion, at, n_val,
                                                     halving_at, log)
        else:
            trained, rounds, eligible = _train_on_engine(train_fn, runs, cands, out, epochs, criterion, at, n_val,
                                                         halving_at, log, engine, ray_address, cpus_per_run,
                                                         gpus_per_run)
        result = _choose(runs, cands, eligible, out, epochs, criterion, at, n_val, rounds, trained, rule)
        store.write_json(out / SELECTION, result.to_dict())
    print(result.summary(), file=log)
    return result


def _train_local(train_fn, runs: list[PlannedRun], cands: list[Candidate], out: Path, epochs: int, criterion: str,
                 at: str, n_val: int | None, halving_at: list[int], log: TextIO):
    """Train every run in this process, trunks before branches; with halving, to each milestone in turn."""
    keep = kept_epochs(runs)
    trained, rounds = 0, []
    alive = {_family(c) for c in cands}
    for milestone in [*halving_at, None]:
        for run in runs:
            if _family(run.candidate) not in alive:
                continue
            if milestone is not None and run.branch_at is not None and run.branch_at >= milestone:
                continue  # a branch that starts after the milestone does not exist yet
            trained += execute(train_fn, run, out, epochs, keep.get(run.name, []), criterion, milestone)
            if milestone is None and run.trunk is not None:
                prune_kept(out, run.trunk, [r for r in runs if r.trunk == run.trunk])
        if milestone is not None:
            last = _halving_round(runs, cands, out, epochs, criterion, at, n_val, halving_at, milestone)
            alive = set(last.kept)
            rounds.append({"at_epoch": last.at_epoch, "scores": last.scores, "se": last.se, "kept": last.kept})
            print(f"halving at epoch {milestone}: kept {', '.join(last.kept)}", file=log, flush=True)
    eligible = [c for c in cands if _family(c) in alive]
    return trained, rounds, eligible


def _train_on_engine(train_fn, runs: list[PlannedRun], cands: list[Candidate], out: Path, epochs: int,
                     criterion: str, at: str, n_val: int | None, halving_at: list[int], log: TextIO, engine: str,
                     address: str | None, cpus: float, gpus: float):
    """:func:`_train_local`'s plan as a task graph on ``engine`` (:mod:`.engine_tasks`), one engine run per halving
    phase (a milestone is a barrier across families)."""
    from ..engines import make_engine
    from ..engines.storage import write_marker
    from .engine_tasks import phase_tasks

    if engine == "local" and address is not None:
        raise ConfigError("ray_address is for engine='ray': drop it, or pass engine='ray'")
    runner = make_engine(engine, address=address) if engine == "ray" else make_engine("local")
    token = write_marker(out)
    keep = kept_epochs(runs)
    trained, rounds, alive = 0, [], {_family(c) for c in cands}
    for milestone in [*halving_at, None]:
        mine = [r for r in runs if _family(r.candidate) in alive
                and (milestone is None or r.branch_at is None or r.branch_at < milestone)]
        results = runner.run(phase_tasks(train_fn, mine, keep, out, epochs, criterion, milestone, token, cpus, gpus))
        trained += sum(int(v) for v in results.values())
        if milestone is not None:
            last = _halving_round(runs, cands, out, epochs, criterion, at, n_val, halving_at, milestone)
            alive = set(last.kept)
            rounds.append({"at_epoch": last.at_epoch, "scores": last.scores, "se": last.se, "kept": last.kept})
            print(f"halving at epoch {milestone}: kept {', '.join(last.kept)}", file=log, flush=True)
    for run in runs:
        if run.trunk is not None:
            prune_kept(out, run.trunk, [r for r in runs if r.trunk == run.trunk])
    return trained, rounds, [c for c in cands if _family(c) in alive]


def _halving_round(runs, cands, out, epochs, criterion, at, n_val, halving_at, milestone):
    """The halving decision at ``milestone``, re-derived from every run's reports (so a rerun decides the same)."""
    from ..select_halving_rule import noise_aware_halving

    by_cand = _records_by_candidate(runs, out)
    done = halving_at[: halving_at.index(milestone) + 1]
    existing = [c for c in cands if c.switch_epoch is None or c.switch_epoch < milestone]
    return noise_aware_halving(existing, lambda c: by_cand[c], done, epochs, criterion, at, n_val).rounds[-1]


def _family(cand: Candidate) -> str:
    from ..select_score import family_of

    return family_of(cand)


def _records_by_candidate(runs: list[PlannedRun], out: Path,
                          histories: dict[str, list[dict[str, Any]]] | None = None,
                          ) -> dict[Candidate, list[list[dict[str, Any]]]]:
    """Each candidate's per-seed reports (``histories``: each run's, when already read)."""
    by: dict[Candidate, list[list[dict[str, Any]]]] = {}
    for run in runs:  # seed by seed, in the order given: the same seeds in the same order for every candidate
        by.setdefault(run.candidate, []).append(histories[run.name] if histories is not None else history(out, run))
    return by


def _choose(runs: list[PlannedRun], cands: list[Candidate], eligible: list[Candidate], out: Path, epochs: int,
            criterion: str, at: str, n_val: int | None, rounds: list, trained: int, rule: str) -> SelectionResult:
    histories = {r.name: history(out, r) for r in runs}  # each run's state read once
    by_cand = _records_by_candidate(runs, out, histories)
    seeds = sorted({r.seed for r in runs}, key=[r.seed for r in runs].index)
    scored: dict[Candidate, list[dict[str, Any]]] = {}
    for cand in eligible:
        per = []
        for records in by_cand[cand]:
            if len(records) != epochs:
                raise RunDirError(f"a run of {cand.label} has {len(records)} of {epochs} epochs reported: rerun the "
                                  f"same select to finish it")
            if not any(criterion in r for r in records):  # trained by an earlier call with another criterion
                raise RunDirError(f"{cand.label}: its runs in {out} never reported {criterion} (an earlier call "
                                  f"trained them for another criterion): choose the criterion they reported, or use "
                                  f"another out (the loop must pass trial.report(epoch, {criterion}=...))")
            try:
                per.append(score(records, criterion, at))
            except ValueError as exc:
                raise RunDirError(f"{cand.label}: {exc}") from None
        scored[cand] = per
    choice = choose_noise_aware({c: [s["score"] for s in scored[c]] for c in eligible}, criterion, n_val,
                                z=RULES[rule])
    chosen_runs = [r for r in runs if r.candidate == choice.chosen]
    stop = {r.seed: scored[choice.chosen][k]["epoch"] for k, r in enumerate(chosen_runs)}
    checkpoints = {r.seed: Path(r.name) / (store.BEST if at == "best-val" else store.STATE) for r in chosen_runs}
    for seed, path in checkpoints.items():  # the weights named in selection.json are those of the scored epoch
        run = next(r for r in chosen_runs if r.seed == seed)
        store.load_state(out / path, best_owner(run, stop[seed]) if at == "best-val" else run.name, stop[seed])
    total = sum(len(histories[r.name]) - (r.branch_at or 0) for r in runs
                if r.candidate in eligible or histories[r.name])
    return SelectionResult(
        chosen=choice.chosen.as_dict(), stop_epochs=stop,
        recommended_epochs=int(round(statistics.median(stop.values()))) + 1 if at == "best-val" else epochs,
        at=at, criterion=criterion, seeds=seeds, n_val=n_val, rule={"name": rule, **choice.as_dict()},
        candidates=[{**c.as_dict(), "label": c.label, "eligible": c in eligible,
                     "seed_scores": [s["score"] for s in scored[c]] if c in scored else [],
                     "epochs_scored": [s["epoch"] for s in scored[c]] if c in scored else []} for c in cands],
        epochs_trained=total, epochs_independent=epochs_independent(runs, epochs), halving=rounds,
        checkpoints={seed: str(path) for seed, path in checkpoints.items()},
        out=str(out), trained_this_call=trained,
    )
