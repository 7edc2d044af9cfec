"""Conditional generation: labels, class embeddings, classifier-free guidance, several assets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import UNet2DModel

import generate
import train
from benchmarks import conditional as bench
from data.labels import (
    Conditioning,
    check_quantiles,
    fit_conditioning,
    periods_per_year,
    window_measure,
)
from data.readers import load_prices
from data.returns import ReturnNormalizer, log_returns, split_by_time
from data.training_data import prepare_training_data, split_sources
from data.windows import StackedWindows, model_window, windows_view
from models.conditioning import Request, label_tensors, resolve_request
from models.diffusion import denoise, make_sampler, sample
from utils import checkpoint as ckpt
from utils.errors import ScalodiffError
from utils.paths_io import read_paths
from utils.settings import SettingsParser, apply_preset, config_defaults


def three_regimes(seed: int = 0, n: int = 600) -> np.ndarray:
    """Returns whose volatility steps up twice, fivefold each time: 0.2%, 1%, 5% a step."""
    rng = np.random.default_rng(seed)
    return np.concatenate([s * rng.standard_normal(n) for s in (0.002, 0.01, 0.05)])


def test_vol_terciles_are_ordered_fitted_on_the_windows_and_survive_json() -> None:
    r = three_regimes()
    measure = window_measure("vol-regime", r, 20, 20, None)  # 30 windows per regime
    direct = np.sqrt(np.mean(windows_view(r, 20, 20) ** 2, axis=1))
    np.testing.assert_allclose(measure, direct, rtol=1e-10)
    spec = fit_conditioning("vol-regime", measure, None, None, 0.1)
    assert spec.classes == ["low", "mid", "high"]
    assert 0.002 < spec.edges[0] < 0.01 < spec.edges[1] < 0.05
    labels = spec.labels_for(measure)
    assert labels.tolist() == [0] * 30 + [1] * 30 + [2] * 30
    medians = [s["median"] for s in spec.stats]
    assert medians == sorted(medians) and [s["count"] for s in spec.stats] == [30, 30, 30]
    again = Conditioning.from_json(json.loads(json.dumps(spec.to_json())))
    assert again == spec
    np.testing.assert_array_equal(again.labels_for(measure), labels)


def test_trend_classes_and_user_quantiles() -> None:
    rng = np.random.default_rng(1)
    r = np.concatenate([d + 0.001 * rng.standard_normal(200) for d in (-0.01, 0.0, 0.01)])
    measure = window_measure("trend", r, 10, 10, None)
    spec = fit_conditioning("trend", measure, None, None, 0.1)
    assert spec.classes == ["down", "flat", "up"]
    assert spec.labels_for(measure).tolist() == [0] * 20 + [1] * 20 + [2] * 20
    halves = fit_conditioning("vol-regime", np.arange(100.0), (0.5,), None, 0.0)
    assert halves.classes == ["low", "high"] and halves.edges == [49.5]
    four = fit_conditioning("trend", np.arange(100.0), (0.25, 0.5, 0.75), None, 0.0)
    assert four.classes == ["q1", "q2", "q3", "q4"]
    for bad in [(0.5, 0.2), (0.0, 0.5), (1.2,), ()]:
        with pytest.raises(ScalodiffError, match="CONDITION_QUANTILES"):
            check_quantiles(bad)


def test_realized_vol_rank_and_annualization() -> None:
    assert periods_per_year(pd.bdate_range("2020-01-01", periods=50)) == 252
    assert periods_per_year(pd.date_range("2020-01-01", periods=50, freq="W")) == 52
    assert periods_per_year(pd.date_range("2020-01-01", periods=50, freq="min")) is None
    measure = window_measure("realized-vol", three_regimes(), 20, 5, 252)
    spec = fit_conditioning("realized-vol", measure, None, 252, 0.1)
    encoded = spec.labels_for(np.sort(measure))
    assert encoded[0] == 0 and encoded[-1] == 1000 and np.all(np.diff(encoded) >= 0)
    # Annualized: a 1% daily RMS is about 16% a year.
    assert window_measure("realized-vol", np.full(20, 0.01), 20, 1, 252)[0] == pytest.approx(
        0.01 * np.sqrt(252)
    )


def tiny_unet(**kwargs: object) -> UNet2DModel:
    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=(8, 16),
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        **kwargs,
    ).eval()


@pytest.mark.parametrize(
    ("kwargs", "labels", "null"),
    [
        ({"num_class_embeds": 4}, torch.tensor([0, 2, 1]), torch.full((3,), 3)),
        (
            {"class_embed_type": "timestep"},
            torch.tensor([0.0, 500.0, 999.0]),
            torch.full((3,), -1000.0),
        ),
    ],
)
def test_guidance_batch_equals_separate_forwards(kwargs, labels, null) -> None:
    unet = tiny_unet(**kwargs)
    x, t = torch.randn(3, 1, 8, 16, generator=torch.Generator().manual_seed(1)), torch.tensor(10)
    with torch.no_grad():
        cond = unet(x, t, class_labels=labels).sample
        uncond = unet(x, t, class_labels=null).sample
        assert not torch.allclose(cond, uncond, atol=1e-4)  # the label reaches the output
        guided = denoise(unet, x, t, labels, null, 2.5)
        torch.testing.assert_close(guided, uncond + 2.5 * (cond - uncond), rtol=1e-4, atol=1e-5)
        assert torch.equal(denoise(unet, x, t, labels, null, 1.0), cond)
        assert torch.equal(denoise(unet, x, t, labels, null, 0.0), uncond)


def test_per_sample_seeds_hold_with_guidance() -> None:
    unet = tiny_unet(num_class_embeds=3)
    config = {
        "num_train_timesteps": 50,
        "beta_schedule": "squaredcos_cap_v2",
        "prediction_type": "v_prediction",
        "clip_sample": False,
    }
    seeds, labels = [11, 12, 13, 14], torch.tensor([0, 1, 0, 1])
    null = torch.full((4,), 2)
    for name in ("dpm", "ddpm"):
        sampler = make_sampler(name, config)
        batch = sample(unet, sampler, seeds, 3, class_labels=labels, null_labels=null, guidance=2.0)
        for i, seed in enumerate(seeds):
            one = sample(
                unet,
                sampler,
                [seed],
                3,
                class_labels=labels[i : i + 1],
                null_labels=null[i : i + 1],
                guidance=2.0,
            )
            torch.testing.assert_close(one[0], batch[i], rtol=0, atol=1e-5)
        other = sample(
            unet, sampler, seeds, 3, class_labels=1 - labels, null_labels=null, guidance=2.0
        )
        assert not torch.allclose(other, batch, atol=1e-4)  # same noise, other label: other paths


def test_unconditional_sampling_ignores_guidance() -> None:
    unet = tiny_unet()
    config = {"num_train_timesteps": 50, "prediction_type": "v_prediction", "clip_sample": False}
    sampler = make_sampler("dpm", config)
    assert torch.equal(
        sample(unet, sampler, [1, 2], 3), sample(unet, sampler, [1, 2], 3, guidance=3.0)
    )


def test_train_vol_regime_generate_each_class_resume_and_benchmark(
    tmp_path: Path, tiny, capsys
) -> None:
    flags = [*tiny(MAX_STEPS=2, MAX_MINUTES=1000), "--data", "sp500", "--condition", "vol-regime"]
    assert train.main([*flags, "--run-name", "r"]) == 0
    step = ckpt.list_checkpoints(tmp_path / "r")[-1]
    spec = Conditioning.from_json(json.loads((step / "conditioning.json").read_text()))
    # The edges are the terciles of the training windows' annualized realized vol, measured
    # on the part generation keeps: windows of 32 + 2 x 2 (the preset's margin) without margins.
    train_r, _ = split_by_time(log_returns(load_prices("sp500").values), 0.8)
    n_windows = (len(train_r) - 36) // 4 + 1
    measure = window_measure("vol-regime", train_r[2:], 32, 4, 252)[:n_windows]
    np.testing.assert_allclose(spec.edges, np.quantile(measure, [1 / 3, 2 / 3]), rtol=1e-12)
    assert spec.periods_per_year == 252 and 0.05 < spec.edges[0] < spec.edges[1] < 0.5
    unet_config = json.loads((step / "unet" / "config.json").read_text())
    assert unet_config["num_class_embeds"] == 4  # three regimes and the null label

    paths = {}
    for name in ("low", "high", None):
        out = tmp_path / f"{name}.npy"
        ask = ["--condition", name, "--guidance", "2"] if name else []
        assert generate.main([*tiny(), *ask, "--seed", "3", "--out", str(out), "--no-plot"]) == 0
        paths[name] = read_paths(out)
        assert paths[name].shape == (6, 32) and np.isfinite(paths[name]).all()
    printed = capsys.readouterr().out
    assert "high   realized vol median" in printed and "inside the real IQR" in printed
    assert "unconditional (the null label)" in printed
    assert not np.allclose(paths["low"], paths["high"])

    # Resuming keeps the saved edges and the label path.
    assert train.main([*tiny(MAX_STEPS=3), "--save-dir", str(tmp_path), "--resume"]) == 0
    resumed = ckpt.list_checkpoints(tmp_path / "r")[-1]
    assert resumed.name == "step-000003"
    assert json.loads((resumed / "conditioning.json").read_text()) == spec.to_json()

    rows = bench.main(
        ["--checkpoint", str(tmp_path / "r"), "--n", "2", "--steps", "2", "--guidance", "1", "2"]
    )["classes"]
    assert [r["class"] for r in rows] == ["low", "mid", "high"] * 2
    assert all(0.0 <= r["inside_iqr"] <= 1.0 for r in rows)
    # Every path is below, inside or above the real IQR, exactly one of them.
    for r in rows:
        assert r["below_iqr"] + r["inside_iqr"] + r["above_iqr"] == pytest.approx(1.0)
    assert "fewest inside the real IQR" in capsys.readouterr().out


def test_bad_condition_names_are_one_line_errors(tmp_path: Path, tiny, capsys) -> None:
    assert train.main([*tiny(MAX_STEPS=1), "--data", "sp500", "--condition", "volregime"]) == 2
    err = capsys.readouterr().err
    assert "did you mean vol-regime" in err and len(err.strip().splitlines()) == 1

    assert train.main([*tiny(MAX_STEPS=1), "--data", "sp500", "--run-name", "plain"]) == 0
    assert generate.main([*tiny(), "--condition", "high", "--no-plot"]) == 2
    assert "trained without conditioning" in capsys.readouterr().err

    flags = [*tiny(MAX_STEPS=1), "--data", "sp500", "--condition", "trend", "--run-name", "t"]
    assert train.main(flags) == 0
    capsys.readouterr()  # the training's progress bar
    ckpt_flag = ["--checkpoint", str(tmp_path / "t"), "--no-plot"]
    for ask, words in [
        (["--condition", "upp"], ["'upp'", "did you mean 'up'", "down, flat, up"]),
        (["--realized-vol", "0.2"], ["conditioned on trend", "--condition"]),
        (["--realized-vol", "abc"], ["--realized-vol", "abc"]),
        (["--condition", "up", "--guidance", "-1"], ["GUIDANCE"]),
    ]:
        assert generate.main([*tiny(), *ckpt_flag, *ask]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
        for word in words:
            assert word in err, (ask, err)


def test_bad_settings_for_conditioning() -> None:
    parser = SettingsParser(prog="x")
    for item, word in [
        ("CONDITION_DROP=1.5", "CONDITION_DROP"),
        ("CONDITION_QUANTILES=(0.7,0.3)", "increasing"),
        ("CONDITION=asset-id", "did you mean asset"),
    ]:
        with pytest.raises(ScalodiffError, match=word):
            parser.parse(["--set", item])
    assert config_defaults()["CONDITION"] is None


def write_prices(path: Path, seed: int, scale: float, n: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    prices = 100 * np.exp(np.cumsum(scale * rng.standard_normal(n)))
    pd.DataFrame({"Close": prices}).to_csv(path, index=False)
    return prices


def test_several_series_windows_never_straddle_and_keep_their_scale(tmp_path: Path) -> None:
    folder = tmp_path / "assets"
    folder.mkdir()
    a = write_prices(folder / "calm.csv", 0, 0.005)
    b = write_prices(folder / "wild.csv", 1, 0.03, n=200)
    (folder / "notes.md").write_text("not prices")
    settings = apply_preset(
        {
            **config_defaults(),
            "CSV_PATH": str(folder),
            "CONDITION": "asset",
            "WINDOW_SIZE": 16,
            "STRIDE": 3,
        },
        cuda_available=False,
    )
    data = prepare_training_data(settings, settings["CSV_PATH"])
    spec, windows = data.conditioning, data.windows
    assert spec.classes == ["calm", "wild"] and isinstance(windows, StackedWindows)
    scales = [a_["normalizer"]["scale"] for a_ in spec.assets]
    assert scales[1] > 4 * scales[0]  # each series its own normalizer
    trains = [split_by_time(np.diff(np.log(prices)), 0.8)[0] for prices in (a, b)]
    z = [
        ReturnNormalizer.from_json(spec.assets[k]["normalizer"]).transform(trains[k])
        for k in (0, 1)
    ]
    everything = windows[np.arange(len(windows))]
    series = windows.series_of(np.arange(len(windows)))
    np.testing.assert_array_equal(series, data.labels)
    for i, (w, k) in enumerate(zip(everything, series, strict=True)):
        start = (i - windows.offsets[k]) * 3
        size = model_window(settings)  # the preset's margins included
        np.testing.assert_array_equal(w, z[k][start : start + size])  # one piece of one series
    real = data.train_returns
    for k, prices in enumerate((a, b)):
        part = real[spec.assets[k]["real_start"] : spec.assets[k]["real_stop"]]
        np.testing.assert_allclose(part, trains[k])
        assert spec.assets[k]["last_train_price"] == prices[len(part)]

    two = tmp_path / "two.csv"
    pd.DataFrame({"x": a, "y": a[::-1].copy()}).to_csv(two, index=False)
    assert split_sources(str(two), "x,y") == [(str(two), "x"), (str(two), "y")]
    by_column = prepare_training_data({**settings, "COLUMN": "x,y"}, str(two))
    assert by_column.conditioning.classes == ["x", "y"]
    with pytest.raises(ScalodiffError, match="CONDITION='asset'"):
        prepare_training_data({**settings, "CONDITION": None}, str(folder))
    with pytest.raises(ScalodiffError, match="needs several series"):
        prepare_training_data({**settings, "COLUMN": "x"}, str(two))


def test_train_sp500_and_nasdaq_generate_per_asset(tmp_path: Path, tiny, capsys) -> None:
    assert train.main([*tiny(MAX_STEPS=1), "--data", "sp500,nasdaq", "--run-name", "u"]) == 2
    assert "CONDITION='asset'" in capsys.readouterr().err
    flags = [*tiny(MAX_STEPS=2), "--data", "sp500,nasdaq", "--condition", "asset"]
    assert train.main([*flags, "--run-name", "m"]) == 0
    step = ckpt.list_checkpoints(tmp_path / "m")[-1]
    spec = Conditioning.from_json(json.loads((step / "conditioning.json").read_text()))
    assert spec.classes == ["sp500", "nasdaq"]
    assert spec.assets[1]["std"] > spec.assets[0]["std"]  # NASDAQ moves more
    request = resolve_request(spec, None, None, "nasdaq")
    labels, null = label_tensors(spec, request, 3)
    assert labels.tolist() == [1, 1, 1] and null.tolist() == [2, 2, 2]
    out = tmp_path / "nasdaq.csv"
    assert generate.main([*tiny(), "--asset", "nasdaq", "--out", str(out), "--no-plot"]) == 0
    path0 = pd.read_csv(out).query("path == 0")
    start = path0.price.iloc[0] / np.exp(path0.log_return.iloc[0])  # the price before step 0
    assert start == pytest.approx(spec.assets[1]["last_train_price"])
    assert generate.main([*tiny(), "--no-plot"]) == 2
    assert "--asset (sp500, nasdaq)" in capsys.readouterr().err
    assert generate.main([*tiny(), "--asset", "wti", "--no-plot"]) == 2


def test_labels_decide_the_level_and_the_null_label_follows_vol_level() -> None:
    assert generate.level_source("fitted", Request(2, "high")) == "model"
    assert generate.level_source("fitted", Request(None, "uncond")) == "fitted"
    assert generate.level_source("fitted", None) == "fitted"
    assert generate.level_source(None, Request(None, "uncond")) == "model"
