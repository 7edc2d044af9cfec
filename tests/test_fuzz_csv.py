"""Fuzzing the price readers: a corrupted file gives clean prices or one ScalodiffError.

Hypothesis starts from small valid files (a CSV with dates, a HistData M1 export, a
HistData tick file, a Parquet file) and damages them: bytes deleted, inserted or
replaced with tokens that break parsers (delimiters, quotes, NUL, BOM, bad UTF-8,
'nan', '1e309', impossible dates, ...), lines dropped, repeated or swapped, the file
cut short, single fields (prices, dates, header names)
replaced, sometimes gzipped. ``data.readers.load_prices`` must then either return a
series that honours its contract or raise :class:`ScalodiffError` with a one-line
message naming the file. Any other exception is a bug.
"""

from __future__ import annotations

import gzip
import io
import tempfile
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from data import chunked
from data.readers import PriceSeries, load_prices
from utils.errors import ScalodiffError

N_ROWS = 40


def _base_files() -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, N_ROWS)))
    dates = pd.date_range("2020-01-01", periods=N_ROWS, freq="D")
    csv = "Date,Open,Close,Volume\n" + "".join(
        f"{d:%Y-%m-%d},{c * 0.999:.4f},{c:.4f},{1000 + i}\n"
        for i, (d, c) in enumerate(zip(dates, close, strict=True))
    )
    minutes = pd.date_range("2012-02-01", periods=N_ROWS, freq="min")
    m1 = "".join(
        f"{t:%Y%m%d %H%M%S};{c:.5f};{c + 0.001:.5f};{c - 0.001:.5f};{c:.5f};0\n"
        for t, c in zip(minutes, close / 80, strict=True)
    )
    ticks = "".join(
        f"{t:%Y%m%d %H%M%S}{i % 1000:03d},{c:.5f},{c + 0.0002:.5f},0\n"
        for i, (t, c) in enumerate(zip(minutes, close / 80, strict=True))
    )
    buffer = io.BytesIO()
    pd.DataFrame({"Date": dates, "Close": close}).to_parquet(buffer, index=False)
    return {
        "csv": csv.encode(),
        "m1": m1.encode(),
        "ticks": ticks.encode(),
        "parquet": buffer.getvalue(),
    }


BASES = _base_files()

TOKENS = [
    ",",
    ";",
    "\t",
    "|",
    '"',
    "'",
    "\n",
    "\r\n",
    "\r",
    " ",
    "",
    ".",
    "-",
    "NA",
    "#N/A",
    "null",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e309",
    "-1",
    "0",
    "0.0",
    "1,234.5",
    "$5",
    "abc",
    "Close",
    "Date",
    "close,close",
    "2020-13-45",
    "20120231 250000",
    "1970-01-01",
    "\x00",
    "\ufeff",
    "é",
    ",,,,",
    ";;;;",
    '"a,b"',
    "PAR1",
    "PK\x03\x04",
]

position = st.integers(min_value=0, max_value=100_000)
token = st.one_of(
    st.sampled_from(TOKENS).map(str.encode),
    st.binary(max_size=6),
    st.text(max_size=6).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
edit = st.one_of(
    st.tuples(st.just("delete"), position, st.integers(1, 40)),
    st.tuples(st.just("insert"), position, token),
    st.tuples(st.just("replace"), position, st.integers(1, 12), token),
    st.tuples(st.just("drop_line"), position),
    st.tuples(st.just("repeat_line"), position),
    st.tuples(st.just("swap_lines"), position, position),
    st.tuples(st.just("truncate"), position),
    st.tuples(st.just("cell"), position, position, token),
    st.tuples(st.just("cell"), position, position, token),  # twice as likely: reaches cleaning
)


def corrupt(data: bytes, edits: list[tuple]) -> bytes:
    """Apply ``edits`` in order; positions wrap around the current length (or line count)."""
    for kind, *args in edits:
        if kind in ("delete", "insert", "replace", "truncate"):
            at = args[0] % (len(data) + 1)
            if kind == "delete":
                data = data[:at] + data[at + args[1] :]
            elif kind == "insert":
                data = data[:at] + args[1] + data[at:]
            elif kind == "replace":
                data = data[:at] + args[2] + data[at + args[1] :]
            else:
                data = data[:at]
        else:
            lines = data.split(b"\n")
            i = args[0] % len(lines)
            if kind == "cell":  # one field of one line, e.g. a price, a date or a header name
                sep = b";" if b";" in lines[i] else b","
                fields = lines[i].split(sep)
                fields[args[1] % len(fields)] = args[2]
                lines[i] = sep.join(fields)
            elif kind == "drop_line":
                del lines[i]
            elif kind == "repeat_line":
                lines.insert(i, lines[i])
            else:
                j = args[1] % len(lines)
                lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
    return data


def check_contract(series: PriceSeries) -> None:
    """What load_prices promises about a series it returns."""
    values = series.values
    assert values.dtype == np.float64 and values.ndim == 1 and len(values) >= 2
    assert np.isfinite(values).all() and (values > 0).all()
    assert not np.all(values == values[0])
    if series.timestamps is not None:
        assert len(series.timestamps) == len(values)
        assert series.timestamps.is_monotonic_increasing and series.timestamps.is_unique


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(sorted(BASES)),
    edits=st.lists(edit, min_size=1, max_size=4),
    gz=st.booleans(),
    column=st.sampled_from(
        [None, "Close", "Close", "close", "Open", "Volume", "price", "bid", "mid"]
    ),
    max_missing_frac=st.sampled_from([0.0, 0.01, 0.3]),
)
# Found by this test, now fixed: a header longer than the rows; a short first data row;
# a file that starts like gzip but is not; Parquet with damaged pandas metadata.
@example(base="csv", edits=[("insert", 0, b",")], gz=False, column="Volume", max_missing_frac=0.0)
@example(base="csv", edits=[("delete", 23, 20)], gz=False, column="Close", max_missing_frac=0.0)
@example(
    base="csv", edits=[("insert", 0, b"\x1f\x8b")], gz=False, column=None, max_missing_frac=0.0
)
@example(
    base="csv",
    edits=[("replace", 60, 3, b"\xff\xfe")],
    gz=False,
    column="Close",
    max_missing_frac=0.01,
)
@example(
    base="parquet", edits=[("replace", 11376, 1, b"/")], gz=False, column=None, max_missing_frac=0.0
)
@example(base="csv", edits=[("insert", 30, b'"')], gz=True, column="Close", max_missing_frac=0.01)
@example(
    base="m1", edits=[("insert", 100, b"\n;;;;;\n")], gz=False, column=None, max_missing_frac=0.0
)
@example(
    base="parquet",
    edits=[("replace", 200, 8, b"\x00" * 8)],
    gz=False,
    column=None,
    max_missing_frac=0.0,
)
def test_corrupted_files_give_prices_or_our_error(
    base, edits, gz, column, max_missing_frac
) -> None:
    data = corrupt(BASES[base], edits)
    if gz:
        data = gzip.compress(data)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "prices.dat"
        path.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # dropped rows, sorting: allowed, with a warning
                series = load_prices(path, column, max_missing_frac=max_missing_frac)
        except ScalodiffError as error:
            message = str(error)
            assert "\n" not in message and "\r" not in message, message
            assert "prices.dat" in message, message
            event(f"{base}: refused")
        else:
            check_contract(series)
            event(f"{base}: read")


def _outcome(path: Path, column: str | None, max_missing_frac: float) -> tuple:
    """Everything load_prices tells a user: prices, timestamps and warnings, or the error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            series = load_prices(path, column, max_missing_frac=max_missing_frac)
        except ScalodiffError as error:
            result: tuple = ("error", str(error))
        else:
            stamps = series.timestamps
            result = (
                "read",
                series.values.tolist(),
                None if stamps is None else (str(stamps.dtype), stamps.asi8.tolist()),
            )
    return (*result, [str(w.message) for w in caught if issubclass(w.category, UserWarning)])


def _read_whole(*args, **kwargs):
    raise chunked.WholeFile


TZ_CSV = b"Time;Price\n" + b"".join(
    b"2021-03-%02dT%02d:00:00%s;%d\n"
    % (1 + i // 24, i % 24, b"Z" if i % 5 else b"+00:00", 50 + i % 7)
    for i in range(40)
)
MESSY_CSV = (
    b"\n\nDate,Open,Close\n2020-01-01,1,10\n2020-01-03,1,12\n2020-01-02,1,.\n2020-01-02,1,11\n"
    b"2020-01-04,1, 13 \n2020-01-05,1,\n2020-01-06,1,14\n\n\n"
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(["csv", "csv", "m1", "ticks", "tz"]),
    edits=st.lists(edit, min_size=0, max_size=4),
    gz=st.booleans(),
    column=st.sampled_from([None, "Close", "Open", "bid"]),
    max_missing_frac=st.sampled_from([0.0, 0.3]),
    chunk_rows=st.sampled_from([1, 2, 3, 7]),
)
@example(base="messy", edits=[], gz=False, column=None, max_missing_frac=0.3, chunk_rows=2)
@example(base="messy", edits=[], gz=True, column="Close", max_missing_frac=0.0, chunk_rows=3)
@example(  # one offset in a column without: only whole-column parsing sorts it out
    base="csv",
    edits=[("cell", 3, 0, b"2020-01-03T00:00+01:00")],
    gz=False,
    column="Close",
    max_missing_frac=0.0,
    chunk_rows=2,
)
@example(  # offsets that change between chunks
    base="tz",
    edits=[("cell", 30, 0, b"2021-03-02T05:00:00+01:00")],
    gz=False,
    column=None,
    max_missing_frac=0.0,
    chunk_rows=3,
)
@example(base="tz", edits=[], gz=False, column=None, max_missing_frac=0.0, chunk_rows=3)
@example(  # a second time format further down the file
    base="csv",
    edits=[("cell", 30, 0, b"01/31/2020")],
    gz=False,
    column="Close",
    max_missing_frac=0.0,
    chunk_rows=4,
)
@example(  # a bad price and, later, a line with too many fields
    base="m1",
    edits=[("cell", 3, 2, b"x"), ("insert", 900, b";7")],
    gz=False,
    column=None,
    max_missing_frac=0.0,
    chunk_rows=2,
)
def test_reading_in_chunks_tells_the_user_what_reading_whole_does(
    base, edits, gz, column, max_missing_frac, chunk_rows
) -> None:
    """Chunked reading (data/chunked.py, the HistData reader) is invisible to the user.

    The same file read in chunks of a few rows and read whole (as the readers did
    before chunking; for HistData, one chunk) gives the same prices and
    timestamps, the same warnings, or the same error message.
    """
    data = corrupt({"messy": MESSY_CSV, "tz": TZ_CSV}.get(base) or BASES[base], edits)
    if gz:
        data = gzip.compress(data)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "prices.dat"
        path.write_bytes(data)
        with mock.patch.object(chunked, "CHUNK_ROWS", chunk_rows):
            in_chunks = _outcome(path, column, max_missing_frac)
        with (
            mock.patch.object(chunked, "read_columns", _read_whole),
            mock.patch.object(chunked, "CHUNK_ROWS", 10**9),
        ):
            whole = _outcome(path, column, max_missing_frac)
    assert in_chunks == whole
    event(f"{base}: {whole[0]}")
