"""The ``tsla`` command: train, compare, select, report, diagnose, presets.

Errors the user can fix are printed as one line ``tsla: error: ...`` with exit code 2 (1 for a failure during
training), never as a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import typing
from typing import Any, Sequence

from ..config import TrainConfig, field_types
from ..errors import ConfigError, TslaError
from ..experiments.presets import preset_names
from .output import guarded_output, lost_output
from .commands import _cmd_compare, _cmd_diagnose, _cmd_presets, _cmd_report, _cmd_select, _cmd_train


class _Once:
    """An argparse action that refuses its option given twice on one command line: argparse would keep the last
    value silently (``--epochs 3 ... --epochs 30``, ``--augment ... --no-augment``)."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        shown = option_string if values is None or values == [] else f"{option_string} {_shown(values)}"
        given = namespace.__dict__.setdefault("_given_once", {})
        if self.dest in given:
            raise argparse.ArgumentError(self, f"given twice ({given[self.dest]}, then {shown}): give it once")
        given[self.dest] = shown
        super().__call__(parser, namespace, values, option_string)  # type: ignore[misc]


def _shown(values: Any) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) if isinstance(values, list) \
        else str(values)


class _StoreOnce(_Once, argparse._StoreAction):
    pass


class _BooleanOnce(_Once, argparse.BooleanOptionalAction):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage, so every bad command gives one line, and refuses a value
    option given twice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)

    def error(self, message: str) -> typing.NoReturn:
        raise ConfigError(f"{message} (see '{self.prog} --help')")


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def _float_list(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _str_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _optional(kind):
    def parse(text: str):
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def add_config_flags(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    """One flag per TrainConfig field (``batch_size`` -> ``--batch-size``), defaulting to 'not given'."""
    types = field_types()
    group = parser.add_argument_group("training options (override the preset and --config)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip:
            continue
        kind = types[f.name]
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = f.metadata["help"]
        if "default" not in help_text:
            help_text += f" (default: {default})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        optional = typing.get_origin(kind) is typing.Union
        base = next(a for a in typing.get_args(kind) if a is not type(None)) if optional else kind
        if base is bool:
            group.add_argument(flag, action=_BooleanOnce, **kwargs)
        elif base is list:
            group.add_argument(flag, type=_int_list, metavar="N,N", **kwargs)
        else:
            group.add_argument(flag, type=_optional(base) if optional else base, metavar=base.__name__.upper(), **kwargs)


def _engine_flags(p: argparse.ArgumentParser) -> None:
    """--engine and the Ray flags, shared by compare and select."""
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="where the runs train: local "
                       "(default: this machine, --jobs at a time) or ray (each run a Ray task, a branch starting as "
                       "soon as its trunk has kept its checkpoint; pip install 'tsla[ray]'; see docs/scaling.md)")
    p.add_argument("--ray-address", help="with --engine ray: the cluster to join, auto or HOST:PORT (default: "
                       "start Ray on this machine); --out must be on storage every node sees")
    p.add_argument("--cpus-per-run", type=int, help="with --engine ray: CPU cores each run holds, and its "
                       "--threads unless given (default: 1)")
    p.add_argument("--gpus-per-run", type=float, help="with --engine ray: GPUs each run holds, e.g. 1, or 0.5 "
                       "for two runs per GPU (default: 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tsla", description="Label smoothing (LSR) and two-stage label smoothing (TSLA) for PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--preset", help=f"start from a named preset: {', '.join(preset_names())}")
        p.add_argument("--config", help="YAML file of options (overrides the preset; flags override it)")
        p.add_argument("--out", help="output directory (required, except with --dry-run)")
        p.add_argument("--dry-run", action="store_true", help="print the resolved config and schedule, then exit")
        p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")

    p_train = sub.add_parser("train", help="train one model", description="Train one model; writes RUN/metrics.jsonl, "
                             "config.yaml, checkpoint.pt and summary.json.")
    common(p_train)
    p_train.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p_train.add_argument("--overwrite", action="store_true", help="delete the run already in --out (its checkpoint, "
                         "metrics, summary, config) and start afresh")
    p_train.add_argument("--tensorboard", action="store_true", help="also write each epoch's theta, lr, losses (F "
                         "included), accuracy and calibration to RUN/tensorboard with TensorBoard's SummaryWriter "
                         "(pip install \"tsla[tensorboard]\")")
    p_train.add_argument("--branch-from", metavar="RUN", help="start from RUN's checkpoint kept after --at-epoch "
                         "epochs (RUN trained with --keep-epochs) with RUN's config and these flags: e.g. TSLA(S) "
                         "branched from the LSR run of the same seed; only the schedule (--method, --theta, --theta-after, --epochs) "
                         "may differ, and only from the epoch where it parts from RUN's")
    p_train.add_argument("--at-epoch", type=int, metavar="S", help="with --branch-from: the number of epochs taken "
                         "from RUN")
    add_config_flags(p_train)
    p_train.set_defaults(func=_cmd_train)

    p_cmp = sub.add_parser("compare", help="train methods x seeds and tabulate", description="Train every method x seed "
                           "(x theta) with everything else identical, in DIR/<method>-seed<k>/, then write "
                           "DIR/summary.json, summary.md, curves.png and reliability.png. Finished runs are skipped, "
                           "interrupted ones resumed.")
    common(p_cmp)
    p_cmp.add_argument("--methods", type=_str_list, help="comma-separated methods, e.g. baseline,lsr,tsla@30 "
                       "(default: the preset's grid)")
    p_cmp.add_argument("--seeds", type=_int_list, default=[0], help="comma-separated seeds (default: 0)")
    p_cmp.add_argument("--thetas", type=_float_list, help="comma-separated smoothing strengths: a theta grid, e.g. "
                       "0.1,0.2,0.4 (baseline runs once); run folders are then <method>-theta<θ>-seed<k>")
    p_cmp.add_argument("--shard", default="0/1", help="run only shard i of n of the grid (i counts from 0), e.g. for "
                       "a Slurm array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; merge with 'tsla report'")
    p_cmp.add_argument("--jobs", type=int, default=1, help="train this many runs at once, each in its own process "
                       "pinned to its share of the CPU cores (default: 1, in this process)")
    _engine_flags(p_cmp)
    add_config_flags(p_cmp, skip=("method", "seed"))
    p_cmp.set_defaults(func=_cmd_compare)

    p_sel = sub.add_parser("select", help="choose theta and the switch epoch on validation, test only the choice",
                           description="Train the baseline, one LSR run per theta and TSLA(S) branched from it for "
                           "each S (test set off), score every candidate on validation (mean over seeds), print the "
                           "table and the cost, evaluate only the chosen configuration on test, and write "
                           "DIR/selection.json. Rerun to resume after an interruption. See docs/selection.md.")
    common(p_sel)
    p_sel.add_argument("--thetas", type=_float_list, help="comma-separated smoothing strengths to try, e.g. "
                       "0.1,0.2,0.4 (required; the baseline, theta 0, is always a candidate)")
    p_sel.add_argument("--switch-at", type=_int_list, help="comma-separated switch epochs S for TSLA(S), counted "
                       "from 0 (default: the --milestones)")
    p_sel.add_argument("--seeds", type=_int_list, default=[0], help="comma-separated seeds; candidates are scored "
                       "on the mean over them (default: 0)")
    p_sel.add_argument("--criterion", default="val_top1", help="validation score: val_top1 (default, higher is "
                       "better) or val_nll (lower is better)")
    p_sel.add_argument("--at", default="best-val", help="score each run at best-val (default), the epoch of its best "
                       "validation top-1 (early stopping; the chosen runs' weights of that epoch are then the ones "
                       "tested), or at its last epoch (for a fixed number of epochs)")
    p_sel.add_argument("--rule", default="best-mean", help="the choice: best-mean (default: the best mean validation "
                       "score, ties to the simpler candidate) or noise-aware (a more complex candidate only when its "
                       "gain exceeds one standard error); both print how sure the choice is (docs/selection.md)")
    p_sel.add_argument("--theta-after", dest="final_thetas", type=_float_list, help="comma-separated final thetas: each negative value "
                       "adds, per theta and S, LSR ending on it from S (a branch of the LSR run), e.g. 0,-0.2 "
                       "(default: none; needs no --allow-negative)")
    p_sel.add_argument("--shard", default="0/1", help="train only shard i of n (whole families: an LSR run with its "
                       "branches); then rerun without --shard to choose")
    p_sel.add_argument("--jobs", type=int, default=1, help="train this many runs at once, each in its own process")
    p_sel.add_argument("--halving", action="store_true", help="successive halving: at each lr milestone keep the "
                       "better half of the families (baseline, one per theta) by validation and stop the rest")
    _engine_flags(p_sel)
    add_config_flags(p_sel, skip=("method", "seed", "theta", "theta_after"))
    p_sel.set_defaults(func=_cmd_select)

    p_rep = sub.add_parser("report", help="rebuild tables and plots from finished runs")
    p_rep.add_argument("dirs", nargs="*", help="comparison directories (or run directories)")
    p_rep.add_argument("--paired", action="store_true", help="paired analysis by seed, each DIR one regime: writes "
                       "runs.csv, contrasts.csv, secondary.csv, speed.csv and paired.md (default --out: DIR/paired)")
    p_rep.add_argument("--margin", type=float, default=0.5, help="equivalence margin in percentage points of test "
                       "top-1 for --paired (default: 0.5)")
    p_rep.add_argument("--contrasts", help="declared contrasts A:B,C:D by cell label (e.g. "
                       "tsla@20-theta0.1:lsr-theta0.1); Holm adjusts over them (default: every schedule against LSR "
                       "at its theta, and LSR against the baseline)")
    p_rep.add_argument("--runs-csv", help="recompute contrasts.csv from this runs.csv alone (no run directories)")
    p_rep.add_argument("--measure", choices=("last", "best-val"), default="last", help="what the --paired contrasts "
                       "compare: test top-1 at the last epoch (default) or at each run's best validation epoch "
                       "(runs trained with --val-size)")
    p_rep.add_argument("--out", help="where to write summary.json/.md and curves.png (default: the first DIR)")
    p_rep.set_defaults(func=_cmd_report)

    p_dia = sub.add_parser("diagnose", help="measure sigma^2, delta, theta* and the LSR floor for a saved run",
                           description="Measure the paper's quantities for a run's saved model on CPU, on the run's "
                           "fixed diagnostic subset of training images (no augmentation, BatchNorm in eval mode).")
    p_dia.add_argument("run", help="a run directory")
    p_dia.add_argument("--epoch", type=int, help="the model after this epoch (needs --keep-checkpoints when training; "
                       "default: the latest checkpoint)")
    p_dia.add_argument("--examples", type=int, help="number of training images (default: the run's --diagnose-examples)")
    p_dia.add_argument("--json", action="store_true", help="print JSON")
    p_dia.set_defaults(func=_cmd_diagnose)

    p_pre = sub.add_parser("presets", help="list the presets")
    p_pre.set_defaults(func=_cmd_presets)
    return parser


def one_line(exc: TslaError) -> str:
    """The error's message on one line. An error raised in a DataLoader worker comes back wrapped in the worker's
    traceback (torch re-raises it as the same class with the traceback text as message): keep its last line."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else type(exc).__name__
    last = lines[-1]
    qualified = f"{type(exc).__module__}.{type(exc).__name__}: "
    return last[len(qualified):] if last.startswith(qualified) else " ".join(lines)


def _attach_dash_values(argv: Sequence[str]) -> list[str]:
    """``--flag -1/2`` -> ``--flag=-1/2``: argparse takes a value starting with '-' (other than a plain negative
    number) for a flag of its own and says "expected one argument"; no tsla flag has a name starting '-<digit>'."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and re.fullmatch(r"-[\d.].*", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``tsla`` command; returns its exit code. Output that cannot be written (a closed pipe, a full disk)
    ends only the printing, not the work: see :mod:`tsla.cli.output`."""
    with guarded_output() as (out, _):
        code = _main(argv)
    lost = lost_output(out.failure)
    if lost is None or code != 0 or os.environ.get("RANK", "0") != "0":
        return code
    try:
        print(f"tsla: error: {lost}", file=sys.stderr)
    except OSError:
        pass
    return 1


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(_attach_dash_values(sys.argv[1:] if argv is None else argv))
        return args.func(args)
    except TslaError as exc:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one report, from rank 0
            print(f"tsla: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        # a KeyboardInterrupt may come before anything was written (while the data loads) or during a report: say
        # only what holds in every case
        print("tsla: interrupted; whatever was already written is kept (a training that saved a checkpoint "
              "continues with --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output stopped early (``tsla presets | head``): nothing to report
        # (a write outside the guarded sys.stdout) no second error when Python flushes at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.__stdout__.fileno())
        return 0
