"""Continuation, long paths and scenarios: what a user of --length and --context sees.

One tiny context model (window 32, margin 2, a few training steps) serves every
test; an untrained-for-long model is enough to check the mechanics: known
returns come back exactly, rolling does not depend on the batch, lengths of any
size work, and the user's mistakes get one-line errors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

import generate
import train
from evaluation.long_paths import (
    format_drift,
    join_positions,
    join_profile,
    path_statistics,
    pooled_drift,
    seam_windows,
    window_profile,
    yearly_max_drawdown,
)
from models.continuation import (
    centre_on_drift,
    context_channels,
    extend,
    fitted_level,
    known_lengths,
)
from tests.conftest import tiny_settings
from tests.test_bad_input import fails, price_csv
from transforms.volatility import VolatilityScalogram
from transforms.wavelet import Scalogram
from utils.errors import ScalodiffError

FAST = ["--n", "3", "--batch-size", "3", "--steps", "2", "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_thread) -> Path:
    root = tmp_path_factory.mktemp("roll")
    settings = tiny_settings(root, MAX_STEPS=2, CONTEXT_FRACTIONS="(0.25,0.5,0.75)")
    argv = [*settings, "--data", "sp500", "--run-name", "r"]
    assert train.main([*argv, "--no-progress"]) == 0
    return root / "r"


def test_context_channels_read_only_the_known_returns() -> None:
    tr = VolatilityScalogram(Scalogram(window_size=36, n_scales=5), margin=2)
    x = torch.randn(64, 36, dtype=torch.float64)
    tr.fit(x)
    cols = torch.tensor([0, 10, 20])
    ctx = context_channels(tr, x[:3], cols)
    changed = x[:3].clone()
    changed[:, 20:] += 5.0  # returns after every window's known part
    again = context_channels(tr, changed, cols)
    assert torch.equal(ctx, again)
    assert ctx[0].abs().max() == 0  # no history: all zeros, mask included
    assert ctx[1, -1, :, :10].eq(1).all() and ctx[1, -1, :, 10:].eq(0).all()
    changed[1, 5] += 1.0  # a known return: the context sees it
    assert not torch.equal(context_channels(tr, changed, cols)[1], ctx[1])


def test_known_returns_come_back_exactly(run: Path) -> None:
    gen = generate.load(run)
    plan = gen.plan(generate.SampleOptions(n=3, steps=2, progress=False))
    cont = gen.continuer(plan, None)
    assert cont.known == 16  # nearest WINDOW_SIZE / 2 among the trained 8, 16, 24
    history = np.random.default_rng(0).normal(0, 0.013, (3, 40))
    fit = fitted_level(cont.transform, 2 + 16)
    fit["generated_quantiles"] = None  # the level correction's spread-only form: one factor
    fit["near_slopes"] = None  # and the same for every new return
    window = cont.window(history, [1, 2, 3], slice(0, 3))
    assert window.shape == (3, 32)
    np.testing.assert_array_equal(window[:, :16], history[:, -16:])
    assert np.isfinite(window).all() and np.abs(window[:, 16:]).min() > 0
    # The level follows the context: a history ten times as volatile gives a continuation
    # about ten times as volatile (same seeds, so the same generated shape), times what the
    # fitted level correction (CONTINUATION_LEVEL) makes of a log RMS log 10 higher.
    loud = cont.window(10 * history, [1, 2, 3], slice(0, 3))
    ratio = loud[:, 16:].std() / window[:, 16:].std()
    slopes = fit["slope"] + fit["recent_slope"] + fit["short_slope"]
    moved = slopes - (fit["spread"] - 1) * sum(fit["line"][1:])
    assert 0.9 < ratio / 10 ** (1 + moved) < 1.1


def test_long_paths_same_seed_whatever_the_batch_and_odd_length(run: Path, tmp_path: Path) -> None:
    outs = []
    for batch in ("3", "2"):
        out = tmp_path / f"long{batch}.npy"
        argv = ["--checkpoint", str(run), *FAST, "--batch-size", batch, "--seed", "4"]
        assert generate.main([*argv, "--length", "77", "--out", str(out)]) == 0
        outs.append(np.load(out))
    assert outs[0].shape == (3, 77)
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-6)
    # The first window is today's single-window path with the same seed.
    one = tmp_path / "one.npy"
    argv = ["--checkpoint", str(run), *FAST, "--seed", "4", "--out", str(one), "--no-plot"]
    assert generate.main(argv) == 0
    np.testing.assert_allclose(outs[0][:, :32], np.load(one), rtol=0, atol=1e-7)
    short = tmp_path / "short.npy"
    assert generate.main([*argv[:-3], "--length", "5", "--out", str(short)]) == 0
    assert np.load(short).shape == (3, 5)


def test_extend_rows_do_not_depend_on_the_batch(run: Path) -> None:
    gen = generate.load(run)
    cont = gen.continuer(gen.plan(generate.SampleOptions(n=2, steps=2, progress=False)), 8)
    history = np.random.default_rng(1).normal(0, 0.01, (2, 30))
    both = extend(cont, history, 50, seed=7, batch=2)
    alone = extend(cont, history[1:], 50, seed=7, batch=1)
    assert both.shape == (2, 50)
    # Row 1 sampled alone is row 0 of its call: seeds follow the row index, so it differs...
    assert not np.allclose(alone[0], both[1])
    # ...while the same rows in other batches agree.
    np.testing.assert_allclose(extend(cont, history, 50, seed=7, batch=1), both, atol=1e-6)


def test_overlap_replaces_the_first_generated_returns_with_real_ones(run: Path) -> None:
    gen = generate.load(run)
    plan = gen.plan(generate.SampleOptions(n=3, steps=2, progress=False))
    plain, overlapped = gen.continuer(plan, 16), gen.continuer(plan, 16, overlap=3)
    assert (overlapped.history, overlapped.kept) == (plain.history + 3, 19)
    assert overlapped.new_per_window == plain.new_per_window - 3
    history = np.random.default_rng(2).normal(0, 0.013, (3, 40))
    window = overlapped.window(history, [1, 2, 3], slice(0, 3))
    np.testing.assert_array_equal(window[:, :19], history[:, -19:])
    # The model was given the 16 returns before the last 3: the window plain draws from
    # the history without those 3, with the same seeds, generates the same returns after them.
    same = plain.window(history[:, :-3], [1, 2, 3], slice(0, 3))
    np.testing.assert_allclose(window[:, 19:], same[:, 19:], rtol=1e-6)
    rolled = extend(overlapped, history, 30, seed=5, batch=3)
    assert rolled.shape == (3, 30) and np.isfinite(rolled).all()


def test_scenarios_write_dated_paths_and_a_fan_chart(
    run: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "scen.csv"
    argv = ["--checkpoint", str(run), *FAST, "--context", "sp500", "--context-end", "2010-06-30"]
    argv += ["--n", "16", "--batch-size", "8"]
    assert generate.main([*argv, "--horizon", "20", "--out", str(out)]) == 0
    frame = pd.read_csv(out, parse_dates=["date"])
    assert list(frame.columns) == ["path", "step", "date", "log_return", "price"]
    first = frame[frame.path == 0]
    assert first.date.iloc[0] == pd.Timestamp("2010-07-01")  # the next real trading day
    assert first.date.is_monotonic_increasing and len(first) == 20
    assert out.with_suffix(".png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "realized" in printed and "ms per generated day" in printed
    # By default every day's mean over the scenarios is the training drift, spread kept.
    drift = float(np.mean(generate.load(run).loaded["real_returns"]))
    centred = frame.pivot(index="path", columns="step", values="log_return").to_numpy()
    np.testing.assert_allclose(centred.mean(axis=0), drift, atol=1e-12)
    assert "moved onto the training drift" in printed
    own = tmp_path / "own.csv"
    kept_mean = ["--horizon", "20", "--out", str(own), "--scenario-mean", "model"]
    assert generate.main([*argv, *kept_mean]) == 0
    kept = pd.read_csv(own).pivot(index="path", columns="step", values="log_return").to_numpy()
    assert np.abs(kept.mean(axis=0) - drift).max() > 1e-6  # the model's own mean
    np.testing.assert_allclose(kept.std(axis=0), centred.std(axis=0), rtol=1e-9)
    np.testing.assert_allclose(kept - kept.mean(axis=0) + drift, centred, atol=1e-12)
    few = [*argv, "--n", "15", "--horizon", "5", "--out", str(tmp_path / "few.csv")]
    with monkeypatch.context() as patched:
        patched.setattr(generate, "extend", lambda *a, **k: pytest.fail("sampled, then refused"))
        msg = fails(generate.main, few, capsys)
    assert "16 or more scenarios" in msg and "--scenario-mean model" in msg
    assert generate.main([*few, "--scenario-mean", "model", "--no-plot"]) == 0  # the model's mean


def test_centring_refuses_a_trend_class_it_would_erase() -> None:
    def plan(kind: str | None, label: str | None, n: int = 64) -> SimpleNamespace:
        spec = None if kind is None else SimpleNamespace(kind=kind)
        return SimpleNamespace(
            options=SimpleNamespace(n=n), spec=spec, request=SimpleNamespace(label=label)
        )

    assert generate.check_scenario_mean("drift", plan(None, None))
    # A volatility class asks for a level, not a direction: centring keeps it.
    assert generate.check_scenario_mean("drift", plan("vol-regime", "high"))
    assert generate.check_scenario_mean("drift", plan("trend", None))  # the null label
    assert not generate.check_scenario_mean("model", plan("trend", "up"))
    with pytest.raises(ScalodiffError, match="--condition up asks a trend model"):
        generate.check_scenario_mean("drift", plan("trend", "up"))
    with pytest.raises(ScalodiffError, match="16 or more scenarios"):
        generate.check_scenario_mean("drift", plan(None, None, n=8))


def test_context_errors_are_one_line(run: Path, tmp_path: Path, capsys) -> None:
    base = ["--checkpoint", str(run), *FAST, "--horizon", "5", "--no-plot"]
    base += ["--scenario-mean", "model"]  # three scenarios: too few to centre
    short, _, _ = price_csv(tmp_path / "short.csv", n=12)
    msg = fails(generate.main, [*base, "--context", str(short)], capsys)
    assert "11 returns" in msg and "last 18" in msg  # 16 known, the 2-return margin, no overlap
    assert "JOIN_OVERLAP" in msg
    msg = fails(generate.main, [*base, "--context", "sp500", "--context-end", "1990-01-01"], capsys)
    assert "outside" in msg and "1999-01-04" in msg
    msg = fails(generate.main, [*base, "--context", "sp500", "--context-end", "soon"], capsys)
    assert "not a date" in msg
    gappy, dates, prices = price_csv(tmp_path / "gap.csv", n=200)
    shifted = pd.to_datetime(dates) + pd.to_timedelta([0] * 190 + [60] * 10, unit="D")
    rows = [f"{d:%Y-%m-%d},{p:.4f}" for d, p in zip(shifted, prices, strict=True)]
    gappy.write_text("Date,Close\n" + "\n".join(rows) + "\n")
    msg = fails(generate.main, [*base, "--context", str(gappy)], capsys)
    assert "gap" in msg and "--context-end" in msg
    bad, _, _ = price_csv(tmp_path / "bad.csv", n=100)
    bad.write_text(bad.read_text().replace(bad.read_text().splitlines()[50].split(",")[1], "-3"))
    assert "bad.csv" in fails(generate.main, [*base, "--context", str(bad)], capsys)
    msg = fails(generate.main, [*base, "--context", "sp500", "--known", "10"], capsys)
    assert "8, 16, 24" in msg
    msg = fails(generate.main, [*base, "--context", "sp500", "--overlap", "16"], capsys)
    assert "JOIN_OVERLAP (--overlap) 16" in msg and "below 16" in msg
    assert "--context" in fails(generate.main, [*base], capsys)


def test_model_without_context_samples_and_refuses_to_continue(
    tmp_path: Path, one_thread, capsys
) -> None:
    flags = tiny_settings(tmp_path, MAX_STEPS=1, CONTEXT_FRACTIONS="()")
    assert train.main([*flags, "--data", "sp500", "--run-name", "old", "--no-progress"]) == 0
    unet = generate.load(tmp_path / "old").loaded["unet"]
    assert unet.config.in_channels == unet.config.out_channels == 1
    argv = ["--checkpoint", str(tmp_path / "old"), *FAST, "--no-plot"]
    assert generate.main([*argv, "--out", str(tmp_path / "p.npy")]) == 0
    msg = fails(generate.main, [*argv, "--length", "100", "--out", str(tmp_path / "q.npy")], capsys)
    assert "without context" in msg and "CONTEXT_FRACTIONS" in msg


def test_known_lengths_and_the_setting_check(capsys) -> None:
    assert known_lengths((0.5, 0.25, 0.5), 32) == (8, 16)
    assert known_lengths((), 256) == ()
    msg = fails(train.main, ["--set", "CONTEXT_FRACTIONS=(0.5, 1.0)"], capsys)
    assert "CONTEXT_FRACTIONS" in msg and "between 0 and 1" in msg


def test_long_path_statistics_on_known_series() -> None:
    rng = np.random.default_rng(0)
    iid = rng.standard_normal((40, 1500)) * 0.01
    stats = path_statistics(iid)
    assert abs(np.median(stats["excess kurtosis"])) < 0.2
    assert abs(np.median(stats["ACF |r| lag 1"])) < 0.03
    assert abs(np.median(stats["DFA exponent of |r|"]) - 0.5) < 0.1
    # No crisis in iid paths: their largest month stands a little above their RMS (the largest
    # of 1,480 overlapping months' noise); one month at four times the volatility stands out,
    # wherever it starts (blocks fixed at multiples of 21 would split this one: 2.6).
    assert 1.2 < np.median(stats["largest month's RMS"]) < 1.7
    crisis = iid.copy()
    crisis[:, 200:221] *= 4
    assert np.median(path_statistics(crisis)["largest month's RMS"]) > 3.0
    # One fall of 20% in a year and nothing else: the yearly max drawdown is that fall / 5 years.
    fall = np.zeros((1, 5 * 252))
    fall[0, 10] = np.log(0.8)
    np.testing.assert_allclose(yearly_max_drawdown(fall), [-np.log(0.8) / 5])


def test_pooled_drift_tells_paths_that_lost_the_drift() -> None:
    rng = np.random.default_rng(2)
    train = rng.standard_normal(4000) * 0.01 + 0.0005
    kept = rng.standard_normal((256, 2520)) * 0.01 + train.mean()  # what a generator learns
    drift = pooled_drift(train, {"kept": kept, "lost": kept - 0.0004})
    assert drift["real"] == pytest.approx(train.mean())
    lo, hi = drift["generators"]["kept"]["ci"]
    assert lo <= drift["real"] <= hi and hi - lo < 0.0002  # 645,120 returns pin the mean down
    lo, hi = drift["generators"]["lost"]["ci"]
    assert hi < drift["real"]
    lines = format_drift(drift).splitlines()
    assert "*" not in lines[1] and "kept" in lines[1]
    assert lines[2].split()[1].endswith("*") and "lost" in lines[2]


def test_window_profile_shows_a_level_that_repeats_with_the_windows() -> None:
    rng = np.random.default_rng(3)
    paths = rng.standard_normal((64, 2520))
    assert window_profile(paths, 256, 64) == pytest.approx(np.ones(6), abs=0.05)
    for j in join_positions(2520, 256, 64):
        paths[:, j : j + 64] *= 1.3  # each rolled window loud over its first 64 new returns
    stretches = window_profile(paths, 256, 64)
    assert stretches[:2] == pytest.approx(np.full(2, 1.3 * stretches[3]), rel=0.05)
    assert window_profile(paths[:, :400], 256, 64) is None  # no whole rolled window


def test_seam_windows_sit_on_and_between_joins() -> None:
    paths = np.arange(700, dtype=float)[None, :]
    assert join_positions(700, 256, 128) == [256, 384, 512, 640]
    inside, straddle = seam_windows(paths, 256, 128, width=64)
    assert [w[0] for w in straddle] == [224, 352, 480, 608]
    assert [w[0] for w in inside] == [288, 416, 544]


def test_evaluate_long_paths_table_and_seam(tmp_path: Path, capsys) -> None:
    import evaluate

    iid = np.random.default_rng(1).standard_normal((40, 700)) * 0.012
    np.save(tmp_path / "iid.npy", iid.astype(np.float32))
    argv = ["--real", "sp500", "--synthetic", str(tmp_path / "iid.npy"), "--out", str(tmp_path)]
    assert evaluate.main([*argv, "--window", "256", "--known", "128"]) == 0
    table = json.loads((tmp_path / "long_paths.json").read_text())
    assert set(table["generators"]) == {"iid", "garch-t", "bootstrap"}
    # Gaussian paths have no fat tails: the real S&P 500's kurtosis lies above all of them.
    assert table["generators"]["iid"]["excess kurtosis"]["percentile"] > 95
    drift = table["drift"]
    assert set(drift["generators"]) == {"iid", "garch-t", "bootstrap"}
    assert abs(drift["generators"]["iid"]["mean"]) < 3e-4  # zero-mean paths
    lo, hi = drift["generators"]["bootstrap"]["ci"]
    assert lo <= drift["real"] <= hi  # resampled training returns keep its mean
    np.testing.assert_allclose(table["window_profiles"]["iid"], 1.0, atol=0.15)  # iid: flat
    by_level = table["residual_kurtosis_by_level"]
    assert set(by_level) == {"real", "iid", "garch-t", "bootstrap"}
    assert 2.5 < by_level["iid"][1] < 3.0  # Gaussian over a 21-return RMS: a little thin
    assert by_level["real"][2] < by_level["real"][0] - 0.3  # the S&P 500's loud days: thinner
    seam = table["seams"]["iid"]
    assert seam["n_real"] >= 60 and abs(seam["mean"] - 0.5) < 0.2  # iid: no seams to see
    said = capsys.readouterr().out
    assert "seam test iid" in said and "residual kurtosis by level" in said


def test_scenario_backtest_scores_three_forecasters_and_two_controls_on_held_out_dates(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import scenarios

    dates = scenarios.forecast_dates(1000, 800, 40, 20, None)
    assert dates[0] == 799 and np.all(np.diff(dates) == 20) and dates[-1] + 20 < 1000
    assert len(scenarios.forecast_dates(1000, 800, 40, 20, 3)) == 3
    argv = ["--checkpoint", str(run), "--n", "20", "--dates", "4", "--horizons", "1", "20"]
    assert scenarios.main([*argv, "--out", str(tmp_path), "--no-progress"]) == 0
    result = json.loads((tmp_path / "scenarios.json").read_text())
    drift = float(np.mean(generate.load(run).loaded["real_returns"]))
    assert result["dates"] == 4 and set(result["horizons"]) == {"1", "20"}
    assert result["scenario_mean"] == "drift"  # config.py's default: ours is centred
    for rows in result["horizons"].values():
        assert set(rows) == {
            "ours", "ours, no context", "garch-t", "ours, model's mean", "garch-t, drift mean"
        }  # fmt: skip
        kept, ours = rows["ours, model's mean"], rows["ours"]
        assert kept["spread_ratio"] != ours["spread_ratio"] and kept["crps"] != ours["crps"]
        assert len(ours["crps_minus_mean_control"]) == 3
        # Ours and the no-context row are centred on the drift, the control is not.
        h = 20 if rows is result["horizons"]["20"] else 1
        assert ours["mean"] == pytest.approx(h * drift, rel=1e-9)
        assert rows["ours, no context"]["mean"] == pytest.approx(h * drift, rel=1e-9)
        assert abs(kept["mean"] - h * drift) > 1e-10  # centred ones differ by rounding only
        # GARCH-t centred alike: the same spread as GARCH-t's, the drift's mean.
        garch, centred_garch = rows["garch-t"], rows["garch-t, drift mean"]
        assert centred_garch["mean"] == pytest.approx(h * drift, rel=1e-9)
        assert abs(garch["mean"] - h * drift) > 1e-10
        by_date = np.array(ours["crps_by_date"]) - np.array(centred_garch["crps_by_date"])
        assert len(by_date) == 4 and ours["crps_minus_garch_centred"][0] == pytest.approx(
            by_date.mean(), abs=1e-7
        )
        assert all(r["crps"] > 0 and 0 <= r["ks_p"] <= 1 for r in rows.values())
        assert all(0.1 < r["spread_ratio"] < 10 for r in rows.values())
        assert rows["garch-t"]["crps_minus_garch"] == [0.0, 0.0, 0.0]
    # Centring keeps each date's spread and moves the mean of every day onto the drift.
    x = np.random.default_rng(0).normal(0.3, 1.0, (4, 50, 20)) * np.linspace(1, 3, 4)[:, None, None]
    centred = centre_on_drift(x, 0.01)
    assert np.allclose(centred.mean(axis=1), 0.01)
    assert np.allclose(centred[:, :, :5].sum(axis=2).mean(axis=1), 0.05)
    assert np.allclose(centred.sum(axis=2).std(axis=1), x.sum(axis=2).std(axis=1))
    # 20-day sums spread more than single days, so their CRPS is larger.
    assert result["horizons"]["20"]["garch-t"]["crps"] > result["horizons"]["1"]["garch-t"]["crps"]
    assert "| 20 | ours |" in (tmp_path / "scenarios.md").read_text()
    assert (tmp_path / "pit.png").stat().st_size > 10_000
    assert len(result["horizons"]["1"]["ours"]["pit"]) == 4
    # With the model's own mean the two rows swap: the same scenarios, the same scores.
    own = tmp_path / "own"
    argv1 = [*argv, "--scenario-mean", "model", "--out", str(own), "--no-progress"]
    assert scenarios.main(argv1) == 0
    swapped = json.loads((own / "scenarios.json").read_text())["horizons"]["1"]
    assert set(swapped) == {"ours", "ours, no context", "garch-t", "ours, drift mean"}
    before = result["horizons"]["1"]
    assert swapped["ours"]["crps"] == pytest.approx(before["ours, model's mean"]["crps"], rel=1e-12)
    assert swapped["ours, drift mean"]["crps"] == pytest.approx(before["ours"]["crps"], rel=1e-12)
    assert scenarios.main([*argv[:2], "--n", "5", "--out", str(tmp_path)]) != 0  # too few for VaR
    assert scenarios.main([*argv, "--shocks", "1000", "--out", str(tmp_path)]) != 0  # no such day
    assert "pass a smaller --shocks" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        scenarios.build_parser().parse_args(["--n", "5"])  # --checkpoint is required


def test_scenario_verdicts_use_garch_t_as_the_context_targets_positive_control() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import scenarios

    def row(vs_garch: list[float], vs_plain: list[float]) -> dict:
        var = {"hits": 1, "kupiec_p": 0.5, "christoffersen_p": 0.5}
        return {"ks": 0.1, "ks_p": 0.5, "crps": 0.01, "var0.01": var, "var0.05": var,
                "crps_minus_garch": vs_garch, "crps_minus_no_context": vs_plain,
                "spread_ratio": 1.25}  # fmt: skip

    zero = [0.0, 0.0, 0.0]
    rows = {
        "ours": row([1e-4, -1e-4, 3e-4], [-1e-4, -3e-4, 1e-4]),
        "ours, no context": row(zero, zero),
        "garch-t": row(zero, [-2e-4, -3e-4, -1e-4]),
    }
    result = {"horizons": {"20": rows}}
    (line,) = scenarios.verdicts(result)
    assert "NOT better" in line and "GARCH-t better: -0.0200 [-0.0300, -0.0100]" in line
    rows["garch-t"] = row(zero, [-1e-4, -2e-4, 1e-4])
    assert "GARCH-t not better either" in scenarios.verdicts(result)[0]
    assert "ours - " not in scenarios.verdicts(result)[0]  # a result saved without the control
    result["scenario_mean"] = "model"
    rows["ours"]["crps_minus_mean_control"] = [2e-3, 1e-3, 3e-3]
    assert "scenarios' own mean cost: ours - drift mean +0.2000" in scenarios.verdicts(result)[0]
    rows["ours"]["crps_minus_mean_control"] = [-2e-3, -3e-3, -1e-3]
    assert "own mean helped" in scenarios.verdicts(result)[0]
    rows["ours"]["crps_minus_mean_control"] = [1e-4, -1e-4, 3e-4]  # an interval that holds 0
    assert "own mean neither helped nor cost" in scenarios.verdicts(result)[0]
    result["scenario_mean"] = "drift"  # ours centred: the control keeps the model's mean
    rows["ours"]["crps_minus_mean_control"] = [-2e-3, -3e-3, -1e-3]
    said = scenarios.verdicts(result)[0]
    assert "centring on the drift helped: ours - model's mean -0.2000" in said
    assert "centred on the drift too" not in said  # a result saved without that row
    rows["ours"]["crps_minus_garch_centred"] = [2e-4, 1e-4, 3e-4]
    said = scenarios.verdicts(result)[0]
    assert "vs GARCH-t centred on the drift too +0.0200 x 1e-2 (WORSE: +0.0200 [+0.0100" in said
    rows["ours"]["crps_minus_garch_centred"] = [1e-4, -1e-4, 3e-4]
    assert "drift too +0.0100 x 1e-2 (no worse:" in scenarios.verdicts(result)[0]
    assert (
        "| 20 | garch-t | 0.100 (0.50) | 1.0000 | +0.0000 [+0.0000, +0.0000] | -0.0100 [-0.0200, +0.0100] |"
        in scenarios.table(result)
    )
    assert (
        scenarios.table(result)
        .splitlines()[2]
        .endswith("| 1 (0.50, 0.50) | 1 (0.50, 0.50) | 1.25 |")
    )


def test_join_profile_sees_damped_returns_after_joins() -> None:
    rng = np.random.default_rng(0)
    paths = rng.standard_normal((64, 320))
    assert np.allclose(join_profile(paths, 64, 32), 1.0, atol=0.1)
    for j in join_positions(320, 64, 32):
        paths[:, j : j + 2] *= 0.5  # the first two returns after every join damped
    profile = join_profile(paths, 64, 32)
    assert profile[:2] == pytest.approx([0.5, 0.5], abs=0.08) and profile[3] > 0.9
    assert join_profile(paths[:, :64], 64, 32) is None  # one window: no join


def test_glibc_keeps_freed_memory_when_asked() -> None:
    import platform

    from utils.memory import keep_freed_memory

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is glibc
