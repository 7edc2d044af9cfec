"""A real price history to continue: scenarios "from the market as it is on a date".

The history is read, cleaned and checked like training data
(:func:`data.readers.load_prices`: bad prices are errors that name the row),
cut at the requested date, and its last returns are checked for calendar gaps:
a continuation reads them as consecutive days. What happened after the date,
when the file has it, is kept to draw over the scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.quality import find_gaps
from data.readers import load_prices
from data.returns import log_returns
from utils.errors import ScalodiffError


@dataclass
class Context:
    """Real prices up to the context's end (``history``) and after it (``realized``, maybe empty).

    ``dates`` and ``realized_dates`` are None when the source has no timestamps.
    """

    name: str
    history: np.ndarray
    realized: np.ndarray
    dates: pd.DatetimeIndex | None
    realized_dates: pd.DatetimeIndex | None

    @property
    def returns(self) -> np.ndarray:
        """Log returns of the history."""
        return log_returns(self.history)

    @property
    def last_price(self) -> float:
        return float(self.history[-1])

    @property
    def end_label(self) -> str:
        """The last history date, or its row number when the source has no dates."""
        if self.dates is not None:
            return str(self.dates[-1].date() if _daily(self.dates) else self.dates[-1])
        return f"row {len(self.history)}"

    def future_dates(self, horizon: int) -> pd.DatetimeIndex | None:
        """Dates of the next ``horizon`` steps: the realized ones where the file has them,
        then business days (daily data) or the series' median spacing."""
        if self.dates is None:
            return None
        known = self.realized_dates[:horizon] if self.realized_dates is not None else []
        missing = horizon - len(known)
        if missing == 0:
            return pd.DatetimeIndex(known)
        last = known[-1] if len(known) else self.dates[-1]
        if _daily(self.dates):
            extra = pd.bdate_range(last + pd.Timedelta(days=1), periods=missing)
        else:
            step = pd.Series(self.dates).diff().median()
            extra = pd.DatetimeIndex([last + step * (i + 1) for i in range(missing)])
        return pd.DatetimeIndex(list(known) + list(extra))


def _daily(dates: pd.DatetimeIndex) -> bool:
    return len(dates) > 1 and pd.Series(dates).diff().median() >= pd.Timedelta(hours=20)


def load_context(
    source: str,
    column: str | None,
    end: str | None,
    needed: int,
    date_format: str | None = None,
    max_missing_frac: float = 0.01,
) -> Context:
    """The history of ``source`` up to ``end`` (default: its last price), checked for use.

    ``needed`` is the number of returns a continuation reads; a history with fewer,
    an ``end`` outside the data, and a calendar gap among those returns are
    errors that say what to do.
    """
    series = load_prices(source, column, max_missing_frac=max_missing_frac, date_format=date_format)
    stamps = series.timestamps
    stop = len(series.values)
    if end is not None:
        stop = _end_index(series.source, stamps, end)
    history, realized = series.values[:stop], series.values[stop:]
    if len(history) - 1 < needed:
        raise ScalodiffError(
            f"--context {source}: {len(history) - 1} returns up to "
            f"{end or 'its end'}, but the model continues the last {needed}; give a longer "
            "history, a later --context-end, or a smaller CONTEXT_KNOWN (--known) or "
            "JOIN_OVERLAP (--overlap)"
        )
    dates = stamps[:stop] if stamps is not None else None
    if dates is not None:
        _check_no_gap(source, dates, needed)
    return Context(
        name=series.name,
        history=history,
        realized=realized,
        dates=dates,
        realized_dates=stamps[stop:] if stamps is not None else None,
    )


def _end_index(source: str, stamps: pd.DatetimeIndex | None, end: str) -> int:
    """How many prices lie at or before ``end``; an error when ``end`` is outside the data."""
    if stamps is None:
        raise ScalodiffError(
            f"--context-end {end}: {source} has no dates, so no date can be found in it; leave "
            "--context-end out (the history ends at the last price) or use a file with a date column"
        )
    try:
        when = pd.Timestamp(end)
    except (ValueError, TypeError):
        raise ScalodiffError(
            f"--context-end {end!r} is not a date; write it like 2015-06-30"
        ) from None
    if stamps.tz is not None and when.tz is None:
        when = when.tz_localize(stamps.tz)
    if when < stamps[0] or when > stamps[-1]:
        raise ScalodiffError(
            f"--context-end {end} is outside {source}, which runs from {stamps[0]} to "
            f"{stamps[-1]}; give a date inside that range"
        )
    return int(stamps.searchsorted(when, side="right"))


def _check_no_gap(source: str, dates: pd.DatetimeIndex, needed: int) -> None:
    """Refuse a history whose last ``needed`` returns straddle a gap in its calendar."""
    gaps, missing = find_gaps(dates)
    inside = gaps[gaps >= len(dates) - 1 - needed]
    if inside.size:
        i = int(inside[-1])
        raise ScalodiffError(
            f"--context {source}: a gap from {dates[i]} to {dates[i + 1]} (about "
            f"{missing[gaps == i][0]:.0f} observations missing) lies in the last {needed} returns "
            "that the continuation reads as consecutive; fill the gap or choose a --context-end "
            "after it"
        )
