"""Read a price series from a file or a built-in dataset.

One entry point, :func:`load_prices`, detects the format itself:

========================  ====================================================
format                    detected by
========================  ====================================================
Parquet                   the ``PAR1`` magic bytes (any file name)
HistData.com M1 bars      first line ``YYYYMMDD HHMMSS;open;high;low;close;vol``
HistData.com ticks        first line ``YYYYMMDD HHMMSSmmm,bid,ask,vol``
CSV (``,`` ``;`` tab |)   anything else that is text; ``.gz`` is read as well
built-in dataset          a name from :func:`data.builtin.list_datasets` that
                          is not an existing path
========================  ====================================================

The price column is chosen by name, case-insensitively (default ``Close``); a
file with a single numeric column needs no setting. A time column, if present,
is a column named Date/Datetime/Time/Timestamp or else the first column that
parses as dates. All content checks live in :mod:`data.cleaning`. CSV files are
read a chunk of rows at a time (:mod:`data.chunked`), so that a long file's text
never sits in memory whole.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from data import builtin, chunked, dates, histdata
from data.cleaning import (
    DEFAULT_COLUMN,
    MISSING_MARKERS,
    SAMPLE_ROWS,
    PriceSeries,
    clean_prices,
    find_time_column,
    looks_like_times,
    looks_numeric,
    resolve_column,
)
from data.numbers import number_style
from utils.errors import ScalodiffError

__all__ = ["PriceSeries", "detect_format", "load_prices"]

_DELIMITERS = (",", ";", "\t", "|")
_HEAD_BYTES = 64 * 1024
# The first bytes of an old binary Excel .xls (an OLE2 compound file); 4 bytes are compared.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"


def load_prices(
    source: str | os.PathLike,
    column: str | None = DEFAULT_COLUMN,
    *,
    max_missing_frac: float = 0.01,
    date_format: str | None = None,
) -> PriceSeries:
    """Load, clean and check a price series.

    Parameters
    ----------
    source : str or os.PathLike
        A CSV, Parquet or HistData.com file, or the name of a built-in dataset
        (see :func:`data.builtin.list_datasets`). An existing path wins over a
        built-in name.
    column : str or None, default "Close"
        The price column, matched case-insensitively. When the file has no
        such column but exactly one numeric column, that column is used; None
        asks for exactly that. HistData M1 files accept open/high/low/close
        (default close); tick files bid/ask/mid (default mid). For a built-in
        dataset the default picks its documented price column.
    max_missing_frac : float, default 0.01
        Missing price cells (empty, '.', 'NA', ...) up to this fraction of the
        rows are dropped with a warning; more is an error.
    date_format : str or None, default None
        How to read numeric dates such as 03/04/2020 (the setting DATE_FORMAT):
        None detects day or month first from the whole column (:mod:`data.dates`),
        "dayfirst" / "monthfirst" choose, a strftime format reads every time with it.

    Returns
    -------
    PriceSeries
        Positive float64 prices in time order, with timestamps when the source
        has them.

    Raises
    ------
    ScalodiffError
        For a missing or unreadable file, a missing column, or bad content;
        the message names the file, the column or row, the value, and the fix.

    Examples
    --------
    >>> from data.readers import load_prices
    >>> series = load_prices("sp500")
    >>> series.column, len(series) > 5000
    ('Adj Close', True)
    """
    if not 0.0 <= max_missing_frac <= 1.0:
        raise ScalodiffError(
            f"max_missing_frac={max_missing_frac!r} must lie between 0 and 1 "
            "(a fraction of the rows, e.g. 0.01 for 1%)."
        )
    path = Path(os.fspath(source)).expanduser()
    if not path.exists():
        if isinstance(source, str) and builtin.is_builtin(source):
            return builtin.load_builtin(source, column, max_missing_frac=max_missing_frac)
        raise _not_found(source, path)
    if path.is_dir():
        raise ScalodiffError(
            f"{path} is a folder; point CSV_PATH to a price file inside it or a built-in name."
        )
    try:
        file_format = detect_format(path)
        if file_format == "parquet":
            return _read_parquet(path, column, max_missing_frac, date_format)
        if file_format.startswith("histdata"):
            return histdata.read_histdata(path, file_format, column)
        return _read_csv(path, column, max_missing_frac, date_format)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        # A cut or damaged .gz (e.g. an interrupted download) fails wherever it is read.
        detail = " ".join(str(error).split())
        raise ScalodiffError(
            f"{path} is a damaged gzip file ({detail}); download or compress it again."
        ) from error
    finally:
        _release_arrow_memory()


def _release_arrow_memory() -> None:
    """Give the memory pyarrow freed while reading back to the system.

    pandas keeps text in pyarrow arrays and Parquet is read through pyarrow; its
    allocator holds freed blocks for later arrow arrays, but what comes after
    reading is numpy arrays, which cannot use them. Reading 10 M Parquet rows left
    about 270 MB of resident memory that no array used.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _not_found(source: str | os.PathLike, path: Path) -> ScalodiffError:
    text = os.fspath(source)
    looks_like_name = isinstance(text, str) and not path.suffix and os.sep not in text
    if looks_like_name:
        hint = builtin.suggest(text)
        return ScalodiffError(
            f"{text!r} is neither an existing file nor a built-in dataset{hint}. Built-in "
            f"datasets: {', '.join(builtin.names())} (python train.py --list-datasets)."
        )
    return ScalodiffError(
        f"price file not found: {text!r} (looked for {path.resolve()}). Check the path "
        f"(CSV_PATH) or use a built-in dataset: {', '.join(builtin.names())}."
    )


def _open_text(path: Path):
    """Open a possibly gzipped text file for sniffing."""
    if _is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace")
    return open(path, encoding="utf-8-sig", errors="replace")


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _head_lines(path: Path, n: int = 20) -> list[str]:
    """The first non-blank lines of a text file (at most ``n``)."""
    with _open_text(path) as handle:
        text = handle.read(_HEAD_BYTES)
    return [line for line in text.splitlines() if line.strip()][:n]


def detect_format(path: str | os.PathLike) -> str:
    """Tell the format of a price file from its content.

    Parameters
    ----------
    path : str or os.PathLike
        An existing file.

    Returns
    -------
    str
        ``"parquet"``, ``"histdata-m1"``, ``"histdata-tick"`` or ``"csv"``.

    Raises
    ------
    ScalodiffError
        For an empty file or a ZIP archive (unpack it first).
    """
    path = Path(path)
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic == b"PAR1":
        return "parquet"
    if (magic.startswith(b"PK") and _is_workbook(path)) or magic == _OLE_MAGIC:
        raise ScalodiffError(
            f"{path} is an Excel workbook, which is not read here; open it and save the sheet "
            "with the prices as CSV (File > Save As > CSV), then point CSV_PATH to the .csv."
        )
    if magic.startswith(b"PK"):
        # HistData.com downloads come zipped together with a status .txt file.
        raise ScalodiffError(
            f"{path} is a ZIP archive; unpack it and point CSV_PATH to the .csv inside."
        )
    lines = _head_lines(path, 1)
    if not lines:
        raise ScalodiffError(f"{path} is empty; point CSV_PATH to a file with prices in it.")
    return histdata.sniff(lines[0]) or "csv"


def _is_workbook(path: Path) -> bool:
    """True for an .xlsx/.xlsm/.ods (a ZIP holding a workbook) rather than a zipped CSV."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        return False
    return "xl/workbook.xml" in names or "content.xml" in names and "mimetype" in names


def _sniff_delimiter(lines: list[str]) -> str:
    """The delimiter that splits the first lines into the same, largest number of fields."""
    best, best_count = ",", 0
    for delimiter in _DELIMITERS:
        counts = {line.count(delimiter) for line in lines}
        if len(counts) == 1 and (count := counts.pop()) > best_count:
            best, best_count = delimiter, count
    return best


def _csv_options(path: Path) -> dict:
    return {
        "sep": _sniff_delimiter(_head_lines(path)),
        "header": None,
        "dtype": str,
        # Keep every cell as text: data.cleaning tells missing markers from bad values.
        "na_filter": False,
        # Blank lines stay as rows so that row i is always line i + 1 (+ header).
        "skip_blank_lines": False,
        "compression": "gzip" if _is_gzip(path) else None,
        "encoding": "utf-8-sig",
        "encoding_errors": "replace",
    }


def _csv_call(path: Path, **options) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **options)
    except pd.errors.EmptyDataError as error:
        raise ScalodiffError(f"{path} is empty; point CSV_PATH to a file with prices.") from error
    except ValueError as error:  # ParserError, or rows with fewer fields than the header
        raise ScalodiffError(
            f"{path} is not a readable CSV file ({' '.join(str(error).split())}); check its "
            "delimiter and quoting, and that every row has as many fields as the header."
        ) from error


def _leading_blank_lines(path: Path) -> int:
    """How many empty lines the file starts with."""
    count = 0
    with _open_text(path) as handle:
        for line in handle:
            if line.rstrip("\r\n"):
                break
            count += 1
    return count


def _is_header(cells: list[str]) -> bool:
    """A first line made only of numbers and dates is data, not a header."""
    row = pd.Series(cells, dtype=str)
    return not all(
        looks_numeric(row.iloc[[i]]) or looks_like_times(row.iloc[[i]]) for i in range(len(row))
    )


def _read_csv(
    path: Path, column: str | None, max_missing_frac: float, date_format: str | None
) -> PriceSeries:
    options = _csv_options(path)
    # Leading blank lines are skipped, but counted so that line numbers stay true. pandas
    # cannot skip them itself: a blank first line reads as a file without columns.
    skipped = _leading_blank_lines(path)
    sample = _csv_call(path, skiprows=skipped, nrows=SAMPLE_ROWS + 1, **options)
    blank = (sample == "").all(axis=1).to_numpy()
    if blank.all():
        raise ScalodiffError(f"{path} is empty; point CSV_PATH to a file with prices in it.")
    sample = sample.iloc[int(np.argmin(blank)) :]
    lead = skipped + int(np.argmin(blank))
    first = [str(cell).strip() for cell in sample.iloc[0]]
    has_header = _is_header(first)
    if has_header:
        names = first
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ScalodiffError(
                f"{path}: the header repeats column name(s) {', '.join(map(repr, duplicated))}; "
                "give every column its own name."
            )
        sample = sample.iloc[1:]
    else:
        names = [f"column{i + 1}" for i in range(sample.shape[1])]
    sample = sample.set_axis(names, axis=1)
    if sample.empty:
        raise ScalodiffError(f"{path} has a header but no data rows; add prices below it.")

    price, time = _price_and_time(sample, column, str(path), has_header)
    style = number_style(sample[price], MISSING_MARKERS)

    skip = lead + int(has_header)
    price_at, time_at = names.index(price), (names.index(time) if time is not None else None)
    reading = None
    if time is not None:
        try:
            pieces = chunked.column_chunks(path, options, skip, time_at)
            reading = dates.time_format(sample[time], date_format, pieces, str(path), time)
        except chunked.WholeFile:
            pieces = [_read_whole_csv(path, options, skip, names, price, time)[1]]
            reading = dates.time_format(sample[time], date_format, pieces, str(path), time)
    try:
        # Chunk by chunk first: the whole file's text would cost several times its numbers.
        cells, times, time_text = chunked.read_columns(
            path, options, skip, price_at, time_at, style, reading
        )
    except chunked.WholeFile:
        cells, times = _read_whole_csv(path, options, skip, names, price, time)
        time_text = None

    offset = 1 + skip
    values, stamps = clean_prices(
        cells,
        times,
        where=str(path),
        column=price,
        locate=lambda i: f"line {i + offset}",
        max_missing_frac=max_missing_frac,
        time_text=time_text,
        number_style=style,
        time_reading=reading,
    )
    return PriceSeries.from_file(path, values, stamps, price, "csv")


def _price_and_time(
    sample: pd.DataFrame, column: str | None, where: str, has_header: bool
) -> tuple[str, str | None]:
    """The price column and the time column (or None) of a table's first rows.

    Prices written with separators ("1.228,10") count as numbers; a column of Unix
    times named like a time is the time column, not a candidate for the price.
    """
    names = list(sample.columns)
    epoch = [n for n in names if dates.looks_like_epoch(n, sample[n])]
    numeric = [
        n
        for n in names
        if n not in epoch
        and (looks_numeric(sample[n]) or number_style(sample[n], MISSING_MARKERS) is not None)
    ]
    price = resolve_column(column, names, numeric, where=where)
    time = find_time_column(sample, exclude=price)
    if time is None:
        time = next((n for n in epoch if n != price), None)
    if time is None and not has_header:
        time = dates.headerless_epoch_column(sample, exclude=price)
    return price, time


def _read_whole_csv(
    path: Path, options: dict, skip: int, names: list[str], price: str, time: str | None
) -> tuple[pd.Series, pd.Series | None]:
    """The price and time columns as text, read whole (what :mod:`data.chunked` falls back to)."""
    wanted = [names.index(price)] + ([names.index(time)] if time is not None else [])
    frame = _csv_call(path, skiprows=skip, usecols=wanted, **options)
    if any(i not in frame.columns for i in wanted):  # pandas sizes rows by the first data row
        raise ScalodiffError(
            f"{path}: line {skip + 1} has fewer fields than the "
            f"{len(names)} columns {', '.join(map(repr, names))}; fix or delete that line."
        )
    frame = frame[sorted(wanted)].set_axis([names[i] for i in sorted(wanted)], axis=1)
    # A file's closing blank lines are layout, not missing prices.
    filled = np.flatnonzero(~(frame == "").all(axis=1).to_numpy())
    frame = frame.iloc[: filled[-1] + 1 if filled.size else 0]
    return frame[price], (frame[time] if time is not None else None)


def _read_parquet(
    path: Path, column: str | None, max_missing_frac: float, date_format: str | None
) -> PriceSeries:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        frame = table.to_pandas()  # parses the pandas metadata, which may be damaged too
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise ScalodiffError(
            f"{path} looks like Parquet but cannot be read ({' '.join(str(error).split())}); "
            "re-export it."
        ) from error
    if isinstance(frame.index, pd.DatetimeIndex):
        # pandas stores a DatetimeIndex as the index: make it an ordinary column.
        frame = frame.reset_index(names=frame.index.name or "timestamp")
    frame.columns = [str(name) for name in frame.columns]
    if frame.empty:
        raise ScalodiffError(f"{path} has no data rows; point CSV_PATH to a file with prices.")

    sample = frame.head(SAMPLE_ROWS)
    price, time = _price_and_time(sample, column, str(path), has_header=True)
    reading = None
    if time is not None and not pd.api.types.is_datetime64_any_dtype(frame[time]):
        cells = frame[time].astype(str).where(frame[time].notna(), "")
        reading = dates.time_format(cells.head(SAMPLE_ROWS), date_format, [cells], str(path), time)

    # Parquet tells nulls (missing) from NaN (a bad value); pandas would merge them.
    missing = None
    if price in table.column_names:
        missing = np.asarray(table.column(price).is_null().to_numpy(zero_copy_only=False))
    values, stamps = clean_prices(
        frame[price],
        frame[time] if time is not None else None,
        where=str(path),
        column=price,
        locate=lambda i: f"row {i + 1}",
        max_missing_frac=max_missing_frac,
        missing=missing,
        number_style=number_style(sample[price], MISSING_MARKERS),
        time_reading=reading,
    )
    return PriceSeries.from_file(path, values, stamps, price, "parquet")
