"""Where and how a run executes: the device, seeding, and the objects one training step needs."""

from __future__ import annotations

import random

import numpy as np
import torch

from ..config import TrainConfig
from ..data import DataBundle
from .engine import StepContext
from ..errors import ConfigError
from ..losses.cross_entropy import LabelSmoothingCrossEntropy
from ..models import build_model
from ..losses.priors import resolve_prior


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU. Raises ``ConfigError`` for a device that is not there."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name!r} is not supported: use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"--device {name}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_context(
    cfg: TrainConfig, data: DataBundle, device: torch.device, distributed: bool = False
) -> tuple[StepContext, torch.Tensor | None]:
    """The model (seeded by ``cfg.seed``, the same on every rank), SGD optimizer, loss and AMP scaler; returns
    (context, prior). ``distributed`` wraps the model in DistributedDataParallel (after SyncBatchNorm if asked)."""
    seed_everything(cfg.seed)
    prior = resolve_prior(cfg.prior, data.train_targets, data.num_classes)
    raw = build_model(cfg.model, data.num_classes, data.in_channels, cfg.pretrained)
    if distributed and cfg.sync_bn:
        if device.type != "cuda":
            raise ConfigError("--sync-bn needs GPUs (torch's SyncBatchNorm runs on CUDA only): drop it on CPU, where "
                              "each rank normalises over its own slice of the batch")
        raw = torch.nn.SyncBatchNorm.convert_sync_batchnorm(raw)
    raw = raw.to(device)
    if cfg.channels_last:
        raw = raw.to(memory_format=torch.channels_last)
    model = raw
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(raw, device_ids=ids)
    if cfg.compile:  # torch's recommended order: compile the DDP-wrapped model; parameters stay raw's
        model = torch.compile(model)
    optimizer = torch.optim.SGD(
        raw.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
    )
    ctx = StepContext(
        model=model,
        optimizer=optimizer,
        # labels were range-checked when the data was loaded: skip the per-step check that would sync a GPU
        loss_fn=LabelSmoothingCrossEntropy(prior, check_targets=device.type == "cpu",
                                           allow_negative=cfg.allow_negative).to(device),
        device=device,
        amp=cfg.amp,
        channels_last=cfg.channels_last,
        scaler=torch.amp.GradScaler(device.type) if cfg.amp == "fp16" else None,
        raw_model=raw,
        distributed=distributed,
    )
    return ctx, prior
