"""Evaluate a finished run's weights on its test set afterwards: the final weights or the best validation epoch's.

For choosing hyperparameters on validation only (``tsla select``): candidates train with ``--test-every 0``, and
only the chosen one is evaluated on test, here, with the data, model and thread count its config.yaml names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data import build_data
from ..errors import ConfigError, RunDirError
from .best_val import BEST_WEIGHTS
from .checkpoint import CHECKPOINT, load_checkpoint
from .engine import evaluate
from .runtime import build_context, resolve_device
from .threads import using_threads
from .run_files import load_run_config

WEIGHTS = ("final", "best-val")


def _load_best(path: Path, run: Path) -> dict[str, Any]:
    """RUN/best.pt, checked against its checksum. A cut or damaged file is ``RunDirError``: the run's checkpoint
    holds the same weights, and a resume of the finished run writes best.pt again from it."""
    from .checkpoint import CHECKSUM, state_checksum

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - damaged bytes make torch.load raise almost any type (see load_checkpoint)
        state = None
    if (not isinstance(state, dict) or not isinstance(state.get("model"), dict)
            or state.get(CHECKSUM, state_checksum(state)) != state_checksum(state)):
        raise RunDirError(f"{path} is truncated or corrupt: its checkpoint holds the same weights; write it again "
                          f"with 'tsla train --out {run} --resume'")
    return state


def evaluate_run(run: str | Path, weights: str = "final", device: str | None = None) -> dict[str, Any]:
    """Test metrics (``test_top1``, ``test_nll``, ``test_ece``, ... as :func:`tsla.training.engine.evaluate`, without
    the per-bin lists) of ``run``'s ``weights``: "final" (RUN/checkpoint.pt, the last epoch trained) or "best-val"
    (RUN/best.pt). ``device`` overrides the run's own.

    Raises ``RunDirError`` naming the file when the run or its weights are missing, and ``ConfigError`` for an
    unknown ``weights``.
    """
    if weights not in WEIGHTS:
        raise ConfigError(f"weights {weights!r} is unknown: choose final or best-val")
    run = Path(run)
    cfg = load_run_config(run)
    if weights == "best-val":
        path = run / BEST_WEIGHTS
        if not path.is_file():
            raise RunDirError(f"{path} is missing: only a finished run trained with --val-size has best-validation "
                              f"weights; evaluate its final weights instead")
        state = _load_best(path, run)
    else:
        state = load_checkpoint(run / CHECKPOINT)
        if state.get("mid_epoch") or int(state["next_epoch"]) != cfg.epochs:
            raise RunDirError(f"{run} has not finished its {cfg.epochs} epochs: resume it with 'tsla train --out "
                              f"{run} --resume' first")
    with using_threads(cfg.threads):
        target = resolve_device(device or cfg.device)
        data = build_data(cfg, target)
        ctx, _ = build_context(cfg, data, target)
        ctx.module.load_state_dict(state["model"])
        metrics = evaluate(ctx, data.test.epoch(cfg.seed, 0))
    metrics.pop("test_calibration")
    return metrics
