"""All stylized facts of one set of windows, and the distances between two sets.

:func:`stylized_facts` computes every statistic of :mod:`evaluation.metrics`
once per set (real training windows, held-out windows, each generator), so
that comparing several generators against the same real data does not redo
the real side. :func:`compare_facts` turns two fact sets into the flat dict of
numbers that ``metrics.json`` holds.

The per-window parts of the facts (each window's ACF curves, Hurst exponent,
periodogram) are computed once by :func:`per_window`; :func:`facts_of` turns
any selection of those windows, a bootstrap resample included, into a fact
set in milliseconds. That is what makes the confidence intervals of
:mod:`evaluation.intervals` affordable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evaluation import metrics as m

# Horizons of the Wasserstein-1 comparison besides the whole window.
W1_HORIZONS = (1, 5, 20)
# Lags of the ACF of r, of the short ACF of |r| and of the leverage curve.
SHORT_LAGS = 20
# Keys of compare_facts that are statistics of each side (key_real / key_synth), not distances.
STAT_KEYS = ("std", "skew", "kurtosis", "kurtosis_std", "hill", "abs_acf1", "hurst")


@dataclass
class Facts:
    """Statistics of one set of ``[N, L]`` windows (see :func:`stylized_facts`)."""

    n_windows: int
    length: int
    std: float
    skew: float
    kurtosis: float
    kurtosis_std: float
    hill: float
    abs_acf1: float
    acf_r: np.ndarray
    acf_abs: np.ndarray
    acf_abs_short: np.ndarray
    acf_sq: np.ndarray
    leverage: np.ndarray
    horizons: list[int]
    agg_kurtosis: np.ndarray
    hurst: np.ndarray
    logper_r: np.ndarray
    logper_abs: np.ndarray
    # Aggregated returns per horizon (flattened), kept for the Wasserstein distances.
    aggregated: dict[int, np.ndarray] = field(repr=False, default_factory=dict)
    # The same, sorted, built on first use when this set is the reference of many comparisons.
    _sorted: dict[int, np.ndarray] = field(repr=False, default_factory=dict)

    def sorted_aggregated(self, h: int) -> np.ndarray:
        """Aggregated returns at horizon ``h``, sorted (cached)."""
        if h not in self._sorted:
            self._sorted[h] = np.sort(self.aggregated[h])
        return self._sorted[h]


@dataclass
class PerWindow:
    """The per-window parts of the facts of ``[N, L]`` windows (see :func:`per_window`)."""

    r: np.ndarray
    abs_acf1: np.ndarray
    acf_r: np.ndarray
    acf_abs: np.ndarray
    acf_sq: np.ndarray
    leverage: np.ndarray
    hurst: np.ndarray
    # |rfft of the window minus its mean|^2 / L, for r and |r|: periodograms before scaling.
    per_r: np.ndarray
    per_abs: np.ndarray

    def __len__(self) -> int:
        return len(self.r)


def w1_horizons(length: int) -> list[int]:
    """Horizons 1, 5, 20 (those that fit) and the window length L, without repeats."""
    return sorted({h for h in W1_HORIZONS if h <= length} | {length})


def _periodogram(v: np.ndarray) -> np.ndarray:
    c = v - v.mean(axis=1, keepdims=True)
    return np.abs(np.fft.rfft(c, axis=1)[:, 1 : v.shape[1] // 2 + 1]) ** 2 / v.shape[1]


def per_window(x: np.ndarray) -> PerWindow:
    """Each window's ACF curves, Hurst exponent and periodograms, computed once."""
    r = np.asarray(x, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] < 8:
        raise ValueError(f"windows must have shape [N, L] with L >= 8, got {r.shape}")
    length = r.shape[1]
    short, long_ = min(SHORT_LAGS, length - 1), m.abs_acf_max_lag(length)
    a = np.abs(r)
    return PerWindow(
        r=r,
        abs_acf1=m.abs_acf1_per_window(r),
        acf_r=m.lagged_corr(r, r, short),
        acf_abs=m.lagged_corr(a, a, max(long_, short)),
        acf_sq=m.lagged_corr(r**2, r**2, long_),
        leverage=m.lagged_corr(r, r**2, short),
        hurst=m.hurst_dfa(a),
        per_r=_periodogram(r),
        per_abs=_periodogram(a),
    )


def _log_periodogram(per: np.ndarray, sd: float) -> np.ndarray:
    """:func:`metrics.mean_log_periodogram` from unscaled periodograms and the pooled std."""
    scale = sd**2 if sd > 0 else 1.0
    return np.log(per / scale + 1e-12).mean(axis=0)


def facts_of(pw: PerWindow, rows: np.ndarray | None = None) -> Facts:
    """The facts of the windows ``rows`` of ``pw`` (all of them by default; repeats allowed)."""
    take = (lambda a: a) if rows is None else (lambda a: a[rows])
    r = take(pw.r)
    n, length = r.shape
    long_ = m.abs_acf_max_lag(length)
    horizons = m.default_horizons(length)
    acf_abs = take(pw.acf_abs).mean(axis=0)
    rms = np.sqrt(np.mean(r**2, axis=1, keepdims=True))
    standardized = np.divide(r, rms, out=np.zeros_like(r), where=rms > 0)
    return Facts(
        n_windows=n,
        length=length,
        std=float(r.std()),
        skew=m.skewness(r),
        kurtosis=m.excess_kurtosis(r),
        kurtosis_std=m.excess_kurtosis(standardized),
        hill=m.hill_tail_index(r),
        abs_acf1=float(take(pw.abs_acf1).mean()),
        acf_r=take(pw.acf_r).mean(axis=0),
        acf_abs=acf_abs[:long_],
        acf_abs_short=acf_abs[: min(SHORT_LAGS, length - 1)],
        acf_sq=take(pw.acf_sq).mean(axis=0),
        leverage=take(pw.leverage).mean(axis=0),
        horizons=horizons,
        agg_kurtosis=m.kurtosis_by_horizon(r, horizons),
        hurst=take(pw.hurst),
        logper_r=_log_periodogram(take(pw.per_r), float(r.std())),
        logper_abs=_log_periodogram(take(pw.per_abs), float(np.abs(r).std())),
        aggregated={h: m.aggregate(r, h).ravel() for h in w1_horizons(length)},
    )


def stylized_facts(x: np.ndarray) -> Facts:
    """Compute every statistic of :mod:`evaluation.metrics` for windows ``x`` of shape ``[N, L]``.

    Examples
    --------
    >>> f = stylized_facts(np.random.default_rng(0).standard_normal((32, 64)))
    >>> f.acf_r.shape, f.acf_abs.shape
    ((20,), (32,))
    """
    return facts_of(per_window(x))


def sorted_w1(a_sorted: np.ndarray, b_sorted: np.ndarray, cache: dict | None = None) -> float:
    r"""Wasserstein-1 distance of two sorted samples, as :math:`\int_0^1 |Q_a(u) - Q_b(u)|\,du`.

    The same number as ``scipy.stats.wasserstein_distance`` (the two integrals
    are equal). On the step of :math:`Q_b` that holds value :math:`c`, the
    integral is :math:`\sum_k w_k |v_k - c|` over the pieces :math:`(w_k, v_k)`
    of :math:`Q_a` inside it; :math:`v` is sorted, so cumulative sums of
    :math:`w` and :math:`w v` give it from one binary search. The pieces depend
    only on ``a`` and the sample sizes: with ``cache``, comparing many samples of
    one size against the same ``a`` (a bootstrap) costs ``O(nb log na)`` each.
    """
    na, nb = len(a_sorted), len(b_sorted)
    if na == 0 or nb == 0:
        return float("nan")
    pieces = None if cache is None else cache.get((na, nb))
    if pieces is None:
        # Right ends of the pieces in units of 1 / (na * nb): integers, so the union is exact.
        ends = np.union1d(np.arange(1, na + 1, dtype=np.int64) * nb,
                          np.arange(1, nb + 1, dtype=np.int64) * na)  # fmt: skip
        w = np.diff(ends, prepend=0) / (na * nb)
        v = a_sorted[(ends + nb - 1) // nb - 1]
        cum_w = np.concatenate([[0.0], np.cumsum(w)])
        cum_wv = np.concatenate([[0.0], np.cumsum(w * v)])
        # Piece indices where each step of Q_b starts and ends.
        bounds = np.searchsorted(ends, np.arange(0, nb + 1, dtype=np.int64) * na, side="right")
        pieces = (v, cum_w, cum_wv, bounds[:-1], bounds[1:])
        if cache is not None:
            cache[(na, nb)] = pieces
    v, cum_w, cum_wv, lo, hi = pieces
    c = np.asarray(b_sorted, dtype=np.float64)
    p = np.clip(np.searchsorted(v, c), lo, hi)  # pieces lo..p-1 lie below c, p..hi-1 above
    below = c * (cum_w[p] - cum_w[lo]) - (cum_wv[p] - cum_wv[lo])
    above = (cum_wv[hi] - cum_wv[p]) - c * (cum_w[hi] - cum_w[p])
    return float(np.sum(below + above))


def compare_facts(real: Facts, synth: Facts, cache: dict | None = None) -> dict[str, float]:
    """Distances between real and synthetic fact sets, plus each side's scalar statistics.

    Keys (``*_real`` / ``*_synth`` give both sides; the rest are distances, 0 = identical):

    - ``std``, ``std_ratio``, ``skew``, ``kurtosis`` (excess), ``kurtosis_std``
      (excess kurtosis of returns divided by their window's RMS: shape, not the
      mixture of window levels), ``hill`` (tail index, top 5% of |r|),
      ``abs_acf1`` (lag-1 ACF of |r|, mean over windows)
    - ``w1_h1``, ``w1_h5``, ``w1_h20``, ``w1_window``: :func:`metrics.scaled_wasserstein`
      of returns aggregated over 1, 5, 20 steps and the whole window
    - ``acf_r_dist`` (lags 1-20), ``acf_abs_dist``, ``acf_sq_dist`` (lags 1 to
      min(100, L/2)), ``acf_abs20_dist`` (ACF of |r| inside windows, lags 1-20),
      ``leverage_dist`` (lags 1-20): L2 distance of mean curves
    - ``hurst`` (mean DFA exponent of |r| per window), ``hurst_dist``
      (Wasserstein-1 between the per-window exponents)
    - ``spectral_r_dist``, ``spectral_abs_dist``: RMS distance of mean log periodograms
    - ``agg_kurtosis_dist``: L2 distance of the kurtosis-by-horizon curves

    ``cache`` (a dict kept by the caller) speeds up repeated comparisons of
    equally sized synthetic sets against the same ``real`` (see :func:`sorted_w1`).
    """
    if real.length != synth.length:
        raise ValueError(f"window lengths differ: real {real.length}, synthetic {synth.length}")
    out: dict[str, float] = {}
    for name in STAT_KEYS:
        if name != "hurst":
            out[f"{name}_real"] = getattr(real, name)
            out[f"{name}_synth"] = getattr(synth, name)
    out["std_ratio"] = synth.std / real.std if real.std > 0 else float("nan")
    for h in w1_horizons(real.length):
        a = real.sorted_aggregated(h)
        key = "w1_window" if h == real.length else f"w1_h{h}"
        sd = a.std()
        w1 = sorted_w1(a, np.sort(synth.aggregated[h]), None if cache is None else
                       cache.setdefault(h, {}))  # fmt: skip
        out[key] = w1 / sd if sd > 0 else float("nan")
    out["acf_r_dist"] = m.curve_distance(real.acf_r, synth.acf_r)
    out["acf_abs_dist"] = m.curve_distance(real.acf_abs, synth.acf_abs)
    out["acf_abs20_dist"] = m.curve_distance(real.acf_abs_short, synth.acf_abs_short)
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
