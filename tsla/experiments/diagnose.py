"""``tsla diagnose RUN``: the theory's quantities for a saved model, on the run's own diagnostic subset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..training.checkpoint import CHECKPOINT, load_checkpoint
from ..data import DataBundle, build_data
from ..theory.diagnose_epoch import diagnostic_setup, measure
from ..errors import RunDirError
from ..models import build_model
from ..losses.priors import resolve_prior
from ..training.run_files import load_run_config


def diagnose_run(
    run: Path, epoch: int | None = None, examples: int | None = None, batches: int | None = None,
    data: DataBundle | None = None,
) -> dict[str, Any]:
    """Measure what ``--diagnose-every`` measures (:mod:`tsla.theory.diagnose_epoch`) for the model saved after ``epoch``
    (counted from 0; None: the latest checkpoint), on CPU, on the run's own diagnostic subset (``examples`` images,
    default the run's ``diagnose_examples``) and, with ``batches`` (default the run's ``diagnose_batches``) >= 2,
    the train-mode estimator (keys ``mb_*``). Keys as in metrics.jsonl without the ``diag_`` prefix. ``data``: the
    run's data, already built on CPU (saves reloading it when diagnosing many runs of one data set).

    Raises ``RunDirError`` when the run or the asked epoch's checkpoint is missing.
    """
    cfg = load_run_config(run)
    if epoch is None:
        path = run / CHECKPOINT
        if not path.is_file():
            raise RunDirError(f"{run} has no checkpoint yet (it is written after the first epoch): diagnose it once "
                              f"an epoch has finished")
    else:
        path = run / "checkpoints" / f"epoch-{epoch}.pt"
        if not path.is_file():
            kept = sorted(p.stem for p in (run / "checkpoints").glob("epoch-*.pt")) if (run / "checkpoints").is_dir() else []
            raise RunDirError(
                f"no checkpoint of epoch {epoch} in {run} (kept: {', '.join(kept) or 'none'}): "
                f"train with --keep-checkpoints K to keep one every K epochs"
            )
    state = load_checkpoint(path)
    device = torch.device("cpu")
    cfg.device = "cpu"
    data = data if data is not None else build_data(cfg, device)
    model = build_model(cfg.model, data.num_classes, data.in_channels)
    model.load_state_dict(state["model"])
    prior = resolve_prior(cfg.prior, data.train_targets, data.num_classes)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    prepare = (lambda t: t.contiguous(memory_format=torch.channels_last)) if cfg.channels_last else (lambda t: t)
    if batches is not None:
        cfg.diagnose_batches = batches
    dset = diagnostic_setup(cfg, data, prepare, examples, "--examples" if examples is not None else "--diagnose-examples")
    done = int(state["next_epoch"]) - 1
    measured = measure(model, dset, cfg, data, done, prior, prepare)  # the trainer's own seeds: the same numbers
    result: dict[str, Any] = {k[len("diag_"):]: v for k, v in measured.items()}
    result.update({"run": str(run), "epoch": done, "theta": cfg.theta, "method": cfg.method})
    return result


def format_diagnosis(d: dict[str, Any]) -> str:
    """A short human-readable account of :func:`diagnose_run`'s result."""
    lines = [
        f"{d['run']}: {d['method']}, model after epoch {d['epoch']}, {d['n']} training images, {d['num_params']} parameters",
        "  corrected for the class-stratified draw (95% bootstrap interval over the images):",
        _line(d, "grad_norm2_corrected", "||grad F||^2"),
        _line(d, "sigma2_corrected", "sigma^2", "one-hot gradient variance per image"),
        _line(d, "bias2_corrected", "||grad F_yhat - grad F||^2", "the LSR bias, over theta^2"),
        _line(d, "delta_corrected", "delta"),
        _line(d, "theta_star_corrected", "theta* = 1/(1+delta)"),
        f"  plug-in over the {d['n']} images: ||G||^2 {d['grad_norm2']:.6g}, sigma^2 {d['sigma2']:.6g}, "
        f"LSR floor {_num(d['lsr_floor'])}",
    ]
    if "lsr_cosine" in d:
        lines += [
            f"  at the run's theta={d['theta']:g} and batch:",
            _line(d, "lsr_cosine", "cos(grad F, E h_LSR)"),
            _line(d, "lsr_variance_ratio_scaled", "LSR variance / ((1-theta)^2 sigma^2)"),
            _line(d, "one_step_gain", "one-step gain LSR / one-hot", "best decrease of F per step; < 1: one-hot better"),
        ]
    lines.append(f"  measured in {d['seconds']:.1f} s")
    return "\n".join(lines)


def _num(v: float | None) -> str:
    return "undefined" if v is None else f"{v:.6g}"


def _line(d: dict[str, Any], key: str, label: str, note: str = "") -> str:
    lo, hi = d.get(f"{key}_lo"), d.get(f"{key}_hi")
    interval = f"  [{_num(lo)}, {_num(hi)}]" if f"{key}_lo" in d else ""
    return f"  {label:<38} {_num(d[key])}{interval}" + (f"   {note}" if note else "")
