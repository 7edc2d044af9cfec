"""Read a long CSV's price and time columns a chunk of rows at a time.

Read whole, the two text columns of a 10-million-row minute-bar file take well
over a GiB before a single price is a number, and every string operation on
them (strip, lower, the conversion to Python strings that ``pd.to_datetime``
does) copies them again: 2.7 GiB peak against the 2 GiB target for all
of training's preparation. Here only one chunk's text exists at a time; what
stays is a float64, two bools and a datetime64 per row.

The cells are classified as :func:`data.cleaning.clean_prices` classifies a
whole column (with the same :func:`data.cleaning.parse_price_text`, and the time
format that ``pd.to_datetime`` would infer for the whole column), so the prices,
timestamps, warnings and errors are the same. What only whole-column reading
handles exactly (a parser error, a time format or a UTC offset that changes
between rows) raises :class:`WholeFile`, and the caller reads the file whole.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from data.cleaning import ParsedPrices, first_time_format, parse_price_text, parse_times_with
from data.dates import TimeFormat

# Rows per chunk: ~50 MB of text and its copies at a time, few enough chunks that
# the per-chunk overhead is lost in the parsing.
CHUNK_ROWS = 1 << 19


class WholeFile(Exception):
    """Raised when only reading the file whole gives the exact result or message."""


def _chunks(
    path: str | os.PathLike, options: dict[str, Any], skip: int, columns: list[int]
) -> Iterator[pd.DataFrame]:
    """The file's rows after ``skip`` lines, ``CHUNK_ROWS`` at a time, only ``columns``."""
    try:
        with pd.read_csv(
            path, skiprows=skip, usecols=columns, chunksize=CHUNK_ROWS, **options
        ) as reader:
            for chunk in reader:
                if any(c not in chunk.columns for c in columns):
                    raise WholeFile  # short rows: the whole-file reader names the line
                yield chunk
    except (WholeFile, MemoryError):
        raise
    except Exception as error:  # parser errors, damaged gzip, ...: the whole-file reader words them
        raise WholeFile from error


def _cell_at(
    path: str | os.PathLike, options: dict[str, Any], skip: int, column: int
) -> Callable[[int], str]:
    """A function from a 0-based row to its cell as written (stripped), for messages.

    It reads the file again up to that row: messages need one or two cells, and
    keeping every cell's text is what this module avoids.
    """

    @functools.lru_cache(maxsize=16)
    def text(pos: int) -> str:
        start = 0
        for chunk in _chunks(path, options, skip, [column]):
            if pos < start + len(chunk):
                return str(chunk[column].iloc[pos - start]).strip()
            start += len(chunk)
        return ""

    return text


def _common_unit(units: set[str]) -> np.dtype:
    """The finest datetime64 unit the chunks were parsed to, so that none loses precision.

    Whole-column parsing picks one unit for all rows; chunks of second-resolution
    times give seconds and one with nanoseconds gives nanoseconds, so the finest wins.
    """
    order = ["s", "ms", "us", "ns"]
    finest = max(units, key=order.index, default="ns")
    return np.dtype(f"datetime64[{finest}]")


def column_chunks(
    path: str | os.PathLike, options: dict[str, Any], skip: int, column: int
) -> Iterator[pd.Series]:
    """One column's text, ``CHUNK_ROWS`` rows at a time (raises :class:`WholeFile` as reading does)."""
    for chunk in _chunks(path, options, skip, [column]):
        yield chunk[column]


def read_columns(
    path: str | os.PathLike,
    options: dict[str, Any],
    skip: int,
    price: int,
    time: int | None,
    style: str | None = None,
    reading: TimeFormat | None = None,
) -> tuple[ParsedPrices, pd.Series | None, Callable[[int], str] | None]:
    """Read and classify a CSV's price column and parse its time column, chunk by chunk.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.
    options : dict
        ``pd.read_csv`` options (delimiter, ``dtype=str``, ``na_filter=False``,
        ``skip_blank_lines=False``, compression, encoding), as for a whole read.
    skip : int
        Lines before the first data row (leading blank lines and the header).
    price, time : int, int or None
        Positions of the price and time columns.
    style : str, optional
        The price column's separators (:func:`data.numbers.number_style`).
    reading : TimeFormat, optional
        How to read the times, decided for the whole column (:mod:`data.dates`);
        by default the format pandas infers from the first time.

    Returns
    -------
    prices : ParsedPrices
        For :func:`data.cleaning.clean_prices`; closing blank lines removed.
    times : pandas.Series or None
        datetime64 per row, NaT where the price is missing.
    time_text : callable or None
        A row's time as written, for messages.

    Raises
    ------
    WholeFile
        When the file must be read whole for the exact result or message.
    """
    columns = [price] if time is None else sorted([price, time])
    values, missing, non_numeric, blank, stamps = [], [], [], [], []
    time_format: str | None = None
    # Of the chunks that had times to parse (not all-missing ones):
    units: set[str] = set()
    zones: set[Any] = set()
    for chunk in _chunks(path, options, skip, columns):
        cells = chunk[price]
        v, m, nn, _tokens = parse_price_text(cells, style=style)
        del _tokens  # the stripped text: messages read the file again instead
        empty = (cells == "").to_numpy(dtype=bool, na_value=False)
        values.append(v)
        missing.append(m)
        non_numeric.append(nn)
        if time is not None:
            text = chunk[time]
            empty = empty & (text == "").to_numpy(dtype=bool, na_value=False)
            # As clean_prices does: only the times of rows that keep a price are parsed.
            tokens = text[~m].astype(str).str.strip()
            part = np.full(len(chunk), np.datetime64("NaT"), dtype="datetime64[ns]")
            if len(tokens) and reading is not None:
                # Unreadable cells stay NaT: clean_prices names the first one's line.
                parsed = reading.parse(tokens)
            elif len(tokens):
                time_format = time_format or first_time_format(tokens)
                parsed = parse_times_with(tokens, time_format) if time_format else None
                if parsed is None:
                    raise WholeFile
            if len(tokens):
                zones.add(getattr(parsed.dtype, "tz", None))
                if parsed.dt.tz is not None:  # kept as UTC; the zone goes back on at the end
                    parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
                part = part.astype(parsed.dtype)
                part[~m] = parsed.to_numpy()
                units.add(np.datetime_data(parsed.dtype)[0])
            stamps.append(part)
        blank.append(empty)
    if not values:
        raise WholeFile  # no data rows: the whole-file reader says so

    # A file's closing blank lines are layout, not missing prices.
    filled = np.flatnonzero(~np.concatenate(blank))
    n = int(filled[-1]) + 1 if filled.size else 0
    del blank, filled
    prices = ParsedPrices(
        values=np.concatenate(values)[:n],
        missing=np.concatenate(missing)[:n],
        non_numeric=np.concatenate(non_numeric)[:n],
        text=_cell_at(path, options, skip, price),
    )
    del values, missing, non_numeric
    if time is None:
        return prices, None, None
    if len(zones) > 1:
        raise WholeFile  # offsets change between chunks: whole-column parsing decides
    unit = _common_unit(units)
    times = pd.Series(np.concatenate([s.astype(unit) for s in stamps])[:n])
    zone = zones.pop() if zones else None
    if zone is not None:
        times = times.dt.tz_localize("UTC").dt.tz_convert(zone)
    return prices, times, _cell_at(path, options, skip, time)
