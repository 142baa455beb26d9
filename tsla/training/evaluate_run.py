"""Evaluate a finished run's weights on its test set afterwards: the final weights or the best validation epoch's.

For choosing hyperparameters on validation only (``tsla select``): candidates train with ``--test-every 0``, and
only the chosen one is evaluated on test, here, with the data, model and thread count its config.yaml names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data import build_data
from ..data.fingerprint import check_fingerprint
from ..errors import ConfigError, RunDirError
from .engine import evaluate
from .run_binding import load_best, run_checkpoint
from .runtime import build_context, resolve_device
from .threads import using_threads
from .run_files import load_run_config

WEIGHTS = ("final", "best-val")


def evaluate_run(run: str | Path, weights: str = "final", device: str | None = None) -> dict[str, Any]:
    """Test metrics (``test_top1``, ``test_nll``, ``test_ece``, ... as :func:`tsla.training.engine.evaluate`, without
    the per-bin lists) of ``run``'s ``weights``: "final" (RUN/checkpoint.pt, the last epoch trained) or "best-val"
    (RUN/best.pt). ``device`` overrides the run's own.

    The weights must be the run's own (:mod:`tsla.training.run_binding`): RUN/checkpoint.pt made with the run's
    config.yaml, and best.pt carrying its checksum and the checkpoint's best epoch and weights; and the test and
    validation images found now must be those the run was evaluated on (the checkpoint's fingerprint).

    Raises ``RunDirError`` naming the file when the run or its weights are missing or not the run's own,
    ``DataError`` when the data differ, and ``ConfigError`` for an unknown ``weights``.
    """
    if weights not in WEIGHTS:
        raise ConfigError(f"weights {weights!r} is unknown: choose final or best-val")
    run = Path(run)
    cfg = load_run_config(run)
    checkpoint = run_checkpoint(run, cfg)
    if weights == "best-val":
        state = load_best(run, checkpoint)
    else:
        state = checkpoint
        if state.get("mid_epoch") or int(state["next_epoch"]) != cfg.epochs:
            raise RunDirError(f"{run} has not finished its {cfg.epochs} epochs: resume it with 'tsla train --out "
                              f"{run} --resume' first")
    with using_threads(cfg.threads):
        target = resolve_device(device or cfg.device)
        data = build_data(cfg, target)
        check_fingerprint(checkpoint, data.fingerprint, run, data.eval_fingerprint)
        ctx, _ = build_context(cfg, data, target)
        ctx.module.load_state_dict(state["model"])
        metrics = evaluate(ctx, data.test.epoch(cfg.seed, 0))
    metrics.pop("test_calibration")
    return metrics
