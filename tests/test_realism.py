"""Discriminators, intervals and separation on data with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from data.readers import load_prices
from data.returns import log_returns
from data.windows import windows_view
from evaluation import leaderboard
from evaluation import metrics as m
from evaluation.baselines import GarchBaseline
from evaluation.classifiers import (
    CNNSettings,
    blocked_folds,
    cnn_classifier,
    features_classifier,
    window_features,
)
from evaluation.compare import facts_of, per_window, sorted_w1, stylized_facts
from evaluation.intervals import bootstrap_facts, deviation_interval, separates, t_interval
from evaluation.suite import evaluate

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def garch_and_shuffled() -> tuple[np.ndarray, np.ndarray]:
    """GARCH(1,1) windows with strong clustering, and the same windows permuted inside each."""
    g = GarchBaseline(mu=0.0, omega=0.05, alpha=0.1, beta=0.85, nu=30.0).sample(256, 256, seed=1)
    rng = np.random.default_rng(0)
    return g, np.array([rng.permutation(w) for w in g])


@pytest.fixture(scope="module")
def halves() -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint random halves of the S&P 500's sliding windows of 64 returns, in time order."""
    r = np.asarray(log_returns(load_prices("sp500", None).values), dtype=np.float64)
    w = windows_view(r, 64, 1)
    idx = np.random.default_rng(0).permutation(len(w))
    return w[np.sort(idx[::2])], w[np.sort(idx[1::2])]


# ------------------------------------------------------------------ classifiers


def test_features_tell_garch_from_its_shuffle(garch_and_shuffled):
    g, sh = garch_and_shuffled
    res = features_classifier(g, sh)
    assert res["mean"] >= 0.8 and res["ci"][0] > 0.7
    assert next(iter(res["importance"])) in {"acf_abs", "ljung_box_abs"}  # clustering decides
    assert res["n_real"] == res["n_synth"] == 256


def test_features_cannot_tell_halves_of_the_same_windows(halves):
    a, b = halves
    res = features_classifier(a, b, real_purge=64, synth_purge=64)
    assert abs(res["mean"] - 0.5) <= 0.05


def test_features_ignore_scale_but_for_the_level():
    x = np.random.default_rng(1).standard_t(4, size=(20, 128))
    f, names = window_features(x)
    f10, _ = window_features(10 * x)
    level = names.index("log_realized_vol")
    np.testing.assert_allclose(np.delete(f10, level, 1), np.delete(f, level, 1), atol=1e-9)
    np.testing.assert_allclose(f10[:, level] - f[:, level], np.log(10))


def test_cnn_tells_garch_from_its_shuffle(garch_and_shuffled):
    g, sh = garch_and_shuffled
    res = cnn_classifier(g, sh, seeds=(0, 1, 2))
    assert res["mean"] >= 0.7 and len(res["values"]) == 3


def test_cnn_cannot_tell_halves_of_the_same_windows(halves):
    a, b = halves
    res = cnn_classifier(a, b, 64, 64, seeds=(0, 1, 2), max_windows=300)
    assert abs(res["mean"] - 0.5) <= 0.08


def test_cnn_does_not_see_the_level(garch_and_shuffled):
    g, _ = garch_and_shuffled
    res = cnn_classifier(g, 5 * g[::-1], seeds=(0, 1), settings=CNNSettings(epochs=6))
    assert abs(res["mean"] - 0.5) <= 0.1


def test_blocked_folds_purge_and_cover():
    rng = np.random.default_rng(0)
    folds = blocked_folds(200, 10, 5, rng)
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(200))
    for tr, te in folds:
        assert np.abs(tr[:, None] - te[None, :]).min() >= 10
    random = blocked_folds(50, 0, 5, rng)
    assert sorted(np.concatenate([te for _, te in random]).tolist()) == list(range(50))


# -------------------------------------------------------------------- intervals


def test_sorted_w1_is_scipys_wasserstein():
    rng = np.random.default_rng(2)
    for na, nb in [(1000, 333), (7, 5), (3, 1000)]:
        a, b = rng.standard_normal(na), rng.standard_t(3, size=nb)
        expected = stats.wasserstein_distance(a, b)
        assert sorted_w1(np.sort(a), np.sort(b), {}) == pytest.approx(expected, rel=1e-9)


def test_facts_from_per_window_parts_match_the_direct_metrics():
    x = np.random.default_rng(3).standard_t(5, size=(40, 64))
    f = stylized_facts(x)
    np.testing.assert_allclose(f.logper_r, m.mean_log_periodogram(x))
    np.testing.assert_allclose(f.logper_abs, m.mean_log_periodogram(np.abs(x)))
    np.testing.assert_allclose(f.acf_abs, m.acf(np.abs(x), 32))
    z = x / np.sqrt(np.mean(x**2, axis=1, keepdims=True))
    assert f.kurtosis_std == pytest.approx(m.excess_kurtosis(z))
    rows = np.array([0, 0, 5, 7])
    np.testing.assert_allclose(facts_of(per_window(x), rows).acf_r, m.acf(x[rows], 20))


def test_bootstrap_interval_covers_the_true_value():
    rng = np.random.default_rng(4)
    real = {"in_sample": stylized_facts(rng.standard_normal((100, 16)))}
    hits = []
    for _ in range(20):
        x = rng.standard_normal((48, 16)) * 2.0
        ci = bootstrap_facts(per_window(x), real, n_boot=60, seed=1)["in_sample"]["ci"]
        hits.append(ci["std_synth"][0] <= 2.0 <= ci["std_synth"][1])
    assert np.mean(hits) >= 0.8  # nominal 0.95


def test_t_interval_and_deviation():
    lo, hi = t_interval([0.6, 0.7, 0.8])
    assert lo < 0.7 < hi and hi - 0.7 == pytest.approx(stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3))
    assert np.isnan(t_interval([0.7])).all()
    assert deviation_interval([0.45, 0.6], 0.5) == [0.0, pytest.approx(0.1)]
    assert deviation_interval([0.6, 0.7], 0.5) == [pytest.approx(0.1), pytest.approx(0.2)]


# ------------------------------------------------------------------- separation


def test_separates_needs_every_control_beaten_beyond_the_intervals():
    assert separates([0.1, 0.2], [[0.3, 0.4], [0.25, 0.5]]) is True
    assert separates([0.1, 0.3], [[0.3, 0.4], [0.5, 0.6]]) is False  # touching is not beyond
    assert separates([0.1, 0.2], [[0.3, 0.4], [0.05, 0.15]]) is False
    assert separates([0.1, 0.2], []) is None
    assert separates([0.1, float("nan")], [[0.3, 0.4]]) is None


def test_a_control_never_separates_from_itself(garch_and_shuffled):
    g, sh = garch_and_shuffled
    real = g.ravel()
    synth = {"ours": g[:64], "same": g[:64].copy(), "shuffled": sh[:64]}
    results, _ = evaluate(real[:16_000], real[60_000:], synth, 256, stride=128, fast=True,
                          progress=False, controls=["same", "shuffled"], n_boot=40)  # fmt: skip
    part = leaderboard.build(results, "ours")["splits"]["in_sample"]
    assert not any(part["separates"].values())  # "same" is ours: nothing separates
    assert part["ranked_on"] == []
    # Without the copy, the clustering that shuffling destroys separates.
    del results["generators"]["same"]
    part = leaderboard.build(results, "ours")["splits"]["in_sample"]
    assert part["separates"]["acf_abs20_dist"] is True
    assert "acf_abs20_dist" in part["ranked_on"]
    md = leaderboard.to_markdown(leaderboard.build(results, "ours"))
    assert "shuffled (control)" in md and "| separates |" in md and "[" in md


def test_no_bold_when_best_and_second_overlap():
    def gen(err: float, ci: list[float]) -> dict:
        facts = {"acf_abs20_dist": err, "error_ci": {"acf_abs20_dist": ci}, "ci": {}}
        return {"in_sample": facts, "n_paths": 10}

    results = {"generators": {"ours": gen(0.1, [0.05, 0.15]), "b": gen(0.12, [0.1, 0.2]),
                              "c": {**gen(0.5, [0.4, 0.6]), "control": True}}}  # fmt: skip
    table = leaderboard.build(results, "ours")
    part = table["splits"]["in_sample"]
    assert part["separates"]["acf_abs20_dist"] is True
    assert part["best"]["acf_abs20_dist"] == "ours" and not part["clear_best"]["acf_abs20_dist"]
    assert "**" not in leaderboard.to_markdown(table)
    results["generators"]["b"] = gen(0.3, [0.2, 0.35])
    table = leaderboard.build(results, "ours")
    assert table["splits"]["in_sample"]["clear_best"]["acf_abs20_dist"]
    assert "**0.1**" in leaderboard.to_markdown(table)
