"""Returns and time gaps that are probably not what the market did, found before training.

Two things in a price file train without any error but teach the model something
false: an outlier return (an unadjusted split halves an index in one day; a bad
tick jumps and comes back) and a gap (a day of minute bars missing makes one
"minute" return span two days). :func:`screen_prices` lists them and, as the
setting OUTLIERS says, keeps them ("warn"), removes those returns ("drop") or
stops ("error").

**Outliers** are returns further than ``OUTLIER_SCALES`` robust scales (1.4826 x
the median absolute deviation) from the median return. Real markets have fat
tails, so the bar is high: the largest real days of the built-in series are
13.8 (S&P 500, 2008-10-13), 12.5 (NASDAQ) and 22.3 (WTI, 1991-01-17) such
scales; unadjusted 2:1 splits in daily stock files sit at 28 to 48 (and so does
a real -52% day, which no rule on returns alone tells from a split), and a
halving of an index at over 100. The largest of n fat-tailed returns grows with
n (like n^(1/4) for tails of power 4: 10 M Student-t(4) returns reach 117
scales), so for series longer than ``REFERENCE_RETURNS`` the bar grows the same
way, to keep the number of real returns listed from growing with the length.

**Gaps** are measured against the series' own calendar, not its median
spacing: weekends, nights and holidays are far longer than one step too, and
are ordinary. The observations per hour of the week, averaged over the series,
say how many observations a gap would normally hold. A gap is listed when it
would hold at least ``GAP_MIN_MISSING`` observations and more than
``GAP_MIN_DAYS`` trading days' worth (a trading day: the median count of
observations on a day with data). So a weekend or a night never counts (no
observations are expected then), a one-day holiday in minute bars does not, and
neither does a closure of a few days in daily data (the 4 days after
2001-09-11), while two missing days of minute bars or a missing fortnight of
daily closes do.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from data.cleaning import PriceSeries
from utils.errors import ScalodiffError

OUTLIER_SCALES = 25.0
REFERENCE_RETURNS = 5_000  # about 20 years of daily closes
GAP_MIN_MISSING = 10
GAP_MIN_DAYS = 1.5
SHOWN = 5  # listed in a message; the count says how many more

_HOUR_NS = 3_600_000_000_000
_WEEK_HOURS = 168
# 1970-01-05, the first Monday of the epoch, so that slot 0 is Monday 00:00-01:00.
_MONDAY_NS = 4 * 24 * _HOUR_NS


def _median_in_place(values: np.ndarray) -> float:
    """The median of ``values``, reordering them (a long series' copy costs 80 MB per 10 M)."""
    n = len(values)
    values.partition((n - 1) // 2)
    low = float(values[(n - 1) // 2])
    return low if n % 2 else (low + float(values[(n - 1) // 2 + 1 :].min())) / 2


def robust_scale(returns: np.ndarray) -> tuple[float, float]:
    """The median return and 1.4826 x the median absolute deviation (the standard deviation,
    for Gaussian returns).

    Minute bars can leave more than half the returns at zero, and so a zero MAD;
    the mean absolute deviation (x 1.2533, also the standard deviation for Gaussian
    returns) stands in then.
    """
    deviation = returns.copy()
    center = _median_in_place(deviation)
    deviation -= center
    np.abs(deviation, out=deviation)
    scale = 1.4826 * _median_in_place(deviation)
    return center, scale if scale > 0 else 1.2533 * float(deviation.mean())


def outlier_bar(n_returns: int) -> float:
    """How many robust scales from the median a return must lie to be listed (see above)."""
    return OUTLIER_SCALES * max(1.0, n_returns / REFERENCE_RETURNS) ** 0.25


def find_outliers(returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of returns beyond :func:`outlier_bar` robust scales, and their size in scales."""
    center, scale = robust_scale(returns)
    if scale == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    found = np.flatnonzero(np.abs(returns - center) > outlier_bar(len(returns)) * scale)
    return found, np.abs(returns[found] - center) / scale


def find_gaps(stamps: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``i`` of gaps between price ``i`` and ``i + 1``, and the observations each lacks.

    See the module docstring for the rule. Wall-clock time of the stamps' own
    zone is used, so that a market's hours fall in the same slots all year
    (up to a daylight-saving hour). ``stamps`` are sorted, as cleaning leaves them.
    """
    if stamps.tz is not None:
        stamps = stamps.tz_localize(None)
    # Nanoseconds without a copy where they are already (10 M stamps are 80 MB).
    t = stamps.asi8 if stamps.unit == "ns" else stamps.as_unit("ns").asi8
    if len(t) < 3:
        return np.empty(0, dtype=np.int64), np.empty(0)
    step = np.diff(t)
    median_step = np.median(step)
    candidates = np.flatnonzero(step > GAP_MIN_MISSING * median_step)
    del step
    if candidates.size == 0:
        return candidates, np.empty(0)
    rate, per_day = _weekly_rate(t)
    before = np.concatenate([[0.0], np.cumsum(rate)])

    def expected(x: np.ndarray) -> np.ndarray:
        """Observations the calendar expects from the epoch's first Monday to time ``x``."""
        hours = (x - _MONDAY_NS) / _HOUR_NS
        whole_weeks, in_week = np.divmod(hours, _WEEK_HOURS)
        slot = in_week.astype(np.int64)
        return whole_weeks * before[-1] + before[slot] + rate[slot] * (in_week - slot)

    # The slot of the gap's first price counts that price itself: take it off.
    missing = expected(t[candidates + 1]) - expected(t[candidates]) - 1.0
    keep = (missing >= GAP_MIN_MISSING) & (missing > GAP_MIN_DAYS * per_day)
    return candidates[keep], missing[keep]


def _weekly_rate(t: np.ndarray, block: int = 1 << 20) -> tuple[np.ndarray, float]:
    """Observations per hour in each hour of the week, and per day with data (the median).

    Block by block, so that a long series needs no full-length temporaries.
    """
    counts = np.zeros(_WEEK_HOURS, dtype=np.int64)
    day_counts: list[np.ndarray] = []
    for lo in range(0, len(t), block):
        part = t[lo : lo + block] - _MONDAY_NS
        counts += np.bincount((part // _HOUR_NS) % _WEEK_HOURS, minlength=_WEEK_HOURS)
        day_counts.append(part // (24 * _HOUR_NS))
        day_counts[-1] = np.unique(day_counts[-1], return_counts=True)
    days = np.concatenate([d for d, _ in day_counts])
    per_day = np.concatenate([c for _, c in day_counts])
    # A day cut by a block boundary appears twice: add its two counts.
    merged = np.bincount(np.unique(days, return_inverse=True)[1], weights=per_day)
    weeks = max((t[-1] - t[0]) / (_WEEK_HOURS * _HOUR_NS), 1.0)
    return counts / weeks, float(np.median(merged))


def _listing(items: list[str], total: int) -> str:
    more = f" and {total - len(items)} more" if total > len(items) else ""
    return "; ".join(items) + more


def screen_prices(series: PriceSeries, policy: str) -> PriceSeries:
    """Find outlier returns and calendar gaps; warn, drop them or stop, as ``policy`` says.

    Parameters
    ----------
    series : PriceSeries
        A cleaned series (:func:`data.readers.load_prices`).
    policy : {"warn", "drop", "error"}
        The setting OUTLIERS.

    Returns
    -------
    PriceSeries
        ``series`` itself, or with the flagged returns removed ("drop").

    Raises
    ------
    ScalodiffError
        With ``policy="error"`` when anything is found.
    """
    returns = np.diff(np.log(series.values))
    outliers, sizes = find_outliers(returns)
    moves = np.expm1(returns[outliers[:SHOWN]])
    del returns  # a long series' returns need not sit beside the gap search's arrays
    stamps = series.timestamps
    gaps, missing = find_gaps(stamps) if stamps is not None else (np.empty(0, int), None)
    if outliers.size == 0 and gaps.size == 0:
        return series

    def when(i: int) -> str:
        return str(stamps[i + 1]) if stamps is not None else f"return {i + 1}"

    parts = []
    if outliers.size:
        shown = [
            f"{when(int(i))} ({move:+.1%}, {s:.0f} scales)"
            for i, move, s in zip(outliers[:SHOWN], moves, sizes[:SHOWN], strict=False)
        ]
        parts.append(
            f"{outliers.size} return(s) beyond {outlier_bar(len(series) - 1):.0f} robust scales (an unadjusted "
            f"split, a bad tick, or a real crash): {_listing(shown, outliers.size)}"
        )
    if gaps.size:
        shown = [
            f"{stamps[i]} -> {stamps[i + 1]} (~{m:.0f} observations missing)"
            for i, m in zip(gaps[:SHOWN], missing[:SHOWN], strict=False)
        ]
        parts.append(
            f"{gaps.size} gap(s) far longer than the series' calendar explains: "
            f"{_listing(shown, gaps.size)}"
        )
    found = f"{series.source}, column {series.column!r}: " + "; ".join(parts)
    if policy == "error":
        raise ScalodiffError(
            f"{found}. Fix the file (e.g. use split-adjusted prices), or set OUTLIERS to 'drop' "
            "(remove those returns) or 'warn' (keep them)"
        )
    if policy == "warn":
        warnings.warn(
            f"{found}. Kept (OUTLIERS='warn'); OUTLIERS='drop' removes those returns, "
            "'error' stops.",
            UserWarning,
            stacklevel=2,
        )
        return series
    return drop_returns(series, np.union1d(outliers, gaps))


def drop_returns(series: PriceSeries, drop: np.ndarray) -> PriceSeries:
    """The series without the returns at ``drop`` (return ``i`` runs from price ``i`` to ``i + 1``).

    Prices before each removed return are rescaled, as split adjustment does, so
    that every other return is kept exactly and the last price is unchanged.
    """
    returns = np.diff(np.log(series.values))
    keep = np.ones(len(returns), dtype=bool)
    keep[drop] = False
    kept = returns[keep]
    # Back from the last price: log p_k = log p_last - (sum of the kept returns after k).
    tail = np.concatenate([np.cumsum(kept[::-1])[::-1], [0.0]])
    values = series.values[-1] * np.exp(-tail)
    stamps = None
    if series.timestamps is not None:
        stamps = series.timestamps[np.concatenate([[0], np.flatnonzero(keep) + 1])]
    print(
        f"{series.source}: dropped {len(drop)} return(s) (OUTLIERS='drop'); earlier prices "
        "rescaled so that every other return is kept"
    )
    return PriceSeries(
        values=values,
        timestamps=stamps,
        name=series.name,
        source=series.source,
        column=series.column,
        file_format=series.file_format,
    )
