"""HistData.com "Generic ASCII" exports: one-minute bars and ticks.

Both have no header and are recognised by their first line:

- M1 bars: ``20120201 000000;1.306600;1.306600;1.306560;1.306560;0``
  (time; open; high; low; close; volume), priced at the close by default;
- ticks: ``20120201 000207915,1.306600,1.306700,0``
  (time with milliseconds, bid, ask, volume), priced at the mid
  ``(bid + ask) / 2`` by default.

HistData times are Eastern Standard Time without daylight saving (a fixed
UTC-5). They are kept as naive timestamps, as written in the file.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data import chunked
from data.cleaning import DEFAULT_COLUMN, PriceSeries, clean_prices
from utils.errors import ScalodiffError


@dataclass(frozen=True)
class _Layout:
    pattern: re.Pattern
    sep: str
    fields: tuple[str, ...]
    time_regex: str
    digits: int  # digits in the time field: 14 (to the second) or 17 (to the millisecond)
    prices: tuple[str, ...]  # columns a user may ask for
    default: str  # what the default column setting ("Close") means here
    example: str


_LAYOUTS = {
    "histdata-m1": _Layout(
        pattern=re.compile(r"^\d{8} \d{6};[^;]*;[^;]*;[^;]*;[^;]*;[^;]*$"),
        sep=";",
        fields=("time", "open", "high", "low", "close", "volume"),
        time_regex=r"\d{8} \d{6}",
        digits=14,
        prices=("open", "high", "low", "close"),
        default="close",
        example="YYYYMMDD HHMMSS;open;high;low;close;volume",
    ),
    "histdata-tick": _Layout(
        pattern=re.compile(r"^\d{8} \d{9},[^,]*,[^,]*,[^,]*$"),
        sep=",",
        fields=("time", "bid", "ask", "volume"),
        time_regex=r"\d{8} \d{9}",
        digits=17,
        prices=("bid", "ask", "mid"),
        default="mid",
        example="YYYYMMDD HHMMSSmmm,bid,ask,volume",
    ),
}


def sniff(first_line: str) -> str | None:
    """Name the HistData layout a file's first line has, if any.

    Parameters
    ----------
    first_line : str
        The file's first non-blank line.

    Returns
    -------
    str or None
        ``"histdata-m1"``, ``"histdata-tick"`` or None.

    Examples
    --------
    >>> sniff("20120201 000000;1.3066;1.3066;1.30656;1.30656;0")
    'histdata-m1'
    >>> sniff("Date,Close") is None
    True
    """
    line = first_line.strip().lstrip("\ufeff")
    for name, layout in _LAYOUTS.items():
        if layout.pattern.match(line):
            return name
    return None


def _choose(layout: _Layout, column: str | None, path: Path) -> str:
    if column is None or column.strip().lower() == DEFAULT_COLUMN.lower():
        return layout.default
    wanted = column.strip().lower()
    if wanted in layout.prices:
        return wanted
    raise ScalodiffError(
        f"{path}: no column {column!r} in a HistData file of this kind; choose one of "
        f"{', '.join(layout.prices)} with COLUMN."
    )


def _malformed(path: Path, line: int, text: str, layout: _Layout, why: str) -> ScalodiffError:
    return ScalodiffError(
        f"{path}: line {line} is malformed ({why}): {text!r}; every line must read "
        f"'{layout.example}'. Fix or delete that line."
    )


def _line_text(path: Path, line: int, gz: bool) -> str:
    """Line ``line`` (1-based) of the file, as written, for an error message."""
    opener = gzip.open if gz else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace") as handle:
        return next((text for i, text in enumerate(handle, 1) if i == line), "").rstrip("\r\n")


def _parse_times(text: pd.Series, layout: _Layout) -> np.ndarray:
    """Fixed-width HistData times to datetime64[ms]; NaT where a time is malformed.

    Integer arithmetic on the digits, with one strptime per distinct day, is
    about five times faster than strptime on every row of a tick file.
    """
    text = text.str.strip()
    ok = text.str.fullmatch(layout.time_regex).to_numpy(dtype=bool, na_value=False)
    filler = "19700101 " + "0" * (layout.digits - 8)
    number = text.where(ok, filler).str.replace(" ", "", regex=False).astype("int64").to_numpy()
    day, clock = np.divmod(number, 10 ** (layout.digits - 8))
    millis = np.zeros_like(clock)
    if layout.digits == 17:  # HHMMSSmmm
        clock, millis = np.divmod(clock, 1000)
    hours, minutes, seconds = clock // 10000, clock // 100 % 100, clock % 100
    codes, days = pd.factorize(day)
    day_start = pd.to_datetime(pd.Series(days).astype(str), format="%Y%m%d", errors="coerce")
    start = day_start.to_numpy(dtype="datetime64[ms]")[codes]
    offset = ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis
    times = start + offset.astype("timedelta64[ms]")
    times[~ok | (hours > 23) | (minutes > 59) | (seconds > 59)] = np.datetime64("NaT")
    return times


def _parse_chunk(
    frame: pd.DataFrame, layout: _Layout, price: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One chunk's prices, times and bad-line flags (columns: bad time, bad number)."""
    times = _parse_times(frame["time"], layout)
    bad = np.zeros((len(frame), 2), dtype=bool)
    bad[:, 0] = np.isnat(times)
    numbers = {}
    for name in layout.fields[1:]:
        numbers[name] = pd.to_numeric(frame[name].str.strip(), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        bad[:, 1] |= ~np.isfinite(numbers[name])
    values = (numbers["bid"] + numbers["ask"]) / 2.0 if price == "mid" else numbers[price]
    return values, times, bad


def read_histdata(path: Path, file_format: str, column: str | None) -> PriceSeries:
    """Read a HistData.com M1 or tick file.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    file_format : str
        ``"histdata-m1"`` or ``"histdata-tick"``, as :func:`sniff` found.
    column : str or None
        open/high/low/close for bars, bid/ask/mid for ticks; the default
        ("Close") or None means close for bars and mid for ticks.

    Returns
    -------
    PriceSeries

    Raises
    ------
    ScalodiffError
        For a malformed line (with its number and text) or bad prices.
    """
    layout = _LAYOUTS[file_format]
    price = _choose(layout, column, path)
    with open(path, "rb") as handle:
        gz = handle.read(2) == b"\x1f\x8b"
    # Chunk by chunk: tick files run to tens of millions of lines, and their text read
    # whole would take several times the memory of the numbers kept from it.
    parts: dict[str, list[np.ndarray]] = {"values": [], "times": [], "bad": [], "blank": []}
    try:
        with pd.read_csv(
            path,
            sep=layout.sep,
            header=None,
            names=list(layout.fields),
            dtype=str,
            na_filter=False,
            # Keep blank lines as rows so row i is line i + 1 in messages.
            skip_blank_lines=False,
            compression="gzip" if gz else None,
            encoding="utf-8-sig",
            encoding_errors="replace",
            chunksize=chunked.CHUNK_ROWS,
        ) as reader:
            for frame in reader:
                values, times, bad = _parse_chunk(frame, layout, price)
                parts["values"].append(values)
                parts["times"].append(times)
                parts["bad"].append(bad)
                parts["blank"].append((frame == "").all(axis=1).to_numpy())
    except pd.errors.ParserError as error:
        found = re.search(r"line (\d+), saw (\d+)", str(error))
        if found is None:
            detail = " ".join(str(error).split())  # one line: the scripts print one line
            raise ScalodiffError(f"{path}: cannot read it as HistData ({detail}).") from error
        line, count = int(found.group(1)), int(found.group(2))
        raise _malformed(
            path,
            line,
            _line_text(path, line, gz),
            layout,
            f"{count} fields instead of {len(layout.fields)}",
        ) from error

    # A trailing newline or two after the last bar is layout, not a bad line.
    filled = np.flatnonzero(~np.concatenate(parts.pop("blank")))
    n = int(filled[-1]) + 1 if filled.size else 0
    if n == 0:
        raise ScalodiffError(f"{path} has no data lines; point CSV_PATH to a price file.")
    bad_time, bad_number = np.concatenate(parts.pop("bad"))[:n].T
    bad = np.flatnonzero(bad_time | bad_number)
    if bad.size:
        first = int(bad[0])
        why = "unreadable time" if bad_time[first] else "a field that is not a finite number"
        raise _malformed(path, first + 1, _line_text(path, first + 1, gz), layout, why)
    values = np.concatenate(parts.pop("values"))[:n]
    times = np.concatenate(parts.pop("times"))[:n]
    values, stamps = clean_prices(
        pd.Series(values),
        pd.Series(times),
        where=str(path),
        column=price,
        locate=lambda i: f"line {i + 1}",
        # Every field was checked above: a HistData line never lacks its price.
        max_missing_frac=0.0,
    )
    return PriceSeries.from_file(path, values, stamps, price, file_format)
