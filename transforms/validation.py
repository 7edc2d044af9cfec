"""Checks of user-supplied settings and arrays, raising ScalodiffError with a fix."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from utils.errors import ScalodiffError


def check_int(name: str, value, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats like 2.5 are refused)."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < minimum:
        raise ScalodiffError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def check_positive_float(name: str, value) -> float:
    """``value`` as a finite float > 0."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise ScalodiffError(f"{name}={value!r} must be a finite number > 0, e.g. 1.0")
    return float(value)


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ScalodiffError(f"{name}={value!r} is not one of {list(choices)}")
    return value


def check_series_batch(x, window_size: int, name: str = "windows", any_float: bool = False) -> None:
    """A ``(B, window_size)`` tensor of float32/float64 (any real dtype if ``any_float``)."""
    if not isinstance(x, torch.Tensor):
        raise ScalodiffError(
            f"{name} of type {type(x).__name__} is not a torch.Tensor; pass torch.as_tensor(x)"
        )
    if x.dim() != 2 or x.shape[1] != window_size:
        hint = "add a batch axis with x[None]" if x.dim() == 1 else "cut windows of that length"
        raise ScalodiffError(
            f"{name} have shape {tuple(x.shape)} but the transform expects (B, {window_size}) "
            f"(window_size={window_size}); {hint}, or build the transform with the right "
            "window_size"
        )
    allowed = x.is_floating_point() or (any_float and not x.is_complex() and x.dtype != torch.bool)
    if not allowed or (not any_float and x.dtype not in (torch.float32, torch.float64)):
        raise ScalodiffError(f"{name} dtype {x.dtype} is not supported; use float32 or float64")


def check_finite(x: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(x).all()):
        raise ScalodiffError(f"{name} contain NaN or infinite values; drop or fill them first")


def check_stds(values, shape: tuple[int, int]) -> np.ndarray:
    """Saved per-row stds: finite, positive, of the transform's (C, H) shape."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != shape or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ScalodiffError(
            f"stds in the transform JSON have shape {arr.shape} (expected {shape}) or "
            "non-positive values; re-fit the transform and save it again"
        )
    return arr
