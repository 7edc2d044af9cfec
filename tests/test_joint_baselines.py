"""Joint baselines: shapes, seeding, the dependence they keep, the errors a user meets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evaluation import joint_baselines as jb
from evaluation.baselines import GarchBaseline
from utils.errors import ScalodiffError


def _correlated(rng: np.random.Generator, rho: float, size: int) -> np.ndarray:
    """[size, 2] standard normals with correlation ``rho``."""
    chol = np.linalg.cholesky(np.array([[1.0, rho], [rho, 1.0]]))
    return rng.standard_normal((size, 2)) @ chol.T


def _pooled_corr(paths: np.ndarray) -> float:
    return float(np.corrcoef(paths[:, 0].ravel(), paths[:, 1].ravel())[0, 1])


@pytest.fixture(scope="module")
def gaussian_pair() -> np.ndarray:
    return 0.01 * _correlated(np.random.default_rng(0), 0.8, 3000)


@pytest.fixture(scope="module")
def garch_pair() -> np.ndarray:
    # Two GARCH(1,1) series whose t(6) innovations have correlation 0.7 on the same day.
    rng = np.random.default_rng(1)
    steps, burn = 3000, 500
    z = _correlated(rng, 0.7, steps + burn) / np.sqrt(rng.chisquare(6, (steps + burn, 1)) / 6)
    z *= np.sqrt(4 / 6)  # unit variance
    omega, alpha, beta = np.array([2e-6, 4e-6]), np.array([0.08, 0.1]), np.array([0.9, 0.85])
    var = omega / (1 - alpha - beta)
    out = np.empty((steps + burn, 2))
    for t in range(steps + burn):
        out[t] = np.sqrt(var) * z[t]
        var = omega + alpha * out[t] ** 2 + beta * var
    return out[burn:]


@pytest.fixture(scope="module")
def fitted(garch_pair) -> dict[str, jb.CopulaGarchBaseline]:
    return {c: jb.CopulaGarchBaseline.fit(garch_pair, copula=c) for c in jb.COPULAS}


@pytest.fixture(scope="module")
def mvt4_pair() -> np.ndarray:
    # Multivariate t with 4 dof: strong joint tail dependence (both crash on the same days).
    rng = np.random.default_rng(2)
    return 0.01 * _correlated(rng, 0.6, 2000) / np.sqrt(rng.chisquare(4, (2000, 1)) / 4)


def _generators(gaussian_pair, fitted) -> dict[str, object]:
    return {
        "bootstrap": jb.JointBootstrapBaseline.fit(gaussian_pair),
        "copula-garch t": fitted["t"],
        "copula-garch gaussian": fitted["gaussian"],
    }


@pytest.mark.parametrize("which", ["bootstrap", "copula-garch t", "copula-garch gaussian"])
def test_shape_dtype_seed_and_prefix_stability(which, gaussian_pair, fitted):
    gen = _generators(gaussian_pair, fitted)[which]
    x = gen.sample(5, 40, seed=3)
    assert x.shape == (5, 2, 40) and x.dtype == np.float64 and np.all(np.isfinite(x))
    np.testing.assert_array_equal(x, gen.sample(5, 40, seed=3))
    assert not np.array_equal(x, gen.sample(5, 40, seed=4))
    # Path i depends on (seed, i) only: asking for more paths appends.
    np.testing.assert_array_equal(x[:3], gen.sample(3, 40, seed=3))


def test_bootstrap_resamples_whole_rows_and_keeps_correlation(gaussian_pair):
    gen = jb.JointBootstrapBaseline.fit(gaussian_pair, block=10.0)
    x = gen.sample(100, 128, seed=0)
    real = np.corrcoef(gaussian_pair.T)[0, 1]
    assert _pooled_corr(x) == pytest.approx(real, abs=0.05)
    # Every sampled (a, b) pair is one row (date) of the training data.
    row_of = {v: i for i, v in enumerate(gaussian_pair[:, 0])}
    rows = np.vectorize(row_of.get)(x[:, 0])
    np.testing.assert_array_equal(gaussian_pair[rows, 1], x[:, 1])
    # Blocks of mean length 10: the next row follows the current one 90% of the time.
    follows = np.mean((rows[:, 1:] - rows[:, :-1]) % len(gaussian_pair) == 1)
    assert follows == pytest.approx(0.9, abs=0.02)


def test_bootstrap_default_block_is_mean_of_assets_clipped(garch_pair):
    from arch.bootstrap import optimal_block_length

    per_asset = optimal_block_length(garch_pair**2)["stationary"].to_numpy()
    block = jb.JointBootstrapBaseline.fit(garch_pair).block
    assert block == pytest.approx(np.clip(per_asset.mean(), 5, 100))
    assert 5 <= block <= 100


def test_residual_uniforms_align_each_return_with_its_own_variance():
    # Returns built by the recursion from known innovations z: the residuals must give back
    # F(z_t) for the same t, once the recursion has forgotten its starting variance.
    model = GarchBaseline(mu=1e-4, omega=2e-6, alpha=0.08, beta=0.9, nu=6.0)
    z = np.random.default_rng(4).standard_t(6.0, (1, 1000)) * np.sqrt(4 / 6)
    returns = model.returns_from_innovations(z, model.start_variance())[0]
    u = jb._residual_uniforms(model, returns)
    assert u.shape == (999,)
    expected = stats.t.cdf(z[0, 1:], 6.0, scale=np.sqrt(4 / 6))
    np.testing.assert_allclose(u[300:], expected[300:], atol=1e-9)


@pytest.mark.parametrize("copula", jb.COPULAS)
def test_copula_garch_recovers_correlation_and_scale(copula, garch_pair, fitted):
    gen = fitted[copula]
    assert gen.correlation.shape == (2, 2)
    assert gen.correlation[0, 1] == pytest.approx(0.7, abs=0.05)
    x = gen.sample(128, 256, seed=0)
    real = np.corrcoef(garch_pair.T)[0, 1]
    assert _pooled_corr(x) == pytest.approx(real, abs=0.07)
    np.testing.assert_allclose(x.std(axis=(0, 2)), garch_pair.std(axis=0), rtol=0.15)


def test_t_copula_dof_separates_tail_dependence(mvt4_pair, fitted):
    gaussian_data = 0.01 * _correlated(np.random.default_rng(3), 0.6, 2000)
    heavy = jb.CopulaGarchBaseline.fit(mvt4_pair, copula="t")
    light = jb.CopulaGarchBaseline.fit(gaussian_data, copula="t")
    assert heavy.copula_dof < 10
    assert light.copula_dof >= 20
    assert fitted["gaussian"].copula_dof is None
    # The fitted dof reaches the samples: joint crashes are more frequent under the t copula.
    gauss = jb.CopulaGarchBaseline(heavy.margins, heavy.correlation, "gaussian", None)
    assert _both_below_5pct(heavy.sample(64, 256)) > 1.3 * _both_below_5pct(gauss.sample(64, 256))


def _both_below_5pct(paths: np.ndarray) -> float:
    a, b = paths[:, 0].ravel(), paths[:, 1].ravel()
    return float(np.mean((a < np.quantile(a, 0.05)) & (b < np.quantile(b, 0.05))))


@pytest.mark.parametrize("cls", [jb.JointBootstrapBaseline, jb.CopulaGarchBaseline])
@pytest.mark.parametrize(
    "data, message",
    [
        (np.zeros(500), r"shape \[T, A\] with A >= 2; got shape \(500,\)"),
        (np.zeros((500, 1)), r"A >= 2; got shape \(500, 1\)"),
        (np.zeros((500, 2, 2)), r"A >= 2; got shape \(500, 2, 2\)"),
        (np.r_[np.zeros((499, 2)), [[0.0, np.nan]]], "asset column 1: .*NaN or inf"),
        (np.r_[np.zeros((499, 2)), [[np.inf, 0.0]]], "asset column 0: .*NaN or inf"),
        (np.zeros((20, 3)), "asset column 0: .*20 values are too few"),
    ],
)
def test_bad_input_is_one_clear_error(cls, data, message):
    with pytest.raises(ScalodiffError, match=message):
        cls.fit(data)


def test_copula_garch_needs_100_dates(gaussian_pair):
    with pytest.raises(
        ScalodiffError, match="asset column 0: .*60 values are too few.*at least 100"
    ):
        jb.CopulaGarchBaseline.fit(gaussian_pair[:60])
    jb.JointBootstrapBaseline.fit(gaussian_pair[:60])  # the bootstrap needs only 30


def test_unknown_copula_and_bad_block_and_sizes(gaussian_pair):
    with pytest.raises(
        ScalodiffError, match="copula='clayton' is unknown; choose one of gaussian, t"
    ):
        jb.CopulaGarchBaseline.fit(gaussian_pair, copula="clayton")
    with pytest.raises(ScalodiffError, match="block length must be >= 1, got 0.5"):
        jb.JointBootstrapBaseline.fit(gaussian_pair, block=0.5)
    with pytest.raises(ScalodiffError, match="n=0, length=8"):
        jb.JointBootstrapBaseline.fit(gaussian_pair).sample(0, 8)
