"""The generated residual's tails at each volatility level, fitted to the training returns'.

Divide daily returns by their centered moving RMS over 21 returns: the residual
left is what the volatility clustering does not explain. How heavy its tails are
depends on the level, and differently on different markets. On the S&P 500 its
kurtosis falls as the local RMS rises: 3.27 where the local RMS is below 0.75 of
the series' RMS, 2.86 at 0.75-1, 2.93 at 1-1.5 and 2.63 above (5,030 returns,
NASDAQ 3.27, 2.89, 2.44, 2.72): in a crisis the days are large together and few
stand out. Single stocks go the other way (AAPL, GOOG, MSFT: 3.3-3.5 calm, 4.0-5.3
above 1.5 times their RMS), their earnings days making their own loud weeks. The
model's residual does neither (2.96-2.99 at every level before the tail stretch),
and the tail stretch, which works on returns in the scale's units, lifts the loud
levels' residual most (S&P 500 model: 2.99 calm, 3.45 above 3 times the path's
RMS). Inside the S&P 500's crisis that noise hid the clustering: ten-year paths
put the real lag-5 autocorrelation of ``|r|`` at their 96th percentile.

:func:`fit_level_shape` splits the training returns' local RMS at its
SHAPE_PROBABILITIES quantiles and, in each bin, finds the power ``q`` of
``sign(z)|z|^q`` that gives the generated residual the training residual's
kurtosis, with the gain that keeps the bin's mean square;
:func:`reshape_by_level` applies it to generated returns (after the tail stretch,
ReturnNormalizer.inverse). Real returns and the known part of a continued path
are never reshaped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import brentq

from data.tails import local_rms

SHAPE_WINDOW = 21  # returns of the centered moving RMS that defines the level and the residual
# Quantiles of the training returns' local RMS that split the levels: half the days, the
# next 35%, the loudest 15% (on the S&P 500's 4,024 training returns about 600 in the last).
SHAPE_PROBABILITIES = (0.5, 0.85)
SHAPE_POWER_RANGE = (0.5, 2.0)  # beyond, the model is broken, not shy
# What ReturnNormalizer.level_shape keeps of a fit (the rest is what train.py prints).
SHAPE_KEYS = ("window", "edges", "powers", "gains", "shift")
MIN_BIN_RETURNS = 200  # a bin with fewer real or generated returns (or all zero) keeps power 1


def moment_kurtosis(z: np.ndarray) -> float:
    """Fourth over squared second moment about 0 (3 for Gaussian values).

    >>> moment_kurtosis(np.array([1.0, -1.0, 1.0, -1.0]))
    1.0
    """
    z = np.asarray(z, dtype=np.float64)
    return float(np.mean(z**4) / max(np.mean(z**2) ** 2, 1e-300))


def _power_for(z: np.ndarray, target: float) -> float:
    """The power in SHAPE_POWER_RANGE that gives ``sign(z)|z|^q`` the kurtosis ``target``."""
    a = np.abs(z)

    def excess(q: float) -> float:
        return moment_kurtosis(a**q) - target

    lo, hi = SHAPE_POWER_RANGE
    if excess(lo) >= 0:
        return lo
    if excess(hi) <= 0:
        return hi
    return float(brentq(excess, lo, hi, xtol=1e-4))


def fit_level_shape(generated: np.ndarray, real: np.ndarray) -> dict[str, Any]:
    """The level shape that gives ``generated`` windows [N, L] the residual kurtosis that
    the ``real`` returns (one series, in time order) have at each level; both in the
    normalizer's scale units, ``generated`` as ReturnNormalizer.inverse gives them
    (tail stretch applied). Returns the JSON-ready fit :func:`reshape_by_level` reads."""
    generated = np.asarray(generated, dtype=np.float64)
    real = np.asarray(real, dtype=np.float64).ravel()
    real_level = local_rms(real, SHAPE_WINDOW)
    edges = np.quantile(real_level, SHAPE_PROBABILITIES)
    real_z, real_bin = real / real_level, np.searchsorted(edges, real_level, side="right")
    gen_level = local_rms(generated, SHAPE_WINDOW)
    gen_z = (generated / gen_level).ravel()
    gen_bin = np.searchsorted(edges, gen_level, side="right").ravel()
    powers, gains, real_k, gen_k = [], [], [], []
    for b in range(len(edges) + 1):
        r, g = real_z[real_bin == b], gen_z[gen_bin == b]
        enough = min(len(r), len(g)) >= MIN_BIN_RETURNS and np.mean(g**2) > 0
        real_k.append(moment_kurtosis(r) if len(r) else float("nan"))
        gen_k.append(moment_kurtosis(g) if len(g) else float("nan"))
        q = _power_for(g, real_k[-1]) if enough else 1.0
        powers.append(q)
        gains.append(
            float(np.sqrt(np.mean(g**2) / np.mean(np.abs(g) ** (2 * q)))) if enough else 1.0
        )
    fit = {"window": SHAPE_WINDOW, "edges": edges.tolist(), "powers": powers, "gains": gains}
    fit["shift"] = float(np.mean(reshape_by_level(generated, {**fit, "shift": 0.0}) - generated))
    return {**fit, "real_kurtosis": real_k, "generated_kurtosis": gen_k, "n": int(gen_z.size)}


def reshape_by_level(y: np.ndarray, fit: dict[str, Any]) -> np.ndarray:
    """Generated values ``y`` [..., L] (scale units, time on the last axis) with each one's
    residual over the centered moving RMS raised to its level bin's power and gain, less the
    mean move the fit measured (the drift kept).

    >>> fit = {"window": 3, "edges": [1.0], "powers": [1.0, 0.5], "gains": [1.0, 2.0], "shift": 0.0}
    >>> reshape_by_level(np.array([[0.1, -0.1, 0.1], [2.0, -2.0, 2.0]]), fit).round(3).tolist()
    [[0.1, -0.1, 0.1], [4.0, -4.0, 4.0]]
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 0 or y.shape[-1] == 0:
        return y
    level = local_rms(y, int(fit["window"]))
    b = np.searchsorted(np.asarray(fit["edges"]), level, side="right")
    q, gain = np.asarray(fit["powers"])[b], np.asarray(fit["gains"])[b]
    z = y / level
    return np.sign(z) * np.abs(z) ** q * gain * level - float(fit.get("shift", 0.0))
