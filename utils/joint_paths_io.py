"""Joint paths of several series: files with an ``asset`` column, or ``(N, A, L)`` arrays.

Formats (chosen by the file's suffix, as for one series in :mod:`utils.paths_io`):

- ``.csv`` / ``.parquet``: long form, one row per path, series and step, columns
  ``path, asset, step, log_return, price``; each series' prices start from its
  own start price (its last training price by default).
- ``.npy``: float32 array of shape ``(N, A, L)`` of log returns, series in the
  order the model was trained on (generate.py prints them).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from utils.errors import ScalodiffError
from utils.paths_io import _suffix, prices_from_log_returns, read_paths_file, write_atomic

JOINT_COLUMNS = ("path", "asset", "step", "log_return", "price")


def joint_paths_frame(
    log_returns: np.ndarray, names: list[str], start_prices: list[float]
) -> pd.DataFrame:
    """Long form of ``[N, A, L]`` log returns: columns ``path, asset, step, log_return, price``.

    >>> f = joint_paths_frame(np.log([[[1.1], [0.5]]]), ["a", "b"], [100.0, 10.0])
    >>> f.round(6).values.tolist()
    [[0, 'a', 1, 0.09531, 110.0], [0, 'b', 1, -0.693147, 5.0]]
    """
    r = np.asarray(log_returns, dtype=np.float64)
    n, a, length = r.shape
    prices = np.stack(
        [prices_from_log_returns(r[:, k], start_prices[k])[:, 1:] for k in range(a)], axis=1
    )
    return pd.DataFrame(
        {
            "path": np.repeat(np.arange(n), a * length),
            "asset": np.tile(np.repeat(np.asarray(names, dtype=object), length), n),
            "step": np.tile(np.arange(1, length + 1), n * a),
            "log_return": r.ravel(),
            "price": prices.ravel(),
        }
    )


def write_joint_paths(
    path: str | os.PathLike,
    log_returns: np.ndarray,
    names: list[str],
    start_prices: list[float],
    overwrite: bool = False,
) -> Path:
    """Write joint paths ``[N, A, L]`` of the series ``names`` to ``path`` (see the module)."""
    path = Path(path)
    _suffix(path)
    r = np.asarray(log_returns, dtype=np.float64)
    if r.ndim != 3 or r.size == 0 or not r.shape[1] == len(names) == len(start_prices):
        raise ScalodiffError(
            f"{path}: expected log returns of shape (N, {len(names)}, L), got {r.shape}"
        )
    if not np.all(np.isfinite(r)):
        raise ScalodiffError(f"{path}: refusing to write non-finite log returns")
    if path.exists() and not overwrite:
        raise ScalodiffError(
            f"{path} exists; pass --overwrite to replace it or choose another --out"
        )
    if path.suffix.lower() == ".npy":
        return write_atomic(path, r.astype(np.float32))
    return write_atomic(path, joint_paths_frame(r, names, start_prices))


def read_joint_paths(path: str | os.PathLike) -> tuple[np.ndarray, list[str] | None]:
    """Joint log returns ``(N, A, L)`` and the series' names (None for ``.npy``, which has none)."""
    path = Path(path)
    read = read_paths_file(path, lambda frame: _long_to_joint(frame, path))
    r, names = (read, None) if isinstance(read, np.ndarray) else read
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 3 or r.size == 0 or not np.all(np.isfinite(r)):
        raise ScalodiffError(f"{path}: expected a complete (N, A, L) array of log returns")
    return r, names


def _long_to_joint(frame: pd.DataFrame, path: Path) -> tuple[np.ndarray, list[str]]:
    """Long-form joint paths -> ``(N, A, L)`` log returns and the series in order of appearance."""
    missing = [c for c in JOINT_COLUMNS[:4] if c not in frame.columns]
    if missing:
        raise ScalodiffError(
            f"{path}: missing columns {missing}; a joint file has {list(JOINT_COLUMNS)}"
        )
    names = list(dict.fromkeys(frame["asset"].astype(str)))
    wide = frame.pivot_table(
        index="path", columns=["asset", "step"], values="log_return", aggfunc="first"
    )
    r = wide.to_numpy().reshape(len(wide), len(names), -1)
    order = list(wide.columns.get_level_values(0).unique())
    return r[:, [order.index(n) for n in names]], names
