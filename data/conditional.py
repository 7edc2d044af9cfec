"""Labels for the training windows of a conditional model (the data stage of conditioning).

:func:`label_windows` turns the prepared series into one label per training
window and the :class:`~data.labels.Conditioning` record that says what the
labels mean: classes of realized volatility or trend fitted on the training
windows, a continuous realized-volatility target, or, for several series
(``CONDITION="asset"``), which series a window came from.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data.cleaning import PriceSeries
from data.labels import Conditioning, fit_conditioning, periods_per_year, window_measure
from data.windows import StackedWindows
from utils.errors import ScalodiffError


def check_series_count(kind: str | None, series: list[PriceSeries]) -> None:
    """Several series need CONDITION='asset' and CONDITION='asset' needs several series."""
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


def label_windows(
    kind: str,
    series: list[PriceSeries],
    parts: list[dict[str, Any]],
    settings: dict[str, Any],
    saved: Conditioning | None,
    max_real_returns: int,
) -> tuple[Conditioning, np.ndarray, np.ndarray, Any]:
    """(conditioning record, one label per window, training returns to keep, windows).

    ``parts`` hold each series' ``train`` returns, ``normalizer``, ``windows`` and
    ``last_price``. Labels are int64 classes, or float32 encoded targets for
    realized-vol. ``saved`` (a resumed run) replaces the fitted class edges.
    """
    if kind == "asset":
        spec, labels, kept = _asset_labels(series, parts, settings, max_real_returns)
        return spec, labels, kept, StackedWindows([p["windows"] for p in parts])
    train = parts[0]["train"]
    periods = periods_per_year(series[0].timestamps)
    # Measured on the part of each window that generation keeps (the margins are dropped).
    margin, n_windows = settings.get("EDGE_MARGIN") or 0, len(parts[0]["windows"])
    window, stride = settings["WINDOW_SIZE"], settings["STRIDE"]
    measure = window_measure(kind, train[margin:], window, stride, periods)[:n_windows]
    spec = saved or fit_conditioning(
        kind, measure, settings.get("CONDITION_QUANTILES"), periods, settings["CONDITION_DROP"]
    )
    return spec, spec.labels_for(measure), train, parts[0]["windows"]


def _asset_labels(
    series: list[PriceSeries],
    parts: list[dict[str, Any]],
    settings: dict[str, Any],
    max_real_returns: int,
) -> tuple[Conditioning, np.ndarray, np.ndarray]:
    """Asset ids as labels; the record keeps each series' normalizer and real returns slice."""
    # A checkpoint keeps at most max_real_returns training returns; share them out so that
    # every series keeps its own (most recent) part and the slices stay right.
    keep = max_real_returns // len(series)
    kept = [p["train"][-keep:] for p in parts]
    starts = np.cumsum([0] + [len(r) for r in kept])
    assets = [
        {
            "name": s.name,
            "source": s.source,
            "column": s.column,
            "normalizer": p["normalizer"].to_json(),
            "last_train_price": p["last_price"],
            "std": float(np.std(p["train"])),
            "real_start": int(starts[k]),
            "real_stop": int(starts[k + 1]),
        }
        for k, (s, p) in enumerate(zip(series, parts, strict=True))
    ]
    spec = Conditioning(
        kind="asset",
        classes=[s.name for s in series],
        assets=assets,
        drop=settings["CONDITION_DROP"],
    )
    labels = np.repeat(np.arange(len(series), dtype=np.int64), [len(p["windows"]) for p in parts])
    return spec, labels, np.concatenate(kept)
