"""The tails: the fitted power transform, the local row's fitted spread, benchmarks/tails.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import generate
import train
from data.builtin import load_builtin
from data.returns import ReturnNormalizer, log_returns
from data.tails import fit_return_power, residual_kurtosis
from data.windows import windows_view
from models.calibration import within_window_std
from transforms.volatility import VolatilityScalogram, transform_from_json
from transforms.wavelet import Scalogram
from utils import checkpoint as ckpt
from utils.errors import ScalodiffError
from utils.settings import apply_preset, coerce, config_defaults

ROOT = Path(__file__).resolve().parents[1]


def test_gaussian_returns_keep_a_near_identity_power() -> None:
    for seed in range(3):
        z = np.random.default_rng(seed).standard_normal(4000)
        assert fit_return_power(z, 288, 21) <= 1.04


def test_heavier_tails_get_a_stronger_power() -> None:
    rng = np.random.default_rng(0)
    powers = [fit_return_power(rng.standard_t(dof, 6000), 288, 21) for dof in (30, 6, 3)]
    assert powers[0] < powers[1] < powers[2] and powers[2] > 1.15
    # The fitted power brings the residual's kurtosis to white noise's (the criterion itself).
    z = rng.standard_t(3, 6000)
    p = fit_return_power(z, 288, 21)
    powered = np.sign(z) * np.abs(z) ** (1 / p)
    noise = np.random.default_rng(1).standard_normal((400, 288))
    got = residual_kurtosis(windows_view(powered, 288, 11), 21)
    assert got == pytest.approx(residual_kurtosis(noise, 21), abs=0.05)


def test_fitted_power_round_trips_exactly_and_is_saved(tmp_path: Path, tiny) -> None:
    flags = tiny(MAX_STEPS=1, RETURN_POWER="fitted", WINDOW_SIZE=64, EDGE_MARGIN=4)
    assert train.main([*flags, "--data", "wti", "--run-name", "r"]) == 0
    step = ckpt.list_checkpoints(tmp_path / "r")[-1]
    saved = json.loads((step / "normalizer.json").read_text())
    r = log_returns(load_builtin("wti").values)
    z = ReturnNormalizer(power=1.0).fit(r[: int(0.8 * len(r))])
    scaled = z.transform(r[: len(r) * 4 // 5], dtype=np.float64)
    assert 1.0 < saved["power"] <= 2.0
    norm = ReturnNormalizer.from_json(saved)
    assert norm.power == saved["power"]
    back = norm.inverse(norm.transform(r, dtype=np.float64))
    np.testing.assert_allclose(back, r, rtol=1e-12, atol=0)
    assert abs(fit_return_power(scaled, 64 + 8, 0) - saved["power"]) < 0.05


def test_local_spread_scales_generated_rows_only() -> None:
    r = log_returns(load_builtin("sp500").values)
    x = torch.from_numpy(np.ascontiguousarray(windows_view(r, 256, 64)))
    tr = VolatilityScalogram(Scalogram(window_size=256, n_scales=13), local_window=21).fit(x)
    img = tr.forward(x)
    tr.local_spread = 1.5
    assert float(((tr.inverse(img) - x).norm(dim=1) / x.norm(dim=1)).max()) < 1e-10
    wider = tr.inverse(img, generated=True)
    again = tr.forward(wider)  # a window of 256 returns, no margin: the same columns
    ratio = within_window_std(again[:, 0, -2]) / within_window_std(img[:, 0, -2])
    assert 1.3 < ratio < 1.7
    assert transform_from_json(json.loads(json.dumps(tr.to_json()))).local_spread == 1.5
    old = tr.to_json()
    del old["local_spread"]  # checkpoints written before the setting existed
    assert transform_from_json(old).local_spread == 1.0


def test_fitted_spread_is_stored_and_printed(tmp_path: Path, tiny, capsys) -> None:
    flags = tiny(
        MAX_STEPS=2, WINDOW_SIZE=64, EDGE_MARGIN=4, LOCAL_VOL_WINDOW=7, SCALES=5,
        CHECKPOINT_EVERY=1, KEEP_CHECKPOINTS=3,
    )  # fmt: skip
    assert train.main([*flags, "--data", "sp500", "--run-name", "r"]) == 0
    printed = capsys.readouterr().out
    first, final = ckpt.list_checkpoints(tmp_path / "r")
    spread = json.loads((final / "transform.json").read_text())["local_spread"]
    assert spread != 1.0 and f"scaled by {spread:.3f} (LOCAL_SPREAD = fitted)" in printed
    assert "returns power" in printed and "fitted to the tails" in printed
    assert ckpt.load_for_sampling(final)["untrained_reference"] is not None
    # A checkpoint saved before the end has no fitted spread, and generate.py says so.
    for step, noted in ((first, True), (final, False)):
        out = tmp_path / f"{step.name}.npy"
        argv = [*tiny(), "--checkpoint", str(step), "--out", str(out), "--no-plot"]
        assert generate.main(argv) == 0
        said = capsys.readouterr().out
        assert ("LOCAL_SPREAD and TAIL_STRETCH = fitted was not fitted" in said) is noted


def test_spread_and_power_settings_are_checked() -> None:
    assert coerce("RETURN_POWER", "fitted") == "fitted"
    assert coerce("LOCAL_SPREAD", "1.2") == 1.2
    with pytest.raises(ScalodiffError, match="or fitted"):
        coerce("RETURN_POWER", "fited")
    settings = {**config_defaults(), "LOCAL_VOL_WINDOW": 0, "LOCAL_SPREAD": 1.3}
    with pytest.raises(ScalodiffError, match="LOCAL_SPREAD=1.3"):
        apply_preset(settings, cuda_available=False)
    quiet = apply_preset({**config_defaults(), "LOCAL_VOL_WINDOW": 0}, cuda_available=False)
    assert quiet["LOCAL_SPREAD"] == 1.0  # nothing to scale: the preset's "fitted" is not used


def test_tails_benchmark_quick_reports_real_figures(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import tails

    assert tails.main(["--quick", "--series", "garch-t", "--out", str(tmp_path)]) == 0
    (result,) = json.loads((tmp_path / "tails.json").read_text())
    step = ckpt.list_checkpoints(tmp_path / "checkpoints" / "garch-t")[-1]
    real = np.load(step / "real_returns.npy")
    assert result["rows"]["real"]["kurtosis"] == pytest.approx(
        float(((real - real.mean()) ** 4).mean() / real.var() ** 2 - 3), rel=1e-9
    )
    assert set(result["rows"]) == {"real", "ours", "untrained", "levels-only", "shuffled"}
    assert result["power"] > 1.1  # a t(3.5) GARCH has heavy tails beyond its clustering
    table = (tmp_path / "tails.md").read_text()
    assert "| garch-t | ours |" in table and "kurtosis" in table and "Hill" in table


def test_conditional_run_fits_the_spread_with_its_null_label(tmp_path: Path, tiny) -> None:
    flags = tiny(MAX_STEPS=1, WINDOW_SIZE=64, EDGE_MARGIN=4, LOCAL_VOL_WINDOW=7, SCALES=5)
    argv = [*flags, "--data", "sp500", "--run-name", "c", "--condition", "vol-regime"]
    assert train.main(argv) == 0
    step = ckpt.list_checkpoints(tmp_path / "c")[-1]
    assert json.loads((step / "transform.json").read_text())["local_spread"] != 1.0
    assert ckpt.load_for_sampling(step)["untrained_reference"] is None  # unconditional only
