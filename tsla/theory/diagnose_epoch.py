"""``--diagnose-every``: what the trainer measures after an epoch, as diag_* (per-example, eval mode) and diag_mb_*
(train-mode mini-batches) keys of the metrics record. See :mod:`tsla.theory.gradient_noise` and :mod:`tsla.theory.minibatch_noise`
for what each key means."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn

from ..config import TrainConfig
from ..data import DataBundle, diagnostic_set
from .gradient_noise import gradient_noise
from ..errors import ConfigError
from .minibatch_noise import minibatch_gradient_noise

# offset of the generator streams the train-mode estimator draws its batches from: never the run's own (seed, epoch)
BATCH_STREAM = 7_000_003


@dataclass
class DiagnosticSet:
    """The fixed, class-balanced images of one run, their clean labels, and the class counts of the training set
    they were drawn from (the strata of the design)."""

    images: torch.Tensor
    targets: torch.Tensor
    population: list[int]


def diagnostic_setup(cfg: TrainConfig, data: DataBundle, prepare: Callable[[torch.Tensor], torch.Tensor],
                     examples: int | None = None, flag: str = "--diagnose-examples") -> DiagnosticSet:
    """The run's diagnostic set. Raises ``ConfigError`` naming ``flag`` (the option that gave ``examples``: ``tsla
    diagnose --examples``, or the run's ``--diagnose-examples``) when a class gets fewer than 2 images (the
    stratified correction needs a within-class variance in every class)."""
    x, y = diagnostic_set(cfg, data, examples)
    labels = data.train_clean_targets if data.train_clean_targets is not None else data.train_targets
    population = torch.bincount(labels.cpu().long(), minlength=data.num_classes).tolist()
    drawn = torch.bincount(y.cpu().long(), minlength=data.num_classes)
    short = [c for c in range(data.num_classes) if population[c] and int(drawn[c]) < 2]
    if short:
        raise ConfigError(f"{flag} {y.numel()} gives class {short[0]} fewer than 2 images: pass at "
                          f"least {2 * data.num_classes} ({data.num_classes} classes)")
    return DiagnosticSet(prepare(x), y, population)


def _batches(cfg: TrainConfig, data: DataBundle, epoch: int,
             prepare: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``cfg.diagnose_batches`` independent training batches, augmented as the run augments: the first batch of
    each of as many fresh shuffles (streams no training epoch uses)."""
    for j in range(cfg.diagnose_batches):
        images, targets = next(iter(data.train.epoch(cfg.seed + BATCH_STREAM, epoch * cfg.diagnose_batches + j)))
        yield prepare(images), targets


def measure(model: nn.Module, dset: DiagnosticSet, cfg: TrainConfig, data: DataBundle, epoch: int,
            prior: torch.Tensor | None, prepare: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, Any]:
    """The diag_* (and, with ``--diagnose-batches``, diag_mb_*) keys after ``epoch`` (counted from 0)."""
    seed = cfg.seed * 1_000_003 + epoch  # the bootstrap's generator: reproducible, and no global RNG consumed
    diag = gradient_noise(model, dset.images, dset.targets, prior=prior, theta=cfg.theta, stratified=True,
                          population=dset.population, sgd_batch=cfg.batch_size, bootstrap=cfg.diagnose_bootstrap,
                          seed=seed)
    record = {f"diag_{k}": v for k, v in diag.items()}
    if cfg.diagnose_batches:
        mb = minibatch_gradient_noise(model, _batches(cfg, data, epoch, prepare), prior=prior, theta=cfg.theta,
                                      bootstrap=cfg.diagnose_bootstrap, seed=seed)
        record.update({f"diag_mb_{k}": v for k, v in mb.items()})
    return record
