"""Calibration of predicted probabilities: NLL, Brier score and expected calibration error (ECE).

ECE uses M equal-width confidence bins B_m = ((m-1)/M, m/M] (a confidence of exactly 0 falls in the first):

    ECE = sum_m |B_m| / n * |acc(B_m) - conf(B_m)|

where conf is the top predicted probability and acc whether its class is the label (Guo et al., 2017). The functions
here return per-bin SUMS, so batches (and, later, ranks or seeds) combine by adding before dividing.
"""

from __future__ import annotations

import torch

ECE_BINS = 15


def calibration_sums(logits: torch.Tensor, targets: torch.Tensor, bins: int = ECE_BINS) -> dict[str, torch.Tensor]:
    """Per-batch sums: ``bin_count``, ``bin_confidence`` (sum of top probabilities) and ``bin_correct`` (number
    right), each of length ``bins``, and ``brier`` (sum over examples of sum_k (p_k - y_k)^2), all float64."""
    probs = torch.softmax(logits.double(), dim=1)
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == targets).double()
    index = (torch.ceil(confidence * bins).long() - 1).clamp(0, bins - 1)
    zeros = torch.zeros(bins, dtype=torch.float64, device=logits.device)
    onehot = torch.nn.functional.one_hot(targets, probs.shape[1]).double()
    return {
        "bin_count": zeros.index_add(0, index, torch.ones_like(confidence)),
        "bin_confidence": zeros.index_add(0, index, confidence),
        "bin_correct": zeros.index_add(0, index, correct),
        "brier": ((probs - onehot) ** 2).sum(),
    }


def expected_calibration_error(bin_count, bin_confidence, bin_correct) -> float:
    """ECE from per-bin sums (sequences or tensors of equal length)."""
    count = torch.as_tensor(bin_count, dtype=torch.float64)
    total = float(count.sum())
    if total == 0:
        return 0.0
    gap = (torch.as_tensor(bin_correct, dtype=torch.float64) - torch.as_tensor(bin_confidence, dtype=torch.float64)).abs()
    return float(gap.sum() / total)  # sum_m |B_m|/n * |acc_m - conf_m| = sum_m |correct_m - confsum_m| / n
