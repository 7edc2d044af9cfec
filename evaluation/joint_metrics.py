"""Cross-asset figures of joint paths ``[N, A, L]``: do the series move together as real ones do?

For every pair of series (a, b), over windows (paths) of L returns:

- ``corr``: the mean over windows of the Pearson correlation of same-day returns,
  and its 10/50/90% quantiles across windows (``corr_p10`` ...); ``corr_pooled``
  the correlation of all returns pooled (volatile windows weigh more);
- ``abs_corr_lag{k}`` for k = 0..5: the correlation of ``|r_a(t)|`` with
  ``|r_b(t + k)|`` (and of b with a, averaged): volatility spillover;
- ``tail_dep``: how often both fall below their own 5% quantile on the same day,
  relative to independence (``P(both) / 0.05**2``; 1 = independent, 20 = always
  together), with the quantiles of the set itself, pooled over its windows;
- ``corr_high_vol`` / ``corr_low_vol``: the mean correlation in the third of
  windows with the highest / lowest realized volatility (both series' RMS
  averaged): markets correlate more in crises.

:func:`joint_figures` computes them; :func:`joint_intervals` adds 95% bootstrap
intervals over windows (generated paths are independent, so resampling them is
valid; real stride-1 windows overlap and get no interval here).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from evaluation.intervals import percentile_interval
from utils.errors import ScalodiffError

MAX_LAG = 5
TAIL_Q = 0.05
N_BOOT = 200


def _check(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[1] < 2 or x.shape[2] < MAX_LAG + 3:
        raise ScalodiffError(
            f"joint figures need paths of shape [N, A >= 2, L > {MAX_LAG + 2}], got {x.shape}"
        )
    return x


def _rowwise_corr(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``u`` with the same row of ``v`` (0 for a flat row)."""
    u = u - u.mean(axis=-1, keepdims=True)
    v = v - v.mean(axis=-1, keepdims=True)
    den = np.sqrt((u * u).sum(axis=-1) * (v * v).sum(axis=-1))
    return np.divide((u * v).sum(axis=-1), den, out=np.zeros(len(u)), where=den > 0)


def window_correlations(x: np.ndarray, a: int, b: int) -> np.ndarray:
    """Per-window correlation of series a's and b's same-day returns, ``[N]``."""
    return _rowwise_corr(x[:, a], x[:, b])


def abs_cross_correlation(x: np.ndarray, a: int, b: int, lag: int) -> np.ndarray:
    """Per-window correlation of ``|r_a(t)|`` with ``|r_b(t + lag)|``, averaged with b -> a."""
    u, v = np.abs(x[:, a]), np.abs(x[:, b])
    if lag == 0:
        return _rowwise_corr(u, v)
    forward = _rowwise_corr(u[:, :-lag], v[:, lag:])
    backward = _rowwise_corr(v[:, :-lag], u[:, lag:])
    return 0.5 * (forward + backward)


def tail_dependence(x: np.ndarray, a: int, b: int, q: float = TAIL_Q) -> float:
    """``P(r_a < q_a and r_b < q_b) / q**2`` pooled over the windows (quantiles of ``x`` itself)."""
    ra, rb = x[:, a].ravel(), x[:, b].ravel()
    both = (ra < np.quantile(ra, q)) & (rb < np.quantile(rb, q))
    return float(both.mean() / q**2)


def _regime_correlations(corr: np.ndarray, x: np.ndarray, a: int, b: int) -> tuple[float, float]:
    """Mean correlation in the top and the bottom third of windows by realized volatility."""
    vol = (
        np.sqrt((x[:, a] ** 2).mean(axis=-1)) / x[:, a].std()
        + np.sqrt((x[:, b] ** 2).mean(axis=-1)) / x[:, b].std()
    )
    lo, hi = np.quantile(vol, [1 / 3, 2 / 3])
    return float(corr[vol >= hi].mean()), float(corr[vol <= lo].mean())


def pair_figures(x: np.ndarray, a: int, b: int) -> dict[str, float]:
    """The module's figures for the pair (a, b) of joint paths ``x`` ``[N, A, L]``."""
    x = _check(x)
    corr = window_correlations(x, a, b)
    p10, p50, p90 = np.quantile(corr, [0.1, 0.5, 0.9])
    high, low = _regime_correlations(corr, x, a, b)
    out = {
        "corr": float(corr.mean()),
        "corr_p10": float(p10),
        "corr_p50": float(p50),
        "corr_p90": float(p90),
        "corr_pooled": float(np.corrcoef(x[:, a].ravel(), x[:, b].ravel())[0, 1]),
    }
    for lag in range(MAX_LAG + 1):
        out[f"abs_corr_lag{lag}"] = float(abs_cross_correlation(x, a, b, lag).mean())
    out["tail_dep"] = tail_dependence(x, a, b)
    out["corr_high_vol"], out["corr_low_vol"] = high, low
    return out


def pairs(n_assets: int) -> list[tuple[int, int]]:
    """Every pair of series, in order: ``[(0, 1), (0, 2), (1, 2)]`` for three."""
    return list(combinations(range(n_assets), 2))


def joint_figures(x: np.ndarray) -> dict[str, dict[str, float]]:
    """Figures of every pair, keyed ``"a-b"`` by series index."""
    x = _check(x)
    return {f"{a}-{b}": pair_figures(x, a, b) for a, b in pairs(x.shape[1])}


def joint_intervals(
    x: np.ndarray, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, dict[str, tuple[float, float]]]:
    """95% percentile-bootstrap intervals of :func:`joint_figures`, resampling whole paths."""
    x = _check(x)
    rng = np.random.default_rng(seed)
    reps: dict[str, dict[str, list[float]]] = {}
    for _ in range(n_boot):
        pick = rng.integers(0, len(x), len(x))
        for pair, figs in joint_figures(x[pick]).items():
            for key, value in figs.items():
                reps.setdefault(pair, {}).setdefault(key, []).append(value)
    return {
        pair: {k: tuple(percentile_interval(v)) for k, v in figs.items()}
        for pair, figs in reps.items()
    }


def std_ratios(x: np.ndarray, real: np.ndarray) -> list[float]:
    """Each series' pooled return std in ``x`` over its std in ``real`` (both ``[N, A, L]``)."""
    x, real = _check(x), _check(real)
    return [float(x[:, a].std() / real[:, a].std()) for a in range(x.shape[1])]
