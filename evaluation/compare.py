"""All stylized facts of one set of windows, and the distances between two sets.

:func:`stylized_facts` computes every statistic of :mod:`evaluation.metrics`
once per set (real training windows, held-out windows, each generator), so
that comparing several generators against the same real data does not redo
the real side. :func:`compare_facts` turns two fact sets into the flat dict of
numbers that ``metrics.json`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evaluation import metrics as m

# Horizons of the Wasserstein-1 comparison besides the whole window (issue 4).
W1_HORIZONS = (1, 5, 20)
# Lags of the ACF of r and of the leverage curve.
SHORT_LAGS = 20


@dataclass
class Facts:
    """Statistics of one set of ``[N, L]`` windows (see :func:`stylized_facts`)."""

    n_windows: int
    length: int
    std: float
    skew: float
    kurtosis: float
    hill: float
    abs_acf1: float
    acf_r: np.ndarray
    acf_abs: np.ndarray
    acf_sq: np.ndarray
    leverage: np.ndarray
    horizons: list[int]
    agg_kurtosis: np.ndarray
    hurst: np.ndarray
    logper_r: np.ndarray
    logper_abs: np.ndarray
    # Aggregated returns per horizon (flattened), kept for the Wasserstein distances.
    aggregated: dict[int, np.ndarray] = field(repr=False, default_factory=dict)


def w1_horizons(length: int) -> list[int]:
    """Horizons 1, 5, 20 (those that fit) and the window length L, without repeats."""
    return sorted({h for h in W1_HORIZONS if h <= length} | {length})


def stylized_facts(x: np.ndarray) -> Facts:
    """Compute every statistic of :mod:`evaluation.metrics` for windows ``x`` of shape ``[N, L]``.

    Examples
    --------
    >>> f = stylized_facts(np.random.default_rng(0).standard_normal((32, 64)))
    >>> f.acf_r.shape, f.acf_abs.shape
    ((20,), (32,))
    """
    r = np.asarray(x, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] < 8:
        raise ValueError(f"windows must have shape [N, L] with L >= 8, got {r.shape}")
    n, length = r.shape
    short = min(SHORT_LAGS, length - 1)
    long_ = m.abs_acf_max_lag(length)
    horizons = m.default_horizons(length)
    return Facts(
        n_windows=n,
        length=length,
        std=float(r.std()),
        skew=m.skewness(r),
        kurtosis=m.excess_kurtosis(r),
        hill=m.hill_tail_index(r),
        abs_acf1=float(m.abs_acf1_per_window(r).mean()),
        acf_r=m.acf(r, short),
        acf_abs=m.acf(np.abs(r), long_),
        acf_sq=m.acf(r**2, long_),
        leverage=m.leverage(r, short),
        horizons=horizons,
        agg_kurtosis=m.kurtosis_by_horizon(r, horizons),
        hurst=m.hurst_dfa(np.abs(r)),
        logper_r=m.mean_log_periodogram(r),
        logper_abs=m.mean_log_periodogram(np.abs(r)),
        aggregated={h: m.aggregate(r, h).ravel() for h in w1_horizons(length)},
    )


def compare_facts(real: Facts, synth: Facts) -> dict[str, float]:
    """Distances between real and synthetic fact sets, plus each side's scalar statistics.

    Keys (``*_real`` / ``*_synth`` give both sides; the rest are distances, 0 = identical):

    - ``std``, ``std_ratio``, ``skew``, ``kurtosis`` (excess), ``hill`` (tail index,
      top 5% of |r|), ``abs_acf1`` (lag-1 ACF of |r|, mean over windows)
    - ``w1_h1``, ``w1_h5``, ``w1_h20``, ``w1_window``: :func:`metrics.scaled_wasserstein`
      of returns aggregated over 1, 5, 20 steps and the whole window
    - ``acf_r_dist`` (lags 1-20), ``acf_abs_dist``, ``acf_sq_dist`` (lags 1 to
      min(100, L/2)), ``leverage_dist`` (lags 1-20): L2 distance of mean curves
    - ``hurst`` (mean DFA exponent of |r| per window), ``hurst_dist``
      (Wasserstein-1 between the per-window exponents)
    - ``spectral_r_dist``, ``spectral_abs_dist``: RMS distance of mean log periodograms
    - ``agg_kurtosis_dist``: L2 distance of the kurtosis-by-horizon curves
    """
    if real.length != synth.length:
        raise ValueError(f"window lengths differ: real {real.length}, synthetic {synth.length}")
    out: dict[str, float] = {}
    for name in ("std", "skew", "kurtosis", "hill", "abs_acf1"):
        out[f"{name}_real"] = getattr(real, name)
        out[f"{name}_synth"] = getattr(synth, name)
    out["std_ratio"] = synth.std / real.std if real.std > 0 else float("nan")
    for h in w1_horizons(real.length):
        a, b = real.aggregated[h], synth.aggregated[h]
        key = "w1_window" if h == real.length else f"w1_h{h}"
        sd = a.std()
        out[key] = m.distribution_distance(a, b) / sd if sd > 0 else float("nan")
    out["acf_r_dist"] = m.curve_distance(real.acf_r, synth.acf_r)
    out["acf_abs_dist"] = m.curve_distance(real.acf_abs, synth.acf_abs)
    out["acf_sq_dist"] = m.curve_distance(real.acf_sq, synth.acf_sq)
    out["leverage_dist"] = m.curve_distance(real.leverage, synth.leverage)
    out["hurst_real"] = _nanmean(real.hurst)
    out["hurst_synth"] = _nanmean(synth.hurst)
    out["hurst_dist"] = m.distribution_distance(real.hurst, synth.hurst)
    out["spectral_r_dist"] = m.rms_distance(real.logper_r, synth.logper_r)
    out["spectral_abs_dist"] = m.rms_distance(real.logper_abs, synth.logper_abs)
    out["agg_kurtosis_dist"] = m.curve_distance(real.agg_kurtosis, synth.agg_kurtosis)
    return {k: float(v) for k, v in out.items()}


def _nanmean(x: np.ndarray) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none, e.g. L < 36."""
    finite = x[np.isfinite(x)]
    return float(finite.mean()) if finite.size else float("nan")


def compare(real: np.ndarray, synth: np.ndarray) -> dict[str, float]:
    """:func:`compare_facts` of two raw window arrays of the same length."""
    return compare_facts(stylized_facts(real), stylized_facts(synth))


def curves(f: Facts) -> dict[str, list[float]]:
    """The curves of a fact set as plain lists, for ``metrics.json`` and the report."""
    return {
        "acf_r": f.acf_r.tolist(),
        "acf_abs": f.acf_abs.tolist(),
        "acf_sq": f.acf_sq.tolist(),
        "leverage": f.leverage.tolist(),
        "horizons": list(f.horizons),
        "agg_kurtosis": f.agg_kurtosis.tolist(),
    }
