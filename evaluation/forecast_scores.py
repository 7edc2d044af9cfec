"""Scores of probabilistic forecasts given as scenario ensembles.

A forecast for date t is an ensemble of N scenario values (for example the
cumulative log return over the next H days); the realized value is one number.
These are the standard checks of a risk model's forecasts:

- PIT (probability integral transform): where the realized value falls in the
  ensemble. For calibrated forecasts the PITs of non-overlapping dates are
  uniform; a KS test against the uniform says whether they are not.
- CRPS (continuous ranked probability score), ``E|X - y| - E|X - X'| / 2``:
  lower is better; it rewards calibration and sharpness together.
- VaR hits: the realized value falls below the ensemble's alpha quantile. The
  Kupiec test asks whether the hit rate is alpha, the Christoffersen test
  whether hits come independently of yesterday's hit.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.special import xlogy


def pit_values(samples: np.ndarray, realized: np.ndarray, seed: int = 0) -> np.ndarray:
    """PIT of each realized value in its ensemble [M] (ties randomized, so discrete ensembles
    still give uniform PITs when calibrated). ``samples`` is [M, N], ``realized`` [M]."""
    samples, realized = _check(samples, realized)
    below = (samples < realized[:, None]).mean(axis=1)
    ties = (samples == realized[:, None]).mean(axis=1)
    u = np.random.default_rng(seed).uniform(size=len(realized))
    return below + u * ties


def pit_ks(pit: np.ndarray) -> tuple[float, float]:
    """KS statistic and p-value of PITs against the uniform on [0, 1]."""
    res = stats.kstest(np.asarray(pit, dtype=np.float64), "uniform")
    return float(res.statistic), float(res.pvalue)


def crps_ensemble(samples: np.ndarray, realized: np.ndarray) -> np.ndarray:
    """CRPS of each ensemble [M] (the unbiased-in-N form would divide by N - 1; this is the
    ensemble's own CRPS, the one properscoring computes)."""
    samples, realized = _check(samples, realized)
    n = samples.shape[1]
    spread_to_truth = np.abs(samples - realized[:, None]).mean(axis=1)
    x = np.sort(samples, axis=1)
    # sum over pairs |x_i - x_j| = 2 * sum_i (2i - n - 1) x_(i), i = 1..n, for sorted x.
    weights = 2 * np.arange(1, n + 1) - n - 1
    mean_pair_distance = 2 * (x * weights).sum(axis=1) / n**2
    return spread_to_truth - 0.5 * mean_pair_distance


def var_hits(samples: np.ndarray, realized: np.ndarray, alpha: float) -> np.ndarray:
    """True where the realized value is below the ensemble's ``alpha`` quantile (a VaR breach)."""
    samples, realized = _check(samples, realized)
    return realized < np.quantile(samples, alpha, axis=1)


def kupiec_pof(hits: np.ndarray, alpha: float) -> tuple[float, float]:
    """Kupiec's proportion-of-failures likelihood ratio and its chi-square(1) p-value."""
    hits = np.asarray(hits, dtype=bool)
    t, x = len(hits), int(hits.sum())
    rate = x / t
    loglik_null = xlogy(t - x, 1 - alpha) + xlogy(x, alpha)
    loglik_alt = xlogy(t - x, 1 - rate) + xlogy(x, rate)
    lr = max(0.0, float(-2 * (loglik_null - loglik_alt)))
    return lr, float(stats.chi2.sf(lr, 1))


def christoffersen_independence(hits: np.ndarray) -> tuple[float, float]:
    """Christoffersen's test that a hit does not make the next one likelier: LR, p-value."""
    h = np.asarray(hits, dtype=int)
    prev, nxt = h[:-1], h[1:]
    n00, n01 = int(np.sum((prev == 0) & (nxt == 0))), int(np.sum((prev == 0) & (nxt == 1)))
    n10, n11 = int(np.sum((prev == 1) & (nxt == 0))), int(np.sum((prev == 1) & (nxt == 1)))
    total = n00 + n01 + n10 + n11
    if total == 0 or n01 + n11 == 0:
        return 0.0, 1.0  # no hits: nothing can cluster
    pi = (n01 + n11) / total
    pi0 = n01 / max(n00 + n01, 1)
    pi1 = n11 / max(n10 + n11, 1)
    loglik_null = xlogy(n00 + n10, 1 - pi) + xlogy(n01 + n11, pi)
    loglik_alt = xlogy(n00, 1 - pi0) + xlogy(n01, pi0) + xlogy(n10, 1 - pi1) + xlogy(n11, pi1)
    lr = max(0.0, float(-2 * (loglik_null - loglik_alt)))
    return lr, float(stats.chi2.sf(lr, 1))


def _check(samples: np.ndarray, realized: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    samples = np.asarray(samples, dtype=np.float64)
    realized = np.asarray(realized, dtype=np.float64)
    if samples.ndim != 2 or realized.shape != (samples.shape[0],) or samples.shape[1] < 2:
        raise ValueError(
            f"scenarios must be [M, N >= 2] and realized values [M]; got {samples.shape} "
            f"and {realized.shape}"
        )
    return samples, realized
