"""Joint training data: several price series aligned on common dates, windows cut together.

A joint model (setting JOINT) learns the series as the channels of one image, so
every training window must hold the same days for all of them. :func:`align_prices`
puts the series on one calendar; each series then gets its own normalizer, fitted
on its own training part, and the windows are ``[N, A, L]`` views over one
``[A, T]`` array (no copy), cut at the same times for every series.

Markets close on different holidays. Two gap policies (setting JOINT_GAPS):

``"drop"``
    Keep only the dates every series has. A move on a date another market was
    closed folds into the next common date's return, so no return is lost and
    prices stay exact.
``"ffill"``
    Keep every date any series has inside the span all of them cover, carrying a
    closed market's last price forward (a zero return on its holiday). Dates
    before the last series starts or after the first one stops are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from data.cleaning import PriceSeries
from data.returns import ReturnNormalizer
from utils.errors import ScalodiffError

GAP_POLICIES = ("drop", "ffill")


@dataclass
class AlignedPrices:
    """Prices of several series on one calendar.

    ``prices`` is ``[T, A]``; ``dropped`` counts, per series, the rows of its own
    that are not on the common calendar, ``outside`` how many of those lie before
    or after the span all series cover; ``filled`` the dates carried forward
    (``"ffill"`` only).
    """

    timestamps: pd.DatetimeIndex
    prices: np.ndarray
    names: list[str]
    sources: list[str]
    dropped: list[int]
    outside: list[int] = field(default_factory=list)
    filled: list[int] = field(default_factory=list)

    def describe(self) -> str:
        """One line: the common span and what alignment dropped or filled, per series."""
        span = f"{self.timestamps[0].date()} to {self.timestamps[-1].date()}"
        parts = [
            f"{n}: {d} dropped ({o} outside the span)" if o else f"{n}: {d} dropped"
            for n, d, o in zip(
                self.names, self.dropped, self.outside or [0] * len(self.names), strict=True
            )
        ]
        if self.filled:
            parts = [f"{p}, {f} filled" for p, f in zip(parts, self.filled, strict=True)]
        return f"aligned {len(self.names)} series on {len(self.timestamps)} dates, {span} ({'; '.join(parts)})"


def align_prices(series: list[PriceSeries], gaps: str = "drop") -> AlignedPrices:
    """The series on one calendar (see the module docstring for ``gaps``).

    Raises a one-line error naming the series when one has no timestamps (a joint
    model needs dates to line up days), when fewer than two are given, or when
    the series share too few dates.
    """
    if gaps not in GAP_POLICIES:
        raise ScalodiffError(
            f"setting JOINT_GAPS={gaps!r}: choose one of {', '.join(map(repr, GAP_POLICIES))}"
        )
    if len(series) < 2:
        raise ScalodiffError(
            f"a joint model (JOINT = True) needs two or more series, got {len(series)} "
            f"({', '.join(s.source for s in series)}); list them: --data sp500,nasdaq"
        )
    for s in series:
        if s.timestamps is None:
            raise ScalodiffError(
                f"{s.source} has no date column, so its days cannot be lined up with the other "
                "series of a joint model; give a file with a Date column"
            )
    frames = [pd.Series(s.values, index=s.timestamps) for s in series]
    start = max(f.index[0] for f in frames)
    stop = min(f.index[-1] for f in frames)
    if start >= stop:
        spans = "; ".join(
            f"{s.name}: {s.timestamps[0].date()} to {s.timestamps[-1].date()}" for s in series
        )
        raise ScalodiffError(f"the series of the joint model share no dates ({spans})")
    if gaps == "drop":
        common = frames[0].index
        for f in frames[1:]:
            common = common.intersection(f.index)
        table = pd.concat([f.reindex(common) for f in frames], axis=1)
        filled: list[int] = []
    else:
        union = frames[0].index
        for f in frames[1:]:
            union = union.union(f.index)
        union = union[(union >= start) & (union <= stop)]
        raw = pd.concat([f.reindex(union) for f in frames], axis=1)
        filled = [int(n) for n in raw.isna().sum()]
        table = raw.ffill().dropna()  # a series' first dates before its first price go
    if len(table) < 2:
        raise ScalodiffError(
            f"the series of the joint model ({', '.join(s.name for s in series)}) share "
            f"{len(table)} timestamps; their dates must match (a file with times of day "
            "against one with dates only shares none)"
        )
    dropped = [int(len(f) - f.index.isin(table.index).sum()) for f in frames]
    outside = [int(((f.index < start) | (f.index > stop)).sum()) for f in frames]
    return AlignedPrices(
        timestamps=pd.DatetimeIndex(table.index),
        prices=table.to_numpy(dtype=np.float64),
        names=[s.name for s in series],
        sources=[s.source for s in series],
        dropped=dropped,
        outside=outside,
        filled=filled,
    )


def joint_windows(z: np.ndarray, window_size: int, stride: int = 1) -> np.ndarray:
    """Read-only windows ``[N, A, window_size]`` over normalized returns ``z`` ``[A, T]``.

    Window i holds returns ``i * stride ... i * stride + window_size - 1`` of every
    series: the same days for all.

    >>> joint_windows(np.arange(10.0).reshape(2, 5), 3, 2).tolist()
    [[[0.0, 1.0, 2.0], [5.0, 6.0, 7.0]], [[2.0, 3.0, 4.0], [7.0, 8.0, 9.0]]]
    """
    view = np.lib.stride_tricks.sliding_window_view(z, window_size, axis=1)[:, ::stride]
    return view.transpose(1, 0, 2)


@dataclass
class JointNormalizer:
    """Each series' :class:`~data.returns.ReturnNormalizer` applied to its row of ``[..., A, L]``."""

    normalizers: list[ReturnNormalizer]

    def transform(self, returns: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """Normalize log returns ``[..., A, L]``, series a with its own normalizer."""
        return np.stack(
            [n.transform(returns[..., a, :], dtype=dtype) for a, n in enumerate(self.normalizers)],
            axis=-2,
        )

    def inverse(self, normalized: np.ndarray, generated: bool = False) -> np.ndarray:
        """Normalized values ``[..., A, L]`` back to each series' log returns (``generated``:
        each series' tail stretch applied, see ReturnNormalizer.inverse)."""
        return np.stack(
            [
                np.asarray(n.inverse(normalized[..., a, :], generated))
                for a, n in enumerate(self.normalizers)
            ],
            axis=-2,
        )


@dataclass
class JointInfo:
    """What a joint checkpoint keeps per series: names, sources, normalizers, last prices."""

    names: list[str]
    sources: list[str]
    normalizers: list[ReturnNormalizer]
    last_prices: list[float]
    gaps: str
    n_dates: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``joint.json`` in a checkpoint)."""
        return {
            "gaps": self.gaps,
            "n_dates": self.n_dates,
            "assets": [
                {"name": n, "source": s, "normalizer": z.to_json(), "last_train_price": p}
                for n, s, z, p in zip(
                    self.names, self.sources, self.normalizers, self.last_prices, strict=True
                )
            ],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JointInfo:
        """Rebuild what :meth:`to_json` wrote."""
        assets = d["assets"]
        return cls(
            names=[a["name"] for a in assets],
            sources=[a["source"] for a in assets],
            normalizers=[ReturnNormalizer.from_json(a["normalizer"]) for a in assets],
            last_prices=[float(a["last_train_price"]) for a in assets],
            gaps=str(d.get("gaps", "drop")),
            n_dates=int(d.get("n_dates", 0)),
        )
