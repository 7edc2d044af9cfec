"""Checks of user-supplied settings and arrays, raising ScalodiffError with a fix."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from transforms.cwt_operator import COND_LIMIT, COND_WARN
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


def check_training_windows(x, window_size: int) -> np.ndarray | torch.Tensor:
    """Training windows ``(N, window_size)`` of real numbers, as an array or a tensor.

    Nothing is copied: a read-only or overlapping view (``sliding_window_view``)
    stays a view, so :meth:`Scalogram.fit` can convert one batch at a time.
    """
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        x = np.asarray(x)
    if isinstance(x, torch.Tensor):
        check_series_batch(x, window_size, name="training windows", any_float=True)
    elif x.ndim != 2 or x.shape[1] != window_size or x.dtype.kind not in "fiu":
        raise ScalodiffError(
            f"training windows have shape {x.shape} and dtype {x.dtype}; the transform expects "
            f"real numbers of shape (N, {window_size}) (window_size={window_size})"
        )
    if x.shape[0] == 0:
        raise ScalodiffError("training windows are empty; fit needs at least one window")
    return x


def float64_batches(data: np.ndarray | torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Training windows ``batch_size`` at a time, as float64 CPU tensors checked finite.

    Only one batch is copied at a time, and torch only ever gets that copy: a
    read-only view such as ``sliding_window_view`` handed to ``torch.as_tensor``
    makes torch warn that it does not support non-writable arrays.
    """
    for start in range(0, data.shape[0], batch_size):
        chunk = data[start : start + batch_size]
        if isinstance(chunk, np.ndarray):
            chunk = torch.from_numpy(np.array(chunk, dtype=np.float64))
        chunk = chunk.detach().to("cpu", torch.float64)
        check_finite(chunk, "training windows")
        yield chunk


def check_finite(x: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(x).all()):
        raise ScalodiffError(f"{name} contain NaN or infinite values; drop or fill them first")


def check_stds(values, shape: tuple[int, int]) -> np.ndarray:
    """Saved per-row stds: finite, positive, of the transform's (C, H) shape."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError):
        arr = np.full((0,), np.nan)
    if arr.shape != shape or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ScalodiffError(
            f"stds in the transform JSON have shape {arr.shape} (expected {shape}) or "
            "non-positive values; re-fit the transform and save it again"
        )
    return arr


def check_image_batch(s, expected: tuple[int, int, int], context: str) -> None:
    """A ``(B, C, H, W)`` float32/float64 tensor with ``(C, H, W) == expected``."""
    if not isinstance(s, torch.Tensor):
        raise ScalodiffError(
            f"scalogram of type {type(s).__name__} is not a torch.Tensor; pass torch.as_tensor(s)"
        )
    if s.dim() != 4 or tuple(s.shape[1:]) != expected:
        raise ScalodiffError(
            f"scalogram shape {tuple(s.shape)} does not match (B, C, H, W) = (B, {expected[0]}, "
            f"{expected[1]}, {expected[2]}) of this transform ({context}); use the transform "
            "saved with the model"
        )
    if s.dtype not in (torch.float32, torch.float64):
        raise ScalodiffError(f"scalogram dtype {s.dtype} is not supported; use float32 or float64")


def check_wavelet_fits_mode(wavelet: str, is_complex: bool, mode: str) -> None:
    """'signed' needs a real wavelet, 'complex' a complex one; 'magnitude' takes either."""
    if mode == "signed" and is_complex:
        raise ScalodiffError(
            f"wavelet={wavelet!r} is complex but mode='signed' needs a real wavelet; "
            "use wavelet='morl', or mode='complex'"
        )
    if mode == "complex" and not is_complex:
        raise ScalodiffError(
            f"wavelet={wavelet!r} is real but mode='complex' needs a complex wavelet; "
            "use e.g. wavelet='cmor1.5-1.0', or mode='signed'"
        )


def _settings(tr) -> str:
    return (
        f"n_scales={tr.n_scales}, scale_min={tr.scale_min:g}, scale_max={tr.scale_max:g}, "
        f"spacing={tr.spacing!r}, include_mean={tr.include_mean}, image_width={tr.image_width}"
    )


def check_saved_scales(given, computed: np.ndarray, tr) -> np.ndarray:
    """Saved exact scales, which must agree with the settings that produced them."""
    arr = np.asarray(given, dtype=np.float64)
    if arr.shape != computed.shape or not np.allclose(arr, computed, rtol=1e-9, atol=0):
        raise ScalodiffError(
            f"scales={arr.tolist()!r} do not match {_settings(tr)}; leave scales=None or fix "
            "the other settings"
        )
    return arr


def check_condition(cond: float, what: str, tr) -> None:
    """Raise if the operator of transform ``tr`` cannot be inverted; warn if barely."""
    if not cond < COND_LIMIT:
        raise ScalodiffError(
            f"the {what}scalogram operator is not invertible (condition number {cond:.3g}) "
            f"with {_settings(tr)}; use more scales, include_mean=True, scale_max close to "
            f"window_size/2={tr.window_size / 2:g} or a larger image_width"
        )
    if cond > COND_WARN:
        warnings.warn(
            f"scalogram operator condition number {cond:.3g} with {_settings(tr)}: the inverse "
            "amplifies errors; float32 round trips will not be exact",
            stacklevel=5,
        )
