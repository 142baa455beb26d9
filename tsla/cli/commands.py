"""What each ``tsla`` subcommand does once its flags are parsed (:mod:`tsla.cli` builds the parser and turns
errors into one line): train, compare, select, report (plain and paired), diagnose, presets.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Any

import yaml

from ..config import TrainConfig, build_config, read_yaml
from ..errors import ConfigError, RunDirError
from ..experiments.presets import load_preset, preset_names
from ..smoothing.methods import format_table


def _layers(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> tuple[list, list[str]]:
    """Config layers in precedence order (preset < YAML < flags) and the preset's method grid."""
    layers, grid = [], []
    if args.preset:
        values, grid = load_preset(args.preset)
        layers.append((f"preset {args.preset}", values))
    if args.config:
        layers.append((f"config file {args.config}", read_yaml(args.config)))
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    layers.append(("command line", {**flags, **(extra or {})}))
    return layers, grid


def _show_plan(cfg: TrainConfig) -> str:
    from ..training.lr_schedule import make_lr_schedule

    lr_at = make_lr_schedule(cfg.lr_schedule, cfg.lr, cfg.epochs, tuple(cfg.milestones), cfg.lr_gamma)
    schedule = cfg.schedule()
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False) + "\n" + format_table(schedule, cfg.epochs, lr_at)


def _out(args: argparse.Namespace, needed: bool = True) -> Path | None:
    """``--out``, checked (not empty, no over-long name); None when it is not given and not needed (a dry run)."""
    from ..training.rundir import check_out_path

    if args.out is None:
        if needed:
            raise ConfigError("--out is required (only --dry-run goes without it): name a folder for the results")
        return None
    return check_out_path(args.out)


def _cmd_train(args: argparse.Namespace) -> int:
    from ..training.checkpoint import CHECKPOINT, CONFIG
    from ..training.trainer import train

    layers, _ = _layers(args)
    out = _out(args, needed=not args.dry_run or args.resume)
    if args.resume and (out / CONFIG).is_file():
        layers.insert(0, (str(out / CONFIG), read_yaml(out / CONFIG)))  # the run's own config, under any overrides
    elif args.resume and (out / CHECKPOINT).is_file():  # config.yaml lost: the checkpoint carries the same config
        from ..training.checkpoint import load_checkpoint

        layers.insert(0, (f"{out / CHECKPOINT} (its config; {CONFIG} is missing)", load_checkpoint(out / CHECKPOINT)["config"]))
    branch = None
    if (args.branch_from is None) != (args.at_epoch is None):
        raise ConfigError("--branch-from RUN and --at-epoch S go together: give both (or neither)")
    if args.branch_from is not None:
        source = Path(args.branch_from)
        if not (source / CONFIG).is_file():
            raise ConfigError(f"--branch-from {source}: no run there ({CONFIG} is missing); give a run directory")
        layers.insert(0, (str(source / CONFIG), read_yaml(source / CONFIG)))  # the source's config, under the flags
        branch = (source, args.at_epoch)
    cfg = build_config(*layers)
    if args.tensorboard:
        from ..training.tensorboard import require_tensorboard

        require_tensorboard()  # a missing extra is bad input: refused before the plan or any file
    if args.dry_run:
        print(_show_plan(cfg))
        return 0
    from ..distributed import shutdown

    try:
        summary = train(cfg, out, resume=args.resume, progress_bar=not args.no_progress, overwrite=args.overwrite,
                        branch=branch, tensorboard=args.tensorboard)
    finally:
        shutdown()  # leave the torchrun process group cleanly (a no-op in a single process)
    if os.environ.get("RANK", "0") != "0":
        return 0
    final = summary["final"]
    if "test_top1" in final:
        scores = (f"final test top-1 {100 * final['test_top1']:.2f}%, top-5 {100 * final['test_top5']:.2f}%, "
                  f"one-hot train loss {final['train_onehot_loss']:.4f}; best top-1 "
                  f"{100 * summary['best']['test_top1']:.2f}% (epoch {summary['best']['epoch']})")
    else:  # --test-every 0: the test set was never evaluated, there is no test number to show
        scores = (f"test set not evaluated (--test-every 0); one-hot train loss {final['train_onehot_loss']:.4f}"
                  + (f", final val top-1 {100 * final['val_top1']:.2f}%" if "val_top1" in final else ""))
    print(f"done: {scores}; {summary['wall_seconds']:.0f}s; results in {out}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from ..experiments.compare import run_compare
    from ..experiments.grid import parse_shard

    layers, grid = _layers(args)
    out = _out(args, needed=not args.dry_run) or Path("OUT")
    if args.methods == []:  # an empty --methods "" must not silently mean the preset's whole grid
        raise ConfigError("--methods is empty: list the methods to compare, e.g. --methods baseline,lsr,tsla@30")
    methods = grid if args.methods is None else args.methods
    if not methods:
        raise ConfigError("--methods is required (this preset has no method grid), e.g. --methods baseline,lsr,tsla@30")
    if not args.seeds:
        raise ConfigError("--seeds needs at least one seed, e.g. --seeds 0,1,2")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1 (got {args.jobs})")
    if args.thetas is not None and hasattr(args, "theta"):
        raise ConfigError("give either --theta or --thetas, not both")
    run_compare(layers, methods, args.seeds, out, thetas=args.thetas, shard=parse_shard(args.shard),
                jobs=args.jobs, progress_bar=not args.no_progress, dry_run=args.dry_run,
                ray=_ray_options(args))
    return 0


def _ray_options(args: argparse.Namespace):
    """``--engine``'s choice: None for local, else the checked ``RayOptions`` (Ray checked to be installed, unless
    this is a dry run). Raises ``ConfigError`` for a Ray flag without ``--engine ray``, or ``--jobs`` with it."""
    from ..experiments.grid_tasks import RayOptions

    given = [flag for flag, value in (("--ray-address", args.ray_address), ("--cpus-per-run", args.cpus_per_run),
                                      ("--gpus-per-run", args.gpus_per_run)) if value is not None]
    if args.engine == "local":
        if given:
            raise ConfigError(f"{given[0]} is for --engine ray: add --engine ray, or drop {given[0]}")
        return None
    if args.jobs != 1:
        raise ConfigError("--jobs is for --engine local: with --engine ray, Ray trains as many runs at once as its "
                          "CPUs (or GPUs) allow; set each run's share with --cpus-per-run / --gpus-per-run")
    cpus = 1 if args.cpus_per_run is None else args.cpus_per_run
    gpus = 0.0 if args.gpus_per_run is None else args.gpus_per_run
    if cpus < 1:
        raise ConfigError(f"--cpus-per-run must be >= 1 (got {cpus})")
    if not 0 <= gpus:
        raise ConfigError(f"--gpus-per-run must be >= 0 (got {gpus:g})")
    # Ray's documentation: above 1, a task holds whole GPUs; inf ends in an OverflowError in Ray's .options()
    if not math.isfinite(gpus) or (gpus > 1 and gpus != int(gpus)):
        raise ConfigError(f"--gpus-per-run {gpus:g}: give a fraction up to 1 (runs sharing one GPU) or a whole "
                          f"number of GPUs per run")
    address = args.ray_address
    if address is not None and not re.fullmatch(r"auto|(ray://)?[^\s:/]+:\d+", address):
        raise ConfigError(f"--ray-address {address!r}: give auto or HOST:PORT of the Ray head (e.g. 10.0.0.1:6379), "
                          f"or leave it out to start Ray on this machine")
    if not args.dry_run:
        from ..experiments.engines.ray_engine import require_ray

        require_ray()  # one line naming the extra, before anything is planned or written
    return RayOptions(address, cpus, gpus)


def _cmd_select(args: argparse.Namespace) -> int:
    from ..experiments.grid import parse_shard
    from ..experiments.select import refuse_theta_after, run_select

    layers, _ = _layers(args)
    refuse_theta_after(layers)  # before anything else names a layer's values
    # every candidate's run sets its own method: a preset's or config's --method (e.g. the preset fashion-mnist's
    # tsla@6) must not be checked against this run length, nor named in a refusal (select has no --method)
    layers.append(("tsla select", {"method": "baseline"}))
    out = _out(args, needed=not args.dry_run) or Path("OUT")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1 (got {args.jobs})")
    if args.switch_at == []:  # an empty --switch-at "" must not silently leave out every TSLA candidate
        raise ConfigError("--switch-at is empty: list the switch epochs, e.g. --switch-at 15,25, or leave it out "
                          "for the --milestones")
    if getattr(args, "test_every", 0) != 0:  # every candidate trains with --test-every 0: not ignored silently
        raise ConfigError(f"--test-every {args.test_every}: tsla select never evaluates a candidate on test (each "
                          f"trains with --test-every 0, and only the choice is tested at the end): drop the flag")
    switch_at = args.switch_at
    if switch_at is None:  # the paper's switch points: the learning-rate milestones
        switch_at = build_config(*layers).milestones
        if not switch_at:
            raise ConfigError("--switch-at is required without --milestones: list the switch epochs, e.g. 15,25")
    run_select(layers, args.thetas or [], switch_at, args.seeds, out, criterion=args.criterion, at=args.at,
               shard=parse_shard(args.shard), jobs=args.jobs, halving=args.halving, progress_bar=not args.no_progress,
               dry_run=args.dry_run, theta_after=args.final_thetas or (), rule=args.rule, ray=_ray_options(args))
    return 0


def _cmd_paired(args: argparse.Namespace) -> int:
    from ..report.paired import CONTRAST_COLUMNS, contrasts_from_csv, parse_contrasts, write_csv
    from ..report.paired_report import write_paired
    from ..report.write_files import write_together

    pairs = parse_contrasts(args.contrasts)
    if not (args.margin > 0 and math.isfinite(args.margin)):
        raise ConfigError(f"--margin must be > 0 and finite, in percentage points (got {args.margin}): an "
                          f"infinite margin would call every contrast equivalent")
    if args.margin > 100:  # no two accuracies differ by more than 100 points
        raise ConfigError(f"--margin {args.margin:g} is more than 100 percentage points, the widest gap two accuracies "
                          f"can have, so every contrast would be called equivalent: give a margin of a few points, "
                          f"e.g. 0.5")
    if args.runs_csv:
        if args.dirs:
            raise ConfigError("give either run directories or --runs-csv, not both")
        out = Path(args.out) if args.out else Path(args.runs_csv).parent
        found = contrasts_from_csv(Path(args.runs_csv), pairs, args.margin, args.measure)
        try:
            out.mkdir(parents=True, exist_ok=True)
            write_together(out, {"contrasts.csv": lambda path: write_csv(path, found, CONTRAST_COLUMNS)})
        except OSError as exc:
            raise RunDirError(f"cannot write {out / 'contrasts.csv'} ({exc.strerror or exc}): free some disk space "
                              f"or choose a writable --out (an earlier contrasts.csv there is left as it was)") from None
        print(f"wrote {out / 'contrasts.csv'} ({len(found)} contrasts) from {args.runs_csv}")
        return 0
    if not args.dirs:
        raise ConfigError("--paired needs the comparison directories, one per regime, e.g. "
                          "'tsla report runs/r1 runs/r2 --paired --out evidence'")
    out = Path(args.out) if args.out else Path(args.dirs[0]) / "paired"
    write_paired([Path(d) for d in args.dirs], out, args.margin, pairs, measure=args.measure)
    print((out / "paired.md").read_text())
    print(f"wrote runs.csv, contrasts.csv, secondary.csv, speed.csv and paired.md in {out}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ..report import format_markdown, write_report

    if args.paired or args.runs_csv:
        return _cmd_paired(args)
    if not args.dirs:
        raise ConfigError("give at least one comparison directory, e.g. 'tsla report runs/demo'")

    summary = write_report([Path(d) for d in args.dirs], _out(args, needed=False))
    print(format_markdown(summary))
    return 0


def _cmd_diagnose(args: argparse.Namespace) -> int:
    import json

    from ..experiments.diagnose import diagnose_run, format_diagnosis

    if args.examples is not None and args.examples < 2:
        raise ConfigError(f"--examples must be >= 2 (got {args.examples})")
    result = diagnose_run(Path(args.run), args.epoch, args.examples)
    if args.json:  # strict JSON: an infinite delta (sigma^2 = 0) is written as null
        print(json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in result.items()},
                         indent=2))
    else:
        print(format_diagnosis(result))
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    for name in preset_names():
        values, grid = load_preset(name)
        print(f"{name:<22} {values.get('dataset', '?')}, {values.get('model', '?')}, {values.get('epochs', '?')} epochs; "
              f"grid: {', '.join(grid) or '-'}")
    return 0
