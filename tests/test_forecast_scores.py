"""Forecast scores against known answers: calibrated ensembles pass, miscalibrated ones fail."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evaluation.forecast_scores import (
    christoffersen_independence,
    crps_ensemble,
    kupiec_pof,
    pit_ks,
    pit_values,
    var_hits,
)


def test_crps_matches_the_normal_closed_form() -> None:
    rng = np.random.default_rng(0)
    sigma, y = 2.0, np.array([0.0, 1.0, -3.0])
    samples = rng.normal(0, sigma, (3, 40_000))
    z = y / sigma
    exact = sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    np.testing.assert_allclose(crps_ensemble(samples, y), exact, rtol=0.02)


def test_crps_equals_the_pairwise_definition_on_a_small_ensemble() -> None:
    x = np.array([[0.3, -1.2, 2.0, 0.5]])
    y = np.array([0.1])
    pairwise = np.abs(x[0][:, None] - x[0][None, :]).mean()
    assert crps_ensemble(x, y)[0] == pytest.approx(np.abs(x - y).mean() - 0.5 * pairwise)


def test_pit_is_uniform_for_calibrated_and_not_for_too_narrow_forecasts() -> None:
    rng = np.random.default_rng(1)
    p_calibrated, p_narrow = [], []
    for _ in range(40):
        realized = rng.standard_normal(100)
        p_calibrated.append(pit_ks(pit_values(rng.standard_normal((100, 200)), realized))[1])
        p_narrow.append(pit_ks(pit_values(0.5 * rng.standard_normal((100, 200)), realized))[1])
    assert np.mean(np.array(p_calibrated) < 0.05) <= 0.15  # about the test's 5% size
    assert np.mean(np.array(p_narrow) < 0.05) >= 0.9


def test_kupiec_accepts_the_right_rate_and_rejects_a_wrong_one() -> None:
    right = np.zeros(1000, dtype=bool)
    right[::20] = True  # 5%
    assert kupiec_pof(right, 0.05)[1] > 0.9
    assert kupiec_pof(right, 0.01)[1] < 1e-6
    assert kupiec_pof(np.zeros(50, dtype=bool), 0.01)[1] > 0.3  # no hits in 50 days at 1%: fine


def test_christoffersen_rejects_clustered_hits_only() -> None:
    spread = np.random.default_rng(2).uniform(size=1000) < 0.05
    clustered = np.zeros(1000, dtype=bool)
    clustered[:50] = True  # the same 5%, all in one run
    assert christoffersen_independence(spread)[1] > 0.05
    assert christoffersen_independence(clustered)[1] < 1e-6


def test_var_hits_count_breaches_of_the_quantile() -> None:
    samples = np.tile(np.arange(100.0), (3, 1))
    hits = var_hits(samples, np.array([0.5, 10.0, -1.0]), 0.05)
    assert hits.tolist() == [True, False, True]


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="scenarios must be"):
        crps_ensemble(np.zeros((3, 5)), np.zeros(4))
