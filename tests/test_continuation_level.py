"""The level correction of continued windows (CONTINUATION_LEVEL, models/calibration.py)."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import generate
import train
from data.returns import ReturnNormalizer
from data.windows import windows_view
from models.calibration import (
    _level_windows,
    _residual_map,
    _start_gains,
    fit_continuation_level,
)
from models.continuation import (
    START_SPAN,
    continue_window,
    level_correction,
    level_features,
    near_profile,
    start_gains,
)
from tests.conftest import tiny_settings
from transforms.joint import JointScalogram
from transforms.volatility import VolatilityScalogram, transform_from_json
from transforms.wavelet import Scalogram
from utils import checkpoint as ckpt
from utils.errors import ScalodiffError
from utils.settings import apply_preset, config_defaults


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_thread) -> Path:
    root = tmp_path_factory.mktemp("level")
    settings = tiny_settings(root, MAX_STEPS=2, CONTEXT_FRACTIONS="(0.25,0.5,0.75)")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert train.main([*settings, "--data", "sp500", "--run-name", "r", "--no-progress"]) == 0
    (root / "printed.txt").write_text(printed.getvalue())
    return root / "r"


def fitted_transform(window: int = 36, margin: int = 2) -> VolatilityScalogram:
    tr = VolatilityScalogram(Scalogram(window_size=window, n_scales=5), margin=margin)
    return tr.fit(torch.randn(64, window, dtype=torch.float64))


def test_correction_scales_new_returns_only_for_its_known_length() -> None:
    tr = fitted_transform()
    images = tr.forward(torch.randn(4, 36, dtype=torch.float64))
    known = torch.randn(4, 18, dtype=torch.float64) * torch.tensor([[0.5], [1], [2], [4]])
    plain = continue_window(tr, images, known)
    fit = {"known": 18.0, "shift": 0.2, "slope": -0.3, "recent_slope": 0.1, "short_slope": 0.4}
    tr.continuation_level = [{**fit, "line": [0.05, 0.4, -0.2, 0.3], "spread": 1.5}]
    moved = continue_window(tr, images, known)
    torch.testing.assert_close(moved[:, :16], known[:, 2:])  # history never altered
    features = level_features(known)
    ratio = VolatilityScalogram._log_rms(plain[:, 16:34]) - features[:, 1]
    line = features @ features.new_tensor([0.05, 0.4, -0.2, 0.3])
    log_factor = features @ features.new_tensor([0.2, -0.3, 0.1, 0.4]) + (ratio - line) * 0.5
    torch.testing.assert_close(moved[:, 16:], plain[:, 16:] * torch.exp(log_factor)[:, None])
    # A fit saved with three regressors (no short-term level) reads the first three.
    del tr.continuation_level[0]["short_slope"]
    tr.continuation_level[0]["line"] = [0.05, 0.4, -0.2]
    old_factor = features[:, :3] @ features.new_tensor([0.2, -0.3, 0.1])
    old_factor += (ratio - features[:, :3] @ features.new_tensor([0.05, 0.4, -0.2])) * 0.5
    old = continue_window(tr, images, known)
    torch.testing.assert_close(old[:, 16:], plain[:, 16:] * torch.exp(old_factor)[:, None])
    tr.continuation_level[0].update(fit, line=[0.05, 0.4, -0.2, 0.3])
    tr.continuation_level[0]["known"] = 10.0  # fitted for another known length: untouched
    torch.testing.assert_close(continue_window(tr, images, known), plain)
    again = transform_from_json(json.loads(json.dumps(tr.to_json())))
    assert again.continuation_level == tr.continuation_level


def test_residual_map_gives_generated_levels_the_real_quantiles() -> None:
    tr = fitted_transform()
    images = tr.forward(torch.randn(64, 36, dtype=torch.float64))
    known = torch.randn(64, 18, dtype=torch.float64)
    plain = continue_window(tr, images, known)
    features = level_features(known)
    ratio = VolatilityScalogram._log_rms(plain[:, 16:34]) - features[:, 1]
    probabilities = (0.1, 0.5, 0.9)
    gen_q = np.quantile(ratio.numpy(), probabilities, method="lower")  # sample values
    real_q = gen_q[1] + np.array([-0.2, 0.0, 0.9])  # a right-skewed real distribution
    fit = {"known": 18.0, "shift": 0.0, "slope": 0.0, "spread": 1.5, "line": [0.0, 0.0, 0.0]}
    tr.continuation_level = [
        {**fit, "generated_quantiles": list(gen_q), "real_quantiles": list(real_q)}
    ]
    moved = continue_window(tr, images, known)
    torch.testing.assert_close(moved[:, :16], known[:, 2:])
    new_ratio = (VolatilityScalogram._log_rms(moved[:, 16:34]) - features[:, 1]).numpy()
    # Quantiles land where the map sends them; beyond, the spread's slope.
    np.testing.assert_allclose(np.quantile(new_ratio, probabilities, method="lower"), real_q)
    top = ratio.argmax()
    assert new_ratio[top] == pytest.approx(real_q[2] + 1.5 * (ratio[top].item() - gen_q[2]))
    assert np.argsort(new_ratio).tolist() == np.argsort(ratio.numpy()).tolist()  # order kept


def test_a_broken_residual_map_is_refused_for_the_spread() -> None:
    rng = np.random.default_rng(0)
    generated = rng.standard_normal(128)
    kept = _residual_map(generated, 1.3 * generated + 0.5 * np.maximum(generated, 0))
    assert kept["generated_quantiles"] is not None and kept["real_skew"] > 0.2
    assert _residual_map(generated, 10 * generated)["generated_quantiles"] is None


def test_a_record_of_one_known_length_is_read_as_its_line() -> None:
    tr = fitted_transform()
    saved = {**tr.to_json(), "continuation_level": {"known": 18.0, "shift": 0.2, "slope": -0.3}}
    old = transform_from_json(saved)
    known = torch.randn(4, 18, dtype=torch.float64)
    new = torch.randn(4, 16, dtype=torch.float64)
    expected = 0.2 - 0.3 * VolatilityScalogram._log_rms(known)
    torch.testing.assert_close(level_correction(old, known, new)[:, 0], expected)


def test_start_gains_scale_the_first_new_returns_before_the_level() -> None:
    tr = fitted_transform()
    images = tr.forward(torch.randn(4, 36, dtype=torch.float64))
    known = torch.randn(4, 18, dtype=torch.float64)
    plain = continue_window(tr, images, known)
    gains = [2.0, 1.5, 0.5, 0.5] + [1.0] * (START_SPAN - 4)
    fit = {"known": 18.0, "shift": 0.0, "slope": 0.0, "line": [0.0, 0.0, 0.0], "spread": 1.0}
    tr.continuation_level = [{**fit, "start_gains": gains}]
    moved = continue_window(tr, images, known)
    torch.testing.assert_close(moved[:, :16], known[:, 2:])  # history never altered
    expected = plain.clone()
    expected[:, 16:20] *= torch.tensor(gains[:4], dtype=torch.float64)
    torch.testing.assert_close(moved, expected)
    # The level is measured after the gains: a shift moves the gained returns.
    tr.continuation_level = [{**fit, "shift": 0.3, "start_gains": gains}]
    torch.testing.assert_close(
        continue_window(tr, images, known)[:, 16:], expected[:, 16:] * np.exp(0.3)
    )


def test_start_gains_flatten_the_generated_profile_per_series() -> None:
    rng = np.random.default_rng(0)
    new = rng.standard_normal((4000, 2, 124))
    new[:, 0, 0] *= 0.5  # series 0: a damped first return, a loud fourth to eighth
    new[:, 0, 4:8] *= 1.25
    gains = _start_gains(new, rng.standard_normal((4000, 2, 124)))
    assert gains.shape == (2, START_SPAN)
    assert gains[0, 0] == pytest.approx(2.0, rel=0.05) and gains[0, 1] == pytest.approx(1, abs=0.05)
    assert gains[0, 4:8] == pytest.approx(0.8, rel=0.05)
    np.testing.assert_allclose(gains[1], 1.0, atol=0.06)  # a flat series keeps its returns
    joint = JointScalogram([fitted_transform(), fitted_transform()])
    joint.parts[1].continuation_level = [{"known": 18.0, "start_gains": [3.0] * START_SPAN}]
    g = start_gains(joint, 18, torch.ones(3, 2, 16, dtype=torch.float64))
    assert g.shape == (2, 16) and g[0].eq(1).all() and g[1].eq(3.0).all()


def test_near_slopes_move_the_first_bins_by_the_history_and_leave_the_last() -> None:
    tr = fitted_transform()  # 18 model columns known, 16 new: bins 0-5 and 5-16
    images = tr.forward(torch.randn(4, 36, dtype=torch.float64))
    known = torch.randn(4, 18, dtype=torch.float64) * torch.tensor([[0.5], [1], [2], [4]])
    calm = known.clone()
    known[1, -1] = 6.0  # a shock at the end of one history
    plain = continue_window(tr, images, known)
    slopes = [0.0, 0.1, -0.2, 0.5]
    tr.continuation_level = [{"known": 18.0, "shift": 0.0, "slope": 0.0, "near_slopes": [slopes]}]
    moved = continue_window(tr, images, known)
    factor = torch.exp(level_features(known) @ known.new_tensor(slopes))
    torch.testing.assert_close(moved[:, :16], known[:, 2:])  # history never altered
    torch.testing.assert_close(moved[:, 16:21], plain[:, 16:21] * factor[:, None])
    torch.testing.assert_close(moved[:, 21:], plain[:, 21:])  # the last bin: the reference
    calm_factor = torch.exp(level_features(calm) @ known.new_tensor(slopes))
    assert factor[1] > 1.5 * calm_factor[1]  # the short-term level carries the shock
    torch.testing.assert_close(factor[[0, 2, 3]], calm_factor[[0, 2, 3]])


def test_joint_series_get_their_own_near_slopes() -> None:
    joint = JointScalogram([fitted_transform(), fitted_transform()])
    joint.parts[1].continuation_level = [{"known": 18.0, "near_slopes": [[0.0, 0.0, 0.0, 1.0]]}]
    known = torch.randn(3, 2, 18, dtype=torch.float64)
    out = near_profile(joint, known, 16)
    assert out[:, 0].eq(0).all() and out[:, 1, 5:].eq(0).all()
    short = level_features(known[:, 1])[:, 3]
    torch.testing.assert_close(out[:, 1, :5], short[:, None].expand(-1, 5))


def test_the_level_fit_adds_the_windows_whose_history_ends_in_a_shock() -> None:
    windows = np.random.default_rng(0).standard_normal((200, 36))
    windows[[13, 77, 150], 17] = 8.0  # the last of 18 known columns
    windows[[40, 60], 5] = 8.0  # shocks early in the history move the short-term level little
    picked = _level_windows(windows, 18, 10, shocks=3)
    np.testing.assert_array_equal(picked[:10], np.linspace(0, 199, 10).astype(int))
    assert sorted(picked[10:]) == [13, 77, 150]
    assert len(_level_windows(windows, 18, 10, shocks=0)) == 10


def test_joint_series_get_their_own_correction() -> None:
    joint = JointScalogram([fitted_transform(), fitted_transform()])
    joint.parts[1].continuation_level = [{"known": 18.0, "shift": 0.5, "slope": 0.0}]
    known = torch.randn(3, 2, 18, dtype=torch.float64)
    out = level_correction(joint, known, torch.randn(3, 2, 16, dtype=torch.float64))
    assert out[:, 0].eq(0).all()
    torch.testing.assert_close(out[:, 1], torch.full_like(out[:, 1], 0.5))


def test_training_fits_stores_and_prints_the_correction(run: Path) -> None:
    step = ckpt.list_checkpoints(run)[-1]
    fits = json.loads((step / "transform.json").read_text())["continuation_level"]
    # The margin plus each default CONTEXT_KNOWN: long paths' (the shortest), scenarios'.
    assert [f["known"] for f in fits] == [2 + 8, 2 + 16]
    for fit in fits:
        assert max(abs(fit["shift"]), abs(fit["slope"]), abs(fit["recent_slope"])) <= 1
        assert 0.5 <= fit["spread"] <= 2
        assert fit["generated"] != fit["real"]
        assert len(fit["start_gains"]) == START_SPAN
        assert 0.5 <= min(fit["start_gains"]) <= max(fit["start_gains"]) <= 2
        assert abs(fit["short_slope"]) <= 1 and len(fit["line"]) == 4
    # 24 new returns after 8 known: bins 0-5 and 5-20 against 20-24; 16 after 16: 0-5 against 5-16.
    assert [np.shape(f["near_slopes"]) for f in fits] == [(2, 4), (1, 4)]
    assert all(b[0] == 0 for f in fits for b in f["near_slopes"])
    printed = (run.parent / "printed.txt").read_text()
    assert "gains on the first new returns" in printed
    assert "slope on the last days' level (half-life 5)" in printed
    assert "8 known returns: log ratio of new to known RMS" in printed
    assert "16 known returns: log ratio of new to known RMS" in printed


def test_refitting_with_the_correction_applied_finds_nothing_left(run: Path) -> None:
    loaded = ckpt.load_for_sampling(ckpt.list_checkpoints(run)[-1])
    tr = transform_from_json(loaded["transform"])
    norm = ReturnNormalizer.from_json(loaded["normalizer"])
    z = norm.transform(np.asarray(loaded["real_returns"], dtype=np.float64))
    windows = windows_view(z, tr.window_size, 7)
    tr.continuation_level = None
    # Evenly spaced windows only: their residual map makes the refit exact (shock windows
    # would add residuals the map was not fitted on).
    (first,) = fit_continuation_level(loaded, tr, windows, 16, n=48, shocks=0)
    assert first["spread"] != pytest.approx(1.0)
    assert np.abs(np.log(first["start_gains"][:8])).max() > 0.05
    tr.continuation_level = [first]
    assert abs(first["generated_skew"] - first["real_skew"]) > 0.5
    # Same windows and seeds: the corrected log ratios have the real ones' line and
    # distribution, up to what a piecewise-linear map of 9 quantiles of 48 values leaves
    # (the skewness rests on the few values beyond the outer quantiles, mapped by the
    # spread alone).
    (left,) = fit_continuation_level(loaded, tr, windows, 16, n=48, shocks=0)
    moved = ("shift", "slope", "recent_slope", "short_slope")
    assert max(abs(left[k]) for k in moved) < 0.02
    assert max(abs(first[k]) for k in moved) > 0.1
    # The gains, fitted after the near slopes, vary inside the first near bin, which
    # leaves a few percent of the near slopes, and of the spread, to a refit.
    assert np.abs(left["near_slopes"]).max() < 0.1 * np.abs(first["near_slopes"]).max()
    assert left["spread"] == pytest.approx(1.0, abs=0.03)
    assert left["real"] == pytest.approx(first["real"])
    assert left["generated_sd"] == pytest.approx(first["real_sd"], rel=0.03)
    assert left["generated_skew"] == pytest.approx(first["real_skew"], abs=0.15)
    gap = np.subtract(first["generated_quantiles"], first["real_quantiles"])
    assert np.abs(gap).max() > 0.1
    np.testing.assert_allclose(left["generated_quantiles"], first["real_quantiles"], atol=0.04)
    # The gains gave the first new returns the real profile; the level's per-window
    # factors cancel in it.
    np.testing.assert_allclose(left["start_gains"], 1.0, atol=0.01)


def test_other_known_lengths_continue_without_it_and_say_so(run: Path) -> None:
    gen = generate.load(run)
    plan = gen.plan(generate.SampleOptions(n=2, steps=2, progress=False))
    with pytest.warns(UserWarning, match="fitted for 8, 16 known returns; 24"):
        gen.continuer(plan, 24)


def test_a_fit_without_start_gains_is_an_error_unless_the_overlap_replaces_them(
    run: Path,
) -> None:
    gen = generate.load(run)
    fits = gen.loaded["transform"]["continuation_level"]
    old = [{k: v for k, v in f.items() if k != "start_gains"} for f in fits]
    gen.loaded["transform"] = {**gen.loaded["transform"], "continuation_level": old}
    plan = gen.plan(generate.SampleOptions(n=2, steps=2, progress=False))
    with pytest.raises(ScalodiffError, match="no start gains.*--overlap 4"):
        gen.continuer(plan, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gen.continuer(plan, 16, overlap=4)


def test_a_checkpoint_saved_before_the_fit_says_it_continues_uncorrected(run: Path) -> None:
    gen = generate.load(run)
    gen.loaded["transform"] = {**gen.loaded["transform"], "continuation_level": None}
    plan = gen.plan(generate.SampleOptions(n=2, steps=2, progress=False))
    with pytest.warns(UserWarning, match="saved before training ended"):
        gen.continuer(plan, None)


def test_continuation_level_settings_are_checked() -> None:
    base = {**config_defaults(), "CONTEXT_FRACTIONS": ()}
    with pytest.raises(ScalodiffError, match="CONTINUATION_LEVEL='fitted'"):
        apply_preset({**base, "CONTINUATION_LEVEL": "fitted"}, cuda_available=False)
    assert apply_preset(base, cuda_available=False)["CONTINUATION_LEVEL"] == "off"
    assert apply_preset(config_defaults(), cuda_available=False)["CONTINUATION_LEVEL"] == "fitted"
