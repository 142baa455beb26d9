"""Early stopping on the validation set: the epoch of the best validation top-1 and the weights of that epoch.

The best epoch is chosen by validation top-1 alone (ties: the earliest); the test set never chooses it. The weights
travel in the run's checkpoint (``best_val``), so they survive a kill and ``--resume`` exactly, and a TSLA run
branched from an LSR trunk after S epochs inherits the trunk's best of its first S epochs. At the end of training
the trainer writes them to ``RUN/best.pt`` and evaluates the test set on them once (unless ``--test-every 0``).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

BEST_WEIGHTS = "best.pt"


@dataclass
class BestVal:
    """The best validation epoch so far (epochs from 0; -1: none yet) and a CPU copy of the model's weights then."""

    epoch: int = -1
    val_top1: float = -1.0
    val_nll: float = float("nan")
    model: dict[str, torch.Tensor] = field(default_factory=dict)

    def observe(self, record: dict[str, Any], model: torch.nn.Module) -> bool:
        """Keep ``model``'s weights if this epoch's ``val_top1`` beats every earlier one; return whether it did."""
        if record["val_top1"] <= self.val_top1:
            return False
        self.epoch, self.val_top1, self.val_nll = int(record["epoch"]), record["val_top1"], record["val_nll"]
        self.model = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return True

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers and tensors: loads with ``torch.load(..., weights_only=True)``."""
        return {"epoch": self.epoch, "val_top1": self.val_top1, "val_nll": self.val_nll, "model": self.model}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "BestVal":
        """The tracker :meth:`state_dict` described. Raises ``ValueError`` unless ``state`` is a mapping with an
        integer ``epoch``, numbers ``val_top1`` and ``val_nll`` and a mapping ``model``."""
        ok = (isinstance(state, Mapping) and all(k in state for k in ("epoch", "val_top1", "val_nll", "model"))
              and isinstance(state["epoch"], numbers.Integral) and not isinstance(state["epoch"], bool)
              and all(isinstance(state[k], numbers.Real) and not isinstance(state[k], bool)
                      for k in ("val_top1", "val_nll"))
              and isinstance(state["model"], Mapping))
        if not ok:
            raise ValueError("not a BestVal state (an integer epoch, numbers val_top1 and val_nll, and the model's "
                             "weights): pass what state_dict() gave")
        return cls(int(state["epoch"]), float(state["val_top1"]), float(state["val_nll"]), dict(state["model"]))

    def summary(self, test: dict[str, Any] | None) -> dict[str, Any]:
        """The ``best_val`` entry of summary.json; the test metrics are None when the test set was not evaluated."""
        test = test or {}
        return {"epoch": self.epoch, "val_top1": self.val_top1, "val_nll": self.val_nll,
                "test_top1": test.get("test_top1"), "test_nll": test.get("test_nll"), "test_ece": test.get("test_ece")}
