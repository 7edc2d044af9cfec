"""Baselines: shapes, seeding, what each one must preserve, the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from arch.univariate import GARCH, ConstantMean, StudentsT

from evaluation import baselines as b
from evaluation.metrics import acf
from utils.errors import ScalodiffError
from utils.paths_io import read_paths


@pytest.fixture(scope="module")
def garch_series() -> np.ndarray:
    # Simulated by arch, in daily-return units (std about 1%).
    model = ConstantMean(volatility=GARCH(), distribution=StudentsT(seed=np.random.default_rng(0)))
    sim = model.simulate([0.05, 0.02, 0.08, 0.9, 6.0], nobs=6000, burn=500)
    return sim["data"].to_numpy() / 100


@pytest.mark.parametrize("name", list(b.BASELINES))
def test_sample_shape_seed_and_prefix_stability(name, garch_series):
    gen = b.fit_baseline(name, garch_series)
    x = gen.sample(5, 64, seed=3)
    assert x.shape == (5, 64) and np.all(np.isfinite(x))
    np.testing.assert_array_equal(x, gen.sample(5, 64, seed=3))
    assert not np.array_equal(x, gen.sample(5, 64, seed=4))
    # Path i depends on (seed, i) only: asking for more paths appends.
    np.testing.assert_array_equal(x[:3], gen.sample(3, 64, seed=3))


def test_gaussian_matches_mean_and_std(garch_series):
    x = b.fit_baseline("gaussian", garch_series).sample(400, 256, seed=0)
    assert x.mean() == pytest.approx(garch_series.mean(), abs=3 * garch_series.std() / 320)
    assert x.std() == pytest.approx(garch_series.std(), rel=0.02)


def test_bootstrap_reuses_training_values_in_blocks(garch_series):
    gen = b.BootstrapBaseline.fit(garch_series, block=10.0)
    x = gen.sample(200, 128, seed=1)
    assert np.isin(x, garch_series).all()
    # Within a block the next value is the next training return (cyclically).
    pos = {v: i for i, v in enumerate(garch_series)}
    idx = np.vectorize(pos.get)(x)
    follows = np.mean((idx[:, 1:] - idx[:, :-1]) % garch_series.size == 1)
    assert follows == pytest.approx(1 - 1 / 10, abs=0.02)


def test_bootstrap_default_block_is_clipped(garch_series):
    assert 5 <= b.BootstrapBaseline.fit(garch_series).block <= 100


def test_garch_fit_recovers_parameters_and_clusters(garch_series):
    gen = b.fit_baseline("garch", garch_series)
    assert gen.alpha == pytest.approx(0.08, abs=0.04)
    assert gen.beta == pytest.approx(0.9, abs=0.05)
    assert 3.5 < gen.nu < 12
    x = gen.sample(300, 256, seed=0)
    unconditional = np.sqrt(gen.omega / (1 - gen.alpha - gen.beta))
    assert x.std() == pytest.approx(unconditional, rel=0.15)
    assert acf(np.abs(x), 5)[0] > 0.05


def test_garch_forecast_filters_as_arch_does_and_starts_from_that_variance(garch_series):
    from arch import arch_model

    gen = b.fit_baseline("garch", garch_series)
    s = garch_series.std()
    fixed = arch_model(garch_series / s, mean="Constant", vol="GARCH", p=1, q=1, dist="t").fix(
        [gen.mu / s, gen.omega / s**2, gen.alpha, gen.beta, gen.nu]
    )
    arch_var = (fixed.conditional_volatility * s) ** 2  # of return t, given returns before it
    ours = gen.next_variances(garch_series)  # of return t + 1, given returns up to t
    np.testing.assert_allclose(ours[499:-1], arch_var[500:], rtol=1e-9)
    calm, wild = np.argmin(ours), np.argmax(ours)
    for t in (calm, wild):
        first = gen.continue_paths(ours[t], 4000, 5, seed=1)[:, 0]
        assert first.std() == pytest.approx(np.sqrt(ours[t]), rel=0.08)


def test_user_errors_are_scalodiff_errors(garch_series):
    with pytest.raises(ScalodiffError, match="gaussian, bootstrap, garch"):
        b.fit_baseline("gan", garch_series)
    with pytest.raises(ScalodiffError, match="too few"):
        b.fit_baseline("gaussian", np.zeros(3))
    with pytest.raises(ScalodiffError, match="NaN"):
        b.fit_baseline("bootstrap", np.r_[garch_series[:100], np.nan])
    with pytest.raises(ScalodiffError, match="n >= 1"):
        b.fit_baseline("gaussian", garch_series).sample(0, 10)


def test_command_line_writes_paths(tmp_path, garch_series, capsys):
    prices = 100 * np.exp(np.cumsum(garch_series[:800]))
    csv = tmp_path / "prices.csv"
    frame = pd.DataFrame({"Date": pd.bdate_range("2000-01-03", periods=800), "Close": prices})
    frame.to_csv(csv, index=False)
    out = tmp_path / "boot.csv"
    rc = b.main(
        ["--data", str(csv), "--name", "bootstrap", "--n", "4", "--length", "32", "--out", str(out)]
    )
    assert rc == 0
    x = read_paths(out)
    assert x.shape == (4, 32)
    # Fitted on the first 80% only: every value comes from there.
    train = np.diff(np.log(prices))[: round(799 * 0.8)]
    assert np.isin(np.round(x, 8), np.round(train, 8)).all()
    # A second run refuses to overwrite: one line, exit 2.
    rc = b.main(["--data", str(csv), "--name", "gaussian", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:")
