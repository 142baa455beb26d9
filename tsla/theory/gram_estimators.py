"""Design-unbiased estimates of the theory's population quantities from the Gram matrix of sampled gradients.

Each sampled unit i (an example, or a mini-batch) carries two gradient vectors: u_i^y (one-hot loss) and u_i^p
(prior-label loss). Everything the theory asks for is a mean over the *population* (the training set) of an inner
product, or an inner product of population means, so it is a linear function of the Gram matrix
K[i, a, j, b] = <u_i^a, u_j^b> (a, b in {y, p}). Two sampling designs are handled exactly:

* stratified (``strata`` given): from stratum c (a class), n_c >= 2 units drawn without replacement out of N_c;
  stratum weight W_c = N_c / N, sampling fraction f_c = n_c / N_c. The mean is estimated by sum_c W_c gbar_c and
  its sampling covariance is sum_c W_c^2 (1 - f_c) S_c / n_c, with S_c the within-stratum covariance: the *between*
  class spread does not enter. (v1 subtracted the total variance / (n - 1) instead: too much.)
* simple random (``strata`` None): n units drawn without replacement out of N (N None: with replacement, or an
  infinite population); one stratum with W = 1.

From the 2x2 matrices (indices y, p)

    R  = sum_c W_c (1/n_c) sum_{i in c} <u_i^a, u_i^b>                   unbiased for E_pop <u^a, u^b>
    Tc = <Gbar^a, Gbar^b> - sum_c W_c^2 (1 - f_c) s_c^{ab} / n_c          unbiased for <mu^a, mu^b>

(s_c: the sample within-stratum covariance, divisor n_c - 1; mu^a: population mean gradient, mu^y = grad F) every
quadratic quantity of :func:`quantities` is a linear combination, hence unbiased under the design. Ratios
(delta, cosine, gains) are ratios of unbiased estimates: consistent, not unbiased. A value that is undefined because
an estimated norm is <= 0 (the sampling noise exceeds the signal) is None, never NaN or inf.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

Moments = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # R, Tc, plug-in Gram of the plain sample mean

BOOTSTRAPPED = ("grad_norm2_corrected", "sigma2_corrected", "bias2_corrected", "delta_corrected",
                "lsr_cosine", "lsr_variance_ratio_scaled", "one_step_gain")


def design(
    strata: torch.Tensor | None, n: int, population: Sequence[int] | int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Z, W, f): the (n, C) one-hot stratum membership, the stratum weights W_c and sampling fractions f_c.

    ``strata`` None: one stratum; ``population`` then the population size N (None: infinite). With strata,
    ``population`` is the per-stratum population counts N_c (None: infinite strata weighted like the sample,
    W_c = n_c / n). Raises ``ValueError`` for a stratum with fewer than 2 units or counts that do not fit.
    """
    z = torch.zeros(n, dtype=torch.long) if strata is None else strata.detach().cpu().long()
    labels, z = torch.unique(z, return_inverse=True)
    Z = torch.nn.functional.one_hot(z, labels.numel()).double()
    n_c = Z.sum(0)
    if bool((n_c < 2).any()):
        raise ValueError(f"every stratum needs >= 2 sampled units (got {n_c.long().tolist()}): "
                         f"draw more examples per class")
    if population is None:
        return Z, n_c / n, torch.zeros_like(n_c)
    counts = torch.as_tensor([population] if isinstance(population, int) else list(population), dtype=torch.float64)
    if strata is not None:
        if int(labels.max()) >= counts.numel():
            raise ValueError(f"stratum {int(labels.max())} has no population count (got {counts.numel()} counts)")
        counts = counts[labels]
    if bool((counts < n_c).any()):
        raise ValueError(f"population counts {counts.long().tolist()} are smaller than the sample {n_c.long().tolist()}")
    return Z, counts / counts.sum(), n_c / counts


def moments(K: torch.Tensor, Z: torch.Tensor, W: torch.Tensor, f: torch.Tensor) -> Moments:
    """R, Tc (see the module docstring) and the plug-in <G^a, G^b> of the unweighted sample mean, from
    K (n, 2, n, 2) float64."""
    n_c = Z.sum(0)
    w = (Z @ (W / n_c))  # per-unit weight W_c / n_c
    diag = torch.einsum("iaib->iab", K)  # <u_i^a, u_i^b>
    R = torch.einsum("i,iab->ab", w, diag)
    T = torch.einsum("i,iajb,j->ab", w, K, w)
    Q = torch.einsum("ic,iab->cab", Z, diag)  # sum over stratum of <u_i^a, u_i^b>
    S = torch.einsum("ic,iajb,jc->cab", Z, K, Z)  # <sum u^a, sum u^b> within each stratum
    s = (Q - S / n_c[:, None, None]) / (n_c - 1)[:, None, None]
    Tc = T - torch.einsum("c,cab->ab", W * W * (1 - f) / n_c, s)
    u = torch.full((K.shape[0],), 1.0 / K.shape[0], dtype=K.dtype)
    return R, Tc, torch.einsum("i,iajb,j->ab", u, K, u)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def quantities(m: Moments, theta: float | None, sgd_batch: int = 1) -> dict[str, Any]:
    """The corrected quantities (formulas in :mod:`tsla.theory.gradient_noise`) from :func:`moments`; with ``theta`` also
    the LSR ones, where ``sgd_batch`` is the batch b of the stochastic gradient whose one-step decrease is
    compared (b units drawn with replacement: E||g_b||^2 = ||mean||^2 + variance / b)."""
    R, Tc, _ = m
    yy, pp, py = float(Tc[0, 0]), float(Tc[1, 1]), float(Tc[0, 1])
    sigma2 = float(R[0, 0]) - yy
    dsig = float(R[1, 1]) - 2 * py + yy
    delta = _ratio(dsig, sigma2)
    out: dict[str, Any] = {
        "grad_norm2_corrected": yy,
        "sigma2_corrected": sigma2,
        "delta_sigma2_corrected": dsig,
        "delta_corrected": delta,
        "theta_star_corrected": None if delta is None else 1.0 / (1.0 + delta),
        "bias2_corrected": pp - 2 * py + yy,
    }
    if theta is not None:
        alpha = torch.tensor([1.0 - theta, theta], dtype=torch.float64)
        mean_h = float(alpha @ Tc[:, 0])  # <grad F, E h>
        norm_h = float(alpha @ Tc @ alpha)  # ||E h||^2
        var_h = float(alpha @ R @ alpha) - norm_h  # E||h - E h||^2
        lsr_variance = float(alpha @ R @ alpha) - 2 * mean_h + yy  # E||h - grad F||^2, the paper's
        onehot_step = max(yy, 0.0) ** 2 / (yy + sigma2 / sgd_batch) if yy + sigma2 / sgd_batch > 0 else 0.0
        denominator = norm_h + var_h / sgd_batch
        lsr_step = max(mean_h, 0.0) ** 2 / denominator if denominator > 0 else 0.0
        out.update({
            "lsr_variance_corrected": lsr_variance,
            "lsr_variance_ratio_scaled": _ratio(lsr_variance, (1 - theta) ** 2 * sigma2),
            "lsr_cosine": mean_h / math.sqrt(yy * norm_h) if yy > 0 and norm_h > 0 else None,
            "one_step_onehot": onehot_step,
            "one_step_lsr": lsr_step,
            "one_step_gain": _ratio(lsr_step, onehot_step),
        })
    return out


def bootstrap(
    K: torch.Tensor, Z: torch.Tensor, W: torch.Tensor, f: torch.Tensor, theta: float | None, sgd_batch: int,
    resamples: int, seed: int, level: float = 0.95,
) -> dict[str, Any]:
    """Intervals ``<key>_lo`` / ``<key>_hi`` for the ``BOOTSTRAPPED`` keys: units resampled with replacement within
    each stratum (``resamples`` times, generator seeded by ``seed``), the estimates recomputed, and their
    percentiles shifted by (estimate - bootstrap-world truth).

    The shift matters: in the bootstrap world the population is the sample, whose true ||mean||^2 is the
    *uncorrected* ||G||^2, and the resampled corrected estimates are centred there, s^2/n above the corrected
    estimate; unshifted percentile intervals would miss their own estimate. Resamples are drawn with replacement
    (no finite-population correction: slightly wide when the sampling fraction is large). Resamples where a value is
    undefined are left out of its interval.
    """
    gen = torch.Generator().manual_seed(seed)
    estimate = quantities(moments(K, Z, W, f), theta, sgd_batch)
    world = quantities(moments(K, Z, W, torch.ones_like(f)), theta, sgd_batch)  # f = 1: no correction, Tc = T
    members = [torch.nonzero(Z[:, c]).flatten() for c in range(Z.shape[1])]
    draws: dict[str, list[float]] = {k: [] for k in BOOTSTRAPPED}
    for _ in range(resamples):
        idx = torch.cat([m[torch.randint(m.numel(), (m.numel(),), generator=gen)] for m in members])
        q = quantities(moments(K[idx][:, :, idx], Z[idx], W, torch.zeros_like(f)), theta, sgd_batch)
        for k in draws:
            if k in q:
                draws[k].append(math.nan if q[k] is None else q[k])
    out: dict[str, Any] = {}
    for k, values in draws.items():
        if not values:
            continue
        v = torch.tensor(values, dtype=torch.float64)
        v = v[~torch.isnan(v)]
        out[f"{k}_lo"] = out[f"{k}_hi"] = None
        if v.numel() and estimate.get(k) is not None and world.get(k) is not None:
            shift = estimate[k] - world[k]
            lo, hi = torch.quantile(v, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)).tolist()
            out[f"{k}_lo"], out[f"{k}_hi"] = lo + shift, hi + shift
    return out
