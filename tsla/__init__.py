"""tsla: label smoothing regularization (LSR) and the Two-Stage LAbel smoothing algorithm (TSLA) for PyTorch.

Public names: the loss (:func:`label_smoothing_cross_entropy`, :class:`LabelSmoothingCrossEntropy`; binary and
multi-label: :func:`binary_label_smoothing_cross_entropy`, :class:`BinaryLabelSmoothingCrossEntropy`), the smoothing
schedules (:mod:`tsla.schedules`), the config (:class:`TrainConfig`) and the trainer (:func:`train`).

``import tsla`` loads the loss, the schedules and the scheduler only; ``tsla.train``, ``tsla.TrainConfig`` and
``tsla.select`` (choosing theta, S and the stopping epoch for any training loop) are imported on first use (module ``__getattr__``), so a user of the loss never pays for the trainer, torchvision or PIL.
"""

__version__ = "0.1.0"

from ._startup import quiet_interrupt as _quiet_interrupt

_restore_excepthook = _quiet_interrupt()  # Ctrl-C during the slow imports below (torch): one line, no traceback

import sys as _sys

from .smoothing import schedules

_sys.modules[__name__ + ".schedules"] = schedules  # the documented path: import tsla.schedules, from tsla.schedules import ...
from .smoothing.auto_switch import AutoSwitch
from .errors import ConfigError, DataError, RunDirError, TrainingError, TslaError
from .losses.binary import BinaryLabelSmoothingCrossEntropy, binary_label_smoothing_cross_entropy
from .losses.cross_entropy import (
    LabelSmoothingCrossEntropy,
    LossParts,
    label_smoothing_cross_entropy,
    label_smoothing_cross_entropy_parts,
)
from .smoothing.scheduler import SmoothingScheduler

_restore_excepthook()

_LAZY = {"train": ("tsla.training.trainer", "train"), "TrainConfig": ("tsla.config", "TrainConfig"),
         "select": ("tsla.experiments.trials.select_api", "select")}


def __getattr__(name: str):
    """``tsla.train``, ``tsla.TrainConfig`` and ``tsla.select``, imported on first use (the trainer brings
    torchvision and PIL)."""
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'tsla' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "AutoSwitch",
    "BinaryLabelSmoothingCrossEntropy",
    "ConfigError",
    "DataError",
    "LabelSmoothingCrossEntropy",
    "LossParts",
    "RunDirError",
    "SmoothingScheduler",
    "TrainConfig",
    "TrainingError",
    "TslaError",
    "binary_label_smoothing_cross_entropy",
    "label_smoothing_cross_entropy",
    "label_smoothing_cross_entropy_parts",
    "schedules",
    "select",
    "train",
    "__version__",
]
