"""Log returns, the train/test split, and the return normalizer.

The normalizer maps log returns to the values the diffusion model sees and
back::

    z = r / scale                      robust scale, fitted on training data
    z = clip(z, -clip, clip)           optional winsorization (transform only)
    y = sign(z) * |z| ** (1 / power)   optional power transform (power=1: off)

Generated values alone go through one more step on their way back
(:meth:`ReturnNormalizer.inverse` with ``generated=True``): the tail stretch.
Beyond a start ``t`` of each sign, ``|z| -> t (|z| / t) ** b``, with ``t`` and
``b`` fitted at the end of training so that the generated tail's quantiles
follow the training returns' (models/calibration.py, setting TAIL_STRETCH).
Unequal powers on the two sides would also move the mean, and a drift is small
against the scale (a few percent of it), so the stretch then subtracts
``tail_shift``, the mean move it gave the generated values it was fitted on:
it reshapes the tails and keeps the drift. Then, where one was fitted, the
level shape (data/level_shape.py): each generated value's residual over its
local RMS gets the power and gain of its volatility level, so that the
residual's tails at each level are the training returns'.
Real values are never stretched or reshaped, so they still come back exactly.

``scale`` is ``1.4826 * MAD`` (median absolute deviation from the median).
MAD ignores up to half the data being extreme (IQR only a quarter), so one
crash does not set the scale; the 1.4826 factor makes it equal to the
standard deviation for Gaussian data, so ``z`` reads as "standard deviations".
Fat-tailed returns therefore have ``std(z) > 1`` (typically 1.2-1.6 for daily
index returns) and rare ``|z|`` of 10-20; ``power=1.5`` (as in published
wavelet-image diffusion work) pulls such tails in to ~5-7 while leaving
``|z| = 1`` where it is.

No location is subtracted: a zero return stays zero and ``sign(y) == sign(r)``
for real values, and the daily drift (a few percent of the scale) is part of
what the model should learn. (Generated values get the stretch's constant
``tail_shift`` back off, which keeps their mean where the model put it.)
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from data.level_shape import reshape_by_level
from utils.errors import ScalodiffError

# 1 / Phi^-1(3/4): makes the MAD a consistent estimator of sigma for Gaussians.
MAD_TO_SIGMA = 1.4826
# sqrt(pi / 2): the same for the mean absolute deviation (fallback scale).
MEAN_ABS_TO_SIGMA = math.sqrt(math.pi / 2.0)
_JSON_KIND = "ReturnNormalizer"
_JSON_VERSION = 3  # 2: tail_shift, 3: level_shape; older records still read
_READABLE_VERSIONS = (1, 2, 3)


def log_returns(prices: np.ndarray) -> np.ndarray:
    """Log returns ``log(p[t+1] / p[t])`` along the last axis.

    Parameters
    ----------
    prices : numpy.ndarray
        Positive, finite prices, shape ``(..., L)`` with ``L >= 2``.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(..., L - 1)``.

    Raises
    ------
    ScalodiffError
        For fewer than two prices or a non-positive/non-finite price.

    Examples
    --------
    >>> log_returns(np.array([100.0, 110.0, 99.0])).round(6)
    array([ 0.09531 , -0.105361])
    """
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim == 0 or p.shape[-1] < 2:
        raise ScalodiffError(
            f"log returns need at least 2 prices along the last axis; got shape {p.shape}."
        )
    bad = np.flatnonzero(~(np.isfinite(p) & (p > 0)).ravel())
    if bad.size:
        index = np.unravel_index(bad[0], p.shape)
        raise ScalodiffError(
            f"price {float(p[index])!r} at index {tuple(int(i) for i in index)} is not a positive "
            "finite number; log returns need positive prices (load them with "
            "data.readers.load_prices, which checks this)."
        )
    # log of the ratio, not a difference of logs: no cancellation for tiny returns.
    return np.log(p[..., 1:] / p[..., :-1])


def split_by_time(returns: np.ndarray, train_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """Split a series into an earlier training part and a later test part.

    No shuffling: the test part is the future of the training part, so no
    information leaks backwards. Both parts are views of ``returns``.

    Parameters
    ----------
    returns : numpy.ndarray
        1-D series in time order.
    train_frac : float
        Share of the series, in (0, 1], that goes to training (rounded to the
        nearest element). 1 leaves an empty test part.

    Returns
    -------
    train, test : numpy.ndarray

    Raises
    ------
    ScalodiffError
        For ``train_frac`` outside (0, 1] or a training part with no element.

    Examples
    --------
    >>> split_by_time(np.arange(10.0), 0.8)
    (array([0., 1., 2., 3., 4., 5., 6., 7.]), array([8., 9.]))
    """
    series = np.asarray(returns)
    if series.ndim != 1:
        raise ScalodiffError(f"split_by_time needs a 1-D series, got shape {series.shape}.")
    if not (isinstance(train_frac, int | float) and 0.0 < train_frac <= 1.0):
        raise ScalodiffError(
            f"TRAIN_FRAC={train_frac!r} must be in (0, 1], e.g. 0.8 to train on the first 80%."
        )
    n_train = round(len(series) * train_frac)
    if n_train < 1:
        raise ScalodiffError(
            f"TRAIN_FRAC={train_frac} of {len(series)} returns leaves no training data; "
            "raise TRAIN_FRAC or use a longer series."
        )
    return series[:n_train], series[n_train:]


def _as_array(values: Any) -> np.ndarray:
    """numpy float64 from an array-like or a torch tensor (any device)."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


class ReturnNormalizer:
    """Robust scaling (+ optional clip and power transform) of log returns.

    Parameters
    ----------
    power : float, default 1.0
        ``y = sign(z) |z| ** (1 / power)``; 1 turns it off, 1.5 compresses
        fat tails. Must be positive.
    clip : float or None, default None
        Winsorize ``|r / scale|`` at this many robust-scale units in
        :meth:`transform`. Not invertible beyond the clip: :meth:`inverse`
        returns ``+-clip * scale`` for clipped values.

    Attributes
    ----------
    scale : float or None
        The fitted robust scale (None before :meth:`fit`).
    scale_method : str or None
        ``"mad"``, or ``"mean_abs"`` when more than half the training returns
        are identical (e.g. ticks whose mid did not move) and the MAD is 0.
    n_fit : int
        Number of returns the scale was fitted on.

    Examples
    --------
    >>> r = np.random.default_rng(0).standard_t(4, 1000) * 0.01
    >>> norm = ReturnNormalizer(power=1.5).fit(r)
    >>> z = norm.transform(r, dtype=np.float64)
    >>> bool(np.allclose(norm.inverse(z), r, rtol=1e-12, atol=0))
    True
    >>> ReturnNormalizer.from_json(norm.to_json()).scale == norm.scale
    True
    """

    def __init__(self, power: float = 1.0, clip: float | None = None) -> None:
        if not (isinstance(power, int | float) and math.isfinite(power) and power > 0):
            raise ScalodiffError(
                f"RETURN_POWER={power!r} (normalizer power) must be a positive number "
                "(1 = off, 1.5 typical)."
            )
        if clip is not None and not (
            isinstance(clip, int | float) and math.isfinite(clip) and clip > 0
        ):
            raise ScalodiffError(
                f"RETURN_CLIP={clip!r} (normalizer clip) must be None (no clipping) or a "
                "positive number of robust-scale units, e.g. 20."
            )
        self.power = float(power)
        self.clip = None if clip is None else float(clip)
        self.scale: float | None = None
        self.scale_method: str | None = None
        self.n_fit = 0
        # Tail stretch of generated values, (negative side, positive side) in scale units.
        self.tail_start: tuple[float, float] | None = None
        self.tail_power: tuple[float, float] = (1.0, 1.0)
        # Subtracted after the stretch (scale units): the mean move the stretch gave when fitted.
        self.tail_shift = 0.0
        # Generated residuals' power and gain per volatility level (data/level_shape.py).
        self.level_shape: dict | None = None

    def __repr__(self) -> str:
        return (
            f"ReturnNormalizer(power={self.power}, clip={self.clip}, scale={self.scale}, "
            f"scale_method={self.scale_method!r}, n_fit={self.n_fit})"
        )

    def fit(self, returns: np.ndarray) -> ReturnNormalizer:
        """Estimate the robust scale from training returns.

        Parameters
        ----------
        returns : numpy.ndarray
            Training log returns, any shape (flattened), finite.

        Returns
        -------
        ReturnNormalizer
            ``self``, fitted.

        Raises
        ------
        ScalodiffError
            For non-finite values, fewer than 2 returns, or all returns equal.
        """
        r = _as_array(returns).ravel()
        if r.size < 2:
            raise ScalodiffError(f"the normalizer needs at least 2 returns to fit, got {r.size}.")
        if not np.isfinite(r).all():
            first = int(np.flatnonzero(~np.isfinite(r))[0])
            raise ScalodiffError(
                f"training return {float(r[first])!r} at index {first} is not finite; "
                "clean the prices first (data.readers.load_prices)."
            )
        deviation = np.abs(r - np.median(r))
        scale, method = MAD_TO_SIGMA * float(np.median(deviation)), "mad"
        if scale == 0.0:
            scale, method = MEAN_ABS_TO_SIGMA * float(np.mean(deviation)), "mean_abs"
            if scale == 0.0:
                raise ScalodiffError(
                    f"all {r.size} training returns equal {float(r[0])!r}; nothing to learn. "
                    "Use a price series that moves."
                )
            warnings.warn(
                f"more than half of the {r.size} training returns are identical (zero MAD), "
                "e.g. ticks whose price did not move; scaling by the mean absolute "
                "deviation instead. Consider coarser bars.",
                UserWarning,
                stacklevel=2,
            )
        self.scale, self.scale_method, self.n_fit = scale, method, int(r.size)
        return self

    def _scale(self) -> float:
        if self.scale is None:
            raise RuntimeError("ReturnNormalizer is not fitted: call fit() or from_json() first")
        return self.scale

    def transform(self, returns: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """Normalize log returns (any shape).

        Parameters
        ----------
        returns : numpy.ndarray
            Log returns in the units of the training data.
        dtype : numpy dtype, default float32
            Output type; float64 keeps the round trip exact to ~1e-15.

        Returns
        -------
        numpy.ndarray
            Same shape as ``returns``.
        """
        z = _as_array(returns) / self._scale()
        if self.clip is not None:
            z = np.clip(z, -self.clip, self.clip)
        if self.power != 1.0:
            z = np.sign(z) * np.abs(z) ** (1.0 / self.power)
        return z.astype(dtype, copy=False)

    def inverse(self, normalized: Any, generated: bool = False) -> np.ndarray:
        """Map normalized values back to log returns.

        Parameters
        ----------
        normalized : numpy.ndarray or torch.Tensor
            Output of :meth:`transform` or of the model, any shape.
        generated : bool, default False
            True for the model's values: their tails are stretched
            (:meth:`stretch_tails`) when a stretch was fitted, then their
            residuals reshaped by level (data/level_shape.py) when that was;
            time runs along the last axis.

        Returns
        -------
        numpy.ndarray
            float64 log returns, same shape. Exact (to float precision) for
            values that were not clipped.
        """
        y = _as_array(normalized)
        if self.power != 1.0:
            y = np.sign(y) * np.abs(y) ** self.power
        if generated:
            y = self.stretch_tails(y)
            if self.level_shape is not None:
                y = reshape_by_level(y, self.level_shape)
        return y * self._scale()

    def stretch_tails(self, z: np.ndarray) -> np.ndarray:
        """Values in scale units with each side's tail beyond its start raised to its power.

        ``|z| -> t (|z| / t) ** b`` where ``|z| > t``, for ``(t, b)`` of z's sign, then
        ``tail_shift`` subtracted from every value (the stretch keeps the mean it was
        fitted on); continuous and increasing, the identity without a fitted stretch.

        >>> norm = ReturnNormalizer()
        >>> norm.tail_start, norm.tail_power = (2.0, 4.0), (2.0, 1.0)
        >>> norm.stretch_tails(np.array([-4.0, -1.0, 1.0, 8.0])).tolist()
        [-8.0, -1.0, 1.0, 8.0]
        """
        z = np.asarray(z, dtype=np.float64)
        if self.tail_start is None or self.tail_power == (1.0, 1.0):
            return z
        out = z.copy()
        for sign, start, power in zip((-1.0, 1.0), self.tail_start, self.tail_power, strict=True):
            beyond = (np.sign(z) == sign) & (np.abs(z) > start)
            out[beyond] = sign * start * (np.abs(z[beyond]) / start) ** power
        return out - self.tail_shift

    def to_json(self) -> dict:
        """The fitted state as a JSON-serializable dict.

        Returns
        -------
        dict
            Floats are kept at full precision by :mod:`json`.
        """
        return {
            "kind": _JSON_KIND,
            "version": _JSON_VERSION,
            "scale": self._scale(),
            "scale_method": self.scale_method,
            "power": self.power,
            "clip": self.clip,
            "n_fit": self.n_fit,
            "tail_start": None if self.tail_start is None else list(self.tail_start),
            "tail_power": list(self.tail_power),
            "tail_shift": self.tail_shift,
            "level_shape": self.level_shape,
        }

    @classmethod
    def from_json(cls, state: dict) -> ReturnNormalizer:
        """Rebuild a fitted normalizer from :meth:`to_json` output.

        Parameters
        ----------
        state : dict

        Returns
        -------
        ReturnNormalizer

        Raises
        ------
        ScalodiffError
            When ``state`` is not a normalizer record of a known version.
        """
        if not isinstance(state, dict) or state.get("kind") != _JSON_KIND:
            raise ScalodiffError(
                f"normalizer JSON is not a {_JSON_KIND} record (kind="
                f"{state.get('kind') if isinstance(state, dict) else type(state).__name__!r}); "
                "the checkpoint folder may be damaged."
            )
        if state.get("version") not in _READABLE_VERSIONS:
            raise ScalodiffError(
                f"normalizer JSON has version {state.get('version')!r}; this code reads "
                f"versions {list(_READABLE_VERSIONS)}. Use the code that wrote the checkpoint."
            )
        missing = [key for key in ("scale", "power", "clip") if key not in state]
        scale = state.get("scale")
        if missing or not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
            raise ScalodiffError(
                f"normalizer JSON lacks {missing} or has a bad scale {scale!r}; "
                "the checkpoint folder may be damaged."
            )
        normalizer = cls(power=state["power"], clip=state["clip"])
        normalizer.scale = float(scale)
        normalizer.scale_method = state.get("scale_method")
        normalizer.n_fit = int(state.get("n_fit", 0))
        # Checkpoints written before the tail stretch have neither key: no stretch.
        if state.get("tail_start") is not None:
            start, power = state["tail_start"], state.get("tail_power", (1.0, 1.0))
            normalizer.tail_start = (float(start[0]), float(start[1]))
            normalizer.tail_power = (float(power[0]), float(power[1]))
            # A version 1 record has no shift: it samples as it did when written.
            normalizer.tail_shift = float(state.get("tail_shift", 0.0))
        shape = state.get("level_shape")  # absent before version 3: none
        if shape is not None and not _valid_level_shape(shape):
            raise ScalodiffError(
                f"normalizer JSON has a malformed level_shape {shape!r}; "
                "the checkpoint folder may be damaged."
            )
        normalizer.level_shape = shape
        return normalizer


def _valid_level_shape(shape: Any) -> bool:
    """True for a level shape record as data.level_shape.fit_level_shape writes it."""
    try:
        bins = len(shape["edges"]) + 1
        return int(shape["window"]) > 0 and len(shape["powers"]) == len(shape["gains"]) == bins
    except (TypeError, KeyError, ValueError):
        return False
