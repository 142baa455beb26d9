"""tsla: label smoothing regularization (LSR) and the Two-Stage LAbel smoothing algorithm (TSLA) for PyTorch.

Public names: the loss (:func:`label_smoothing_cross_entropy`, :class:`LabelSmoothingCrossEntropy`), the smoothing
schedules (:mod:`tsla.schedules`), the config (:class:`TrainConfig`) and the trainer (:func:`train`).
"""

__version__ = "0.1.0"

from ._startup import quiet_interrupt as _quiet_interrupt

_restore_excepthook = _quiet_interrupt()  # Ctrl-C during the slow imports below (torch): one line, no traceback

import sys as _sys

from .smoothing import schedules

_sys.modules[__name__ + ".schedules"] = schedules  # the documented path: import tsla.schedules, from tsla.schedules import ...
from .smoothing.auto_switch import AutoSwitch
from .config import TrainConfig
from .errors import ConfigError, DataError, RunDirError, TrainingError, TslaError
from .losses.cross_entropy import (
    LabelSmoothingCrossEntropy,
    LossParts,
    label_smoothing_cross_entropy,
    label_smoothing_cross_entropy_parts,
)
from .smoothing.scheduler import SmoothingScheduler
from .training.trainer import train

_restore_excepthook()

__all__ = [
    "AutoSwitch",
    "ConfigError",
    "DataError",
    "LabelSmoothingCrossEntropy",
    "LossParts",
    "RunDirError",
    "SmoothingScheduler",
    "TrainConfig",
    "TrainingError",
    "TslaError",
    "label_smoothing_cross_entropy",
    "label_smoothing_cross_entropy_parts",
    "schedules",
    "train",
    "__version__",
]
