"""The evaluations that follow an epoch's training, as one record: test (when due, with temperature scaling fitted
on validation), validation on each labelling, the memorisation instruments, the theory diagnostics, and
tsla-auto's decision."""

from __future__ import annotations

import math
from typing import Any, TextIO

from ..distributed import DistInfo
from ..errors import TrainingError
from ..report.temperature import from_batches as temperature_from_batches
from ..theory.diagnose_epoch import measure
from .branch import tested_after
from .engine import evaluate, evaluate_split
from .memorisation import memorisation


def evaluate_epoch(cfg, ctx, data, epoch: int, record: dict[str, Any], progress, info: DistInfo, diag_set, prior,
                   smoothing, log: TextIO) -> dict[str, Any]:
    """Add epoch ``epoch``'s evaluations to ``record`` (which holds its training metrics) and return it. Raises
    ``TrainingError`` for a non-finite test loss."""
    test_now = tested_after(cfg, epoch)
    # temperature scaling fitted on validation, applied to test (one process: the logits stay local)
    kept_test = [] if test_now and data.val is not None and not info.enabled else None
    test_metrics = evaluate(ctx, data.test.epoch(cfg.seed, epoch), keep=kept_test) if test_now else {}
    if test_now and not math.isfinite(test_metrics["test_loss"]):
        raise TrainingError(f"the test loss became non-finite after epoch {epoch}: lower --lr or turn off "
                            f"--amp fp16; the last good checkpoint is kept")
    progress.calibration = test_metrics.pop("test_calibration", progress.calibration)  # per-bin lists: summary only
    record.update(test_metrics)
    if data.val is not None:  # the split that chooses theta and s; the test set only reports
        kept_val = [] if kept_test is not None else None
        record.update(evaluate_split(ctx, data.val.epoch(cfg.seed, epoch), "val_", data.val_second, kept_val))
        if kept_val is not None and math.isfinite(record["val_nll"]):
            record.update(temperature_from_batches(kept_val, kept_test))
        if progress.best_val is not None:
            progress.best_val.observe(record, ctx.module)
    if data.train_eval is not None:  # one eval-mode pass over the un-augmented training images
        record.update(memorisation(ctx, data.train_eval.epoch(cfg.seed, epoch), bool(cfg.label_noise)))
        if "val_top1" in record:
            record["gen_gap"] = record["train_eval_top1"] - record["val_top1"]
    if info.is_primary and diag_set is not None and (epoch + 1) % cfg.diagnose_every == 0:  # rank 0 only
        record.update(measure(ctx.module, diag_set, cfg, data, epoch, prior, ctx.prepare))
    if smoothing.auto is not None:  # rank 0 decides (its diagnostics are rank 0's), every rank follows
        if smoothing.auto.observe(record):
            print(f"tsla-auto: smoothing off from epoch {epoch + 1}: {smoothing.auto.reason}", file=log)
        record["switch_epoch"] = smoothing.switch_epoch
    return record
