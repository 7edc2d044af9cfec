"""Negative controls, the untrained reference in checkpoints, and generate.py's realism summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import generate
import train
from data.returns import ReturnNormalizer
from data.windows import windows_view
from evaluation import metrics as m
from evaluation.baselines import GarchBaseline
from evaluation.controls import levels_only, make_controls, sample_paths, shuffled, untrained_unet
from evaluation.summary import format_realism, realism_summary, untrained_reference
from tests.conftest import tiny_settings
from transforms.volatility import transform_from_json
from utils import checkpoint as ckpt
from utils.seeding import derive_seed

pytestmark = pytest.mark.usefixtures("one_thread")
L = 32


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, list[str]]:
    """A tiny run whose one step at a learning rate of 1e-12 leaves the weights where they began."""
    root = tmp_path_factory.mktemp("controls")
    flags = tiny_settings(root, MAX_STEPS=1, LR=1e-12)
    assert train.main([*flags, "--data", "sp500", "--run-name", "r"]) == 0
    return ckpt.list_checkpoints(root / "r")[-1], flags


def test_untrained_unet_is_the_one_training_starts_from(run):
    step_dir, _ = run
    loaded = ckpt.load_for_sampling(step_dir)
    fresh = untrained_unet(loaded).state_dict()
    saved = loaded["unet"].state_dict()
    assert max((fresh[k] - saved[k]).abs().max().item() for k in saved) < 1e-6
    other = untrained_unet({**loaded, "settings": {**loaded["settings"], "SEED": 1}}).state_dict()
    assert max((other[k] - saved[k]).abs().max().item() for k in saved) > 1e-3


def test_controls_follow_generates_pipeline(run):
    step_dir, _ = run
    loaded = ckpt.load_for_sampling(step_dir)
    ours = sample_paths(loaded, loaded["unet"], 6, 3, "dpm", 3, 4, "cpu", "fitted")
    theirs, _ = generate.sample_returns(
        loaded, 6, sampler_name="dpm", steps=3, seed=3, batch=4, device=torch.device("cpu"),
        vol_level="fitted", progress=False,
    )  # fmt: skip
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=0)
    controls = make_controls(loaded, 6, 3, "dpm", 3, 4)
    assert list(controls) == ["untrained", "levels-only", "shuffled"]
    for name, x in controls.items():
        assert x.shape == (6, L) and np.isfinite(x).all(), name


def test_levels_only_draws_the_fitted_levels(run):
    step_dir, _ = run
    loaded = ckpt.load_for_sampling(step_dir)
    assert levels_only(loaded, 3, 5).shape == (3, L)  # the middle of the transform's window
    # The level shape applies to the control as to the model's windows ...
    assert loaded["normalizer"]["level_shape"] is not None
    shaped = levels_only(loaded, 400, 5)
    loaded["normalizer"] = {**loaded["normalizer"], "level_shape": None}
    assert not np.allclose(shaped, levels_only(loaded, 400, 5))
    # ... and so does the tail stretch ...
    stretched = levels_only(loaded, 400, 5)
    # ... and stretches only the returns beyond its starts (every return gets its constant
    # shift); without it and without the edge margin the window is the transform's whole
    # window, whose RMS is the level.
    loaded["normalizer"] = {**loaded["normalizer"], "tail_start": None}
    plain = levels_only(loaded, 400, 5)
    record = ckpt.load_for_sampling(step_dir)["normalizer"]
    start, shift = np.array(record["tail_start"]), record["tail_shift"] * record["scale"]
    z_plain = plain / loaded["normalizer"]["scale"]
    inside = (z_plain > -start[0]) & (z_plain < start[1])
    np.testing.assert_allclose(stretched[inside], plain[inside] - shift, rtol=1e-12, atol=1e-15)
    assert not np.allclose(stretched[~inside], plain[~inside] - shift)
    loaded["transform"] = {**loaded["transform"], "margin": 0}
    x = levels_only(loaded, 400, 5)
    tr = transform_from_json(loaded["transform"])
    z = ReturnNormalizer.from_json(loaded["normalizer"]).transform(x, dtype=np.float64)
    rows = (0.5 * np.log(np.mean(z**2, axis=1)) - tr.log_rms_mean) / tr.log_rms_std
    drawn = tr.draw_rows([derive_seed(derive_seed(5, i), 1) for i in range(400)]).numpy()
    np.testing.assert_allclose(rows, drawn, atol=1e-8)  # exactly the VOL_LEVEL = fitted draw
    u = z / np.sqrt(np.mean(z**2, axis=1, keepdims=True))
    assert abs(m.excess_kurtosis(u)) < 0.2  # and Gaussian inside each window (before the power)


def test_shuffled_keeps_each_windows_returns():
    r = np.random.default_rng(0).standard_t(4, size=300)
    x = shuffled(r, L, 40, seed=1)
    real = windows_view(r, L, 1)
    real_sorted = np.sort(real, axis=1)
    for row in x:
        matches = np.flatnonzero((real_sorted == np.sort(row)).all(axis=1))
        assert matches.size == 1  # the same multiset as one real window
        assert not np.array_equal(row, real[matches[0]])  # in another order


def test_untrained_reference_is_stored_and_printed(run, tmp_path, capsys):
    step_dir, flags = run
    stored = step_dir / ckpt.UNTRAINED_REFERENCE
    assert ckpt.load_for_sampling(step_dir)["untrained_reference"]["n_paths"] == 64  # by train.py
    kept = stored.read_text()
    stored.unlink()
    try:
        loaded = ckpt.load_for_sampling(step_dir)
        assert loaded["untrained_reference"] is None  # a checkpoint without one still loads
        out = tmp_path / "a.npy"
        assert generate.main([*flags, "--out", str(out), "--no-plot"]) == 0
        assert "no untrained reference" in capsys.readouterr().out
        ref = untrained_reference(loaded, n=8)
        ckpt.write_untrained_reference(step_dir, ref)
        assert ckpt.load_for_sampling(step_dir)["untrained_reference"] == pytest.approx(ref)
        assert generate.main([*flags, "--out", str(out), "--no-plot", "--overwrite"]) == 0
        printed = capsys.readouterr().out
        assert "untrained (8 paths)" in printed and f"{ref['kurtosis_std']:.3f}" in printed
    finally:
        stored.write_text(kept)


def test_summary_sees_clustering_and_shape():
    gen = GarchBaseline(mu=0.0, omega=0.05, alpha=0.1, beta=0.85, nu=30.0)
    real = gen.sample(200, 128, seed=1)
    like = gen.sample(200, 128, seed=2)
    rng = np.random.default_rng(0)
    flat = np.array([rng.permutation(w) for w in like])
    good, bad = realism_summary(real, like), realism_summary(real, flat)
    g, b = good["figures"]["acf_abs20_dist"], bad["figures"]["acf_abs20_dist"]
    assert g["ci"][1] < b["ci"][0]  # shuffling destroys the clustering, beyond the intervals
    assert b["synth"] == pytest.approx(bad["iid_acf_abs20_dist"], rel=0.3)
    assert g["ci"][0] <= g["synth"] <= g["ci"][1]
    # Shuffling keeps each window's returns: the kurtosis of r / window RMS stays.
    assert bad["figures"]["kurtosis_std"]["synth"] == pytest.approx(
        good["figures"]["kurtosis_std"]["synth"], rel=1e-9
    )
    text = format_realism(good)
    assert "200 paths" in text and "kurtosis" in text and "[" in text
