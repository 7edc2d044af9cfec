"""The level shape: generated residuals given the training residual's tails at each level."""

from __future__ import annotations

import numpy as np
import pytest

from data.level_shape import (
    SHAPE_WINDOW,
    fit_level_shape,
    moment_kurtosis,
    reshape_by_level,
)
from data.returns import ReturnNormalizer
from data.tails import local_rms
from utils.errors import ScalodiffError


def regime_series(rng: np.random.Generator, n: int, loud_residual: str) -> np.ndarray:
    """Returns whose level switches between calm (1) and loud (3) every 63 days; the loud
    stretches' residual is Gaussian or uniform (kurtosis 1.8: the days large together)."""
    level = np.where((np.arange(n) // 63) % 3 == 2, 3.0, 1.0)
    residual = rng.standard_normal(n)
    if loud_residual == "uniform":
        loud = level > 1
        residual[loud] = rng.uniform(-np.sqrt(3), np.sqrt(3), loud.sum())
    return level * residual


def bin_kurtosis(x: np.ndarray, edges: list[float]) -> list[float]:
    level = local_rms(x, SHAPE_WINDOW)
    z, b = (x / level).ravel(), np.searchsorted(edges, level, side="right").ravel()
    return [moment_kurtosis(z[b == k]) for k in range(len(edges) + 1)]


def test_the_fit_gives_generated_windows_the_real_kurtosis_at_each_level():
    rng = np.random.default_rng(0)
    real = regime_series(rng, 6000, "uniform")
    generated = np.stack([regime_series(rng, 256, "gaussian") for _ in range(256)])
    fit = fit_level_shape(generated, real)
    assert fit["powers"][-1] < 0.9  # the loud residual made thinner
    assert fit["powers"][0] == pytest.approx(1.0, abs=0.1)  # the calm one left near as it was
    after = bin_kurtosis(reshape_by_level(generated, fit), fit["edges"])
    before = bin_kurtosis(generated, fit["edges"])
    real_k = fit["real_kurtosis"]
    assert abs(after[-1] - real_k[-1]) < 0.1 < abs(before[-1] - real_k[-1])
    # the gains keep each bin's mean square, the shift the mean
    reshaped = reshape_by_level(generated, fit)
    assert np.mean(reshaped**2) == pytest.approx(np.mean(generated**2), rel=0.03)
    assert abs(np.mean(reshaped) - np.mean(generated)) < 1e-9


def test_generated_like_the_real_series_is_left_near_as_it_is():
    rng = np.random.default_rng(1)
    real = regime_series(rng, 6000, "gaussian")
    generated = np.stack([regime_series(rng, 256, "gaussian") for _ in range(256)])
    fit = fit_level_shape(generated, real)
    assert np.allclose(fit["powers"], 1.0, atol=0.08)


def test_the_normalizer_reshapes_generated_values_only_and_keeps_the_shape_in_json():
    rng = np.random.default_rng(2)
    r = regime_series(rng, 3000, "uniform") * 0.01
    norm = ReturnNormalizer().fit(r)
    generated = np.stack([regime_series(rng, 256, "gaussian") for _ in range(128)])
    fit = fit_level_shape(generated, r / norm.scale)
    norm.level_shape = {k: fit[k] for k in ("window", "edges", "powers", "gains", "shift")}
    z = norm.transform(r, dtype=np.float64)
    assert np.allclose(norm.inverse(z), r, rtol=1e-12, atol=0)  # real values come back exactly
    assert not np.allclose(norm.inverse(generated, generated=True), generated * norm.scale)
    again = ReturnNormalizer.from_json(norm.to_json())
    assert np.array_equal(
        again.inverse(generated, generated=True), norm.inverse(generated, generated=True)
    )
    older = {**norm.to_json(), "version": 2}
    del older["level_shape"]
    assert ReturnNormalizer.from_json(older).level_shape is None  # samples as it did
    broken = {**norm.to_json(), "level_shape": {**norm.level_shape, "powers": [1.0]}}
    with pytest.raises(ScalodiffError, match="malformed level_shape"):
        ReturnNormalizer.from_json(broken)
