"""Inputs that used to give a wrong result with exit status 0 now give an error or a warning.

Each test runs the scripts in-process (``train.main`` / ``generate.main``, what
``python train.py`` runs) on what a user would bring, and checks what the user reads:
one ``error:`` line naming the setting or the file, or the warning listing the rows.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import generate
import train
from data.quality import screen_prices
from data.readers import load_prices
from tests.conftest import tiny_settings
from utils import checkpoint as ckpt

EXIT_USER_ERROR = 2


def error_line(capsys) -> str:
    """The one ``error:`` line of a failed run (stderr holds nothing else)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def write_prices(path: Path, seed: int, scale: float, n: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    prices = 100 * np.exp(np.cumsum(scale * rng.standard_normal(n)))
    pd.DataFrame({"Close": prices}).to_csv(path, index=False)
    return prices


# ------------------------------------------------------- settings checked together, up front


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        # Used to end in a torch traceback (rows of 16 and 32 columns) after the run folder was claimed.
        (["--set", "IMAGE_SIZE=16", "--set", "LOCAL_VOL_WINDOW=5", "--set", "SCALES=7"],
         ["IMAGE_SIZE=16", "LOCAL_VOL_WINDOW=5", "IMAGE_SIZE = None"]),
        # Used to zero every gradient: the model silently did not learn.
        (["--set", "GRAD_CLIP=0"], ["GRAD_CLIP", "None to turn clipping off"]),
        (["--set", "EMA_DECAY=1.0"], ["EMA_DECAY", "[0, 1)", "1.0"]),
        (["--set", "EMA_DECAY=-0.5"], ["EMA_DECAY", "-0.5"]),
        (["--set", "WARMUP_STEPS=-5"], ["WARMUP_STEPS", "-5"]),
        (["--set", "WEIGHT_DECAY=-0.01"], ["WEIGHT_DECAY", "-0.01"]),
        (["--set", "VOLATILITY_ROW=False", "--set", "VOL_LEVEL=fitted"],
         ["VOL_LEVEL='fitted'", "VOLATILITY_ROW"]),
        (["--set", "SCALE_MAX=64"], ["SCALE_MAX=64", "WINDOW_SIZE=32"]),
    ],
)  # fmt: skip
def test_settings_that_fail_together_are_refused_before_a_run_folder(
    tmp_path: Path, capsys, extra: list[str], words: list[str]
) -> None:
    argv = [*tiny_settings(tmp_path, MAX_STEPS=1), "--data", "sp500", *extra]
    assert train.main(argv) == EXIT_USER_ERROR
    line = error_line(capsys)
    for word in words:
        assert word in line, line
    assert not [p for p in tmp_path.iterdir() if p.name != "outputs"]  # no run folder claimed


def test_grad_clip_none_trains_without_clipping(tmp_path: Path, capsys) -> None:
    argv = [*tiny_settings(tmp_path, MAX_STEPS=1, GRAD_CLIP=None), "--data", "sp500"]
    assert train.main(argv) == 0
    step = ckpt.list_checkpoints(next(tmp_path.iterdir()))[-1]
    assert ckpt.read_json(step, "settings.json")["GRAD_CLIP"] is None


# ------------------------------------------------- generate: no ignored or clamped request


@pytest.fixture(scope="module")
def realized_vol_run(tmp_path_factory) -> Path:
    """A realized-vol checkpoint trained without the volatility level row."""
    base = tmp_path_factory.mktemp("rv")
    flags = [*tiny_settings(base, MAX_STEPS=1, VOLATILITY_ROW=False, LOCAL_VOL_WINDOW=0, SCALES=7)]
    argv = [*flags, "--data", "sp500", "--condition", "realized-vol", "--run-name", "rv"]
    assert train.main(argv) == 0
    return base / "rv"


def test_generate_refuses_fitted_level_without_the_level_row(
    realized_vol_run: Path, capsys
) -> None:
    out = realized_vol_run / "p.npy"
    argv = ["--checkpoint", str(realized_vol_run), "--out", str(out), "--no-plot"]
    assert generate.main([*argv, "--vol-level", "fitted"]) == EXIT_USER_ERROR
    line = error_line(capsys)
    assert "--vol-level" in line and "VOLATILITY_ROW" in line and "fitted" in line
    assert not out.exists()


def test_generate_refuses_a_realized_vol_outside_the_trained_range(
    realized_vol_run: Path, capsys
) -> None:
    out = realized_vol_run / "outside.npy"
    argv = ["--checkpoint", str(realized_vol_run), "--no-plot", "--n", "2"]
    assert generate.main([*argv, "--realized-vol", "50", "--out", str(out)]) == EXIT_USER_ERROR
    assert not out.exists()
    line = error_line(capsys)
    assert "--realized-vol 50" in line and "outside the training windows' range" in line
    lo, hi = (float(x) for x in line.split("range ")[1].split(" ")[0].split("-"))
    assert 0.0 < lo < hi < 50
    # Inside the range it samples.
    out = realized_vol_run / "inside.npy"
    mid = f"{(lo + hi) / 2:.4f}"
    assert generate.main([*argv, "--realized-vol", mid, "--out", str(out)]) == 0
    assert out.exists()


def test_generate_checks_the_output_format_before_sampling(
    realized_vol_run: Path, capsys, monkeypatch
) -> None:
    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled before checking --out")

    monkeypatch.setattr(generate, "sample_returns", no_sampling)
    argv = ["--checkpoint", str(realized_vol_run), "--no-plot"]
    assert generate.main([*argv, "--out", str(realized_vol_run / "paths.xlsx")]) == 2
    line = error_line(capsys)
    assert "paths.xlsx" in line and ".csv, .parquet, .npy" in line
    argv = ["--checkpoint", str(realized_vol_run), "--out", str(realized_vol_run / "p.csv")]
    assert generate.main([*argv, "--plot", str(realized_vol_run / "fig.txt")]) == 2
    assert "--plot" in error_line(capsys)


# --------------------------------------------------- multi-asset resume matches by name


def test_multi_asset_resume_matches_series_by_name(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "assets"
    folder.mkdir()
    write_prices(folder / "calm.csv", 0, 0.005)
    write_prices(folder / "wild.csv", 1, 0.03)
    flags = tiny_settings(tmp_path / "runs", MAX_STEPS=1)
    argv = [*flags, "--data", str(folder), "--condition", "asset", "--run-name", "m"]
    assert train.main(argv) == 0
    run = tmp_path / "runs" / "m"

    # A file that sorts first used to take the first saved normalizer (calm's scale).
    write_prices(folder / "another.csv", 2, 0.01)
    resume = [*tiny_settings(tmp_path / "runs", MAX_STEPS=2), "--resume", str(run)]
    capsys.readouterr()
    assert train.main(resume) == EXIT_USER_ERROR
    line = error_line(capsys)
    assert "new: another" in line and "calm, wild" in line and "--resume" in line

    # The same series resume with their own normalizers and classes.
    (folder / "another.csv").unlink()
    saved = ckpt.read_json(ckpt.list_checkpoints(run)[-1], "conditioning.json")
    assert train.main(resume) == 0
    resumed = ckpt.list_checkpoints(run)[-1]
    assert resumed.name == "step-000002"
    assert ckpt.read_json(resumed, "conditioning.json") == saved

    # A renamed file that now sorts first is a missing series and a new one.
    (folder / "wild.csv").rename(folder / "a_wild.csv")
    resume = [*tiny_settings(tmp_path / "runs", MAX_STEPS=3), "--resume", str(run)]
    capsys.readouterr()
    assert train.main(resume) == EXIT_USER_ERROR
    line = error_line(capsys)
    assert "new: a_wild" in line and "missing: wild" in line


# ------------------------------------------------------------ dates and number formats


def daily_prices(n: int = 400, seed: int = 0) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Business days from 2020-01-01 and prices with a daily log-return std of 0.0128."""
    rng = np.random.default_rng(seed)
    return pd.bdate_range("2020-01-01", periods=n), 100 * np.exp(
        np.cumsum(rng.normal(0.0, 0.0128, n))
    )


def trained_returns(tmp_path: Path, data: Path, *extra: str, run: str = "") -> np.ndarray:
    """Train one step on ``data``; return the training returns the checkpoint keeps."""
    run = run or data.stem
    flags = [*tiny_settings(tmp_path / "runs", MAX_STEPS=1), "--data", str(data), *extra]
    assert train.main([*flags, "--run-name", run]) == 0
    step = ckpt.list_checkpoints(tmp_path / "runs" / run)[-1]
    return np.load(step / "real_returns.npy")


def test_european_dates_are_read_day_first(tmp_path: Path) -> None:
    days, prices = daily_prices()
    path = tmp_path / "eu.csv"
    pd.DataFrame({"Date": days.strftime("%d/%m/%Y"), "Close": prices}).to_csv(path, index=False)
    with warnings.catch_warnings():
        # The data layer's warnings (read month first, the rows came out "unsorted"); not
        # the libraries' deprecation notes during training's end-of-run sampling.
        warnings.simplefilter("error", UserWarning)
        returns = trained_returns(tmp_path, path)
    expected = np.diff(np.log(prices))[: len(returns)]
    np.testing.assert_allclose(returns, expected, rtol=1e-9)  # 0.0513 std when read month first


def test_dates_that_cannot_be_told_apart_ask_for_date_format(tmp_path: Path, capsys) -> None:
    # Monthly closes on the 1st: 01/02/1990 is in time order read either way.
    months = pd.date_range("1990-01-01", periods=400, freq="MS")
    prices = daily_prices()[1]
    path = tmp_path / "monthly.csv"
    pd.DataFrame({"Date": months.strftime("%d/%m/%Y"), "Close": prices}).to_csv(path, index=False)
    flags = [*tiny_settings(tmp_path / "runs", MAX_STEPS=1), "--data", str(path)]
    assert train.main(flags) == EXIT_USER_ERROR
    line = error_line(capsys)
    assert "monthly.csv" in line and "'Date'" in line and "DATE_FORMAT" in line
    assert "'dayfirst'" in line and "'monthfirst'" in line
    returns = trained_returns(tmp_path, path, "--set", "DATE_FORMAT=dayfirst", run="m")
    np.testing.assert_allclose(returns, np.diff(np.log(prices))[: len(returns)], rtol=1e-9)


def test_a_file_mixing_date_orders_is_refused(tmp_path: Path, capsys) -> None:
    days, prices = daily_prices()
    text = list(days.strftime("%d/%m/%Y"))
    text[200:] = days[200:].strftime("%m/%d/%Y")  # 10/08/2020 after 07/10/2020
    path = tmp_path / "mixed.csv"
    pd.DataFrame({"Date": text, "Close": prices}).to_csv(path, index=False)
    assert train.main([*tiny_settings(tmp_path, MAX_STEPS=1), "--data", str(path)]) == 2
    line = error_line(capsys)
    assert "day first" in line and "month first" in line and "mixed.csv" in line


def test_unix_timestamps_in_seconds_and_milliseconds_are_times(tmp_path: Path) -> None:
    days, prices = daily_prices()
    seconds = (days - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")
    shuffled = np.random.default_rng(1).permutation(len(days))  # an export in any order
    for name, stamps in (("s", seconds), ("ms", seconds * 1000)):
        path = tmp_path / f"crypto_{name}.csv"
        frame = pd.DataFrame({"timestamp": np.asarray(stamps), "close": prices})
        frame.iloc[shuffled].to_csv(path, index=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            returns = trained_returns(tmp_path, path)
        # Read as times, the rows are put back in time order (with the usual warning).
        np.testing.assert_allclose(returns, np.diff(np.log(prices))[: len(returns)], rtol=1e-9)
        assert any("sorted them by time" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    ("sep", "cell"),
    [(";", lambda p: f"{p:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")),
     (",", lambda p: f"{p:,.2f}")],
    ids=["decimal-comma", "thousands-comma"],
)  # fmt: skip
def test_prices_with_separators_are_read(tmp_path: Path, sep: str, cell) -> None:
    days, prices = daily_prices()
    prices = np.round(prices * 20, 2)  # above 1000: "1.999,84" / "1,999.84"
    path = tmp_path / "separators.csv"
    cells = [cell(p) for p in prices]
    pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), "Close": cells}).to_csv(
        path, index=False, sep=sep
    )
    returns = trained_returns(tmp_path, path)
    np.testing.assert_allclose(returns, np.diff(np.log(prices))[: len(returns)], rtol=1e-9)


def test_an_excel_workbook_is_asked_to_be_saved_as_csv(tmp_path: Path, capsys) -> None:
    path = tmp_path / "prices.xlsx"
    with zipfile.ZipFile(path, "w") as book:  # what any .xlsx holds
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")
    assert train.main([*tiny_settings(tmp_path, MAX_STEPS=1), "--data", str(path)]) == 2
    line = error_line(capsys)
    assert "Excel workbook" in line and "CSV" in line and "unpack" not in line


# ---------------------------------------------------------------- outliers and gaps


def test_a_halving_is_listed_and_can_be_dropped_or_stop_the_run(tmp_path: Path, capsys) -> None:
    days, prices = daily_prices()
    prices[250:] *= 0.31  # an unadjusted split: a -69% day
    path = tmp_path / "split.csv"
    pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), "Close": prices}).to_csv(path, index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = trained_returns(tmp_path, path)
    listed = [str(w.message) for w in caught if "robust scales" in str(w.message)]
    assert len(listed) == 1 and re.search(r"2020-12-16 00:00:00 \(-6\d\.\d%", listed[0]), listed
    assert kept.min() < -1.0  # "warn" keeps the return

    dropped = trained_returns(tmp_path, path, "--set", "OUTLIERS=drop", run="d")
    assert dropped.min() > -0.1 and len(kept) - 1 <= len(dropped) <= len(kept)

    flags = [*tiny_settings(tmp_path / "e", MAX_STEPS=1), "--data", str(path)]
    capsys.readouterr()
    assert train.main([*flags, "--set", "OUTLIERS=error"]) == EXIT_USER_ERROR
    line = error_line(capsys)
    assert "2020-12-16" in line and "OUTLIERS" in line


def fx_minutes(start: str, end: str) -> pd.DatetimeIndex:
    """Minute bars of a currency pair: Sunday 17:00 to Friday 17:00 (New York time)."""
    stamps = pd.date_range(start, end, freq="min", inclusive="left")
    day, hour = stamps.day_of_week, stamps.hour
    closed = (day == 5) | ((day == 4) & (hour >= 17)) | ((day == 6) & (hour < 17))
    return stamps[~closed]


def test_a_two_day_hole_in_minute_bars_is_listed_but_weekends_are_not(
    tmp_path: Path, capsys
) -> None:
    stamps = fx_minutes("2024-01-07 17:00", "2024-02-02 17:00")
    hole = (stamps >= "2024-01-16 09:00") & (stamps < "2024-01-18 09:00")
    rng = np.random.default_rng(0)
    for name, kept in (("whole", stamps), ("holed", stamps[~hole])):
        prices = 1.1 * np.exp(np.cumsum(rng.normal(0, 2e-4, len(kept))))
        path = tmp_path / f"{name}.csv"
        pd.DataFrame({"Date": kept.strftime("%Y-%m-%d %H:%M"), "Close": prices}).to_csv(
            path, index=False
        )
        flags = [*tiny_settings(tmp_path / name, MAX_STEPS=1, STRIDE=64), "--data", str(path)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert train.main(flags) == 0
        listed = [str(w.message) for w in caught if "gap" in str(w.message)]
        if name == "whole":  # three weekends and their nights: nothing to list
            assert not listed
        else:
            assert len(listed) == 1, listed
            assert "1 gap(s)" in listed[0]
            assert "2024-01-16 08:59:00 -> 2024-01-18 09:00:00" in listed[0]
    flags = [*tiny_settings(tmp_path / "e", MAX_STEPS=1, OUTLIERS="error"), "--data", str(path)]
    capsys.readouterr()
    assert train.main(flags) == EXIT_USER_ERROR
    assert "2024-01-16 08:59:00 -> 2024-01-18 09:00:00" in error_line(capsys)


@pytest.mark.parametrize("name", ["sp500", "nasdaq", "wti"])
def test_the_built_in_series_have_nothing_to_list(name: str) -> None:
    series = load_prices(name)
    assert screen_prices(series, "error") is series
