"""The strength of the power transform, chosen from the training returns' own tails.

The model builds a window as a volatility level, a smooth local-volatility curve
and a residual: the window divided by its RMS and by its centered moving RMS
(transforms/volatility.py). A diffusion model trained for minutes generates that
residual about as thin-tailed as Gaussian noise's (excess kurtosis of the
residual -0.33 on the S&P 500 against -0.26 for white noise through the same
division), whatever the data's residual is (S&P 500 -0.03, GOOG 0.93, a
GARCH(1,1)-t(3.5) series 0.94). The tails a market has beyond its volatility
clustering are therefore lost.

:func:`fit_return_power` picks the power ``p`` of the normalizer's map
``sign(z)|z|^(1/p)`` so that the training residual, after the map, has the
kurtosis of white noise's residual. The model then only has to produce
Gaussian-like residuals; undoing the map (``sign(y)|y|^p``) gives back the
data's tails. A series without heavy tails (iid Gaussian returns) keeps ``p``
near 1, and ``p`` never goes below 1: a thinner-than-Gaussian residual is left
as it is.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from data.windows import windows_view

POWER_RANGE = (1.0, 2.0)  # the fitted power stays in here; 2 already squares the tails
FIT_WINDOWS = 512  # windows, evenly spaced, that the kurtosis is measured on
REFERENCE_SEED = 20_240_601  # white noise of the reference: fixed, so the fit is deterministic
REFERENCE_WINDOWS = 400


def residual_kurtosis(windows: np.ndarray, local_window: int) -> float:
    """Excess kurtosis of windows [N, L] divided by their RMS and (``local_window`` > 0)
    by their centered moving RMS over ``local_window`` returns, shorter at the ends.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((200, 256))
    >>> round(residual_kurtosis(x, 0), 1), round(residual_kurtosis(x, 21), 1)
    (0.0, -0.3)
    """
    x = np.asarray(windows, dtype=np.float64)
    u = x / np.sqrt(np.mean(x**2, axis=1, keepdims=True) + 1e-300)
    if local_window:
        u = u / local_rms(u, local_window)
    d = u.ravel() - u.mean()
    return float(np.mean(d**4) / np.mean(d**2) ** 2 - 3.0)


def local_rms(x: np.ndarray, window: int) -> np.ndarray:
    """Centered moving RMS over ``window`` values along the last axis of ``x``, over fewer
    at the ends (never 0: 1e-12 is added to the mean square).

    >>> local_rms(np.array([3.0, 4.0, 0.0, 0.0]), 3).round(3).tolist()
    [3.536, 2.887, 2.309, 0.0]
    """
    x = np.asarray(x, dtype=np.float64)
    half, size = window // 2, x.shape[-1]
    pad = [(0, 0)] * (x.ndim - 1) + [(1, 0)]
    cums = np.pad(np.cumsum(x**2, axis=-1), pad)
    t = np.arange(size)
    lo, hi = np.clip(t - half, 0, None), np.clip(t + half + 1, None, size)
    return np.sqrt((cums[..., hi] - cums[..., lo]) / (hi - lo) + 1e-12)


def _powered(z: np.ndarray, power: float) -> np.ndarray:
    return np.sign(z) * np.abs(z) ** (1.0 / power)


def fit_return_power(z: np.ndarray, window: int, local_window: int) -> float:
    """The power in POWER_RANGE that gives the training residual white noise's kurtosis.

    ``z`` are the training returns divided by the normalizer's scale; ``window``
    and ``local_window`` are the model's window (margins included) and
    LOCAL_VOL_WINDOW.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> round(fit_return_power(rng.standard_normal(5000), 288, 21), 2) <= 1.05
    True
    >>> fit_return_power(rng.standard_t(3, 5000), 288, 21) > 1.2
    True
    """
    z = np.asarray(z, dtype=np.float64)
    stride = max(1, (len(z) - window) // FIT_WINDOWS)
    windows = windows_view(z, window, stride)
    noise = np.random.default_rng(REFERENCE_SEED).standard_normal((REFERENCE_WINDOWS, window))
    target = residual_kurtosis(noise, local_window)

    def excess(power: float) -> float:
        return residual_kurtosis(_powered(windows, power), local_window) - target

    lo, hi = POWER_RANGE
    if excess(lo) <= 0:
        return lo
    if excess(hi) >= 0:
        return hi
    return float(brentq(excess, lo, hi, xtol=1e-3))
