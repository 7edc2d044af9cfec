"""Inputs that used to give a wrong result with exit status 0 now give an error or a warning.

Each test runs the scripts in-process (``train.main`` / ``generate.main``, what
``python train.py`` runs) on what a user would bring, and checks what the user reads:
one ``error:`` line naming the setting or the file, or the warning listing the rows.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import generate
import train
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
    argv = ["--checkpoint", str(realized_vol_run), "--no-plot", "--n", "2"]
    assert generate.main([*argv, "--realized-vol", "50"]) == EXIT_USER_ERROR
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
