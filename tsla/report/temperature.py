"""Temperature scaling (Guo et al., 2017): one scalar T > 0 fitted on validation logits by the NLL of softmax(z / T),
then applied to the test logits, so that calibration is compared after the cheapest post-hoc fix.

The NLL is convex in beta = 1 / T (log-sum-exp of a linear function minus a linear function), so a bounded 1-D
search finds its minimum: :func:`fit_temperature` uses scipy's bounded Brent method on beta in [1/50, 50], in float64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .calibration import calibration_sums, expected_calibration_error

BETA_BOUNDS = (0.02, 50.0)
"""The search interval of beta = 1 / T: temperatures from 0.02 to 50 (a fit at a bound is reported as such)."""


def _nll(logits: torch.Tensor, labels: torch.Tensor, beta: float) -> float:
    return float(F.cross_entropy(logits * beta, labels, reduction="mean"))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T minimising the mean NLL of softmax(logits / T) on (logits, labels). A logit of -inf is a
    probability of 0 at every temperature and is allowed where the example's own class and at least one logit per row
    stay finite (the NLL is then finite). Raises ``ValueError`` for no examples, a nan or +inf logit, or a -inf on an
    example's own class or across a whole row."""
    from scipy.optimize import minimize_scalar  # imported here: `import tsla` does not pay for scipy

    logits, labels = logits.detach().double().cpu(), labels.detach().long().cpu()
    if logits.shape[0] == 0 or bool(torch.isnan(logits).any()) or bool((logits == math.inf).any()):
        raise ValueError("temperature scaling needs at least one example and no nan or +inf logit")
    if not bool(torch.isfinite(logits.gather(1, labels[:, None])).all()):
        raise ValueError("temperature scaling: an example's own class has a -inf logit (its NLL is infinite at "
                         "every temperature)")
    found = minimize_scalar(lambda b: _nll(logits, labels, b), bounds=BETA_BOUNDS, method="bounded",
                            options={"xatol": 1e-7})
    return 1.0 / float(found.x)


def scaled_metrics(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> dict[str, float]:
    """NLL and ECE (15 bins) of softmax(logits / T) against ``labels``."""
    logits = logits.detach().double().cpu() / temperature
    labels = labels.detach().long().cpu()
    sums = calibration_sums(logits, labels)
    return {"nll": _nll(logits, labels, 1.0),
            "ece": expected_calibration_error(sums["bin_count"], sums["bin_confidence"], sums["bin_correct"])}


def temperature_scaled(val_logits: torch.Tensor, val_labels: torch.Tensor, test_logits: torch.Tensor,
                       test_labels: torch.Tensor) -> dict[str, float]:
    """T fitted on validation, the test NLL and ECE after it: ``ts_temperature``, ``test_ts_nll``, ``test_ts_ece``."""
    temperature = fit_temperature(val_logits, val_labels)
    test = scaled_metrics(test_logits, test_labels, temperature)
    return {"ts_temperature": temperature if math.isfinite(temperature) else float("nan"),
            "test_ts_nll": test["nll"], "test_ts_ece": test["ece"]}


def from_batches(val: list, test: list) -> dict[str, float]:
    """:func:`temperature_scaled` on the (logits, targets) batches :func:`tsla.training.engine.evaluate` kept: the
    validation labels are column 0 of (N, 2) targets (the labels ``val_*`` reads)."""
    val_logits, val_labels = torch.cat([b[0] for b in val]), torch.cat([b[1] for b in val])
    if val_labels.dim() == 2:
        val_labels = val_labels[:, 0]
    return temperature_scaled(val_logits, val_labels, torch.cat([b[0] for b in test]), torch.cat([b[1] for b in test]))
