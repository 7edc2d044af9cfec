"""config.py plus command-line overrides, checked, with the preset filled in.

Every script flag overrides exactly one config.py setting and says which in
``--help``; ``--set NAME=VALUE`` overrides any other. Misspelled flags and
settings get a "did you mean" suggestion; wrong types name the setting, the
value and the type expected.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import config
from utils.errors import ScalodiffError
from utils.presets import PRESETS, resolve_preset

# The type each setting takes; "opt" marks settings that may be None.
_INT, _FLOAT, _STR, _BOOL, _TUPLE = int, float, str, bool, tuple
SETTING_TYPES: dict[str, tuple[type, bool]] = {
    "CSV_PATH": (_STR, False),
    "COLUMN": (_STR, True),
    "WINDOW_SIZE": (_INT, False),
    "STRIDE": (_INT, False),
    "TRAIN_FRAC": (_FLOAT, False),
    "MAX_MISSING_FRAC": (_FLOAT, False),
    "DATE_FORMAT": (_STR, True),
    "OUTLIERS": (_STR, False),
    "RETURN_POWER": (_FLOAT, True),
    "RETURN_CLIP": (_FLOAT, True),
    "JOINT": (_BOOL, False),
    "JOINT_GAPS": (_STR, False),
    "LOCAL_SPREAD": (_FLOAT, True),
    "TAIL_STRETCH": (_FLOAT, True),
    "CONTINUATION_LEVEL": (_STR, True),
    "TRANSFORM_MODE": (_STR, True),
    "WAVELET": (_STR, True),
    "SCALES": (_INT, True),
    "VOLATILITY_ROW": (_BOOL, True),
    "VOL_LEVEL": (_STR, True),
    "LOCAL_VOL_WINDOW": (_INT, True),
    "EDGE_MARGIN": (_INT, True),
    "CONTEXT_FRACTIONS": (_TUPLE, True),
    "SCALE_MIN": (_FLOAT, False),
    "SCALE_MAX": (_FLOAT, True),
    "IMAGE_SIZE": (_INT, True),
    "PRESET": (_STR, False),
    "BLOCK_OUT_CHANNELS": (_TUPLE, True),
    "LAYERS_PER_BLOCK": (_INT, True),
    "ATTENTION_LEVELS": (_INT, True),
    "PREDICTION_TYPE": (_STR, True),
    "NUM_TIMESTEPS": (_INT, True),
    "BETA_SCHEDULE": (_STR, True),
    "BATCH_SIZE": (_INT, True),
    "GRAD_ACCUM": (_INT, False),
    "EPOCHS": (_INT, True),
    "MAX_STEPS": (_INT, True),
    "MAX_MINUTES": (_FLOAT, True),
    "LR": (_FLOAT, True),
    "WARMUP_STEPS": (_INT, False),
    "WEIGHT_DECAY": (_FLOAT, False),
    "GRAD_CLIP": (_FLOAT, True),
    "EMA_DECAY": (_FLOAT, False),
    "CHECKPOINT_EVERY": (_INT, False),
    "KEEP_CHECKPOINTS": (_INT, False),
    "SAVE_DIR": (_STR, False),
    "DEVICE": (_STR, False),
    "MIXED_PRECISION": (_STR, False),
    "COMPILE": (_BOOL, False),
    "SEED": (_INT, False),
    "N_SAMPLES": (_INT, False),
    "SAMPLER": (_STR, True),
    "SAMPLING_STEPS": (_INT, True),
    "SAMPLE_BATCH": (_INT, False),
    "START_PRICE": (_FLOAT, True),
    "LENGTH": (_INT, True),
    "CONTEXT_KNOWN": (_INT, True),
    "JOIN_OVERLAP": (_INT, False),
    "SCENARIO_MEAN": (_STR, False),
    "OUTPUT_DIR": (_STR, False),
    "CONDITION": (_STR, True),
    "CONDITION_QUANTILES": (_TUPLE, True),
    "CONDITION_DROP": (_FLOAT, False),
    "GUIDANCE": (_FLOAT, False),
}

CHOICES: dict[str, tuple[str, ...]] = {
    "VOL_LEVEL": ("fitted", "model"),
    "CONTINUATION_LEVEL": ("fitted", "off"),
    "SCENARIO_MEAN": ("drift", "model"),
    "JOINT_GAPS": ("drop", "ffill"),
    "OUTLIERS": ("warn", "drop", "error"),
    "TRANSFORM_MODE": ("signed", "complex", "magnitude"),
    "PRESET": ("auto", *PRESETS),
    "PREDICTION_TYPE": ("v_prediction", "epsilon"),
    "BETA_SCHEDULE": ("squaredcos_cap_v2", "linear", "scaled_linear"),
    "DEVICE": ("auto", "cpu", "cuda"),
    "MIXED_PRECISION": ("auto", "no", "bf16", "fp16"),
    "SAMPLER": ("dpm", "unipc", "ddim", "ddpm"),
    "CONDITION": ("vol-regime", "trend", "asset", "realized-vol"),
}

# Numbers that may instead be fitted to the data at training time.
FITTED_OR_NUMBER = {"RETURN_POWER", "LOCAL_SPREAD", "TAIL_STRETCH"}

# DATE_FORMAT's words for the two orders of a numeric date; anything else is a strftime format.
DATE_ORDERS = ("dayfirst", "monthfirst")

POSITIVE = {
    "WINDOW_SIZE", "STRIDE", "SCALES", "BATCH_SIZE", "GRAD_ACCUM", "EPOCHS", "MAX_STEPS",
    "MAX_MINUTES", "LR", "NUM_TIMESTEPS", "CHECKPOINT_EVERY", "KEEP_CHECKPOINTS", "N_SAMPLES",
    "SAMPLING_STEPS", "SAMPLE_BATCH", "START_PRICE", "RETURN_POWER", "SCALE_MIN", "SCALE_MAX",
    "IMAGE_SIZE", "LAYERS_PER_BLOCK", "RETURN_CLIP", "LOCAL_SPREAD", "LENGTH", "CONTEXT_KNOWN",
}  # fmt: skip


def config_defaults() -> dict[str, Any]:
    """All UPPERCASE settings of config.py, checked against the known names."""
    values = {k: getattr(config, k) for k in dir(config) if k.isupper()}
    for name in values:
        if name not in SETTING_TYPES:
            raise ScalodiffError(
                f"config.py: unknown setting {name}{_did_you_mean(name, SETTING_TYPES)}"
            )
    return values


def _did_you_mean(word: str, candidates: Sequence[str] | dict) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.5)
    return f"; did you mean {close[0]}?" if close else ""


def coerce(name: str, value: Any) -> Any:
    """Check ``value`` against the setting's type; parse it when it is a string from the command line."""
    if name not in SETTING_TYPES:
        raise ScalodiffError(f"unknown setting {name}{_did_you_mean(name, SETTING_TYPES)}")
    kind, optional = SETTING_TYPES[name]
    if name in FITTED_OR_NUMBER and isinstance(value, str) and value.strip() == "fitted":
        return "fitted"
    if isinstance(value, str) and kind is not _STR:
        text = value.strip()
        if text.lower() == "none":
            value = None
        elif kind is _BOOL:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ScalodiffError(f"setting {name}: expected true or false, got {value!r}")
            value = text.lower() in ("true", "1", "yes")
        else:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ScalodiffError(
                    f"setting {name}: expected {kind.__name__}"
                    f"{' or fitted' if name in FITTED_OR_NUMBER else ''}, got {value!r}"
                ) from None
    if value is None:
        if optional:
            return None
        raise ScalodiffError(f"setting {name} cannot be None; give a {kind.__name__}")
    if kind is _FLOAT and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is _TUPLE and isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, kind) or (kind is not _BOOL and isinstance(value, bool)):
        fitted = " or 'fitted'" if name in FITTED_OR_NUMBER else ""
        raise ScalodiffError(
            f"setting {name}: expected {kind.__name__}{fitted}, got {value!r} ({type(value).__name__})"
        )
    if name in CHOICES and value not in CHOICES[name]:
        raise ScalodiffError(
            f"setting {name}: {value!r} is not one of {', '.join(CHOICES[name])}"
            f"{_did_you_mean(value, CHOICES[name])}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ScalodiffError(f"setting {name} must be a finite number, got {value}")
    if name in POSITIVE and value <= 0:
        raise ScalodiffError(f"setting {name} must be positive, got {value}")
    if name == "TRAIN_FRAC" and not 0.0 < value <= 1.0:
        raise ScalodiffError(f"setting TRAIN_FRAC must be in (0, 1], got {value}")
    if name == "MAX_MISSING_FRAC" and not 0.0 <= value < 1.0:
        raise ScalodiffError(f"setting MAX_MISSING_FRAC must be in [0, 1), got {value}")
    _check_training_range(name, value)
    if name == "DATE_FORMAT" and value not in DATE_ORDERS and "%" not in value:
        raise ScalodiffError(
            f"setting DATE_FORMAT must be None (detect), {' or '.join(map(repr, DATE_ORDERS))}, "
            f"or a strftime format such as '%d.%m.%Y %H:%M'; got {value!r}"
        )
    if name == "CONDITION_DROP" and not 0.0 <= value < 1.0:
        raise ScalodiffError(f"setting CONDITION_DROP must be in [0, 1), got {value}")
    if name == "GUIDANCE" and value < 0:
        raise ScalodiffError(f"setting GUIDANCE must be 0 or more (1: no guidance), got {value}")
    if name == "CONDITION_QUANTILES" and not (
        value
        and all(isinstance(q, float | int) and 0 < q < 1 for q in value)
        and all(b > a for a, b in zip(value, value[1:], strict=False))
    ):
        raise ScalodiffError(
            f"setting CONDITION_QUANTILES must be increasing levels strictly between 0 and 1, "
            f"e.g. (0.25, 0.75); got {value}"
        )
    if name == "LOCAL_VOL_WINDOW" and value != 0 and (value < 3 or value % 2 == 0):
        raise ScalodiffError(
            f"setting LOCAL_VOL_WINDOW must be 0 (off) or an odd number of returns >= 3, e.g. 21; got {value}"
        )
    if name == "JOIN_OVERLAP" and value < 0:
        raise ScalodiffError(
            f"setting JOIN_OVERLAP must be 0 (off) or a number of returns, e.g. 4; got {value}"
        )
    if name == "EDGE_MARGIN" and value < 0:
        raise ScalodiffError(
            f"setting EDGE_MARGIN must be 0 (off) or a number of returns, e.g. 16; got {value}"
        )
    if name == "CONTEXT_FRACTIONS" and not all(
        isinstance(f, float | int) and not isinstance(f, bool) and 0 < f < 1 for f in value
    ):
        raise ScalodiffError(
            f"setting CONTEXT_FRACTIONS must be a tuple of fractions of WINDOW_SIZE strictly "
            f"between 0 and 1, e.g. (0.25, 0.5, 0.75), or () for no continuation; got {value}"
        )
    if name == "BLOCK_OUT_CHANNELS" and not all(isinstance(c, int) and c > 0 for c in value):
        raise ScalodiffError(f"setting BLOCK_OUT_CHANNELS must be positive integers, got {value}")
    return value


def _check_training_range(name: str, value: Any) -> None:
    """Optimizer settings whose out-of-range values train without an error but learn nothing."""
    if name == "GRAD_CLIP" and value <= 0:
        raise ScalodiffError(
            f"setting GRAD_CLIP must be a positive gradient norm, got {value} (0 would zero "
            "every gradient); set it to None to turn clipping off"
        )
    if name == "EMA_DECAY" and not 0.0 <= value < 1.0:
        raise ScalodiffError(
            f"setting EMA_DECAY must be in [0, 1), got {value} (1 would keep the initial "
            "weights for sampling); 0.999 is usual, 0 samples with the raw weights"
        )
    if name == "WEIGHT_DECAY" and value < 0:
        raise ScalodiffError(f"setting WEIGHT_DECAY must be 0 or more (0: none), got {value}")
    if name == "WARMUP_STEPS" and value < 0:
        raise ScalodiffError(f"setting WARMUP_STEPS must be 0 or more (0: none), got {value}")


def check_combinations(asked: dict[str, Any], resolved: dict[str, Any]) -> None:
    """Settings that are each valid but fail, or are ignored, together.

    ``asked`` holds the settings before the preset filled them (None: not set),
    ``resolved`` after. Checked before data is read or a run folder is claimed.
    """
    local = resolved["VOLATILITY_ROW"] and resolved["LOCAL_VOL_WINDOW"]
    if resolved["IMAGE_SIZE"] is not None and local:
        # The local row has one value per return; the resized image has IMAGE_SIZE columns.
        raise ScalodiffError(
            f"setting IMAGE_SIZE={resolved['IMAGE_SIZE']} cannot be combined with the local "
            f"volatility row (LOCAL_VOL_WINDOW={resolved['LOCAL_VOL_WINDOW']}, from "
            f"{'config' if asked['LOCAL_VOL_WINDOW'] is not None else 'the preset ' + resolved['PRESET']}): "
            "the row has one value per return. Set IMAGE_SIZE = None, or LOCAL_VOL_WINDOW = 0"
        )
    if asked["LOCAL_VOL_WINDOW"] and not resolved["VOLATILITY_ROW"]:
        raise ScalodiffError(
            f"setting LOCAL_VOL_WINDOW={asked['LOCAL_VOL_WINDOW']} needs VOLATILITY_ROW = True: "
            "the local row is relative to the window's RMS, which the volatility row carries"
        )
    if asked.get("LOCAL_SPREAD") not in (None, 1.0) and not local:
        raise ScalodiffError(
            f"setting LOCAL_SPREAD={asked['LOCAL_SPREAD']!r} scales the local volatility row, which "
            "this run does not have (LOCAL_VOL_WINDOW = 0 or VOLATILITY_ROW = False); set "
            "LOCAL_SPREAD = None or 1.0"
        )
    if asked.get("TAIL_STRETCH") not in (None, 1.0, "fitted"):
        raise ScalodiffError(
            f"setting TAIL_STRETCH={asked['TAIL_STRETCH']!r}: the stretch is fitted to the data "
            "when training ends; set TAIL_STRETCH = 'fitted', 1.0 (off) or None (the preset's)"
        )
    if asked.get("TAIL_STRETCH") == "fitted" and asked.get("CONDITION") == "asset":
        raise ScalodiffError(
            "setting TAIL_STRETCH='fitted' is not built for CONDITION = 'asset' (one normalizer "
            "per series, sampled by label); set TAIL_STRETCH = None or 1.0, or train one model "
            "per series or a joint one (JOINT = True)"
        )
    if asked.get("CONTINUATION_LEVEL") == "fitted" and not resolved["CONTEXT_FRACTIONS"]:
        raise ScalodiffError(
            "setting CONTINUATION_LEVEL='fitted' corrects continued windows, and this run has no "
            "context (CONTEXT_FRACTIONS = ()); set CONTINUATION_LEVEL = None or 'off', or give "
            "CONTEXT_FRACTIONS, e.g. (0.25, 0.5, 0.75)"
        )
    if asked["VOL_LEVEL"] == "fitted" and not resolved["VOLATILITY_ROW"]:
        raise ScalodiffError(
            "setting VOL_LEVEL='fitted' needs VOLATILITY_ROW = True (the level it draws is the "
            "volatility row's); set VOLATILITY_ROW = True or VOL_LEVEL = None"
        )
    if resolved["CONTEXT_FRACTIONS"] and resolved["IMAGE_SIZE"] is not None:
        raise ScalodiffError(
            f"setting IMAGE_SIZE={resolved['IMAGE_SIZE']} cannot be combined with CONTEXT_FRACTIONS="
            f"{resolved['CONTEXT_FRACTIONS']}: the known history is marked column by column, one per "
            "return. Set IMAGE_SIZE = None, or CONTEXT_FRACTIONS = ()"
        )
    if resolved["CONTEXT_FRACTIONS"] and not resolved["VOLATILITY_ROW"]:
        raise ScalodiffError(
            f"setting CONTEXT_FRACTIONS={resolved['CONTEXT_FRACTIONS']} needs VOLATILITY_ROW = "
            "True (a continuation takes its volatility level from the known returns); set "
            "VOLATILITY_ROW = True or CONTEXT_FRACTIONS = ()"
        )
    if resolved["JOINT"]:
        _check_joint(resolved)
    elif resolved["JOINT_GAPS"] != "drop":
        raise ScalodiffError(
            f"setting JOINT_GAPS={resolved['JOINT_GAPS']!r} aligns the series of a joint model, "
            "and this run is not one (JOINT = False); set JOINT = True (--joint) or leave "
            "JOINT_GAPS = 'drop'"
        )
    if resolved["SCALE_MAX"] is not None and resolved["SCALE_MAX"] > resolved["WINDOW_SIZE"]:
        raise ScalodiffError(
            f"setting SCALE_MAX={resolved['SCALE_MAX']:g} exceeds WINDOW_SIZE="
            f"{resolved['WINDOW_SIZE']}: a wavelet wider than the window sees only its mean. "
            "Lower SCALE_MAX or set it to None (WINDOW_SIZE / 2)"
        )


def _check_joint(resolved: dict[str, Any]) -> None:
    """Settings a joint model (JOINT = True) cannot serve."""
    if resolved["CONDITION"] is not None:
        raise ScalodiffError(
            f"setting JOINT = True cannot be combined with CONDITION={resolved['CONDITION']!r}: a "
            "joint model generates all its series together, unlabelled. Set CONDITION = None, or "
            "JOINT = False for a model that generates each series on its own"
        )


class SettingsParser(argparse.ArgumentParser):
    """An ArgumentParser whose flags override config.py settings.

    Errors come out as :class:`ScalodiffError` (one line, exit 2, with a
    suggestion for a misspelled flag) instead of argparse's usage dump.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.flag_to_setting: dict[str, str] = {}
        self._config_values = config_defaults()
        self.add_argument(
            "--set",
            metavar="NAME=VALUE",
            action="append",
            default=[],
            help="override any config.py setting, e.g. --set LR=3e-4 (repeatable)",
        )

    def add_setting(self, flag: str, setting: str, help: str, **kwargs: Any) -> None:
        """Add ``flag`` overriding config.py's ``setting``; the help names both."""
        current = self._config_values.get(setting)
        shown = "from the preset" if current is None else repr(current)
        self.add_argument(
            flag,
            dest=setting,
            default=argparse.SUPPRESS,
            help=f"{help} [config.py {setting}, now {shown}]".replace("%", "%%"),
            **kwargs,
        )
        self.flag_to_setting[flag] = setting

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ScalodiffError(message)

    def parse(self, argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, dict[str, Any]]:
        """Parse ``argv``; return the namespace and the settings with overrides applied (no preset yet)."""
        argv = list(sys.argv[1:] if argv is None else argv)
        args, unknown = self.parse_known_args(argv)
        if unknown:
            flag = unknown[0].split("=")[0]
            options = [o for a in self._actions for o in a.option_strings]
            raise ScalodiffError(
                f"unknown argument {flag}{_did_you_mean(flag, options)} (see --help)"
            )
        settings = dict(self._config_values)
        self.explicit: set[str] = set()
        for item in args.set:
            if "=" not in item:
                raise ScalodiffError(f"--set {item!r}: write NAME=VALUE, e.g. --set LR=3e-4")
            name, value = item.split("=", 1)
            name = name.strip().upper()
            settings[name] = coerce(name, value)
            self.explicit.add(name)
        for setting in self.flag_to_setting.values():
            if setting in vars(args):
                settings[setting] = coerce(setting, getattr(args, setting))
                self.explicit.add(setting)
        for name, value in settings.items():
            settings[name] = coerce(name, value)
        return args, settings


def apply_preset(settings: dict[str, Any], cuda_available: bool) -> dict[str, Any]:
    """Fill the settings left as None from the preset; return a new dict with PRESET resolved."""
    resolved = dict(settings)
    resolved["PRESET"] = resolve_preset(settings["PRESET"], cuda_available)
    for name, value in PRESETS[resolved["PRESET"]].items():
        if resolved.get(name) is None:
            resolved[name] = value
    if settings.get("LOCAL_VOL_WINDOW") is None and (
        not resolved["VOLATILITY_ROW"]
        or resolved["LOCAL_VOL_WINDOW"] > resolved["WINDOW_SIZE"] // 4
    ):
        # The preset's local row needs the volatility row, and a window long enough for
        # the moving RMS to vary inside it; otherwise the preset goes without it.
        resolved["LOCAL_VOL_WINDOW"] = 0
    if settings.get("CONTEXT_FRACTIONS") is None and (
        not resolved["VOLATILITY_ROW"] or resolved["IMAGE_SIZE"] is not None
    ):
        # A continuation takes its level from the known returns through the level row, and
        # marks the known returns column by column (no resized time axis).
        resolved["CONTEXT_FRACTIONS"] = ()
    if settings.get("LOCAL_SPREAD") is None and not resolved["LOCAL_VOL_WINDOW"]:
        resolved["LOCAL_SPREAD"] = 1.0  # nothing to scale without the local row
    if settings.get("CONTINUATION_LEVEL") is None and not resolved["CONTEXT_FRACTIONS"]:
        resolved["CONTINUATION_LEVEL"] = "off"  # nothing is continued without context
    if settings.get("TAIL_STRETCH") is None and resolved.get("CONDITION") == "asset":
        resolved["TAIL_STRETCH"] = 1.0  # not built for several normalizers chosen by label
    if settings.get("EDGE_MARGIN") is None:
        # The margin is cut by the volatility transform; short windows get a narrower one.
        cap = resolved["WINDOW_SIZE"] // 16 if resolved["VOLATILITY_ROW"] else 0
        resolved["EDGE_MARGIN"] = min(resolved["EDGE_MARGIN"], cap)
    if resolved["EDGE_MARGIN"] and not resolved["VOLATILITY_ROW"]:
        raise ScalodiffError(
            "setting EDGE_MARGIN needs VOLATILITY_ROW = True (the volatility transform drops the "
            "margin); set EDGE_MARGIN = 0 or VOLATILITY_ROW = True"
        )
    check_combinations(settings, resolved)
    return resolved


SHIPPED_CSV_PATH = "data/eurusd.csv"
FALLBACK_DATASET = "sp500"


def data_source(settings: dict[str, Any], explicit: bool = False) -> tuple[str, str | None]:
    """The data to read, and a note to print when the built-in default stands in.

    When CSV_PATH still holds the shipped example path, that file does not exist
    and the path was not given on the command line (``explicit``), a first run
    uses the built-in S&P 500 and says so. Any path the user set must exist: a
    typo never silently trains on other data.
    """
    path = str(settings["CSV_PATH"])
    if path == SHIPPED_CSV_PATH and not explicit and not Path(path).exists():
        note = (
            f"CSV_PATH {path} not found: using the built-in dataset {FALLBACK_DATASET!r} "
            "(S&P 500 daily closes from the arch package). Set CSV_PATH in config.py or pass "
            "--data FILE to train on your own prices; --list-datasets shows the built-ins."
        )
        return FALLBACK_DATASET, note
    return path, None
