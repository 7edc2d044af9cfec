"""Readers: formats, column rules, cleaning warnings and every user-facing error."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data.builtin import list_datasets, load_builtin, names
from data.readers import PriceSeries, detect_format, load_prices
from utils.errors import ScalodiffError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_quietly(*args, **kwargs) -> PriceSeries:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # these inputs are clean: any warning is a bug
        return load_prices(*args, **kwargs)


# ---------------------------------------------------------------- good inputs


def test_generic_csv_with_dates(tmp_path):
    path = write(
        tmp_path,
        "spx.csv",
        "Date,Open,Close,Volume\n2020-01-02,1,100.5,7\n2020-01-03,1,101.0,8\n2020-01-06,1,99.5,9\n",
    )
    series = load_quietly(path)
    assert isinstance(series, PriceSeries)
    assert series.values.dtype == np.float64
    np.testing.assert_array_equal(series.values, [100.5, 101.0, 99.5])
    assert list(series.timestamps) == list(
        pd.to_datetime(["2020-01-02", "2020-01-03", "2020-01-06"])
    )
    assert (series.name, series.column, series.file_format) == ("spx", "Close", "csv")
    assert series.source == str(path.resolve())
    assert len(series) == 3


def test_close_is_case_insensitive_and_other_column_by_name(tmp_path):
    path = write(tmp_path, "p.csv", "time;OPEN;CLOSE\n2020-01-02 10:00;5;6\n2020-01-02 10:01;7;8\n")
    assert load_quietly(path).column == "CLOSE"
    series = load_quietly(path, column="open")
    np.testing.assert_array_equal(series.values, [5.0, 7.0])
    assert series.timestamps[1] == pd.Timestamp("2020-01-02 10:01")


def test_single_numeric_column_needs_no_setting(tmp_path):
    with_header = write(tmp_path, "a.csv", "when,price\n01/12/2020,3\n01/13/2020,4\n")
    series = load_quietly(with_header)
    assert series.column == "price"
    assert series.timestamps[0] == pd.Timestamp("2020-01-12")  # parsed though not named Date
    headerless = write(tmp_path, "b.csv", "3.5\n4\n4.25\n")
    np.testing.assert_array_equal(load_quietly(headerless, column=None).values, [3.5, 4, 4.25])


def test_gzipped_tab_separated_csv(tmp_path):
    path = tmp_path / "t.tsv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("Timestamp\tClose\n2021-05-01T00:00:00\t10\n2021-05-01T00:01:00\t11\n")
    assert detect_format(path) == "csv"
    np.testing.assert_array_equal(load_quietly(path).values, [10.0, 11.0])


def test_parquet_with_datetime_index(tmp_path):
    index = pd.date_range("2020-01-01", periods=4, freq="D", name="Date")
    frame = pd.DataFrame({"close": [1.0, 1.5, 1.25, 2.0], "volume": [1, 2, 3, 4]}, index=index)
    path = tmp_path / "p.bin"  # detected by content, not by name
    frame.to_parquet(path)
    assert detect_format(path) == "parquet"
    series = load_quietly(path)
    np.testing.assert_array_equal(series.values, frame["close"].to_numpy())
    assert list(series.timestamps) == list(index)
    assert series.file_format == "parquet"


def test_histdata_m1_close_and_open(tmp_path):
    path = write(
        tmp_path,
        "DAT_ASCII_EURUSD_M1_2012.csv",
        "20120201 000000;1.306600;1.306700;1.306500;1.306560;0\n"
        "20120201 000100;1.306560;1.306900;1.306400;1.306800;0\n"
        "20120201 000200;1.306800;1.307000;1.306700;1.306900;0\n",
    )
    assert detect_format(path) == "histdata-m1"
    series = load_quietly(path)
    np.testing.assert_array_equal(series.values, [1.30656, 1.3068, 1.3069])
    assert series.timestamps[1] == pd.Timestamp("2012-02-01 00:01:00")
    np.testing.assert_array_equal(
        load_quietly(path, column="Open").values, [1.3066, 1.30656, 1.3068]
    )
    with pytest.raises(ScalodiffError, match="open, high, low, close"):
        load_prices(path, column="bid")


def test_histdata_ticks_priced_at_mid(tmp_path):
    path = write(
        tmp_path,
        "DAT_ASCII_EURUSD_T_201202.csv",
        "20120201 000207915,1.306600,1.306700,0\n20120201 000208010,1.306650,1.306850,0\n",
    )
    assert detect_format(path) == "histdata-tick"
    series = load_quietly(path)
    np.testing.assert_allclose(series.values, [1.30665, 1.30675], rtol=0, atol=1e-12)
    assert series.timestamps[0] == pd.Timestamp("2012-02-01 00:02:07.915")
    np.testing.assert_array_equal(load_quietly(path, column="ask").values, [1.3067, 1.30685])


@pytest.mark.parametrize("name", names())
def test_builtin_datasets(name):
    series = load_quietly(name.upper())
    assert series.file_format == "builtin" and series.source == name
    assert len(series) > 1000 and (series.values > 0).all()
    assert series.timestamps.is_monotonic_increasing and series.timestamps.is_unique


def test_builtin_columns_and_table():
    assert load_builtin("sp500").column == "Adj Close"
    assert load_builtin("sp500", column="open").column == "Open"
    table = list_datasets()
    for name in names():
        assert name in table
    assert "5031" in table and "1999-01-04" in table and "2018-12-31" in table


def test_existing_file_wins_over_builtin_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "sp500", "Close\n1\n2\n")
    assert load_quietly("sp500").file_format == "csv"


# ------------------------------------------------------- cleaning with warnings


def test_missing_values_dropped_with_warning(tmp_path):
    rows = [f"2020-01-{d:02d},{100 + d}" for d in range(1, 29)]
    rows[4] = "2020-01-05,."  # FRED style
    rows[9] = "2020-01-10,"  # empty cell
    path = write(tmp_path, "fred.csv", "DATE,VALUE\n" + "\n".join(rows) + "\n")
    with pytest.warns(UserWarning, match=r"dropped 2 of 28 rows.*line 6"):
        series = load_prices(path, max_missing_frac=0.1)
    assert len(series) == 26 and 105.0 not in series.values


def test_too_many_missing_values_is_an_error(tmp_path):
    path = write(tmp_path, "gappy.csv", "Close\n1\n.\n3\n4\n")
    with pytest.raises(
        ScalodiffError, match=r"gappy\.csv.*1 of 4 rows.*line 3: '\.'.*max_missing_frac=0\.01"
    ):
        load_prices(path)


def test_unsorted_and_duplicate_times(tmp_path):
    path = write(
        tmp_path,
        "u.csv",
        "Date,Close\n2020-01-03,3\n2020-01-01,1\n2020-01-02,2\n2020-01-02,2.5\n",
    )
    with pytest.warns(UserWarning) as record:
        series = load_prices(path)
    messages = " | ".join(str(w.message) for w in record)
    assert "not in time order" in messages and "kept the last row" in messages
    np.testing.assert_array_equal(series.values, [1.0, 2.5, 3.0])
    assert series.timestamps.is_monotonic_increasing and series.timestamps.is_unique


def test_parquet_null_is_missing_but_nan_is_an_error(tmp_path):
    path = tmp_path / "n.parquet"
    pd.DataFrame({"Close": pd.array([1.0, None] + [2.0] * 98, dtype="Float64")}).to_parquet(path)
    with pytest.warns(UserWarning, match="dropped 1 of 100"):
        assert len(load_prices(path)) == 99
    # pandas turns NaN into null on export; pyarrow itself keeps a real NaN.
    pq.write_table(pa.table({"Close": pa.array([1.0, np.nan, 2.0], from_pandas=False)}), path)
    with pytest.raises(ScalodiffError, match=r"n\.parquet.*'nan' at row 2.*not a finite"):
        load_prices(path)


# -------------------------------------------------------------- user errors


def test_missing_file_and_mistyped_builtin(tmp_path):
    with pytest.raises(ScalodiffError, match=r"not found: .*nope\.csv"):
        load_prices(tmp_path / "nope.csv")
    with pytest.raises(ScalodiffError, match=r"'nasdq'.*did you mean 'nasdaq'.*sp500"):
        load_prices("nasdq")


def test_empty_files(tmp_path):
    for text in ("", "\n\n"):
        with pytest.raises(ScalodiffError, match=r"empty\.csv is empty"):
            load_prices(write(tmp_path, "empty.csv", text))
    with pytest.raises(ScalodiffError, match=r"header\.csv has a header but no data"):
        load_prices(write(tmp_path, "header.csv", "Date,Close\n"))


def test_unknown_column_lists_columns(tmp_path):
    path = write(tmp_path, "ohlc.csv", "Date,Open,High\n2020-01-01,1,2\n2020-01-02,2,3\n")
    with pytest.raises(ScalodiffError) as error:
        load_prices(path)
    message = str(error.value)
    assert "ohlc.csv" in message and "'Close'" in message
    assert "'Date', 'Open', 'High'" in message and "COLUMN" in message


def test_non_numeric_price_names_line_and_value(tmp_path):
    path = write(tmp_path, "bad.csv", "Date,Close\n2020-01-01,1\n2020-01-02,$2.50\n2020-01-03,3\n")
    with pytest.raises(ScalodiffError, match=r"bad\.csv.*'Close'.*'\$2\.50' at line 3"):
        load_prices(path)


@pytest.mark.parametrize("token", ["inf", "NaN", "-Infinity"])
def test_nan_or_inf_in_csv_is_an_error(tmp_path, token):
    path = write(tmp_path, "x.csv", f"Close\n1\n2\n{token}\n4\n")
    with pytest.raises(ScalodiffError, match=rf"x\.csv.*'{token}' at line 4.*not a finite"):
        load_prices(path)


def test_non_positive_price_names_where(tmp_path):
    path = write(
        tmp_path, "neg.csv", "Date,Close\n2020-04-17,18.3\n2020-04-20,-37.63\n2020-04-21,8\n"
    )
    with pytest.raises(
        ScalodiffError, match=r"neg\.csv.*-37\.63 at line 3 \(time '2020-04-20'\).*log returns"
    ):
        load_prices(path)


def test_constant_and_too_short_series(tmp_path):
    with pytest.raises(ScalodiffError, match=r"flat\.csv.*all 3 prices equal 5\.0"):
        load_prices(write(tmp_path, "flat.csv", "Close\n5\n5\n5\n"))
    with pytest.raises(ScalodiffError, match=r"one\.csv.*only 1 usable price"):
        load_prices(write(tmp_path, "one.csv", "Close\n5\n"))


def test_bad_timestamp_names_line(tmp_path):
    path = write(tmp_path, "t.csv", "Date,Close\n2020-01-01,1\nyesterday,2\n")
    with pytest.raises(ScalodiffError, match=r"t\.csv.*'yesterday' at line 3"):
        load_prices(path)


def test_times_with_and_without_a_zone_in_one_column_name_a_line(tmp_path):
    text = "Date,Close\n01/02/2020,1\n01/03/2020 10:00+01:00,2\n01/16/2020,3\n"
    path = write(tmp_path, "z.csv", text)
    with pytest.raises(ScalodiffError, match=r"z\.csv.*'01/03/2020 10:00\+01:00' at line 3"):
        load_prices(path)


@pytest.mark.parametrize(
    ("bad_line", "why"),
    [
        ("20120201 000100;1.3;1.4;1.2;1.35;0;9", "7 fields instead of 6"),
        ("20120201 000100;1.3;1.4;1.2", "not a finite number"),
        ("20120201 000100;1.3;x;1.2;1.35;0", "not a finite number"),
        ("20120231 000100;1.3;1.4;1.2;1.35;0", "unreadable time"),
    ],
)
def test_histdata_malformed_line_number(tmp_path, bad_line, why):
    good = "20120201 000000;1.3;1.4;1.2;1.35;0\n"
    path = write(tmp_path, "m1.csv", good * 2 + bad_line + "\n" + good)
    with pytest.raises(ScalodiffError) as error:
        load_prices(path)
    message = str(error.value)
    assert "m1.csv" in message and "line 3" in message and why in message
    assert repr(bad_line) in message


def test_zip_folder_and_bad_settings(tmp_path):
    zipped = tmp_path / "HISTDATA_COM_ASCII_EURUSD_M1_2012.zip"
    zipped.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ScalodiffError, match="ZIP archive; unpack it"):
        load_prices(zipped)
    with pytest.raises(ScalodiffError, match="is a folder"):
        load_prices(tmp_path)
    with pytest.raises(ScalodiffError, match=r"max_missing_frac=1\.5"):
        load_prices("sp500", max_missing_frac=1.5)
    with pytest.raises(ScalodiffError, match=r"no column 'Bid'.*'Adj Close'"):
        load_prices("sp500", column="Bid")


# ------------------------------------------------------- long files, in chunks


def test_leading_blank_lines_are_skipped_and_counted(tmp_path):
    path = write(tmp_path, "lead.csv", "\n\nDate,Close\n2020-01-01,10\n2020-01-02,x\n")
    with pytest.raises(ScalodiffError, match=r"'x' at line 5 \(time '2020-01-02'\)"):
        load_prices(path)
    path.write_text("\n\nDate,Close\n2020-01-01,10\n2020-01-02,11\n2020-01-03,12\n")
    assert load_quietly(path).values.tolist() == [10.0, 11.0, 12.0]


def test_long_messy_csv_is_read_in_chunks_with_the_usual_warnings(tmp_path, monkeypatch):
    """A CSV is never held whole as text: the price column is classified a chunk at a time.

    Missing cells, unsorted and repeated times and time zones are all handled in
    chunks, with the warnings and line numbers a whole-file read gives.
    """
    import data.chunked as chunked
    import data.cleaning as cleaning
    import data.readers as readers

    stamps = pd.date_range("2021-01-01", periods=1000, freq="min", tz="UTC")
    rows = [f"{t.isoformat()},{100 + i % 17}" for i, t in enumerate(stamps)]
    rows[10] = rows[10].split(",")[0] + ",."  # a missing price, line 12
    rows[500], rows[501] = rows[501], rows[500]  # out of order
    rows.append(rows[700])  # a repeated time
    path = write(tmp_path, "long.csv", "time,price\n" + "\n".join(rows) + "\n\n")

    sizes: list[int] = []
    real = cleaning.parse_price_text

    def spy(cells, *args, **kwargs):
        sizes.append(len(cells))
        return real(cells, *args, **kwargs)

    def whole(*args, **kwargs):
        raise AssertionError("read the whole file")

    monkeypatch.setattr(chunked, "parse_price_text", spy)
    monkeypatch.setattr(chunked, "CHUNK_ROWS", 64)
    monkeypatch.setattr(readers, "_read_whole_csv", whole)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        series = load_prices(path)
    messages = [str(w.message) for w in caught]
    assert sizes and max(sizes) <= 64 and sum(sizes) == 1002  # 1001 rows + the closing blank
    assert len(series) == 999 and str(series.timestamps.dtype) == "datetime64[us, UTC]"
    assert series.timestamps.is_monotonic_increasing and series.timestamps.is_unique
    assert any(
        f"dropped 1 of 1001 rows with a missing price (first at line 12 (time '{stamps[10].isoformat()}'))"
        in m
        for m in messages
    ), messages
    assert any("rows are not in time order; sorted them" in m for m in messages)
    assert any("1 rows share their time with a later row" in m for m in messages)


def test_day_first_dates_are_told_from_a_later_chunk_and_read_in_chunks(tmp_path, monkeypatch):
    """The order of numeric dates is decided on the whole column, not on its first rows.

    Hourly bars from 2021-01-01 00:00 show no day above 12 in their first 288 rows; at
    chunks of 64 rows the day-first reading is only told in the fifth chunk, and every
    chunk is then read with it, with no whole-file fallback.
    """
    import data.chunked as chunked
    import data.readers as readers

    stamps = pd.date_range("2021-01-01", periods=1000, freq="h")
    rows = [f"{t:%d/%m/%Y %H:%M},{100 + i % 17}" for i, t in enumerate(stamps)]
    path = write(tmp_path, "hourly.csv", "Date,Close\n" + "\n".join(rows) + "\n")

    def whole(*args, **kwargs):
        raise AssertionError("read the whole file")

    monkeypatch.setattr(chunked, "CHUNK_ROWS", 64)
    monkeypatch.setattr(readers, "_read_whole_csv", whole)
    series = load_quietly(path)
    assert (series.timestamps == stamps).all()
    # A day-first row read month first would be refused with its line, never swapped.
    rows[400] = f"{stamps[400]:%m/%d/%Y %H:%M},100"  # 01/17/2021
    path.write_text("Date,Close\n" + "\n".join(rows) + "\n")
    with pytest.raises(ScalodiffError, match=r"01/17/2021 16:00.* line 402 .*read day first"):
        load_prices(path)
