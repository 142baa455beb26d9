"""What :func:`tsla.select` returns and writes to ``out/selection.json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SelectionResult:
    """The choice and how sure it is.

    ``chosen``: {"method", "theta", "switch_epoch", "theta_after"}. ``stop_epochs``: per seed, the epoch the chosen
    candidate's run was scored at (its best-validation epoch with ``at="best-val"``, counted from 0).
    ``recommended_epochs``: how many epochs to train when retraining the choice without a validation split (the
    median stop epoch + 1; the run's length with ``at="last"``). ``rule``: the noise-aware rule's record (each
    candidate's mean, its paired difference from the best and from the chosen with an interval, P(best); whether
    validation separates the top two, and the sentence saying so). ``candidates``: every candidate with its
    per-seed scores and scored epochs (empty for a family stopped by halving). ``checkpoints``: per seed, the chosen
    run's checkpoint at the scored epoch, relative to ``out``. ``epochs_trained`` counts the epochs reported by all
    runs (a branch's from its switch epoch on); ``epochs_independent`` what independent runs would cost.
    """

    chosen: dict[str, Any]
    stop_epochs: dict[int, int]
    recommended_epochs: int
    at: str
    criterion: str
    seeds: list[int]
    n_val: int | None
    rule: dict[str, Any]
    candidates: list[dict[str, Any]]
    epochs_trained: int
    epochs_independent: int
    checkpoints: dict[int, str]
    out: str
    halving: list[dict[str, Any]] = field(default_factory=list)
    trained_this_call: int = 0
    """Epochs reported during this call (0 when every run had finished before): not written to selection.json."""

    @property
    def label(self) -> str:
        c = self.chosen
        if c["method"] == "baseline":
            return "baseline"
        if c["method"] == "lsr":
            return f"LSR(theta={c['theta']:g})"
        end = "" if not c["theta_after"] else f", then theta={c['theta_after']:g}"
        return f"TSLA(theta={c['theta']:g}, S={c['switch_epoch']}{end})"

    def to_dict(self) -> dict[str, Any]:
        """selection.json's content: plain values, deterministic for the same reports (seeds as string keys)."""
        return {"chosen": self.chosen, "stop_epochs": {str(k): v for k, v in self.stop_epochs.items()},
                "recommended_epochs": self.recommended_epochs, "at": self.at, "criterion": self.criterion,
                "seeds": self.seeds, "n_val": self.n_val, "rule": self.rule, "candidates": self.candidates,
                "epochs_trained": self.epochs_trained, "epochs_independent": self.epochs_independent,
                "checkpoints": {str(k): v for k, v in self.checkpoints.items()}, "halving": self.halving}

    def summary(self) -> str:
        """Lines for a terminal: the choice, the stop epochs, how sure, the cost."""
        stops = ", ".join(f"seed {s}: {e}" for s, e in self.stop_epochs.items())
        return "\n".join([
            f"chosen: {self.label} by {self.criterion} at {self.at} over {len(self.seeds)} seed(s)",
            f"stop epochs ({self.at}): {stops}; retrain without validation for {self.recommended_epochs} epochs",
            f"how sure: {self.rule['sentence']}",
            f"cost: {self.epochs_trained} epochs trained against {self.epochs_independent} for independent runs",
        ])
