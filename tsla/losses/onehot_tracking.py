"""Running sums of a loss's one-hot term (the paper's objective F) over training calls, shared by the multi-class
and the binary criteria: accumulated on the device without a synchronisation, read and reset by a pop."""

from __future__ import annotations

import torch


class OneHotTracking:
    """Mixin: ``_add_onehot_totals`` adds a float64 [sum of the one-hot term, the mean's denominator];
    ``pop_onehot_sums`` / ``pop_onehot_mean`` read them and reset. The class using it sets ``track_onehot``."""

    track_onehot: bool
    _onehot_totals: torch.Tensor | None = None  # float64 [sum, denominator], on the logits' device

    def _add_onehot_totals(self, totals: torch.Tensor) -> None:
        self._onehot_totals = totals if self._onehot_totals is None else self._onehot_totals + totals

    def pop_onehot_sums(self) -> torch.Tensor:
        """float64 tensor [sum of the one-hot term, the mean's denominator] accumulated since the last pop (zeros if
        nothing was), then reset. Under DDP, all-reduce it before dividing."""
        totals = self._onehot_totals
        self._onehot_totals = None
        return torch.zeros(2, dtype=torch.float64) if totals is None else totals

    def pop_onehot_mean(self) -> float:
        """The one-hot loss over every tracked call since the last pop, then reset (one synchronisation).

        Raises ``ValueError`` if tracking is off or no kept position was seen since the last pop."""
        if not self.track_onehot:
            raise ValueError("this loss does not track the one-hot term: build it with track_onehot=True")
        total, denominator = self.pop_onehot_sums().tolist()
        if denominator == 0:
            raise ValueError("no one-hot loss to report: no training call (with gradients enabled) counted a "
                             "position since the last pop")
        return total / denominator
