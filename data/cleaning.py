"""Price series container and the checks every reader shares.

Readers (CSV, Parquet, HistData, built-in) only turn a file into raw cells: the
price column as text or numbers, and an optional time column. Everything a user
can get wrong in the *content* is decided here, once, so that every format gives
the same messages:

- non-numeric cells -> error naming the line/row and the value;
- NaN or Inf -> error (a computed value gone wrong, not a missing one);
- missing cells ('', '.', 'NA', ...) -> dropped with a warning, or an error when
  more than ``max_missing_frac`` of the rows are missing;
- unparseable times -> error (numeric dates such as 03/04/2020 are read in the one
  order :mod:`data.dates` decided for the whole column); unsorted times -> sorted
  with a warning;
  duplicate times -> the last row of each kept, with a warning;
- non-positive prices -> error (log returns are impossible);
- fewer than two prices or a constant series -> error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data.dates import TimeFormat
from data.numbers import to_plain
from utils.errors import ScalodiffError

# The price column asked for by default. A file without it but with exactly one
# numeric column uses that column, so simple files need no setting.
DEFAULT_COLUMN = "Close"

# Cells that mean "no value here" (compared after stripping, case-insensitively).
# '.' is how FRED marks holidays. Literal 'nan'/'inf' are deliberately NOT here:
# they usually come from a computation that went wrong, so they are an error.
MISSING_MARKERS = frozenset({"", ".", "na", "n/a", "#n/a", "null", "none", "-"})

# Column names taken as the time column, in preference to any other column.
TIME_COLUMN_NAMES = ("date", "datetime", "time", "timestamp")

# Rows looked at when guessing which columns hold numbers or dates.
SAMPLE_ROWS = 200


@dataclass
class PriceSeries:
    """A cleaned, checked price series.

    Attributes
    ----------
    values : numpy.ndarray
        Prices, float64, 1-D, finite and strictly positive, in time order.
    timestamps : pandas.DatetimeIndex or None
        One timestamp per price (sorted, unique), or None when the source has
        no time column.
    name : str
        Short label: the file stem or the built-in dataset name.
    source : str
        Where it came from: the absolute file path or the built-in name; passing
        it to :func:`data.readers.load_prices` loads the same series again.
    column : str
        The column the prices were taken from.
    file_format : str
        ``"csv"``, ``"parquet"``, ``"histdata-m1"``, ``"histdata-tick"`` or
        ``"builtin"``.
    """

    values: np.ndarray
    timestamps: pd.DatetimeIndex | None
    name: str
    source: str
    column: str = ""
    file_format: str = ""

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.ndim != 1:
            raise ValueError(f"PriceSeries.values must be 1-D, got shape {self.values.shape}")
        if self.timestamps is not None and len(self.timestamps) != len(self.values):
            raise ValueError(
                f"PriceSeries has {len(self.values)} values but {len(self.timestamps)} timestamps"
            )

    @classmethod
    def from_file(
        cls,
        path: Path,
        values: np.ndarray,
        timestamps: pd.DatetimeIndex | None,
        column: str,
        file_format: str,
    ) -> PriceSeries:
        """A series read from ``path``: named after the file, sourced by its absolute path."""
        return cls(
            values=values,
            timestamps=timestamps,
            name=path.name.split(".")[0],
            source=str(path.resolve()),
            column=column,
            file_format=file_format,
        )

    def __len__(self) -> int:
        return len(self.values)


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=4)


def _is_number_dtype(cells: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(cells) and not pd.api.types.is_bool_dtype(cells)


def _tokens(cells: pd.Series) -> pd.Series:
    """Cells as stripped strings (for text columns)."""
    return cells.astype(str).str.strip()


@dataclass
class ParsedPrices:
    """A price column already classified cell by cell, e.g. by a reader that reads in chunks.

    Attributes
    ----------
    values : numpy.ndarray
        float64 prices; NaN where a cell is missing or not a number.
    missing : numpy.ndarray
        bool, True where a cell is empty or a missing marker.
    non_numeric : numpy.ndarray
        bool, True where a cell is text that is neither a number nor a missing marker.
    text : callable
        Maps a 0-based row to its cell as written (stripped), for messages.
    """

    values: np.ndarray
    missing: np.ndarray
    non_numeric: np.ndarray
    text: Callable[[int], str]


def parse_price_text(
    cells: pd.Series, missing: np.ndarray | None = None, style: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Series]:
    """Classify text price cells: numbers, missing markers, and anything else.

    Parameters
    ----------
    cells : pandas.Series
        Price cells as text (nulls allowed), in file order.
    missing : numpy.ndarray of bool, optional
        Cells known to be missing beyond the text markers (e.g. Parquet nulls).
    style : str, optional
        Separators the column is written with (:func:`data.numbers.number_style`).

    Returns
    -------
    values : numpy.ndarray
        float64; NaN where missing or not a number.
    is_missing : numpy.ndarray
        bool: empty cells, missing markers, nulls and ``missing``.
    non_numeric : numpy.ndarray
        bool: cells that are neither numbers nor missing nor a written 'nan'
        (which is a bad value, reported as not finite).
    tokens : pandas.Series
        The stripped cells ('' for nulls), for messages.
    """
    tokens = _tokens(cells)
    lower = tokens.str.lower()  # once: it is a copy of the whole column
    # Text nulls (e.g. a Parquet string column) are missing like empty cells.
    is_missing = (
        (np.zeros(len(cells), dtype=bool) if missing is None else np.asarray(missing, bool))
        | cells.isna().to_numpy()
        | lower.isin(MISSING_MARKERS).to_numpy(dtype=bool, na_value=True)
    )
    tokens = tokens.fillna("")
    text = tokens if style is None else to_plain(tokens, style)
    numbers = pd.to_numeric(text.mask(is_missing), errors="coerce")
    del text
    values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    del numbers
    nan_text = lower.str.lstrip("+-").isin({"nan"}).to_numpy(dtype=bool, na_value=False)
    non_numeric = np.isnan(values) & ~is_missing & ~nan_text
    return values, is_missing, non_numeric, tokens


def looks_numeric(cells: pd.Series) -> bool:
    """True if the non-missing cells are all numbers and there is at least one.

    Parameters
    ----------
    cells : pandas.Series
        A sample of one column, text or numbers.

    Returns
    -------
    bool
    """
    if _is_number_dtype(cells):
        return bool(cells.notna().any())
    if not (pd.api.types.is_object_dtype(cells) or pd.api.types.is_string_dtype(cells)):
        return False
    tokens = _tokens(cells)
    tokens = tokens[~tokens.str.lower().isin(MISSING_MARKERS)]
    if tokens.empty:
        return False
    return bool(pd.to_numeric(tokens, errors="coerce").notna().all())


def _parse_times(cells: pd.Series) -> pd.Series:
    """Parse text into timestamps; unparseable cells become NaT.

    Tries one inferred format first (fast, and consistent across rows), then
    per-element parsing, then UTC for mixed time-zone offsets.
    """
    if pd.api.types.is_datetime64_any_dtype(cells):
        return pd.Series(cells).reset_index(drop=True)
    tokens = _tokens(cells).reset_index(drop=True)
    with warnings.catch_warnings():
        # pandas warns when it falls back to per-element parsing; we handle it.
        warnings.simplefilter("ignore")
        for options in ({}, {"format": "mixed"}, {"format": "mixed", "utc": True}):
            try:
                parsed = pd.to_datetime(tokens, **options)
            except (ValueError, TypeError, OverflowError):
                continue
            if pd.api.types.is_datetime64_any_dtype(parsed):
                return parsed
        return pd.to_datetime(tokens, errors="coerce", format="mixed", utc=True)


# What pandas skips when it infers a time format from "the first value" (tslib.first_non_null).
_NOT_A_FIRST_TIME = frozenset({"", "NaT", "nat", "NAT", "nan", "NaN", "NAN", "now", "today"})


def first_time_format(tokens: pd.Series) -> str | None:
    """The format :func:`_parse_times` settles on first, for readers that parse in chunks.

    ``pd.to_datetime`` without a format infers one from the first value it does
    not skip and applies it to every cell; a reader that parses a long column in
    chunks gets the same timestamps by inferring it once, here, and passing it to
    :func:`parse_times_with`. None when there is no such value or no format can
    be inferred from it.

    Parameters
    ----------
    tokens : pandas.Series
        Stripped time cells, in order.

    Returns
    -------
    str or None
    """
    for token in tokens:
        if isinstance(token, str) and token not in _NOT_A_FIRST_TIME:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return pd.tseries.api.guess_datetime_format(token)
        if not (isinstance(token, str) or pd.isna(token)):
            return None
    return None


def parse_times_with(tokens: pd.Series, time_format: str) -> pd.Series | None:
    """Parse stripped time cells with one format, as :func:`_parse_times` tries first.

    Returns datetime64 values (naive, or with the one time zone their offsets
    give; NaT for empty cells), or None when a cell does not fit the format or
    the offsets differ, which only whole-column parsing sorts out.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(tokens, format=time_format)
        except (ValueError, TypeError, OverflowError):
            return None
    return parsed if pd.api.types.is_datetime64_any_dtype(parsed) else None


def looks_like_times(cells: pd.Series) -> bool:
    """True if a sample column holds dates/times and not plain numbers.

    Parameters
    ----------
    cells : pandas.Series
        A sample of one column.

    Returns
    -------
    bool
    """
    if pd.api.types.is_datetime64_any_dtype(cells):
        return True
    if _is_number_dtype(cells) or looks_numeric(cells):
        # Numbers such as 20240131 or 1.5e9 are ambiguous; never guess them as times.
        return False
    tokens = _tokens(cells)
    tokens = tokens[tokens != ""]
    # Every date has a digit; this keeps words such as "now" or "May" from counting.
    if tokens.empty or not tokens.str.contains(r"\d").all():
        return False
    return bool(_parse_times(tokens).notna().all())


def find_time_column(sample: pd.DataFrame, exclude: str | None = None) -> str | None:
    """Pick the time column of a table, or None.

    A column named Date/Datetime/Time/Timestamp (case-insensitively) wins;
    otherwise the first column whose sample parses as dates.

    Parameters
    ----------
    sample : pandas.DataFrame
        The first rows of the table, columns named.
    exclude : str, optional
        The price column, never taken as time.

    Returns
    -------
    str or None
    """
    candidates = [c for c in sample.columns if c != exclude]
    for wanted in TIME_COLUMN_NAMES:
        for name in candidates:
            if str(name).strip().lower() == wanted:
                return name
    for name in candidates:
        if looks_like_times(sample[name]):
            return name
    return None


def resolve_column(
    requested: str | None,
    columns: Sequence[str],
    numeric: Sequence[str],
    *,
    where: str,
    setting: str = "COLUMN",
) -> str:
    """Choose the price column: by name (case-insensitively) or the only numeric one.

    Parameters
    ----------
    requested : str or None
        The column asked for; None means "the only numeric column".
    columns : sequence of str
        All columns of the source.
    numeric : sequence of str
        The columns that hold numbers.
    where : str
        The file or dataset, for messages.
    setting : str
        The setting the user changes to pick another column, for messages.

    Returns
    -------
    str
        The column name as spelled in the source.

    Raises
    ------
    ScalodiffError
        When no column (or more than one) fits.
    """
    listing = ", ".join(repr(c) for c in columns)
    if requested is not None:
        wanted = requested.strip()
        exact = [c for c in columns if c == wanted]
        if len(exact) == 1:
            return exact[0]
        folded = [c for c in columns if c.strip().lower() == wanted.lower()]
        if len(folded) == 1:
            return folded[0]
        if len(folded) > 1:
            raise ScalodiffError(
                f"{where}: several columns match {requested!r} when case is ignored "
                f"({', '.join(map(repr, folded))}); set {setting} to one of them exactly."
            )
    # A file with one numeric column needs no setting, whatever the default asks for.
    if (requested is None or requested.strip().lower() == DEFAULT_COLUMN.lower()) and len(
        numeric
    ) == 1:
        return numeric[0]
    if requested is None:
        raise ScalodiffError(
            f"{where}: cannot tell which column holds the prices ({len(numeric)} numeric "
            f"columns among {listing}); set {setting} to one of them."
        )
    raise ScalodiffError(
        f"{where}: no column {requested!r}; the columns are {listing}. "
        f"Set {setting} to the column that holds the prices."
    )


def _reading_note(reading: TimeFormat | None) -> str:
    """How the times were read, when a message about an unreadable time needs it."""
    if reading is None:
        return ""
    if reading.strftime is not None:
        return f"; DATE_FORMAT is {reading.strftime!r}"
    if reading.epoch_unit is not None:
        return f"; read as Unix times in {reading.epoch_unit}"
    order = "day" if reading.day_first else "month"
    return f"; dates read {order} first, as the rest of the column (DATE_FORMAT sets it)"


def _text_at(cells: pd.Series) -> Callable[[int], str]:
    """A row's cell as stripped text, for messages."""
    return lambda pos: str(cells.iloc[pos]).strip()


def clean_prices(
    cells: pd.Series | ParsedPrices,
    times: pd.Series | None,
    *,
    where: str,
    column: str,
    locate: Callable[[int], str],
    max_missing_frac: float,
    missing: np.ndarray | None = None,
    time_text: Callable[[int], str] | None = None,
    number_style: str | None = None,
    time_reading: TimeFormat | None = None,
) -> tuple[np.ndarray, pd.DatetimeIndex | None]:
    """Turn raw price (and time) cells into checked values and timestamps.

    Parameters
    ----------
    cells : pandas.Series or ParsedPrices
        The price column, text or numbers, in file order; or the same already
        classified by :func:`parse_price_text` (a reader that reads in chunks).
    times : pandas.Series or None
        The time column (text or datetimes), same length, or None.
    where : str
        The file or dataset, for messages.
    column : str
        The price column's name, for messages.
    locate : callable
        Maps a 0-based row position to a phrase such as ``"line 7"``.
    max_missing_frac : float
        The largest fraction of missing cells that is dropped rather than refused.
    missing : numpy.ndarray of bool, optional
        Cells known to be missing beyond the text markers (e.g. Parquet nulls).
    time_text : callable, optional
        Maps a 0-based row to its time as written, for messages; by default
        the time cell as given (a reader that parsed the times already passes
        the file's text, so messages quote what the user wrote).
    number_style : str, optional
        The price column's separators (:func:`data.numbers.number_style`).
    time_reading : TimeFormat, optional
        How to read the time column when its text is ambiguous
        (:func:`data.dates.time_format`); by default pandas infers it.

    Returns
    -------
    values : numpy.ndarray
        float64 prices, positive, in time order.
    timestamps : pandas.DatetimeIndex or None

    Raises
    ------
    ScalodiffError
        On any of the problems listed in this module's docstring.
    """
    if not isinstance(cells, ParsedPrices):
        cells = cells.reset_index(drop=True)
    n_rows = len(cells.values) if isinstance(cells, ParsedPrices) else len(cells)
    if n_rows == 0:
        raise ScalodiffError(f"{where} has no data rows; point to a file with prices in it.")
    what = f"{where}, column {column!r}"
    if time_text is None and times is not None:
        time_text = _text_at(times)

    def at(pos: int) -> str:
        place = locate(pos)
        if time_text is not None:
            place += f" (time {time_text(pos)!r})"
        return place

    # --- numbers, missing markers, non-numeric cells, NaN/Inf ---
    is_missing = np.zeros(n_rows, dtype=bool) if missing is None else np.asarray(missing, bool)
    non_numeric = None
    if isinstance(cells, ParsedPrices):
        values, non_numeric, shown = cells.values, cells.non_numeric, cells.text
        is_missing = is_missing | cells.missing
    elif _is_number_dtype(cells):
        values = cells.to_numpy(dtype=np.float64, na_value=np.nan)

        def shown(i: int) -> str:
            return "" if is_missing[i] else str(values[i])

    else:
        values, is_missing, non_numeric, tokens = parse_price_text(cells, is_missing, number_style)

        def shown(i: int) -> str:
            return str(tokens.iloc[i])

    if non_numeric is not None:
        bad = np.flatnonzero(non_numeric)
        del non_numeric
        if bad.size:
            first = int(bad[0])
            raise ScalodiffError(
                f"{what}: non-numeric value {shown(first)!r} at {at(first)}"
                f"{f' and {bad.size - 1} more rows' if bad.size > 1 else ''}. Prices must be "
                "plain numbers (no currency signs or thousands separators); fix those cells "
                "or set COLUMN to the price column."
            )
    bad = np.flatnonzero(~np.isfinite(values) & ~is_missing)
    if bad.size:
        first = int(bad[0])
        raise ScalodiffError(
            f"{what}: value {shown(first)!r} at {at(first)} is not a finite number "
            f"({bad.size} NaN/Inf cells in all). Replace them; leave a cell empty to mark "
            "a missing price, which is dropped."
        )

    # --- missing cells: drop a few, refuse many ---
    n_missing = int(is_missing.sum())
    if n_missing:
        first = int(np.flatnonzero(is_missing)[0])
        frac = n_missing / n_rows
        if frac > max_missing_frac:
            raise ScalodiffError(
                f"{what}: {n_missing} of {n_rows} rows ({frac:.1%}) have no price "
                f"(first at {at(first)}: {shown(first)!r}), more than "
                f"max_missing_frac={max_missing_frac} allows. Fill or remove them, or "
                "raise max_missing_frac (the setting MAX_MISSING_FRAC)."
            )
        _warn(
            f"{what}: dropped {n_missing} of {n_rows} rows with a missing price "
            f"(first at {at(first)}); returns across those gaps span more than one step."
        )
    keep = np.flatnonzero(~is_missing)
    values = values[keep]

    # --- timestamps: parse, sort, deduplicate ---
    stamps: pd.DatetimeIndex | None = None
    if times is not None:
        times = times.reset_index(drop=True)
        if time_reading is not None and not pd.api.types.is_datetime64_any_dtype(times):
            parsed = time_reading.parse(_tokens(times.iloc[keep]))
        else:
            parsed = _parse_times(times.iloc[keep])
        bad = np.flatnonzero(parsed.isna().to_numpy())
        if bad.size:
            first = int(keep[bad[0]])
            raise ScalodiffError(
                f"{where}: cannot read {time_text(first)!r} at {locate(first)} "
                f"as a date/time ({bad.size} such rows{_reading_note(time_reading)}). Fix those "
                "cells, or remove the time column if the file has none."
            )
        stamps = pd.DatetimeIndex(parsed).rename(None)
        if not stamps.is_monotonic_increasing:
            order = np.argsort(stamps.asi8, kind="stable")
            _warn(f"{where}: rows are not in time order; sorted them by time.")
            stamps, values, keep = stamps[order], values[order], keep[order]
        dup = stamps.duplicated(keep="last")
        if dup.any():
            first = int(np.flatnonzero(dup)[0])
            _warn(
                f"{where}: {int(dup.sum())} rows share their time with a later row (first "
                f"{stamps[first]} at {locate(int(keep[first]))}); kept the last row for each time."
            )
            stamps, values, keep = stamps[~dup], values[~dup], keep[~dup]

    # --- positivity and enough variation for returns ---
    bad = np.flatnonzero(values <= 0)
    if bad.size:
        first = int(bad[np.argmin(keep[bad])])
        raise ScalodiffError(
            f"{what}: non-positive price {float(values[first])!r} at {at(int(keep[first]))}"
            f"{f' and {bad.size - 1} more' if bad.size > 1 else ''}; log returns need "
            "prices above zero. Remove those rows or pick a price column (COLUMN)."
        )
    if len(values) < 2:
        raise ScalodiffError(
            f"{what}: only {len(values)} usable price(s); at least 2 are needed for one return."
        )
    if np.all(values == values[0]):
        raise ScalodiffError(
            f"{what}: all {len(values)} prices equal {float(values[0])!r}, so every return is zero. "
            "Pick a column whose prices change."
        )
    return values, stamps
