"""Joint models of several series: alignment, the stacked transform, files, figures, scripts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import generate
import train
from data.cleaning import PriceSeries
from data.joint import align_prices, joint_windows
from evaluation.joint_metrics import joint_figures, pair_figures, std_ratios, tail_dependence
from tests.conftest import tiny_settings
from tests.test_bad_input import fails, price_csv
from transforms.joint import JointScalogram
from transforms.volatility import VolatilityScalogram, transform_from_json
from transforms.wavelet import Scalogram
from utils import checkpoint as ckpt
from utils.errors import ScalodiffError
from utils.joint_paths_io import read_joint_paths, write_joint_paths

FAST = ["--n", "5", "--batch-size", "3", "--steps", "2", "--no-progress"]


def series(name: str, dates: list[str], prices: list[float]) -> PriceSeries:
    return PriceSeries(np.array(prices), pd.DatetimeIndex(pd.to_datetime(dates)), name, name)


# ------------------------------------------------------------------ alignment


def test_different_holidays_drop_folds_the_move_into_the_next_common_day() -> None:
    us = series("us", ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"], [1, 2, 4, 8])
    uk = series("uk", ["2020-01-02", "2020-01-06", "2020-01-07", "2020-01-08"], [10, 20, 40, 80])
    aligned = align_prices([us, uk], "drop")
    assert list(aligned.timestamps.strftime("%m-%d")) == ["01-02", "01-06", "01-07"]
    assert aligned.dropped == [1, 1]  # us loses 01-03, uk 01-08
    returns = np.diff(np.log(aligned.prices), axis=0)
    # us's move over its extra day folds into 01-06: log(4 / 1); prices stay exact.
    assert returns[0, 0] == pytest.approx(np.log(4.0))
    assert aligned.prices[:, 0].tolist() == [1, 4, 8]
    assert "us: 1 dropped; uk: 1 dropped" in aligned.describe()


def test_different_holidays_ffill_carries_the_closed_market_flat() -> None:
    us = series("us", ["2020-01-02", "2020-01-03", "2020-01-06"], [1, 2, 4])
    uk = series("uk", ["2020-01-02", "2020-01-06", "2020-01-07"], [10, 20, 40])
    aligned = align_prices([us, uk], "ffill")
    # the common span ends at us's last date; uk's 01-03 holiday is carried from 01-02.
    assert list(aligned.timestamps.strftime("%m-%d")) == ["01-02", "01-03", "01-06"]
    assert aligned.prices[:, 1].tolist() == [10, 10, 20]
    assert aligned.filled == [0, 1]
    assert aligned.dropped == [0, 1]


def test_a_series_that_stops_early_ends_the_common_span() -> None:
    dates = pd.date_range("2020-01-01", periods=10, freq="D").strftime("%Y-%m-%d").tolist()
    long = series("long", dates, list(range(1, 11)))
    short = series("short", dates[2:6], [5, 6, 7, 8])
    aligned = align_prices([long, short])
    assert aligned.timestamps[0] == pd.Timestamp(dates[2])
    assert aligned.timestamps[-1] == pd.Timestamp(dates[5])
    assert aligned.dropped == [6, 0]
    assert aligned.outside == [6, 0]
    assert "long: 6 dropped (6 outside the span)" in aligned.describe()


def test_alignment_refusals_name_the_series() -> None:
    a = series("a", ["2020-01-02", "2020-01-03"], [1, 2])
    late = series("late", ["2021-01-02", "2021-01-03"], [1, 2])
    with pytest.raises(ScalodiffError, match="share no dates.*late: 2021-01-02"):
        align_prices([a, late])
    timed = series("timed", ["2020-01-02 16:00", "2020-01-03 16:00"], [1, 2])
    with pytest.raises(ScalodiffError, match="share 0 timestamps"):
        align_prices([a, timed])
    undated = PriceSeries(np.array([1.0, 2.0]), None, "nodates", "/x/nodates.csv")
    with pytest.raises(ScalodiffError, match="nodates.csv has no date column"):
        align_prices([a, undated])
    with pytest.raises(ScalodiffError, match="two or more series"):
        align_prices([a])
    with pytest.raises(ScalodiffError, match="JOINT_GAPS='fill'"):
        align_prices([a, a], "fill")


def test_joint_windows_hold_the_same_days_for_every_series() -> None:
    z = np.arange(24.0).reshape(2, 12)
    w = joint_windows(z, 5, 3)
    assert w.shape == (3, 2, 5)
    assert np.array_equal(w[:, 1] - w[:, 0], np.full((3, 5), 12.0))
    assert np.array_equal(w[2, 0], np.arange(6.0, 11.0))


# ------------------------------------------------------------------ transform


def joint_transform(n_assets: int = 2, margin: int = 2) -> tuple[JointScalogram, torch.Tensor]:
    parts = [
        VolatilityScalogram(Scalogram(window_size=36, n_scales=6), margin=margin)
        for _ in range(n_assets)
    ]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, n_assets, 36, dtype=torch.float64, generator=gen)
    x = x * torch.linspace(0.5, 2.0, 40)[:, None, None] * torch.arange(1, n_assets + 1)[:, None]
    return JointScalogram(parts).fit(x), x


def test_joint_transform_stacks_channels_and_inverts_each_series_exactly() -> None:
    tr, x = joint_transform(3)
    images = tr.forward(x)
    assert images.shape == (40, 3, 8, 36)
    # series 1's channel is series 1's own image, with its own fitted scales
    assert torch.allclose(images[:, 1:2], tr.parts[1].forward(x[:, 1]))
    assert torch.allclose(tr.inverse(images), x[:, :, 2:-2], atol=1e-9)
    again = transform_from_json(tr.to_json())
    assert isinstance(again, JointScalogram)
    assert torch.allclose(again.inverse(images), x[:, :, 2:-2], atol=1e-9)


def test_joint_levels_are_drawn_together_from_one_training_window() -> None:
    tr, x = joint_transform(2)
    rows = tr.draw_rows(list(range(50))).numpy()
    assert rows.shape == (50, 2)
    # every drawn pair is the pair of levels of one training window, so levels co-move
    known = {tuple(np.round(r, 12)) for r in tr.level_rows}
    assert all(tuple(np.round(r, 12)) in known for r in rows)
    assert np.corrcoef(tr.level_rows.T)[0, 1] > 0.9  # the windows' levels rose together


def test_joint_transform_refuses_windows_of_another_shape() -> None:
    tr, x = joint_transform(2)
    with pytest.raises(ScalodiffError, match=r"takes windows \[B, 2, L\]"):
        tr.forward(x[:, 0])
    with pytest.raises(ScalodiffError, match="joint images of shape"):
        tr.inverse(torch.zeros(3, 1, 8, 36))


# ------------------------------------------------------------------ files


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_joint_files_round_trip(tmp_path: Path, suffix: str) -> None:
    r = np.random.default_rng(0).normal(0, 0.01, (4, 3, 7))
    out = write_joint_paths(tmp_path / f"p{suffix}", r, ["b", "a", "c"], [100.0, 5.0, 1.0])
    back, names = read_joint_paths(out)
    assert back.shape == (4, 3, 7)
    assert np.allclose(back, r, atol=1e-6)
    if suffix == ".npy":
        assert names is None and np.load(out).dtype == np.float32
    else:
        assert names == ["b", "a", "c"]
        frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
        assert list(frame.columns) == ["path", "asset", "step", "log_return", "price"]
        first = frame[(frame.path == 0) & (frame.asset == "a")]
        assert first.price.iloc[0] == pytest.approx(5.0 * np.exp(r[0, 1, 0]))


def test_joint_files_refuse_a_mismatched_shape(tmp_path: Path) -> None:
    with pytest.raises(ScalodiffError, match=r"shape \(N, 2, L\)"):
        write_joint_paths(tmp_path / "p.csv", np.zeros((2, 3, 4)), ["a", "b"], [1.0, 1.0])


# ------------------------------------------------------------------ figures


def correlated(rho: float, n: int = 400, length: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2, length))
    z[:, 1] = rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]
    return z


def test_cross_asset_figures_see_dependence() -> None:
    strong, none = pair_figures(correlated(0.9), 0, 1), pair_figures(correlated(0.0), 0, 1)
    assert strong["corr"] == pytest.approx(0.9, abs=0.02)
    assert abs(none["corr"]) < 0.02
    assert strong["abs_corr_lag0"] > 0.5 > abs(none["abs_corr_lag0"]) + 0.45
    assert tail_dependence(correlated(0.9), 0, 1) > 8 > 1.5 > tail_dependence(correlated(0.0), 0, 1)


def test_volatility_spillover_shows_at_its_lag() -> None:
    rng = np.random.default_rng(1)
    vol = np.exp(rng.standard_normal((300, 80)))
    x = np.stack([vol * rng.standard_normal((300, 80)), rng.standard_normal((300, 80))], axis=1)
    x[:, 1, 2:] *= vol[:, :-2]  # series 1 takes series 0's volatility two days later
    figs = joint_figures(x)["0-1"]
    assert figs["abs_corr_lag2"] > 0.15 > abs(figs["abs_corr_lag0"]) + 0.1


def test_std_ratios_compare_each_series() -> None:
    real = correlated(0.5)
    gen = real * np.array([1.0, 2.0])[None, :, None]
    assert std_ratios(gen, real) == pytest.approx([1.0, 2.0])


# ------------------------------------------------------------------ scripts


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory, one_thread) -> Path:
    root = tmp_path_factory.mktemp("joint")
    argv = [*tiny_settings(root, MAX_STEPS=2), "--data", "sp500,nasdaq", "--joint"]
    assert train.main([*argv, "--run-name", "j", "--no-progress"]) == 0
    return root / "j"


def test_joint_run_trains_and_generates_joint_files(
    joint_run: Path, tmp_path: Path, capsys
) -> None:
    capsys.readouterr()
    out = tmp_path / "paths.npy"
    assert generate.main(["--checkpoint", str(joint_run), "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "5 joint paths of sp500, nasdaq" in printed
    assert "return correlation, mean over windows" in printed
    paths = np.load(out)
    assert paths.shape == (5, 2, 32) and np.isfinite(paths).all()
    step = ckpt.list_checkpoints(joint_run)[-1]
    saved = json.loads((step / "joint.json").read_text())["assets"]
    # Each series' stretch is fitted on its own returns (a fit on too few gives power 1).
    assert all(1.0 not in a["normalizer"]["tail_power"] for a in saved)
    csv = tmp_path / "paths.csv"
    argv = ["--checkpoint", str(joint_run), "--out", str(csv), "--no-plot", *FAST]
    assert generate.main(argv) == 0
    back, names = read_joint_paths(csv)
    assert names == ["sp500", "nasdaq"]
    assert np.allclose(back, paths, atol=1e-6)  # same seeds, same paths, whatever the format
    assert (tmp_path / "paths.png").stat().st_size > 10_000


def test_joint_long_paths_roll_every_series_together(joint_run: Path, tmp_path: Path) -> None:
    gen = generate.load(joint_run)
    plan = gen.plan(generate.SampleOptions(n=3, steps=2, batch_size=2, progress=False))
    first = gen.generate(plan).returns
    paths = gen.long_paths(plan, 70, known=16, overlap=2)
    assert paths.shape == (3, 2, 70) and np.isfinite(paths).all()
    assert np.array_equal(paths[..., :32], first)  # window 0 is the unconditional window
    # each later window continues both series' last 16 + 2 returns: never altered
    cont = gen.continuer(plan, 16, 2)
    again = cont.window(paths[:, :, :32], [5, 6, 7], slice(0, 3))
    assert again.shape == (3, 2, 32)
    assert np.allclose(again[..., :18], paths[:, :, 14:32])
    frame = gen.sample(2, steps=2, progress=False)
    assert list(frame.columns) == ["path", "asset", "step", "log_return", "price"]
    assert len(frame) == 2 * 2 * 32
    out = tmp_path / "long.csv"
    argv = ["--checkpoint", str(joint_run), "--length", "70", "--out", str(out), "--no-plot"]
    assert generate.main([*argv, *FAST]) == 0
    back, names = read_joint_paths(out)
    assert back.shape == (5, 2, 70) and names == ["sp500", "nasdaq"]


def test_joint_run_refuses_what_it_cannot_serve(joint_run: Path, capsys) -> None:
    line = fails(
        generate.main, ["--checkpoint", str(joint_run), "--context", "sp500", *FAST], capsys
    )
    assert "--context/--context-end/--horizon: not available for a joint checkpoint" in line
    line = fails(
        generate.main, ["--checkpoint", str(joint_run), "--start-price", "5", *FAST], capsys
    )
    assert "--start-price" in line


def test_joint_settings_that_cannot_work_are_one_line_errors(tmp_path: Path, capsys) -> None:
    argv = [*tiny_settings(tmp_path), "--joint", "--data", "sp500,nasdaq"]
    line = fails(train.main, [*argv, "--condition", "asset"], capsys)
    assert "JOINT = True cannot be combined with CONDITION='asset'" in line
    one = fails(train.main, [*tiny_settings(tmp_path), "--joint", "--data", "sp500"], capsys)
    assert "needs two or more series" in one
    ignored = [*tiny_settings(tmp_path), "--data", "sp500", "--set", "JOINT_GAPS=ffill"]
    assert "this run is not one (JOINT = False)" in fails(train.main, ignored, capsys)


def test_a_resumed_joint_run_keeps_its_series_and_scales(joint_run: Path, tmp_path: Path) -> None:
    step2 = json.loads((joint_run / "step-000002" / "joint.json").read_text())
    argv = [*tiny_settings(joint_run.parent, MAX_STEPS=3), "--data", "sp500,nasdaq", "--joint"]
    assert train.main([*argv, "--resume", str(joint_run), "--no-progress"]) == 0
    step3 = json.loads((joint_run / "step-000003" / "joint.json").read_text())

    def kept(record: dict) -> dict:
        # The tail stretch is fitted again when each run ends (on the model as it then is).
        for a in record["assets"]:
            assert a["normalizer"].pop("tail_start") is not None
            a["normalizer"].pop("tail_power")
            a["normalizer"].pop("tail_shift")
        return record

    assert kept(step3) == kept(step2)


def test_a_bad_file_among_several_is_named(tmp_path: Path, capsys) -> None:
    good, _, _ = price_csv(tmp_path / "good.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Close\n2001-01-01,abc\n2001-01-02,xyz\n")
    argv = [*tiny_settings(tmp_path), "--joint", "--data", f"{good},{bad}"]
    line = fails(train.main, argv, capsys)
    assert "bad.csv" in line and "good.csv" not in line


def test_joint_benchmark_scores_every_generator(joint_run: Path, tmp_path: Path, capsys) -> None:
    from benchmarks import joint as bench

    argv = ["--checkpoint", str(joint_run), "--n", "12", "--out", str(tmp_path), "--no-progress"]
    assert bench.main(argv) == 0
    results = json.loads((tmp_path / "joint.json").read_text())
    for name in bench.GENERATORS:
        assert np.load(tmp_path / f"{name}.npy").shape == (12, 2, 32)
        assert set(results[name]["figures"]["0-1"]) >= set(bench.KEYS)
    # the independent control shares series 0 with ours and draws series 1 anew
    ours, independent = np.load(tmp_path / "ours.npy"), np.load(tmp_path / "independent.npy")
    assert np.array_equal(ours[:, 0], independent[:, 0])
    assert not np.allclose(ours[:, 1], independent[:, 1])
    # the bootstrap resamples real days, so its correlation is near the real windows'
    real = results["real"]["0-1"]["corr_pooled"]
    assert abs(results["bootstrap"]["figures"]["0-1"]["corr_pooled"] - real) < 0.1
    assert "targets met" in (tmp_path / "joint.md").read_text()
    assert (tmp_path / "joint.png").stat().st_size > 10_000
