"""TSLA in training loops people already have: one thin adapter per framework, each an optional extra.

    tsla.integrations.pytorch    a plain PyTorch loop (no extra)
    tsla.integrations.lightning  a Lightning ``Callback``                       pip install "tsla[lightning]"
    tsla.integrations.hf         a ``transformers.Trainer`` with TSLA         pip install "tsla[hf]"
    tsla.integrations.timm       a timm train loss with ``set_epoch``          pip install "tsla[timm]"

Every adapter translates its framework's hooks into the same three objects: a :class:`tsla.SmoothingScheduler`
(theta and its state), a :class:`tsla.LabelSmoothingCrossEntropy` reading theta from it, and, for tsla-auto, the
:class:`tsla.AutoSwitch` inside the scheduler. The end-of-epoch step they share is
:func:`tsla.integrations.pytorch.report_epoch`; tsla's own trainer uses the same AutoSwitch. Shared by them too:
:mod:`tsla.integrations.run_length` (a run shorter than its switch, early stopping before it) and
:mod:`tsla.integrations.trial` (a hyperparameter-search trial's scheduler). See docs/integrations.md.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, framework: str) -> ModuleType:
    """Import ``module``; if it is missing, raise ``ImportError`` in one line naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"tsla.integrations.{extra} needs {framework}, which is not installed: "
                          f"pip install \"tsla[{extra}]\"") from None
