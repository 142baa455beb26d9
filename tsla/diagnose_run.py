"""``tsla diagnose RUN``: the theory's quantities for a saved model, on the run's own diagnostic subset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .auto_switch import unbiased_grad_norm2
from .checkpoint import CHECKPOINT, load_checkpoint
from .data import build_data, diagnostic_set
from .diagnostics import gradient_noise
from .errors import RunDirError
from .models import build_model
from .priors import resolve_prior
from .trainer import load_run_config


def diagnose_run(run: Path, epoch: int | None = None, examples: int | None = None) -> dict[str, Any]:
    """Measure sigma^2, delta, theta*, the LSR floor (and the LSR variance at the run's theta) for the model saved
    after ``epoch`` (counted from 0; None: the latest checkpoint), on CPU, on the same fixed subset that
    ``--diagnose-every`` uses (``examples`` images, default the run's ``diagnose_examples``).

    Raises ``RunDirError`` when the run or the asked epoch's checkpoint is missing.
    """
    cfg = load_run_config(run)
    if epoch is None:
        path = run / CHECKPOINT
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
    data = build_data(cfg, device)
    model = build_model(cfg.model, data.num_classes, data.in_channels)
    model.load_state_dict(state["model"])
    prior = resolve_prior(cfg.prior, data.train_targets, data.num_classes)
    x, y = diagnostic_set(cfg, data, examples)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    result = gradient_noise(model, x, y, prior=prior, theta=cfg.theta)
    result["grad_norm2_unbiased"] = unbiased_grad_norm2(result)
    result.update({"run": str(run), "epoch": int(state["next_epoch"]) - 1, "theta": cfg.theta, "method": cfg.method})
    return result


def format_diagnosis(d: dict[str, Any]) -> str:
    """A short human-readable account of :func:`diagnose_run`'s result."""
    lines = [
        f"{d['run']}: {d['method']}, model after epoch {d['epoch']}, {d['n']} training images, {d['num_params']} parameters",
        f"  ||grad F||^2          {d['grad_norm2']:.6g}   (noise-corrected {d['grad_norm2_unbiased']:.6g})",
        f"  sigma^2               {d['sigma2']:.6g}   one-hot gradient variance",
        f"  delta * sigma^2       {d['delta_sigma2']:.6g}   prior-label gradient spread around grad F",
        f"  delta                 {d['delta']:.6g}",
        f"  theta* = 1/(1+delta)  {d['theta_star']:.6g}",
        f"  LSR floor             {d['lsr_floor']:.6g}   2 delta sigma^2 / (1 + delta)",
    ]
    if "lsr_variance" in d:
        lines.append(f"  LSR variance at theta={d['theta']:g}: {d['lsr_variance']:.6g} (bound {d['lsr_bound']:.6g})")
    lines.append(f"  measured in {d['seconds']:.1f} s")
    return "\n".join(lines)
