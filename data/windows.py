"""Fixed-length windows over one series, without copying it.

Windows overlap heavily (stride 1 on 10 million returns with a 256-step window
would be 10 GB if materialized). Everything here is a view over the single
1-D array: memory grows with the series length, never with
``windows x window_size``. A window is copied only when it is asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from utils.errors import ScalodiffError


def _check_sizes(window_size: int, stride: int) -> None:
    for setting, value in (("WINDOW_SIZE", window_size), ("STRIDE", stride)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ScalodiffError(f"{setting}={value!r} must be a whole number of at least 1.")


def n_windows(n: int, window_size: int, stride: int = 1) -> int:
    """How many windows of ``window_size`` fit in ``n`` elements at ``stride``.

    Parameters
    ----------
    n : int
        Series length.
    window_size : int
    stride : int, default 1

    Returns
    -------
    int
        ``(n - window_size) // stride + 1``, or 0 when the series is too short.
        Elements after the last full window are not used.

    Examples
    --------
    >>> n_windows(10, 4, 3)
    3
    """
    _check_sizes(window_size, stride)
    return 0 if n < window_size else (n - window_size) // stride + 1


def model_window(settings: dict[str, Any]) -> int:
    """Returns per training window: WINDOW_SIZE plus EDGE_MARGIN at each end.

    The transform drops the margins again, so generated paths have WINDOW_SIZE returns.

    >>> model_window({"WINDOW_SIZE": 256, "EDGE_MARGIN": 16})
    288
    """
    return int(settings["WINDOW_SIZE"]) + 2 * int(settings.get("EDGE_MARGIN") or 0)


def check_length(n_returns: int, window_size: int, source: str, train_frac: float = 1.0) -> None:
    """Refuse a series with fewer returns than one window.

    Parameters
    ----------
    n_returns : int
        Returns available (for training, if checking the training part).
    window_size : int
        The WINDOW_SIZE setting.
    source : str
        The file or dataset, for the message.
    train_frac : float, default 1.0
        The share of ``n_returns`` that trains (as :func:`data.returns.split_by_time`
        rounds it); the prices asked for then include the held-out part.

    Raises
    ------
    ScalodiffError
        Naming the source, the number of rows it has and how many are needed.
    """
    _check_sizes(window_size, 1)
    n_train = round(n_returns * train_frac)
    if n_train < window_size:
        needed = window_size
        while round(needed * train_frac) < window_size:
            needed += 1
        if train_frac == 1.0:
            raise ScalodiffError(
                f"{source}: {n_returns} returns (from {n_returns + 1} prices) are fewer than "
                f"WINDOW_SIZE={window_size}; at least {window_size + 1} prices are needed for one "
                "window (more for a test split). Use a longer series or a smaller WINDOW_SIZE."
            )
        raise ScalodiffError(
            f"{source}: {n_returns + 1} prices give {n_returns} returns and TRAIN_FRAC={train_frac} "
            f"trains on the first {n_train}, fewer than WINDOW_SIZE={window_size}; at least "
            f"{needed + 1} prices are needed for one training window. Use a longer series, a "
            "smaller WINDOW_SIZE or a larger TRAIN_FRAC."
        )


def windows_view(series: np.ndarray, window_size: int, stride: int = 1) -> np.ndarray:
    """All windows of a 1-D series as a read-only view (no copy).

    Parameters
    ----------
    series : numpy.ndarray
        1-D array.
    window_size : int
    stride : int, default 1
        Step between window starts.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_windows, window_size)``; row ``i`` is
        ``series[i * stride : i * stride + window_size]``. It shares memory
        with ``series`` and cannot be written to.

    Raises
    ------
    ScalodiffError
        For a series that is not 1-D or is shorter than one window.

    Examples
    --------
    >>> windows_view(np.arange(6), 3, 2)
    array([[0, 1, 2],
           [2, 3, 4]])
    """
    _check_sizes(window_size, stride)
    series = np.asarray(series)
    if series.ndim != 1:
        raise ScalodiffError(f"windows need one 1-D series, got shape {series.shape}.")
    if len(series) < window_size:
        raise ScalodiffError(
            f"a series of {len(series)} values is shorter than WINDOW_SIZE={window_size}; "
            "use a longer series or a smaller WINDOW_SIZE."
        )
    return sliding_window_view(series, window_size)[::stride]


class StackedWindows:
    """The windows of several series as one collection, indexed like one window view.

    Parameters
    ----------
    views : list of numpy.ndarray
        One ``(n_k, L)`` window view per series (:func:`windows_view`).

    Examples
    --------
    >>> w = StackedWindows([windows_view(np.arange(4.0), 2), windows_view(np.arange(10.0, 13.0), 2)])
    >>> len(w), w[np.array([2, 3])].tolist(), w.series_of(np.array([0, 3])).tolist()
    (5, [[2.0, 3.0], [10.0, 11.0]], [0, 1])
    """

    def __init__(self, views: list[np.ndarray]) -> None:
        self.views = views
        self.offsets = np.cumsum([0] + [len(v) for v in views])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def series_of(self, index: np.ndarray) -> np.ndarray:
        """Which series each global window index belongs to."""
        return np.searchsorted(self.offsets, np.asarray(index), side="right") - 1

    def __getitem__(self, index: slice | np.ndarray) -> np.ndarray:
        """Windows at ``index`` (a slice or an integer array), copied into one array."""
        if isinstance(index, slice):
            index = np.arange(len(self))[index]
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), self.views[0].shape[1]), dtype=self.views[0].dtype)
        which = self.series_of(index)
        for k, view in enumerate(self.views):
            mask = which == k
            if mask.any():
                out[mask] = view[index[mask] - self.offsets[k]]
        return out
