"""Metrics on series with known properties, and the formulas against direct loops."""

from __future__ import annotations

import numpy as np
import pytest
from arch.univariate import GARCH, Normal, ZeroMean
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation import metrics as m
from evaluation.compare import compare, compare_facts, stylized_facts
from evaluation.scores import memorization, nearest_distances


@pytest.fixture(scope="module")
def gauss() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((200, 256))


@pytest.fixture(scope="module")
def garch() -> np.ndarray:
    # Simulated by arch itself, so the test does not rely on our own GARCH sampler.
    model = ZeroMean(volatility=GARCH(), distribution=Normal(seed=np.random.default_rng(1)))
    sim = model.simulate([0.05, 0.1, 0.85], nobs=200 * 256, burn=500)
    return sim["data"].to_numpy().reshape(200, 256)


# ------------------------------------------------------------ iid Gaussian


def test_gaussian_has_no_excess_kurtosis_acf_or_leverage(gauss):
    assert abs(m.excess_kurtosis(gauss)) < 0.1  # estimator std ~ sqrt(24/51200) = 0.02
    assert abs(m.skewness(gauss)) < 0.05
    assert np.max(np.abs(m.acf(gauss, 20))) < 0.02
    assert np.max(np.abs(m.acf(np.abs(gauss), 100))) < 0.02
    assert np.max(np.abs(m.leverage(gauss, 20))) < 0.02
    assert abs(m.abs_acf1_per_window(gauss).mean()) < 0.02


def test_gaussian_hurst_is_one_half_and_random_walk_is_persistent(gauss):
    assert abs(np.nanmean(m.hurst_dfa(gauss)) - 0.5) < 0.05
    assert np.nanmean(m.hurst_dfa(np.cumsum(gauss, axis=1))) > 1.2


def test_gaussian_against_itself_is_close(gauss):
    other = np.random.default_rng(5).standard_normal((200, 256))
    d = compare(gauss, other)
    assert abs(d["std_ratio"] - 1) < 0.02
    for key in ("w1_h1", "w1_h5", "w1_h20", "acf_r_dist", "leverage_dist", "hurst_dist"):
        assert d[key] < 0.1, key
    # A mean of 200 log periodograms still has std ~ (pi/sqrt 6)/sqrt 200 = 0.09 per frequency.
    assert d["spectral_r_dist"] < 0.25


# ------------------------------------------------------------ heavy tails and clustering


def test_garch_has_positive_acf_of_abs_returns(garch, gauss):
    acf_abs = m.acf(np.abs(garch), 20)
    assert acf_abs[:5].min() > 0.05
    assert m.abs_acf1_per_window(garch).mean() > 0.05
    # ...and the distance metrics see it against iid data.
    assert compare(gauss, garch)["acf_abs_dist"] > 3 * compare(gauss, gauss[::-1])["acf_abs_dist"]


def test_student_t3_hill_index_is_three():
    x = np.random.default_rng(2).standard_t(3, size=(400, 256))
    # Hill on the top 5% is biased down for Student-t (the tail is only
    # asymptotically a power law); at this sample size it lands near 2.6-2.7.
    assert 2.4 < m.hill_tail_index(x) < 3.4
    heavier = m.hill_tail_index(np.random.default_rng(3).standard_t(2, size=(400, 256)))
    lighter = m.hill_tail_index(np.random.default_rng(4).standard_t(8, size=(400, 256)))
    assert heavier < m.hill_tail_index(x) < lighter


def test_aggregation_makes_returns_more_gaussian():
    x = np.random.default_rng(6).standard_t(5, size=(300, 256))
    k = m.kurtosis_by_horizon(x, [1, 5, 20, 50])
    assert k[0] > 3
    assert k[2] < k[0] / 4  # iid: K(h) = K(1) / h
    assert abs(k[3]) < 1


def test_negative_leverage_is_detected():
    rng = np.random.default_rng(7)
    n, length = 200, 256
    r = np.zeros((n, length))
    z = rng.standard_normal((n, length))
    for t in range(1, length):  # volatility rises after a fall
        r[:, t] = np.exp(-8 * np.clip(r[:, t - 1], -0.3, 0.3)) * 0.05 * z[:, t]
    assert m.leverage(r, 5)[0] < -0.1


# ------------------------------------------------------------ formulas


def test_lagged_corr_matches_a_direct_loop():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((3, 40)), rng.standard_normal((3, 40))
    got = m.lagged_corr(a, b, 5)
    for w in range(3):
        ca, cb = a[w] - a[w].mean(), b[w] - b[w].mean()
        for k in range(1, 6):
            want = np.sum(ca[:-k] * cb[k:]) / 40 / (ca.std() * cb.std())
            assert got[w, k - 1] == pytest.approx(want, abs=1e-12)


def test_abs_acf1_of_an_alternating_series():
    x = np.tile([1.0, -2.0], 8)[None, :]  # |r| alternates 1, 2: lag-1 ACF = -(L-1)/L
    assert m.abs_acf1_per_window(x)[0] == pytest.approx(-15 / 16)
    assert m.abs_acf1_per_window(np.ones((1, 8)))[0] == 0.0  # constant: defined as 0


def test_aggregate_sums_blocks_and_drops_the_remainder():
    x = np.arange(10.0)[None, :]
    np.testing.assert_array_equal(m.aggregate(x, 3), [[3.0, 12.0, 21.0]])
    with pytest.raises(ValueError):
        m.aggregate(x, 11)


def test_scaled_wasserstein_of_a_one_std_shift_is_one():
    x = np.random.default_rng(9).standard_normal((100, 64))
    assert m.scaled_wasserstein(x, x + x.std()) == pytest.approx(1.0, rel=1e-9)
    assert m.scaled_wasserstein(x, x) == 0.0


def test_periodogram_sees_autocorrelation():
    rng = np.random.default_rng(10)
    e = rng.standard_normal((200, 128))
    ar = e.copy()
    for t in range(1, 128):
        ar[:, t] += 0.6 * ar[:, t - 1]
    iid = rng.standard_normal((200, 128))
    same = m.rms_distance(m.mean_log_periodogram(e), m.mean_log_periodogram(iid))
    diff = m.rms_distance(m.mean_log_periodogram(e), m.mean_log_periodogram(ar))
    assert diff > 5 * same


def test_quick_summary_and_format():
    rng = np.random.default_rng(11)
    real = rng.standard_normal((50, 64))
    d = m.quick_summary(real, 2 * real)
    assert set(d) == {
        "std_real",
        "std_synth",
        "std_ratio",
        "kurtosis_real",
        "kurtosis_synth",
        "abs_acf1_real",
        "abs_acf1_synth",
        "abs_acf1_pooled_real",
        "abs_acf1_pooled_synth",
    }
    assert d["std_ratio"] == pytest.approx(2.0)
    assert d["kurtosis_real"] == pytest.approx(d["kurtosis_synth"])
    assert d["abs_acf1_real"] == pytest.approx(d["abs_acf1_synth"])
    text = m.format_summary(d)
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "real", "synth"]
    assert any(line.split()[0] == "kurtosis" and len(line.split()) == 3 for line in lines)
    assert any(line.split()[:2] == ["std_ratio", "2.0000"] for line in lines)


def test_compare_rejects_different_lengths():
    rng = np.random.default_rng(12)
    with pytest.raises(ValueError, match="lengths differ"):
        compare_facts(
            stylized_facts(rng.standard_normal((5, 32))),
            stylized_facts(rng.standard_normal((5, 64))),
        )


@settings(max_examples=15, deadline=None)
@given(scale=st.floats(1e-4, 1e3), seed=st.integers(0, 2**16))
def test_shape_metrics_do_not_depend_on_units(scale, seed):
    x = np.random.default_rng(seed).standard_t(4, size=(8, 64))
    a, b = m.quick_summary(x, x), m.quick_summary(x * scale, x * scale)
    for key in ("kurtosis_real", "abs_acf1_real"):
        assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9)
    assert m.hill_tail_index(x) == pytest.approx(m.hill_tail_index(x * scale), rel=1e-6)
    assert m.scaled_wasserstein(x, 0.5 * x) == pytest.approx(
        m.scaled_wasserstein(scale * x, 0.5 * scale * x), rel=1e-6
    )


# ------------------------------------------------------------ memorization


def test_memorization_of_a_copy_of_the_training_data(gauss):
    train = gauss[:150]
    holdout = gauss[150:]
    copied = memorization(train[:40] + 1e-9, train, holdout)
    fresh = memorization(np.random.default_rng(13).standard_normal((50, 256)), train, holdout)
    assert copied["ratio"] < 0.01
    assert copied["copy_frac"] == 1.0
    assert 0.9 < fresh["ratio"] < 1.1
    assert fresh["copy_frac"] < 0.1


def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(14)
    q, ref = rng.standard_normal((7, 16)), rng.standard_normal((30, 16))
    want = np.sqrt(((q[:, None, :] - ref[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(nearest_distances(q, ref, chunk=3), want, rtol=1e-9)


def test_pooled_abs_acf_sees_volatility_that_persists_across_a_window() -> None:
    from evaluation.metrics import abs_acf1_per_window, abs_acf1_pooled

    rng = np.random.default_rng(0)
    # Each window has its own constant volatility: no clustering inside a window,
    # strong clustering across the series.
    x = rng.standard_normal((400, 256)) * rng.choice([0.5, 1.0, 3.0], size=(400, 1))
    assert abs(abs_acf1_per_window(x).mean()) < 0.02
    assert abs_acf1_pooled(x) > 0.2
    assert abs(abs_acf1_pooled(rng.standard_normal((400, 256)))) < 0.02
