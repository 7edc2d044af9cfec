"""Labels computed from each training window, and the record that says what they mean.

A conditional model learns p(window | label). The label of a window is one of

- ``vol-regime``: the window's realized volatility, cut into classes at quantiles
  (terciles by default: low / mid / high);
- ``trend``: the window's cumulative log return, cut the same way (down / flat / up);
- ``asset``: which series the window came from (several series trained together);
- ``realized-vol``: the realized volatility itself, a continuous target.

Realized volatility is the root mean square of the window's log returns (no mean
removed, as practitioners compute it), annualized by ``sqrt(periods per year)``
when the timestamps say the data are daily (252), weekly (52) or monthly (12);
other data (intraday bars, files without dates) keep per-step units. The unit is
stored with the edges, so "high" always means what it meant on the training data.

The quantile edges are fitted on the training windows only and saved in the
checkpoint (``conditioning.json``) by :class:`Conditioning`, together with each
class's realized-volatility (or return) median and interquartile range, which
generate.py and benchmarks/conditional.py print next to the generated paths.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from utils.errors import ScalodiffError

KINDS = ("vol-regime", "trend", "asset", "realized-vol")
CATEGORICAL = ("vol-regime", "trend", "asset")
TERCILES = (1 / 3, 2 / 3)
# A continuous target enters the UNet through its sinusoidal timestep embedding; the
# training windows' rank (0..1) is spread over the timestep range [0, 1000] so that it
# uses the same frequencies as diffusion time. The null label lies far outside that range.
RANK_SCALE = 1000.0
NULL_CONTINUOUS = -1000.0
GRID_PROBS = np.linspace(0.0, 1.0, 201)
_JSON_VERSION = 1
# Median spacing of the timestamps (in days) -> periods per year, for annualizing.
_PERIODS = ((0.5, 4.5, 252), (4.5, 10.0, 52), (25.0, 35.0, 12))


def periods_per_year(timestamps: pd.DatetimeIndex | None) -> int | None:
    """252, 52 or 12 when the timestamps are daily, weekly or monthly; else None.

    Examples
    --------
    >>> periods_per_year(pd.bdate_range("2020-01-01", periods=30))
    252
    >>> periods_per_year(None) is None
    True
    """
    if timestamps is None or len(timestamps) < 3:
        return None
    # Through pandas: time zones and the index's unit (ns, us, ...) are handled for us.
    median = float(pd.Series(timestamps).diff().dt.total_seconds().median()) / 86400.0
    for lo, hi, periods in _PERIODS:
        if lo <= median < hi:
            return periods
    return None


def _window_sums(x: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Sum of every window of a 1-D series by cumulative sums: no window is materialized."""
    c = np.concatenate([[0.0], np.cumsum(np.asarray(x, dtype=np.float64))])
    starts = np.arange(0, len(x) - window + 1, stride)
    return c[starts + window] - c[starts]


def window_measure(
    kind: str, returns: np.ndarray, window: int, stride: int, periods: int | None
) -> np.ndarray:
    """The labelled quantity of every window of a 1-D series of log returns.

    Realized volatility (``vol-regime``, ``realized-vol``) or cumulative log
    return (``trend``), one value per window start ``0, stride, 2 stride, ...``
    (the windows of :func:`data.windows.windows_view`).

    Examples
    --------
    >>> window_measure("trend", np.array([0.01, -0.02, 0.03, 0.0]), 2, 2, None).round(3)
    array([-0.01,  0.03])
    """
    r = np.asarray(returns, dtype=np.float64)
    if kind == "trend":
        return _window_sums(r, window, stride)
    mean_square = np.maximum(_window_sums(r * r, window, stride) / window, 0.0)
    return np.sqrt(mean_square * (periods or 1))


def path_measure(kind: str, paths: np.ndarray, periods: int | None) -> np.ndarray:
    """The same quantity for generated paths ``[N, L]`` of log returns."""
    p = np.asarray(paths, dtype=np.float64)
    if kind == "trend":
        return p.sum(axis=-1)
    return np.sqrt(np.mean(p * p, axis=-1) * (periods or 1))


def class_names(kind: str, n: int) -> list[str]:
    """Names of ``n`` ordered classes: low/mid/high, down/flat/up, or q1..qn.

    Examples
    --------
    >>> class_names("vol-regime", 3), class_names("trend", 2), class_names("trend", 4)[-1]
    (['low', 'mid', 'high'], ['down', 'up'], 'q4')
    """
    words = {"vol-regime": ("low", "mid", "high"), "trend": ("down", "flat", "up")}[kind]
    if n == 3:
        return list(words)
    if n == 2:
        return [words[0], words[2]]
    return [f"q{i + 1}" for i in range(n)]


def summary(values: np.ndarray) -> dict[str, float]:
    """Count, median, quartiles and range of some values (NaN when empty)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"count": 0, **dict.fromkeys(("median", "q25", "q75", "min", "max"), math.nan)}
    q25, median, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    return {
        "count": int(v.size),
        "median": float(median),
        "q25": float(q25),
        "q75": float(q75),
        "min": float(v.min()),
        "max": float(v.max()),
    }


@dataclass
class Conditioning:
    """What a conditional model's labels mean; saved as ``conditioning.json``.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    classes : list of str
        Class names in label order (categorical kinds); empty for realized-vol.
    quantiles, edges : list of float
        The quantile levels and the values of the measure at them, fitted on
        the training windows; window value v gets class ``searchsorted(edges, v, "right")``.
    periods_per_year : int or None
        Annualization of realized volatility (None: per-step units).
    stats : list of dict
        Per class (or, for realized-vol, for all windows) the :func:`summary` of
        the measure on the training windows.
    grid : list of float
        realized-vol: the measure at :data:`GRID_PROBS`, to turn a target into a rank.
    assets : list of dict
        asset: per series its name, source, column, normalizer JSON, last training
        price, std of its training log returns, and its slice of the checkpoint's
        ``real_returns.npy`` (``real_start``, ``real_stop``).
    drop : float
        The label dropout used in training (for the record).
    """

    kind: str
    classes: list[str] = field(default_factory=list)
    quantiles: list[float] = field(default_factory=list)
    edges: list[float] = field(default_factory=list)
    periods_per_year: int | None = None
    stats: list[dict[str, float]] = field(default_factory=list)
    grid: list[float] = field(default_factory=list)
    assets: list[dict[str, Any]] = field(default_factory=list)
    drop: float = 0.0

    @property
    def categorical(self) -> bool:
        """True for class labels (an embedding table), False for a continuous target."""
        return self.kind in CATEGORICAL

    @property
    def null_label(self) -> int | float:
        """The label that means "no condition" (what dropped labels become in training)."""
        return len(self.classes) if self.categorical else NULL_CONTINUOUS

    @property
    def measure_name(self) -> str:
        """What the labels measure, for tables."""
        if self.kind == "trend":
            return "cumulative log return"
        if self.kind == "asset":
            return "std of log returns"
        return "realized vol"

    @property
    def unit(self) -> str:
        """The unit of the measure, for messages."""
        if self.kind == "trend":
            return "log return over the window"
        if self.kind == "asset":
            return "per step"
        if self.periods_per_year:
            return f"annualized: RMS of log returns x sqrt({self.periods_per_year})"
        return "per step: RMS of log returns"

    def labels_for(self, values: np.ndarray) -> np.ndarray:
        """Labels of windows from their measure: class indices, or encoded continuous targets."""
        v = np.asarray(values, dtype=np.float64)
        if self.categorical:
            return np.searchsorted(np.asarray(self.edges), v, side="right").astype(np.int64)
        return (RANK_SCALE * self.rank(v)).astype(np.float32)

    def rank(self, values: np.ndarray) -> np.ndarray:
        """Where ``values`` fall in the training windows' distribution, 0..1 (realized-vol)."""
        return np.interp(np.asarray(values, dtype=np.float64), self.grid, GRID_PROBS)

    def class_index(self, name: str, flag: str = "--condition") -> int:
        """The label of a class name; an unknown name is a one-line error with a suggestion."""
        key = name.strip().lower()
        folded = [c.lower() for c in self.classes]
        if key in folded:
            return folded.index(key)
        close = difflib.get_close_matches(key, folded, n=1, cutoff=0.5)
        hint = f" (did you mean {self.classes[folded.index(close[0])]!r}?)" if close else ""
        raise ScalodiffError(
            f"{flag} {name!r} is not a class of this checkpoint's {self.kind} conditioning"
            f"{hint}; choose one of {', '.join(self.classes)}"
        )

    def describe(self) -> list[str]:
        """One line per class: the training windows' range of the measure."""
        if self.kind == "asset":
            return [
                f"  {a['name']:<8} std of training log returns {a['std']:.5f}" for a in self.assets
            ]
        rows = (
            list(zip(self.classes, self.stats, strict=True))
            if self.categorical
            else [("all", self.stats[0])]
        )
        return [
            f"  {name:<6} {self.measure_name} median {s['median']:.4f}, IQR {s['q25']:.4f}-"
            f"{s['q75']:.4f}, range {s['min']:.4f}-{s['max']:.4f} ({s['count']} windows)"
            for name, s in rows
        ]

    def to_json(self) -> dict[str, Any]:
        """The record as JSON (``conditioning.json``)."""
        return {"record": "Conditioning", "version": _JSON_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> Conditioning:
        """Rebuild the record written by :meth:`to_json`."""
        if state.get("record") != "Conditioning" or state.get("version") != _JSON_VERSION:
            raise ScalodiffError(
                f"conditioning.json is not a version-{_JSON_VERSION} Conditioning record "
                f"(record={state.get('record')!r}, version={state.get('version')!r}); the "
                "checkpoint may be damaged or from another version of scalodiff"
            )
        fields = {k: v for k, v in state.items() if k not in ("record", "version")}
        try:
            return cls(**fields)
        except TypeError as exc:  # a field missing or unknown
            raise ScalodiffError(f"conditioning.json does not fit this version: {exc}") from exc


def check_quantiles(quantiles: tuple[float, ...] | list[float] | None) -> list[float]:
    """The quantile levels to cut at (terciles when None), checked."""
    q = list(TERCILES if quantiles is None else quantiles)
    if not q or any(not 0.0 < x < 1.0 for x in q) or bool(np.any(np.diff(q) <= 0)):
        raise ScalodiffError(
            f"setting CONDITION_QUANTILES={quantiles!r}: give increasing levels strictly between "
            "0 and 1, e.g. (0.25, 0.75) for three classes; None means terciles"
        )
    return [float(x) for x in q]


def fit_conditioning(
    kind: str,
    measure: np.ndarray,
    quantiles: tuple[float, ...] | list[float] | None,
    periods: int | None,
    drop: float,
) -> Conditioning:
    """Fit the edges (or the rank grid) on the training windows' measure.

    Parameters
    ----------
    kind : str
        ``vol-regime``, ``trend`` or ``realized-vol`` (``asset`` is built by
        :func:`data.conditional.prepare_conditional`, which knows the series).
    measure : numpy.ndarray
        One value per training window, from :func:`window_measure`.
    quantiles : sequence of float or None
        CONDITION_QUANTILES; None means terciles.
    periods : int or None
        From :func:`periods_per_year`.
    drop : float
        CONDITION_DROP, kept for the record.

    Examples
    --------
    >>> spec = fit_conditioning("vol-regime", np.arange(1.0, 10.0), None, None, 0.1)
    >>> spec.classes, spec.labels_for(np.array([1.0, 5.0, 9.0])).tolist()
    (['low', 'mid', 'high'], [0, 1, 2])
    """
    m = np.asarray(measure, dtype=np.float64)
    if kind == "realized-vol":
        return Conditioning(
            kind=kind,
            periods_per_year=periods,
            stats=[summary(m)],
            grid=np.quantile(m, GRID_PROBS).tolist(),
            drop=drop,
        )
    q = check_quantiles(quantiles)
    edges = np.quantile(m, q)
    if np.any(np.diff(edges) <= 0):
        raise ScalodiffError(
            f"CONDITION_QUANTILES {q} give equal edges {edges.tolist()} on the training windows' "
            f"{kind} values (too few distinct windows); use fewer quantiles or more data"
        )
    labels = np.searchsorted(edges, m, side="right")
    stats = [summary(m[labels == i]) for i in range(len(q) + 1)]
    return Conditioning(
        kind=kind,
        classes=class_names(kind, len(q) + 1),
        quantiles=q,
        edges=edges.tolist(),
        periods_per_year=periods,
        stats=stats,
        drop=drop,
    )


def matching_windows(
    spec: Conditioning, windows: np.ndarray, label: int | float, width: float = 0.05
) -> np.ndarray:
    """A mask of the real windows that carry ``label``.

    Class labels: the windows of that class under the saved edges. A continuous
    target (an encoded rank): the windows whose rank lies within ``width`` of it.
    Asset labels are not a property of a window: every window matches.
    """
    if spec.kind == "asset":
        return np.ones(len(windows), dtype=bool)
    measure = path_measure(spec.kind, windows, spec.periods_per_year)
    if spec.categorical:
        return spec.labels_for(measure) == int(label)
    return np.abs(spec.rank(measure) - float(label) / RANK_SCALE) <= width


def inside(values: np.ndarray, stats: dict[str, float]) -> float:
    """The fraction of ``values`` inside the interquartile range ``stats`` describes."""
    v = np.asarray(values, dtype=np.float64)
    return float(np.mean((v >= stats["q25"]) & (v <= stats["q75"]))) if v.size else math.nan
