"""Smoothing priors for training runs: uniform, the training set's class frequencies, or a user file."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError
from .cross_entropy import check_prior

PRIOR_CHOICES = "'uniform', 'class-frequency', or the path of a text file with one probability per class"


def class_frequency_prior(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Empirical class frequencies of ``targets`` (class indices), as float64 summing to 1."""
    counts = torch.bincount(targets.long().flatten(), minlength=num_classes).double()
    if counts.numel() != num_classes:
        raise ConfigError(f"training labels reach class {counts.numel() - 1}, beyond the {num_classes} classes")
    return counts / counts.sum()


def read_prior_file(path: str | Path, num_classes: int) -> torch.Tensor:
    """Read one number per class (whitespace or comma separated, '#' comments allowed) and check it is a distribution.

    Raises ``ConfigError`` naming the file when it is missing, unparsable, of the wrong length, negative or does not
    sum to 1 (tolerance 1e-6).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--prior file {path} cannot be read ({exc.strerror}): give an existing text file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--prior file {path} is not UTF-8 text (byte {exc.start}): write one number per class") from None
    values: list[float] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].replace(",", " ")
        for token in line.split():
            try:
                values.append(float(token))
            except ValueError:
                raise ConfigError(f"--prior file {path}: {token!r} is not a number; write one number per class") from None
    try:
        return check_prior(torch.tensor(values, dtype=torch.float64), num_classes)
    except ValueError as exc:
        raise ConfigError(f"--prior file {path}: {exc}") from None


def resolve_prior(spec: str, train_targets: torch.Tensor, num_classes: int) -> torch.Tensor | None:
    """Turn the ``--prior`` setting into a tensor (None means uniform, the loss's exact torch-parity path)."""
    if spec == "uniform":
        return None
    if spec == "class-frequency":
        return class_frequency_prior(train_targets, num_classes)
    return read_prior_file(spec, num_classes)
