"""Built-in price datasets, shipped with the ``arch`` package (no download).

Only genuine, positive price series are offered. Left out on purpose from what
``arch.data`` ships: ``vix`` (an implied-volatility index, not a traded price;
its log changes mean-revert), ``crude`` (monthly *averages* of Brent and WTI,
which smooth returns, and only ~390 rows), and the macro/finance tables
(``core_cpi``, ``default``, ``frenchdata``, ``binary``), which are not prices.
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from dataclasses import dataclass

from data.cleaning import DEFAULT_COLUMN, PriceSeries, clean_prices, resolve_column
from utils.errors import ScalodiffError


@dataclass(frozen=True)
class _Dataset:
    module: str  # the arch.data submodule
    column: str  # the price column used by default
    description: str
    # FRED writes '.' on market holidays; those rows carry no information and
    # would otherwise exceed max_missing_frac (3% of WTI's rows).
    holidays_missing: bool = False


_DATASETS: dict[str, _Dataset] = {
    "sp500": _Dataset("sp500", "Adj Close", "S&P 500 index, daily adjusted close (Yahoo)"),
    "nasdaq": _Dataset("nasdaq", "Adj Close", "NASDAQ Composite index, daily adjusted close"),
    "wti": _Dataset(
        "wti",
        "DCOILWTICO",
        "WTI crude oil spot, USD/barrel, daily (FRED; holiday rows dropped)",
        holidays_missing=True,
    ),
}


def names() -> list[str]:
    """Names of the built-in datasets.

    Returns
    -------
    list of str
    """
    return list(_DATASETS)


def is_builtin(name: str) -> bool:
    """True if ``name`` (case-insensitive) is a built-in dataset.

    Parameters
    ----------
    name : str

    Returns
    -------
    bool
    """
    return name.strip().lower() in _DATASETS


def suggest(name: str) -> str:
    """A " (did you mean 'x'?)" hint for a mistyped dataset name, or "".

    Parameters
    ----------
    name : str

    Returns
    -------
    str
    """
    close = difflib.get_close_matches(name.strip().lower(), _DATASETS, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_builtin(
    name: str, column: str | None = DEFAULT_COLUMN, *, max_missing_frac: float = 0.01
) -> PriceSeries:
    """Load a built-in dataset as a cleaned :class:`PriceSeries`.

    Parameters
    ----------
    name : str
        A name from :func:`names`, case-insensitive.
    column : str or None, default "Close"
        The default ("Close") or None picks the dataset's price column (for
        sp500/nasdaq 'Adj Close', equal to 'Close' for these indices); any
        other name picks that column, case-insensitively.
    max_missing_frac : float, default 0.01
        As in :func:`data.readers.load_prices`.

    Returns
    -------
    PriceSeries

    Raises
    ------
    ScalodiffError
        For an unknown name or column.

    Examples
    --------
    >>> series = load_builtin("nasdaq")
    >>> series.name, series.timestamps[0].year
    ('nasdaq', 1999)
    """
    key = name.strip().lower()
    if key not in _DATASETS:
        raise ScalodiffError(
            f"no built-in dataset {name!r}{suggest(name)}; choose one of {', '.join(_DATASETS)}."
        )
    spec = _DATASETS[key]
    frame = importlib.import_module(f"arch.data.{spec.module}").load()
    where = f"built-in dataset {key!r}"
    if column is None or column.strip().lower() == DEFAULT_COLUMN.lower():
        price = spec.column
    else:
        price = resolve_column(column, [str(c) for c in frame.columns], [], where=where)
    cells = frame[price]
    if spec.holidays_missing:
        cells = cells[cells.notna()]
    values, stamps = clean_prices(
        cells,
        cells.index.to_series(),
        where=where,
        column=price,
        locate=lambda i: f"row {i + 1}",
        max_missing_frac=max_missing_frac,
        missing=cells.isna().to_numpy(),
    )
    return PriceSeries(
        values=values,
        timestamps=stamps,
        name=key,
        source=key,
        column=price,
        file_format="builtin",
    )


def list_datasets() -> str:
    """A table of the built-in datasets, for ``python train.py --list-datasets``.

    Returns
    -------
    str
        One line per dataset: name, rows (prices after cleaning), first and
        last date, description.

    Examples
    --------
    >>> print(list_datasets().splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
    name    rows  from        to          description
    """
    rows = []
    for key, spec in _DATASETS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            series = load_builtin(key)
        stamps = series.timestamps
        first, last = (
            (stamps[0].date().isoformat(), stamps[-1].date().isoformat())
            if stamps is not None
            else ("-", "-")
        )
        rows.append((key, str(len(series)), first, last, spec.description))
    header = ("name", "rows", "from", "to", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = []
    for row in [header, *rows]:
        cells = [
            row[0].ljust(widths[0]),
            row[1].rjust(widths[1]),
            row[2].ljust(widths[2]),
            row[3].ljust(widths[3]),
        ]
        lines.append("  ".join(cells) + "  " + row[4])
    lines.append("Use a name in place of a file path (CSV_PATH) to train on it.")
    return "\n".join(lines)
