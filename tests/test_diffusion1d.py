"""The 1-D diffusion baseline: trains, samples reproducibly per path, respects its budget, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from evaluation import baselines as b
from evaluation.denoiser1d import Denoiser1D
from evaluation.diffusion1d import Diffusion1DBaseline, default_settings
from models.diffusion import build_noise_scheduler, make_sampler, sample
from utils.errors import ScalodiffError
from utils.paths_io import read_paths

pytestmark = pytest.mark.usefixtures("one_thread")

L = 32
TINY_NET = {"channels": (8, 16), "layers": 1}


def tiny_settings(**extra: object) -> dict:
    """The resolved settings train.py would use, shrunk so a fit takes about a second.

    fp32: bf16 autocast on two contended cores can take seconds per tiny step. The
    command-line test below keeps config.py's MIXED_PRECISION.
    """
    s = default_settings()
    s.update(
        WINDOW_SIZE=L,
        STRIDE=4,
        NUM_TIMESTEPS=50,
        BATCH_SIZE=8,
        WARMUP_STEPS=2,
        MAX_STEPS=5,
        MAX_MINUTES=None,
        SAMPLING_STEPS=3,
        SAMPLE_BATCH=4,
        SEED=0,
        MIXED_PRECISION="no",
    )
    s.update(extra)
    return s


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    gen = b.GarchBaseline(mu=0.0, omega=2e-6, alpha=0.1, beta=0.85, nu=5.0)
    return gen.sample(1, 1500, seed=0).ravel()


@pytest.fixture(scope="module")
def fitted(returns) -> Diffusion1DBaseline:
    return Diffusion1DBaseline.fit(returns, tiny_settings(), **TINY_NET)


def test_denoiser_keeps_the_image_shape_and_refuses_bad_lengths():
    net = Denoiser1D(64, channels=(8, 16, 16), layers=1)
    out = net(torch.randn(3, 1, 1, 64), torch.tensor([1, 20, 40])).sample
    assert out.shape == (3, 1, 1, 64)
    with pytest.raises(ScalodiffError, match="divisible by 4"):
        Denoiser1D(30, channels=(8, 16, 16))


def test_the_shared_sampling_loop_drives_the_denoiser():
    # models.diffusion.sample was written for UNet2DModel; the 1-D net plugs in unchanged.
    net = Denoiser1D(L, **TINY_NET).eval()
    train = build_noise_scheduler(tiny_settings())
    x = sample(net, make_sampler("dpm", train.config), [1, 2], steps=3)
    assert x.shape == (2, 1, 1, L) and torch.isfinite(x).all()


def test_fit_trains_the_asked_steps_and_samples_real_units(fitted, returns):
    stats = fitted.stats
    assert stats.steps == 5 and stats.samples == 5 * 8 and np.isfinite(stats.loss)
    x = fitted.sample(5, L, seed=3)
    assert x.shape == (5, L) and np.all(np.isfinite(x))
    # Returns come back through the normalizer: in the units of the data, not of N(0, 1).
    assert 0.01 < x.std() / returns.std() < 100


def test_per_path_seeds_are_reproducible_and_independent_of_n(fitted):
    x = fitted.sample(5, L, seed=3)
    np.testing.assert_array_equal(x, fitted.sample(5, L, seed=3))
    # Path i depends on (seed, i) alone: fewer paths (other batches) give the same first ones.
    np.testing.assert_allclose(fitted.sample(3, L, seed=3), x[:3], rtol=0, atol=1e-6)
    assert not np.allclose(fitted.sample(5, L, seed=4), x)


def test_fit_is_seeded(returns, fitted):
    again = Diffusion1DBaseline.fit(returns, tiny_settings(), **TINY_NET)
    np.testing.assert_array_equal(again.sample(2, L, seed=1), fitted.sample(2, L, seed=1))
    other = Diffusion1DBaseline.fit(returns, tiny_settings(SEED=1), **TINY_NET)
    assert not np.allclose(other.sample(2, L, seed=1), fitted.sample(2, L, seed=1))


def test_training_lowers_the_loss():
    # Windows of a noisy sine have structure to learn in a few dozen steps (returns barely do).
    noise = np.random.default_rng(0).standard_normal(1500)
    wave = 0.01 * np.sin(2 * np.pi * np.arange(1500) / 16) + 0.001 * noise
    short, longer = (
        Diffusion1DBaseline.fit(
            wave, tiny_settings(MAX_STEPS=k, BATCH_SIZE=16, LR=3e-3), **TINY_NET
        )
        for k in (3, 60)
    )
    assert longer.stats.loss < 0.75 * short.stats.loss


def test_wall_clock_budget_stops_training(returns):
    # No step limit: only MAX_MINUTES (0.6 s) can stop it.
    fit = Diffusion1DBaseline.fit(
        returns, tiny_settings(MAX_STEPS=None, EPOCHS=10**6), minutes=0.01, **TINY_NET
    )
    assert fit.stats.steps >= 1 and 0.6 <= fit.stats.seconds < 5


def test_user_errors(returns, fitted):
    with pytest.raises(ScalodiffError, match="training length 32"):
        fitted.sample(4, 64)
    with pytest.raises(ScalodiffError, match="cannot fill one window"):
        Diffusion1DBaseline.fit(returns[:20], tiny_settings(), **TINY_NET)
    with pytest.raises(ScalodiffError, match="NaN"):
        Diffusion1DBaseline.fit(np.r_[returns[:100], np.nan], tiny_settings(), **TINY_NET)
    with pytest.raises(ScalodiffError, match="fewer than one step's"):
        Diffusion1DBaseline.fit(returns[:60], tiny_settings(BATCH_SIZE=64), **TINY_NET)


def test_fit_baseline_and_command_line(tmp_path, returns, capsys):
    gen = b.fit_baseline("diffusion1d", returns, settings=tiny_settings(), max_steps=2)
    assert gen.name == "diffusion1d" and gen.stats.steps == 2
    prices = 100 * np.exp(np.r_[0.0, np.cumsum(returns[:800])])
    csv = tmp_path / "prices.csv"
    pd.DataFrame(
        {"Date": pd.bdate_range("2001-01-01", periods=prices.size), "Close": prices}
    ).to_csv(csv, index=False)
    out = tmp_path / "d1.csv"
    argv = [
        "--data",
        str(csv),
        "--name",
        "diffusion1d",
        "--n",
        "3",
        "--length",
        str(L),
        "--max-steps",
        "2",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert b.main(argv) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["path", "step", "log_return", "price"]
    assert read_paths(out).shape == (3, L)
    # An existing --out is refused before any training, in one line.
    assert b.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists" in err[0]
    assert b.main([*argv[:-2], "--minutes", "0", "--out", str(tmp_path / "x.npy")]) == 2
