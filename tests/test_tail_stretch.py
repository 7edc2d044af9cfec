"""The tail stretch: generated returns' tails lined up with the training returns' (models/calibration.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import generate
import train
from data.returns import ReturnNormalizer
from evaluation.metrics import hill_tail_index
from models.calibration import fit_tail_side, fit_tail_stretch
from utils import checkpoint as ckpt
from utils.errors import ScalodiffError
from utils.settings import apply_preset, config_defaults


def stretched(start: tuple[float, float], power: tuple[float, float]) -> ReturnNormalizer:
    norm = ReturnNormalizer().fit(np.random.default_rng(0).standard_normal(1000))
    norm.tail_start, norm.tail_power = start, power
    return norm


def test_stretch_moves_generated_tails_only_and_real_values_round_trip() -> None:
    norm = stretched((2.0, 3.0), (1.5, 0.8))
    z = np.linspace(-8, 8, 1601)
    out = norm.stretch_tails(z)
    inside = (z >= -2.0) & (z <= 3.0)
    assert np.array_equal(out[inside], z[inside])  # the body is untouched
    assert np.all(np.diff(out) > 0)  # increasing: no two returns swap places
    assert out[0] == pytest.approx(-2.0 * 4.0**1.5) and out[-1] == pytest.approx(
        3.0 * (8 / 3) ** 0.8
    )
    # continuous at both starts
    assert norm.stretch_tails(np.array([-2.0 - 1e-9, 3.0 + 1e-9])) == pytest.approx([-2.0, 3.0])
    r = np.random.default_rng(1).standard_t(3, 5000) * norm.scale
    back = norm.inverse(norm.transform(r, dtype=np.float64))
    np.testing.assert_allclose(back, r, rtol=1e-12, atol=0)  # real values are never stretched
    gen = norm.inverse(norm.transform(r, dtype=np.float64), generated=True)
    assert np.abs(gen).max() > np.abs(r).max()


def test_stretch_is_saved_and_restored_and_old_records_have_none() -> None:
    norm = stretched((2.5, 2.7), (1.3, 1.1))
    again = ReturnNormalizer.from_json(json.loads(json.dumps(norm.to_json())))
    assert again.tail_start == (2.5, 2.7) and again.tail_power == (1.3, 1.1)
    z = np.linspace(-9, 9, 99)
    assert np.array_equal(again.stretch_tails(z), norm.stretch_tails(z))
    old = norm.to_json()
    del old["tail_start"], old["tail_power"]  # checkpoints written before the stretch
    assert np.array_equal(ReturnNormalizer.from_json(old).stretch_tails(z), z)


def test_an_unequal_stretch_keeps_the_generated_mean() -> None:
    rng = np.random.default_rng(4)
    real, generated = rng.standard_t(3, 8000), rng.standard_t(8, 32000) + 0.05
    real[real < 0] = -(np.abs(real[real < 0]) ** 1.4)  # falls with a heavier tail than rises
    norm = ReturnNormalizer().fit(real)
    norm.tail_shift = 1.0  # a stale shift does not enter the fit
    fit = fit_tail_stretch(generated * norm.scale, real * norm.scale, norm)
    assert fit["power"][0] > fit["power"][1] + 0.05
    unshifted = ReturnNormalizer.from_json({**norm.to_json(), "tail_shift": 0.0})
    assert unshifted.stretch_tails(generated).mean() - generated.mean() == pytest.approx(
        fit["shift"], rel=1e-9
    )
    assert fit["shift"] < -0.003  # the heavier negative side pulled the mean down
    assert norm.stretch_tails(generated).mean() == pytest.approx(generated.mean(), abs=1e-12)
    again = ReturnNormalizer.from_json(json.loads(json.dumps(norm.to_json())))
    assert again.tail_shift == fit["shift"]
    assert norm.to_json()["version"] == 3
    old = {**norm.to_json(), "version": 1}
    del old["tail_shift"]  # a version 1 record samples as it was written: no shift
    assert ReturnNormalizer.from_json(old).tail_shift == 0.0
    with pytest.raises(ScalodiffError, match="reads versions"):
        ReturnNormalizer.from_json({**norm.to_json(), "version": 4})


def test_gaussian_against_gaussian_keeps_a_near_identity_stretch() -> None:
    for seed in range(3):
        rng = np.random.default_rng(seed)
        start, power = fit_tail_side(
            np.abs(rng.standard_normal(30000)), np.abs(rng.standard_normal(5000))
        )
        assert abs(power - 1.0) < 0.1 and 1.5 < start < 2.3


def test_a_thin_generated_tail_is_stretched_to_the_real_tail_index() -> None:
    rng = np.random.default_rng(3)
    real, generated = rng.standard_t(3, 8000), rng.standard_t(8, 32000)
    norm = ReturnNormalizer().fit(real)
    fit = fit_tail_stretch(generated * norm.scale, real * norm.scale, norm)
    assert min(fit["power"]) > 1.2 and fit["n"] == generated.size
    before, after = hill_tail_index(generated), hill_tail_index(norm.stretch_tails(generated))
    assert abs(after - hill_tail_index(real)) < 0.35 < abs(before - hill_tail_index(real))
    # a generated tail heavier than the real one is pulled in
    assert max(fit_tail_stretch(real * norm.scale, generated * norm.scale, norm)["power"]) < 0.9
    assert fit_tail_side(np.ones(50), np.ones(50)) == (1.0, 1.0)  # too few values for a tail


def test_training_fits_saves_and_prints_the_stretch(tmp_path: Path, tiny, capsys) -> None:
    flags = tiny(MAX_STEPS=2, WINDOW_SIZE=64, EDGE_MARGIN=4, LOCAL_VOL_WINDOW=7, SCALES=5)
    assert train.main([*flags, "--data", "sp500", "--run-name", "r"]) == 0
    said = capsys.readouterr().out
    assert "TAIL_STRETCH = fitted): powers" in said and "the drift kept" in said
    step = ckpt.list_checkpoints(tmp_path / "r")[-1]
    saved = json.loads((step / "normalizer.json").read_text())
    assert len(saved["tail_start"]) == 2 and all(0.5 <= p <= 2.0 for p in saved["tail_power"])
    shift = saved["tail_shift"] * saved["scale"]
    assert shift != 0.0
    assert "tails by level: residual kurtosis" in said and len(saved["level_shape"]["powers"]) == 3
    # The same seeds without the stretch (the level shape off in both): moved by the shift
    # alone inside the starts, more beyond them.
    paths = {}
    shapeless = {**saved, "level_shape": None}
    for name, record in (("fitted", shapeless), ("off", {**shapeless, "tail_start": None})):
        (step / "normalizer.json").write_text(json.dumps(record))
        out = tmp_path / f"{name}.npy"
        argv = [*tiny(), "--checkpoint", str(step), "--out", str(out), "--no-plot", "--n", "32"]
        assert generate.main(argv) == 0
        paths[name] = np.load(out).astype(np.float64)
    z = paths["off"] / saved["scale"]
    inside = (z > -saved["tail_start"][0]) & (z < saved["tail_start"][1])
    np.testing.assert_allclose(
        paths["fitted"][inside], paths["off"][inside] - shift, rtol=1e-5, atol=1e-9
    )
    beyond = paths["fitted"][~inside] - (paths["off"][~inside] - shift)
    assert (~inside).any() and not np.allclose(beyond, 0.0)


def test_tail_stretch_settings_are_checked() -> None:
    base = config_defaults()
    with pytest.raises(ScalodiffError, match="TAIL_STRETCH=1.3"):
        apply_preset({**base, "TAIL_STRETCH": 1.3}, cuda_available=False)
    with pytest.raises(ScalodiffError, match="CONDITION = 'asset'"):
        apply_preset({**base, "TAIL_STRETCH": "fitted", "CONDITION": "asset"}, cuda_available=False)
    assert apply_preset({**base, "CONDITION": "asset"}, cuda_available=False)["TAIL_STRETCH"] == 1.0
    assert apply_preset(dict(base), cuda_available=False)["TAIL_STRETCH"] == "fitted"
