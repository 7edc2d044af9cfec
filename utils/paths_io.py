"""Read and write generated paths in the formats every generator in this repo shares.

Formats (chosen by the file's suffix):

- ``.csv`` / ``.parquet``: long form, one row per step, columns
  ``path, step, log_return, price``. ``step`` runs from 1 to L; ``price`` is the
  price after that step's return, starting from ``start_price``.
- ``.npy``: float32 array of shape ``(N, L)`` holding log returns, in the units of
  the training data's log returns.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from utils.errors import ScalodiffError

FORMATS = (".csv", ".parquet", ".npy")
COLUMNS = ("path", "step", "log_return", "price")


def prices_from_log_returns(returns: np.ndarray, initial_price: float = 1.0) -> np.ndarray:
    """Price paths from log returns: the inverse of :func:`log_returns`.

    Parameters
    ----------
    returns : numpy.ndarray
        Log returns, shape ``(..., L)``.
    initial_price : float, default 1.0
        The price before the first return.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(..., L + 1)``, starting at ``initial_price``.

    Examples
    --------
    >>> prices_from_log_returns(np.log([1.1, 0.9]), 100.0)
    array([100., 110.,  99.])
    """
    r = np.asarray(returns, dtype=np.float64)
    if not (math.isfinite(initial_price) and initial_price > 0):
        raise ScalodiffError(f"initial_price={initial_price!r} must be a positive number.")
    zero = np.zeros(r.shape[:-1] + (1,))
    return initial_price * np.exp(np.concatenate([zero, np.cumsum(r, axis=-1)], axis=-1))


def paths_frame(log_returns: np.ndarray, start_price: float = 100.0) -> pd.DataFrame:
    """Paths in long form: one row per step, columns ``path, step, log_return, price``.

    ``step`` runs from 1 to L; ``price`` is the price after that step's return.

    Examples
    --------
    >>> paths_frame(np.log([[1.1, 0.9]]), 100.0).round(6).values.tolist()
    [[0.0, 1.0, 0.09531, 110.0], [0.0, 2.0, -0.105361, 99.0]]
    """
    r = np.asarray(log_returns, dtype=np.float64)
    n, length = r.shape
    return pd.DataFrame(
        {
            "path": np.repeat(np.arange(n), length),
            "step": np.tile(np.arange(1, length + 1), n),
            "log_return": r.ravel(),
            "price": prices_from_log_returns(r, start_price)[:, 1:].ravel(),
        }
    )


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ScalodiffError(
            f"{path}: unknown output format {suffix or '(no suffix)'!r}; "
            f"use a file name ending in one of {', '.join(FORMATS)}"
        )
    return suffix


def check_output_format(path: str | os.PathLike) -> str:
    """The format ``path``'s suffix asks for (``.csv``, ``.parquet`` or ``.npy``).

    Generators call it before sampling, so a file name they cannot write stops
    them in a second rather than after minutes of work.

    Raises
    ------
    ScalodiffError
        For any other suffix, naming the formats there are.
    """
    return _suffix(Path(path))


def write_paths(
    path: str | os.PathLike,
    log_returns: np.ndarray,
    start_price: float = 100.0,
    overwrite: bool = False,
    dates: pd.DatetimeIndex | None = None,
) -> Path:
    """Write ``N`` paths of ``L`` log returns to ``path``.

    Parameters
    ----------
    path : str or PathLike
        Output file; its suffix (``.csv``, ``.parquet`` or ``.npy``) picks the format.
    log_returns : ndarray of shape (N, L)
        Log returns in real units.
    start_price : float
        Price before the first return; prices are ``start_price * exp(cumsum(r))``.
    overwrite : bool
        Replace an existing file. Without it an existing file is an error.
    dates : DatetimeIndex of length L, optional
        The date of each step (scenarios that continue a dated history); CSV and
        Parquet get a ``date`` column after ``step``.

    Returns
    -------
    Path
        The path written.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> out = Path(tempfile.mkdtemp()) / "paths.csv"
    >>> _ = write_paths(out, np.zeros((2, 3)))
    >>> read_paths(out).shape
    (2, 3)
    """
    path = Path(path)
    suffix = _suffix(path)
    r = np.asarray(log_returns, dtype=np.float64)
    if r.ndim != 2 or r.size == 0:
        raise ScalodiffError(f"{path}: expected log returns of shape (N, L), got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ScalodiffError(f"{path}: refusing to write non-finite log returns")
    if start_price <= 0 or not np.isfinite(start_price):
        raise ScalodiffError(f"start price must be a positive number, got {start_price}")
    if path.exists() and not overwrite:
        raise ScalodiffError(
            f"{path} exists; pass --overwrite to replace it or choose another --out"
        )
    if suffix == ".npy":
        return write_atomic(path, r.astype(np.float32))
    frame = paths_frame(r, start_price)
    if dates is not None:
        frame.insert(2, "date", np.tile(np.asarray(dates), r.shape[0]))
    return write_atomic(path, frame)


def write_atomic(path: Path, content: np.ndarray | pd.DataFrame) -> Path:
    """Write an array (``.npy``) or a long-form frame (``.csv``, ``.parquet``) to ``path``.

    The file is written under a temporary name and renamed, so a kill never leaves
    half a file under the real name.
    """
    suffix = _suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(content))
        elif suffix == ".csv":
            content.to_csv(tmp, index=False, float_format="%.10g")
        else:
            content.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        # A full disk or a Ctrl-C mid-write: leave neither half a file nor the temporary one.
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_paths(path: str | os.PathLike) -> np.ndarray:
    """Read log returns of shape ``(N, L)`` (float64) from any format of :func:`write_paths`."""
    path = Path(path)
    r = read_paths_file(path, lambda frame: _long_to_wide(frame, path))
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 2 or r.size == 0:
        raise ScalodiffError(f"{path}: expected an (N, L) array of log returns, got {r.shape}")
    return r


def read_paths_file(path: Path, from_frame: Callable[[pd.DataFrame], Any]) -> Any:
    """A paths file's array (``.npy``) or ``from_frame`` of its long-form table (CSV, Parquet).

    A missing file, or one that cannot be parsed, is a one-line error naming it.
    """
    suffix = _suffix(path)
    if not path.exists():
        raise ScalodiffError(f"{path}: no such file; give a file written by generate.py")
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        return from_frame(pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path))
    except ScalodiffError:
        raise
    except Exception as exc:  # a corrupt file: say which, not a parser traceback
        raise ScalodiffError(f"{path}: could not read paths ({exc})") from exc


def _long_to_wide(frame: pd.DataFrame, path: Path) -> np.ndarray:
    missing = [c for c in ("path", "step", "log_return") if c not in frame.columns]
    if missing:
        raise ScalodiffError(
            f"{path}: missing columns {missing}; expected {list(COLUMNS)} as written by generate.py"
        )
    wide = frame.pivot(index="path", columns="step", values="log_return")
    if wide.isna().any().any():
        raise ScalodiffError(f"{path}: paths have different lengths; every path needs every step")
    return wide.sort_index().sort_index(axis=1).to_numpy()
