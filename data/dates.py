"""How a time column is read when its text alone does not say: day or month first, Unix time.

``03/04/2020`` is the 3rd of April in Europe and March 4th in the US. pandas
guesses month first from the first value and, where that fails (``13/04/2020``),
quietly switches to day first for that row, so a European file came out as a
mix of both, "sorted", with returns across months. Here the order is decided
once for the whole column (:func:`detect_day_first`):

1. a first field above 12 anywhere means day first; a second field above 12,
   month first; both at once is a file that mixes the two, an error;
2. with no field above 12 (a short file, or dates on the 1st of each month),
   the order that keeps the rows in time order (ascending or descending) wins
   when only one does;
3. otherwise it is refused with one line that names the setting DATE_FORMAT
   ("dayfirst", "monthfirst" or a strftime format), which also overrides the
   detection.

Every row is then parsed with the one format of that order; a row that does not
fit is an error naming its line, never a row read the other way round.

Unix times, as crypto exchanges export them, are numbers: a column named like
a time column (or, in a file without a header, the first column) whose values
all lie in one of the ranges of seconds, milliseconds, microseconds or
nanoseconds since 1970 for the years 1973 to 2286 is read as UTC times.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from utils.errors import ScalodiffError

# d/m/y or m/d/y with '/', '.' or '-', a 2- or 4-digit year, and optionally a time.
NUMERIC_DATE = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T]\S.*)?$")
# Values of Unix time from 1973-03-03 to 2286-11-20, per unit: the ranges do not overlap.
EPOCH_RANGES = {"s": (1e8, 1e10), "ms": (1e11, 1e13), "us": (1e14, 1e16), "ns": (1e17, 1e19)}
# Numeric columns with these words in their name may hold Unix times.
EPOCH_NAMES = ("time", "date", "datetime", "timestamp", "unix", "epoch", "ts")


@dataclass(frozen=True)
class TimeFormat:
    """How to turn a time column's text into timestamps, decided for the whole column.

    Attributes
    ----------
    epoch_unit : str or None
        "s", "ms", "us" or "ns": the cells are Unix times in that unit (UTC).
    day_first : bool or None
        For numeric dates such as 03/04/2020: True for day first.
    strftime : str or None
        An explicit format (the setting DATE_FORMAT).
    """

    epoch_unit: str | None = None
    day_first: bool | None = None
    strftime: str | None = None

    def parse(self, tokens: pd.Series) -> pd.Series:
        """Parse stripped cells; NaT where a cell does not fit (the reader names its line)."""
        tokens = tokens.reset_index(drop=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.epoch_unit is not None:
                numbers = pd.to_numeric(tokens, errors="coerce")
                return pd.to_datetime(numbers, unit=self.epoch_unit, errors="coerce")
            if self.strftime is not None:
                return pd.to_datetime(tokens, format=self.strftime, errors="coerce")
            return _parse_ordered(tokens, bool(self.day_first))


def _parse_ordered(tokens: pd.Series, day_first: bool) -> pd.Series:
    """Numeric dates in one order: the format of the first date, then row by row for the rest,
    keeping a row only if its day and month are where the order puts them."""
    text = tokens.astype(str)
    first = next((t for t in text if NUMERIC_DATE.match(t)), None)
    fmt = pd.tseries.api.guess_datetime_format(first, dayfirst=day_first) if first else None
    if fmt is None:
        parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    else:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    redo = parsed.isna() & text.str.match(NUMERIC_DATE)
    if redo.any():  # another layout of the same order, e.g. with a time of day
        again = pd.to_datetime(text[redo], format="mixed", dayfirst=day_first, errors="coerce")
        fields = text[redo].str.extract(NUMERIC_DATE)
        day, month = (fields[0], fields[2]) if day_first else (fields[2], fields[0])
        fits = (again.dt.day == day.astype(int)) & (again.dt.month == month.astype(int))
        parsed, again = _common_dtype(parsed, again)
        parsed[redo] = again.where(fits)
    return parsed


def _common_dtype(parsed: pd.Series, again: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``parsed`` and the re-parsed rows ``again`` in one dtype. Where one holds times with
    a zone and the other times without, the re-parsed rows stay unread (NaT; the reader
    names the first one's line): a column that mixes them has no one reading."""
    if parsed.dtype == again.dtype:
        return parsed, again
    if parsed.isna().all():
        return pd.Series(pd.NaT, index=parsed.index, dtype=again.dtype), again
    if (getattr(parsed.dtype, "tz", None) is None) != (getattr(again.dtype, "tz", None) is None):
        return parsed, pd.Series(pd.NaT, index=again.index, dtype=parsed.dtype)
    return parsed.astype(again.dtype), again


def epoch_unit(cells: pd.Series) -> str | None:
    """The unit of Unix times when every non-empty cell is one, else None.

    Examples
    --------
    >>> epoch_unit(pd.Series(["1609459200000", "1609459260000"]))
    'ms'
    >>> epoch_unit(pd.Series(["101.5", "102.0"])) is None
    True
    """
    numbers = pd.to_numeric(cells.astype(str).str.strip().replace("", np.nan), errors="coerce")
    numbers = numbers.dropna()
    if numbers.empty or len(numbers) != (cells.astype(str).str.strip() != "").sum():
        return None
    for unit, (lo, hi) in EPOCH_RANGES.items():
        if ((numbers >= lo) & (numbers < hi)).all():
            return unit
    return None


def looks_like_epoch(name: str, cells: pd.Series) -> bool:
    """True for a column named like a time (see EPOCH_NAMES) that holds Unix times."""
    words = re.split(r"[^a-z]+", str(name).lower())
    return any(word in EPOCH_NAMES for word in words) and epoch_unit(cells) is not None


def headerless_epoch_column(sample: pd.DataFrame, exclude: str | None) -> str | None:
    """In a file without a header: the first column, if it holds increasing Unix times."""
    first = sample.columns[0]
    if first == exclude or epoch_unit(sample[first]) is None:
        return None
    values = pd.to_numeric(sample[first], errors="coerce")
    return first if values.is_monotonic_increasing else None


def time_format(
    cells: pd.Series,
    setting: str | None,
    column_chunks: Iterable[pd.Series],
    where: str,
    column: str,
) -> TimeFormat | None:
    """Decide how to read a time column; None when pandas' own inference is unambiguous.

    Parameters
    ----------
    cells : pandas.Series
        The first rows of the time column, as text.
    setting : str or None
        DATE_FORMAT: None (detect), "dayfirst", "monthfirst" or a strftime format.
    column_chunks : iterable of pandas.Series
        The whole column, in pieces (read lazily: only an ambiguous order reads it).
    where, column : str
        The file and the column, for messages.

    Raises
    ------
    ScalodiffError
        When the order cannot be told, or the file mixes orders.
    """
    if setting is not None and setting not in ("dayfirst", "monthfirst"):
        return TimeFormat(strftime=setting)
    tokens = cells.astype(str).str.strip()
    if (unit := epoch_unit(tokens)) is not None:
        return TimeFormat(epoch_unit=unit)
    if not tokens.str.match(NUMERIC_DATE).any():
        return None  # ISO dates and the like: one reading only
    if setting is not None:
        return TimeFormat(day_first=setting == "dayfirst")
    return TimeFormat(day_first=detect_day_first(column_chunks, where, column))


def detect_day_first(chunks: Iterable[pd.Series], where: str, column: str) -> bool:
    """True for day-first numeric dates, False for month-first; see the module docstring."""
    above = {0: None, 2: None}  # an example with its first / second field above 12
    orders = _OrderCheck()
    for chunk in chunks:
        text = chunk.astype(str).str.strip()
        fields = text.str.extract(NUMERIC_DATE).dropna(subset=[0])
        if fields.empty:
            continue
        first, second = fields[0].astype(int), fields[2].astype(int)
        for i, values in ((0, first), (2, second)):
            big = np.flatnonzero(((values > 12) & (values <= 31)).to_numpy())
            if above[i] is None and big.size:
                above[i] = text[fields.index[big[0]]]
        if above[0] is not None and above[2] is not None:
            raise ScalodiffError(
                f"{where}, column {column!r}: dates such as {above[0]!r} put the day first and "
                f"others such as {above[2]!r} the month first; write all dates one way "
                "(ISO YYYY-MM-DD is safest)"
            )
        if above[0] is not None or above[2] is not None:
            return above[0] is not None  # settled: every row is checked when it is parsed
        orders.add(first.to_numpy(), second.to_numpy(), fields[3].astype(int).to_numpy())
    return orders.decide(where, column)


class _OrderCheck:
    """Whether the dates keep time order (either way) read day first, and read month first."""

    def __init__(self) -> None:
        self.last: dict[bool, int | None] = {True: None, False: None}
        self.up = {True: True, False: True}
        self.down = {True: True, False: True}
        self.example: str | None = None
        self.differ = False  # some date reads differently in the two orders

    def add(self, first: np.ndarray, second: np.ndarray, year: np.ndarray) -> None:
        self.differ |= bool((first != second).any())
        if self.example is None and len(first):
            self.example = f"{first[0]:02d}/{second[0]:02d}/{year[0]}"
        for day_first in (True, False):
            day, month = (first, second) if day_first else (second, first)
            key = year * 10_000 + month * 100 + day
            if self.last[day_first] is not None:
                key = np.concatenate([[self.last[day_first]], key])
            steps = np.diff(key)
            self.up[day_first] &= bool((steps >= 0).all())
            self.down[day_first] &= bool((steps <= 0).all())
            self.last[day_first] = int(key[-1])

    def decide(self, where: str, column: str) -> bool:
        if not self.differ:
            return False  # every date reads the same either way (e.g. 01/01, 02/02)
        ordered = {d: self.up[d] or self.down[d] for d in (True, False)}
        if ordered[True] != ordered[False]:
            return ordered[True]
        why = (
            "the rows are in time order either way"
            if ordered[True]
            else "neither order sorts the rows"
        )
        raise ScalodiffError(
            f"{where}, column {column!r}: cannot tell whether dates such as {self.example!r} are "
            f"day-first or month-first (no day above 12, and {why}); set DATE_FORMAT in config.py "
            "to 'dayfirst' or 'monthfirst' (or a strftime format such as '%d/%m/%Y'), "
            "e.g. --set DATE_FORMAT=dayfirst"
        )
