"""The edge checks: a damped window end is seen, a stationary one is not."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.edges import edge_deviation, edge_discriminator, format_edges, position_profile


def _damped(x: np.ndarray, factor: float, k: int) -> np.ndarray:
    y = x.copy()
    y[:, :k] *= factor
    y[:, -k:] *= factor
    return y


def test_profile_of_stationary_windows_is_flat() -> None:
    x = np.random.default_rng(0).standard_t(4, size=(3000, 64))
    mean, se = position_profile(x)
    assert np.all(np.abs(mean - mean.mean()) < 5 * se)


def test_edge_deviation_finds_damped_ends() -> None:
    rng = np.random.default_rng(1)
    real, synth = rng.standard_normal((2000, 64)), rng.standard_normal((256, 64))
    same = edge_deviation(real, synth)
    assert same["max_abs"] < 4 * same["se"]
    damped = edge_deviation(real, _damped(synth, 0.5, 2))
    assert damped["max_abs"] > 0.3 and damped["max_abs"] > 8 * damped["se"]
    assert damped["at"] in (0, 1, -1, -2)


def test_edge_deviation_rejects_other_lengths() -> None:
    with pytest.raises(ValueError, match="lengths differ"):
        edge_deviation(np.ones((4, 32)), np.ones((4, 64)))


def test_edge_discriminator_sees_damping_and_not_noise() -> None:
    rng = np.random.default_rng(2)
    real = rng.standard_normal((600, 64))
    synth = rng.standard_normal((600, 64))
    assert edge_discriminator(real, synth)["score"] <= 0.06
    assert edge_discriminator(real, _damped(synth, 0.4, 3))["accuracy"] >= 0.75


def test_format_edges_names_the_worst_position() -> None:
    rng = np.random.default_rng(3)
    real, synth = rng.standard_normal((2000, 64)), rng.standard_normal((256, 64))
    line = format_edges(real, _damped(synth, 0.3, 1))
    assert "first and last 8 positions" in line and "position" in line
    assert float(line.split("at most ")[1].split(" ")[0]) > 0.3
