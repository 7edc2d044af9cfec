"""config.py overrides: flags, --set, type checks, suggestions, presets, the built-in fallback."""

from __future__ import annotations

import pytest

from utils.errors import ScalodiffError
from utils.settings import SettingsParser, apply_preset, coerce, config_defaults, data_source


def parser() -> SettingsParser:
    p = SettingsParser(prog="x")
    p.add_setting("--window", "WINDOW_SIZE", "window", type=int)
    p.add_setting("--lr", "LR", "learning rate", type=float)
    return p


def test_flags_and_set_override_config() -> None:
    _, s = parser().parse(
        ["--window", "64", "--set", "BLOCK_OUT_CHANNELS=(16, 32)", "--set", "compile=true"]
    )
    assert s["WINDOW_SIZE"] == 64
    assert s["BLOCK_OUT_CHANNELS"] == (16, 32)
    assert s["COMPILE"] is True
    assert s["STRIDE"] == config_defaults()["STRIDE"]


def test_help_names_the_setting_each_flag_overrides() -> None:
    text = parser().format_help()
    assert "config.py WINDOW_SIZE" in text and "config.py LR" in text


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--windwo", "3"], ["--windwo", "did you mean --window"]),
        (["--set", "WINDOW_SIZ=3"], ["WINDOW_SIZ", "did you mean WINDOW_SIZE"]),
        (["--set", "LR=fast"], ["LR", "float", "'fast'"]),
        (["--window", "-5"], ["WINDOW_SIZE", "positive", "-5"]),
        (["--set", "SAMPLER=dmp"], ["SAMPLER", "'dmp'", "did you mean dpm"]),
        (["--set", "COMPILE=maybe"], ["COMPILE", "true or false"]),
        (["--set", "LOCAL_VOL_WINDOW=20"], ["LOCAL_VOL_WINDOW", "odd", "20"]),
        (["--set", "TRAIN_FRAC=1.5"], ["TRAIN_FRAC", "1.5"]),
        (["--set", "LR"], ["NAME=VALUE"]),
    ],
)
def test_bad_settings_name_the_setting_and_value(argv: list[str], words: list[str]) -> None:
    with pytest.raises(ScalodiffError) as err:
        parser().parse(argv)
    for word in words:
        assert word in str(err.value)


def test_wrong_python_type_is_reported() -> None:
    with pytest.raises(ScalodiffError, match="WINDOW_SIZE: expected int"):
        coerce("WINDOW_SIZE", 2.5)
    assert coerce("LR", 1) == 1.0


def test_preset_fills_only_what_is_unset() -> None:
    _, s = parser().parse(["--set", "SCALES=15"])
    cpu = apply_preset(s, cuda_available=False)
    assert cpu["PRESET"] == "cpu" and cpu["SCALES"] == 15 and cpu["BLOCK_OUT_CHANNELS"]
    assert apply_preset(s, cuda_available=True)["PRESET"] == "gpu"
    seed = apply_preset({**s, "PRESET": "seed"}, cuda_available=False)
    assert seed["TRANSFORM_MODE"] == "magnitude" and seed["BLOCK_OUT_CHANNELS"] == (
        64,
        128,
        256,
        256,
    )


@pytest.mark.parametrize(
    ("argv", "local"),
    [
        ([], 21),  # the cpu preset's local volatility row on 256-return windows
        (["--window", "64"], 0),  # too short for a 21-return moving RMS to vary inside it
        (["--set", "VOLATILITY_ROW=False"], 0),  # the local row is relative to the level row
        (["--window", "64", "--set", "LOCAL_VOL_WINDOW=21"], 21),  # what the user sets stays
        (["--set", "LOCAL_VOL_WINDOW=0"], 0),
    ],
)
def test_cpu_preset_local_row_only_where_it_fits(argv: list[str], local: int) -> None:
    _, s = parser().parse(["--set", "PRESET=cpu", *argv])
    cpu = apply_preset(s, cuda_available=False)
    assert cpu["LOCAL_VOL_WINDOW"] == local
    assert cpu["LOCAL_SPREAD"] == ("fitted" if local else 1.0)  # nothing to scale without the row
    if not argv:  # 13 scales + mean + local + level rows: the 16-row image of the cpu UNet
        assert (cpu["SCALES"], cpu["RETURN_POWER"], cpu["LOCAL_SPREAD"]) == (13, "fitted", "fitted")
        assert apply_preset({**s, "PRESET": "seed"}, False)["LOCAL_VOL_WINDOW"] == 0


def test_missing_default_file_falls_back_to_sp500_but_a_user_path_does_not(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source, note = data_source({"CSV_PATH": "data/eurusd.csv"})
    assert source == "sp500" and "built-in" in note
    assert data_source({"CSV_PATH": "mine.csv"}) == ("mine.csv", None)


def test_cpu_preset_context_only_where_columns_are_returns() -> None:
    cpu = apply_preset({**config_defaults(), "PRESET": "cpu"}, cuda_available=False)
    assert cpu["CONTEXT_FRACTIONS"] == (0.25, 0.5, 0.75)
    resized = apply_preset(
        {**config_defaults(), "PRESET": "cpu", "IMAGE_SIZE": 32, "LOCAL_VOL_WINDOW": 0},
        cuda_available=False,
    )
    assert resized["CONTEXT_FRACTIONS"] == ()  # a resized time axis has no column per return
    asked = {**resized, "PRESET": "cpu", "CONTEXT_FRACTIONS": (0.5,)}
    with pytest.raises(ScalodiffError, match="cannot be combined with CONTEXT_FRACTIONS"):
        apply_preset(asked, cuda_available=False)


def test_join_overlap_must_not_be_negative() -> None:
    with pytest.raises(ScalodiffError, match="JOIN_OVERLAP must be 0"):
        coerce("JOIN_OVERLAP", "-1")
