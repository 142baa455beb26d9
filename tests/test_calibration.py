"""ECE, Brier and NLL against a hand computation on a fixed example, through the engine's evaluate()."""

import math

import pytest
import torch

from tsla.training.engine import StepContext, evaluate

# five predictions over two classes, chosen away from the 1/15 bin edges
PROBS = [[0.9, 0.1], [0.62, 0.38], [0.3, 0.7], [0.55, 0.45], [0.42, 0.58]]
TARGETS = [0, 1, 1, 0, 0]


def test_calibration_metrics_by_hand():
    logits = torch.log(torch.tensor(PROBS, dtype=torch.float64)).float()
    ctx = StepContext(model=torch.nn.Identity(), optimizer=None, loss_fn=None, device=torch.device("cpu"))
    got = evaluate(ctx, [(logits, torch.tensor(TARGETS))])
    # top confidence, right?  0.9 yes (bin 13), 0.62 no (bin 9), 0.7 yes (bin 10), 0.55 yes and 0.58 no (both bin 8)
    # ECE = (|1-0.9| + |0-0.62| + |1-0.7| + |1-(0.55+0.58)|) / 5
    assert got["test_ece"] == pytest.approx((0.1 + 0.62 + 0.3 + 0.13) / 5, abs=1e-6)
    # Brier: sum_k (p_k - y_k)^2 per image, averaged
    brier = [0.1**2 * 2, 0.62**2 * 2, 0.3**2 * 2, 0.45**2 * 2, 0.58**2 * 2]
    assert got["test_brier"] == pytest.approx(sum(brier) / 5, abs=1e-6)
    nll = -sum(math.log(p[t]) for p, t in zip(PROBS, TARGETS)) / 5
    assert got["test_nll"] == pytest.approx(nll, abs=1e-6) and got["test_loss"] == got["test_nll"]
    assert got["test_top1"] == pytest.approx(3 / 5)
    bins = got["test_calibration"]
    assert bins["bin_count"][8] == 2 and bins["bin_count"][13] == 1 and sum(bins["bin_count"]) == 5
    assert bins["bin_confidence"][8] == pytest.approx(1.13) and bins["bin_correct"][8] == 1


def test_batches_add_up_like_one_batch():
    logits = torch.log(torch.tensor(PROBS)).float()
    targets = torch.tensor(TARGETS)
    ctx = StepContext(model=torch.nn.Identity(), optimizer=None, loss_fn=None, device=torch.device("cpu"))
    whole = evaluate(ctx, [(logits, targets)])
    split = evaluate(ctx, [(logits[:2], targets[:2]), (logits[2:], targets[2:])])
    for key in ("test_ece", "test_brier", "test_nll", "test_top1"):
        assert split[key] == pytest.approx(whole[key], abs=1e-6)  # float32 cross-entropy per batch
