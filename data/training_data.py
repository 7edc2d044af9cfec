"""Training data: prices -> log returns -> normalizer fitted on the training split -> windows.

One series or several (a conditional model on ``CONDITION="asset"``). Several
series are named in CSV_PATH as a comma-separated list of files or built-in
names (``sp500,nasdaq``), as a folder of price files, or in COLUMN as a
comma-separated list of columns of one file. Each series is split by time and
cut into windows on its own, so no window straddles two series, and gets its
own :class:`~data.returns.ReturnNormalizer`, fitted on its own training part,
so that generating "nasdaq" maps back to NASDAQ's scale.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data.cleaning import PriceSeries
from data.conditional import check_series_count, in_saved_order, label_windows
from data.joint import JointInfo, align_prices, joint_windows
from data.labels import Conditioning
from data.quality import screen_prices
from data.readers import load_prices
from data.returns import ReturnNormalizer, log_returns, split_by_time
from data.tails import fit_return_power
from data.windows import StackedWindows, check_length, model_window, windows_view
from utils.errors import ScalodiffError

PRICE_SUFFIXES = (".csv", ".gz", ".parquet", ".txt")
# A checkpoint keeps at most this many training returns (for plots and metrics), so that
# checkpoints of minute data stay small.
MAX_REAL_RETURNS = 500_000


@dataclass
class TrainingData:
    """What the training loop needs from the data stage.

    ``windows`` are windows of normalized training returns (a view, or
    :class:`~data.windows.StackedWindows` for several series). ``resolved`` names
    the data read so that it can be read again (built-in names, absolute paths)
    and ``sha256`` is a hash of the prices read, timestamps and names included
    (:func:`content_hash`). ``labels`` and
    ``conditioning`` are set for a conditional run only (one label per window,
    and what the labels mean). A joint run (JOINT) has ``joint`` set, windows
    ``[N, A, L]``, training returns ``[T, A]`` and the first series' normalizer and
    last price in the single-series fields; ``note`` says how the series were aligned.
    """

    source: str
    train_returns: np.ndarray
    normalizer: ReturnNormalizer
    windows: np.ndarray | StackedWindows
    last_train_price: float
    n_prices: int
    resolved: str
    sha256: str
    labels: np.ndarray | None = None
    conditioning: Conditioning | None = None
    joint: JointInfo | None = None
    note: str = ""

    @property
    def real_returns(self) -> np.ndarray:
        """The most recent training returns a checkpoint keeps."""
        return self.train_returns[-MAX_REAL_RETURNS:]


def several_series(source: str, column: str | None) -> bool:
    """True when the data source or COLUMN names more than one series (or a folder of them)."""
    path = Path(str(source)).expanduser()
    listed = "," in str(source) and not path.exists()
    return path.is_dir() or listed or (column is not None and "," in column)


def split_sources(source: str, column: str | None) -> list[tuple[str, str | None]]:
    """(source, column) of every series that a data source and COLUMN name.

    Examples
    --------
    >>> split_sources("sp500, nasdaq", "Close")
    [('sp500', 'Close'), ('nasdaq', 'Close')]
    >>> split_sources("prices.csv", "spx,ndx")
    [('prices.csv', 'spx'), ('prices.csv', 'ndx')]
    """
    path = Path(str(source)).expanduser()
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
    elif "," in str(source) and not path.exists():
        sources = [s.strip() for s in str(source).split(",") if s.strip()]
    else:
        sources = [str(source)]
    columns = [c.strip() for c in column.split(",") if c.strip()] if column else [column]
    if len(sources) > 1 and len(columns) > 1:
        raise ScalodiffError(
            f"CSV_PATH names {len(sources)} sources and COLUMN {len(columns)} columns; give several "
            "files or several columns of one file, not both"
        )
    return [(s, c) for s in sources for c in columns]


def load_series(source: str, settings: dict[str, Any]) -> list[PriceSeries]:
    """Every series ``source`` and COLUMN name, cleaned; names are unique (file stems or columns)."""
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


def prepare_training_data(
    settings: dict[str, Any],
    source: str,
    saved_normalizer: dict | None = None,
    saved_conditioning: dict | None = None,
    saved_joint: dict | None = None,
) -> TrainingData:
    """Prices -> log returns -> normalizer (fitted on the training split) -> window view.

    ``source`` is the data to read (a file, a built-in name, or several); a resumed
    run passes its saved normalizer, conditioning or joint record, which are used
    instead of being fitted anew. A conditional run (CONDITION set) also gets
    per-window labels; a joint run (JOINT) aligns its series (:mod:`data.joint`).
    """
    series = load_series(source, settings)
    if settings.get("JOINT"):
        return _joint_training_data(series, settings, source, saved_joint)
    kind = settings.get("CONDITION")
    check_series_count(kind, series)
    saved = Conditioning.from_json(saved_conditioning) if saved_conditioning else None
    if saved is not None and saved.assets:
        series = in_saved_order(series, saved.assets)
    parts = []
    for k, s in enumerate(series):
        if saved is not None and saved.assets:
            state = saved.assets[k]["normalizer"]
        else:
            state = saved_normalizer if k == 0 else None
        parts.append(_training_part(s, settings, state))
    first = parts[0]
    data = TrainingData(
        source=", ".join(s.source for s in series),
        train_returns=first["train"],
        normalizer=first["normalizer"],
        windows=first["windows"],
        last_train_price=first["last_price"],
        n_prices=len(series[0].values),
        resolved=_resolved(source, series),
        sha256=content_hash(series),
    )
    if kind is not None:
        data.conditioning, data.labels, data.train_returns, data.windows = label_windows(
            kind, series, parts, settings, saved, MAX_REAL_RETURNS
        )
    return data


def content_hash(series: list[PriceSeries]) -> str:
    """SHA-256 of the prices read: names, timestamps and values of every series, in order.

    It changes when the data change, whatever the file format, and not when only the
    file does (a re-export with other number formatting gives the same prices).
    """
    h = hashlib.sha256()
    for s in series:
        h.update(s.name.encode())
        if s.timestamps is not None:
            h.update(np.asarray(s.timestamps.asi8, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(s.values, dtype=np.float64).tobytes())
    return h.hexdigest()


def _resolved(source: str, series: list[PriceSeries]) -> str:
    """The data source as it can be read again: a folder's absolute path, else the series'
    own sources (built-in names and absolute file paths), comma-separated."""
    path = Path(str(source)).expanduser()
    if path.is_dir():
        return str(path.resolve())
    return ",".join(dict.fromkeys(s.source for s in series))


def _fitted_normalizer(
    train: np.ndarray, settings: dict[str, Any], window: int
) -> ReturnNormalizer:
    """The normalizer fitted on the training returns, its power too when RETURN_POWER is "fitted"."""
    power = settings["RETURN_POWER"]
    normalizer = ReturnNormalizer(
        power=1.0 if power == "fitted" else power, clip=settings["RETURN_CLIP"]
    )
    normalizer.fit(train)
    if power == "fitted":
        local = settings["LOCAL_VOL_WINDOW"] if settings["VOLATILITY_ROW"] else 0
        scaled = normalizer.transform(train, dtype=np.float64)
        normalizer.power = fit_return_power(scaled, window, local)
    return normalizer


def _training_part(
    series: PriceSeries, settings: dict[str, Any], saved_normalizer: dict | None
) -> dict[str, Any]:
    """One series' training returns, normalizer, windows and last training price."""
    window, frac = model_window(settings), settings["TRAIN_FRAC"]
    returns = log_returns(series.values)
    check_length(len(returns), window, series.source, frac, settings.get("EDGE_MARGIN") or 0)
    train, _held_out = split_by_time(returns, frac)
    if saved_normalizer is not None:
        normalizer = ReturnNormalizer.from_json(saved_normalizer)
    else:
        normalizer = _fitted_normalizer(train, settings, window)
    z = np.ascontiguousarray(normalizer.transform(train), dtype=np.float32)
    return {
        "train": train,
        "normalizer": normalizer,
        "windows": windows_view(z, window, settings["STRIDE"]),
        "last_price": float(series.values[len(train)]),
    }


def _joint_training_data(
    series: list[PriceSeries], settings: dict[str, Any], source: str, saved: dict | None
) -> TrainingData:
    """Aligned series -> per-series returns and normalizers -> windows ``[N, A, L]``."""
    if saved is not None:
        series = in_saved_order(series, saved["assets"])
    aligned = align_prices(series, settings["JOINT_GAPS"])
    returns = log_returns(aligned.prices.T)  # [A, T]
    window, frac = model_window(settings), settings["TRAIN_FRAC"]
    names = " + ".join(aligned.names)
    check_length(returns.shape[1], window, names, frac, settings.get("EDGE_MARGIN") or 0)
    train = np.stack([split_by_time(r, frac)[0] for r in returns])
    if saved is not None:
        normalizers = JointInfo.from_json(saved).normalizers
    else:
        normalizers = [_fitted_normalizer(r, settings, window) for r in train]
    z = np.stack([n.transform(r) for n, r in zip(normalizers, train, strict=True)])
    z = np.ascontiguousarray(z, dtype=np.float32)
    n_train = train.shape[1]
    joint = JointInfo(
        names=aligned.names,
        sources=aligned.sources,
        normalizers=normalizers,
        last_prices=[float(p) for p in aligned.prices[n_train]],
        gaps=settings["JOINT_GAPS"],
        n_dates=len(aligned.timestamps),
    )
    return TrainingData(
        source=", ".join(s.source for s in series),
        train_returns=np.ascontiguousarray(train.T),
        normalizer=normalizers[0],
        windows=joint_windows(z, window, settings["STRIDE"]),
        last_train_price=joint.last_prices[0],
        n_prices=len(aligned.timestamps),
        resolved=_resolved(source, series),
        sha256=content_hash(series),
        joint=joint,
        note=aligned.describe(),
    )
