"""Training data for a conditional model: one or several price series, windows, labels.

Several series are named in CSV_PATH as a comma-separated list of files or
built-in names (``sp500,nasdaq``), as a folder of price files, or in COLUMN as a
comma-separated list of columns of one file. Each series gets its own
:class:`~data.returns.ReturnNormalizer`, fitted on its own training part, so that
generating "nasdaq" maps back to NASDAQ's scale; all of them are saved. Each
series is split by time and cut into windows on its own, so no window straddles
two series: :class:`StackedWindows` only indexes the per-series window views.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from data.cleaning import PriceSeries
from data.labels import Conditioning, fit_conditioning, periods_per_year, window_measure
from data.quality import screen_prices
from data.readers import load_prices
from data.returns import ReturnNormalizer, log_returns, split_by_time
from data.windows import check_length, model_window, windows_view
from utils.checkpoint import MAX_REAL_RETURNS
from utils.errors import ScalodiffError
from utils.settings import data_source

PRICE_SUFFIXES = (".csv", ".gz", ".parquet", ".txt")


def several_series(csv_path: str, column: str | None) -> bool:
    """True when CSV_PATH or COLUMN names more than one series (or a folder of them)."""
    path = Path(str(csv_path)).expanduser()
    listed = "," in str(csv_path) and not path.exists()
    return path.is_dir() or listed or (column is not None and "," in column)


def split_sources(csv_path: str, column: str | None) -> list[tuple[str, str | None]]:
    """(source, column) of every series that CSV_PATH and COLUMN name.

    Examples
    --------
    >>> split_sources("sp500, nasdaq", "Close")
    [('sp500', 'Close'), ('nasdaq', 'Close')]
    >>> split_sources("prices.csv", "spx,ndx")
    [('prices.csv', 'spx'), ('prices.csv', 'ndx')]
    """
    path = Path(str(csv_path)).expanduser()
    if path.is_dir():
        sources = sorted(
            str(p)
            for p in path.iterdir()
            if p.is_file() and p.name.lower().endswith(PRICE_SUFFIXES)
        )
        if not sources:
            raise ScalodiffError(
                f"folder {path} holds no price files ({', '.join(PRICE_SUFFIXES)}); point CSV_PATH "
                "to a folder of price files, or list sources: --data sp500,nasdaq"
            )
    elif "," in str(csv_path) and not path.exists():
        sources = [s.strip() for s in str(csv_path).split(",") if s.strip()]
    else:
        sources = [str(csv_path)]
    columns = [c.strip() for c in column.split(",") if c.strip()] if column else [column]
    if len(sources) > 1 and len(columns) > 1:
        raise ScalodiffError(
            f"CSV_PATH names {len(sources)} sources and COLUMN {len(columns)} columns; give several "
            "files or several columns of one file, not both"
        )
    return [(s, c) for s in sources for c in columns]


def load_series(settings: dict[str, Any]) -> list[PriceSeries]:
    """Every series CSV_PATH and COLUMN name, cleaned; names are unique (file stems or columns)."""
    source, note = data_source(settings)
    if note:
        print(note)
    pairs = split_sources(source, settings["COLUMN"])
    series = [
        screen_prices(
            load_prices(
                s,
                c,
                max_missing_frac=settings["MAX_MISSING_FRAC"],
                date_format=settings["DATE_FORMAT"],
            ),
            settings["OUTLIERS"],
        )
        for s, c in pairs
    ]
    if len({c for _, c in pairs}) > 1:  # several columns of one file: name them by column
        for s in series:
            s.name = s.column
    names = [s.name for s in series]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ScalodiffError(
            f"several series are named {', '.join(map(repr, repeated))} ({', '.join(s.source for s in series)}); "
            "give the files different names, generate.py asks for a series by name (--asset)"
        )
    return series


class StackedWindows:
    """The windows of several series as one collection, indexed like one window view.

    Parameters
    ----------
    views : list of numpy.ndarray
        One ``(n_k, L)`` window view per series (:func:`data.windows.windows_view`).

    Examples
    --------
    >>> w = StackedWindows([windows_view(np.arange(4.0), 2), windows_view(np.arange(10.0, 13.0), 2)])
    >>> len(w), w[np.array([2, 3])].tolist(), w.series_of(np.array([0, 3])).tolist()
    (5, [[2.0, 3.0], [10.0, 11.0]], [0, 1])
    """

    def __init__(self, views: list[np.ndarray]) -> None:
        self.views = views
        self.offsets = np.cumsum([0] + [len(v) for v in views])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def series_of(self, index: np.ndarray) -> np.ndarray:
        """Which series each global window index belongs to."""
        return np.searchsorted(self.offsets, np.asarray(index), side="right") - 1

    def __getitem__(self, index: slice | np.ndarray) -> np.ndarray:
        """Windows at ``index`` (a slice or an integer array), copied into one array."""
        if isinstance(index, slice):
            index = np.arange(len(self))[index]
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), self.views[0].shape[1]), dtype=self.views[0].dtype)
        which = self.series_of(index)
        for k, view in enumerate(self.views):
            mask = which == k
            if mask.any():
                out[mask] = view[index[mask] - self.offsets[k]]
        return out


def in_saved_order(series: list[PriceSeries], assets: list[dict[str, Any]]) -> list[PriceSeries]:
    """The series of a resumed multi-asset run, in the order of its saved assets.

    A series is matched to its saved normalizer and class by name: files added to a
    folder or listed in another order would otherwise give one series another's scale.
    """
    by_name = {s.name: s for s in series}
    saved = [a["name"] for a in assets]
    new = [n for n in by_name if n not in saved]
    missing = [n for n in saved if n not in by_name]
    if new or missing:
        change = "; ".join(
            part
            for part in (
                f"new: {', '.join(new)}" if new else "",
                f"missing: {', '.join(missing)}" if missing else "",
            )
            if part
        )
        raise ScalodiffError(
            f"--resume: the run was trained on the series {', '.join(saved)}, but CSV_PATH now "
            f"gives {', '.join(by_name)} ({change}); a resumed model keeps its series. Restore "
            "those files, or start a new run"
        )
    return [by_name[n] for n in saved]


def prepare_conditional(
    settings: dict[str, Any], normalizer_json: dict | None, conditioning_json: dict | None
) -> dict[str, Any]:
    """Series -> per-series normalizer and windows -> labels: what train.py's loop needs.

    Returns the keys of ``train.prepare_data`` plus ``labels`` (one per window:
    int64 classes, or float32 encoded targets) and ``conditioning`` (the
    :class:`~data.labels.Conditioning` record). With ``conditioning_json`` (a
    resumed run) the saved edges and normalizers are used instead of fitted anew.
    """
    kind = settings.get("CONDITION")
    series = load_series(settings)
    saved = Conditioning.from_json(conditioning_json) if conditioning_json else None
    if saved is not None and saved.assets:
        series = in_saved_order(series, saved.assets)
    names = ", ".join(s.name for s in series)
    if len(series) > 1 and kind != "asset":
        raise ScalodiffError(
            f"CSV_PATH/COLUMN name {len(series)} series ({names}): training on several series needs "
            "CONDITION='asset' (--condition asset), so that generate.py can ask for one by name"
        )
    if kind == "asset" and len(series) < 2:
        raise ScalodiffError(
            f"CONDITION='asset' needs several series, got only {names}; list them: "
            "--data sp500,nasdaq, a folder of price files, or --column a,b"
        )
    window, stride, frac = model_window(settings), settings["STRIDE"], settings["TRAIN_FRAC"]
    parts = []
    for k, s in enumerate(series):
        returns = log_returns(s.values)
        check_length(len(returns), window, s.source, frac)
        train, _held_out = split_by_time(returns, frac)
        if saved is not None and saved.assets:
            normalizer = ReturnNormalizer.from_json(saved.assets[k]["normalizer"])
        elif k == 0 and normalizer_json is not None:
            normalizer = ReturnNormalizer.from_json(normalizer_json)
        else:
            normalizer = ReturnNormalizer(
                power=settings["RETURN_POWER"], clip=settings["RETURN_CLIP"]
            )
            normalizer.fit(train)
        z = np.ascontiguousarray(normalizer.transform(train), dtype=np.float32)
        parts.append({"train": train, "normalizer": normalizer, "windows": windows_view(z, window, stride),
                      "last_price": float(s.values[len(train)])})  # fmt: skip

    if kind == "asset":
        spec, labels, train_returns = _asset_labels(series, parts, settings)
        windows: Any = StackedWindows([p["windows"] for p in parts])
    else:
        train = parts[0]["train"]
        periods = periods_per_year(series[0].timestamps)
        # Measured on the part of each window that generation keeps (the margins are dropped).
        margin, n_windows = settings.get("EDGE_MARGIN") or 0, len(parts[0]["windows"])
        measure = window_measure(kind, train[margin:], settings["WINDOW_SIZE"], stride, periods)
        measure = measure[:n_windows]
        spec = saved or fit_conditioning(
            kind, measure, settings.get("CONDITION_QUANTILES"), periods, settings["CONDITION_DROP"]
        )
        labels, train_returns, windows = spec.labels_for(measure), train, parts[0]["windows"]
    return {
        "prices": series[0],
        "source": ", ".join(s.source for s in series),
        "train_returns": train_returns,
        "normalizer": parts[0]["normalizer"],
        "windows": windows,
        "labels": labels,
        "conditioning": spec,
        "last_train_price": parts[0]["last_price"],
    }


def _asset_labels(
    series: list[PriceSeries], parts: list[dict[str, Any]], settings: dict[str, Any]
) -> tuple[Conditioning, np.ndarray, np.ndarray]:
    """Asset ids as labels; the record keeps each series' normalizer and real returns slice."""
    # The checkpoint keeps at most MAX_REAL_RETURNS training returns; share them out so that
    # every series keeps its own (most recent) part and the slices stay right.
    keep = MAX_REAL_RETURNS // len(series)
    kept = [p["train"][-keep:] for p in parts]
    starts = np.cumsum([0] + [len(r) for r in kept])
    assets = [
        {"name": s.name, "source": s.source, "column": s.column,
         "normalizer": p["normalizer"].to_json(), "last_train_price": p["last_price"],
         "std": float(np.std(p["train"])), "real_start": int(starts[k]), "real_stop": int(starts[k + 1])}
        for k, (s, p) in enumerate(zip(series, parts, strict=True))
    ]  # fmt: skip
    spec = Conditioning(kind="asset", classes=[s.name for s in series], assets=assets,
                        drop=settings["CONDITION_DROP"])  # fmt: skip
    labels = np.repeat(np.arange(len(series), dtype=np.int64), [len(p["windows"]) for p in parts])
    return spec, labels, np.concatenate(kept)
