"""The scenario fan chart: real history, then price quantile bands of the scenarios.

Bands are the 5-95% and 25-75% ranges of the scenario prices at each step, with
the median as a line; the realized prices after the context's end, when the file
has them, are drawn over the bands.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from utils.paths_io import prices_from_log_returns  # noqa: E402

QUANTILES = (5, 25, 50, 75, 95)


def price_quantiles(returns: np.ndarray, start_price: float) -> np.ndarray:
    """Price quantiles [5, H + 1] (QUANTILES, percent) of paths of log returns [N, H],
    starting at ``start_price`` (the first column)."""
    prices = prices_from_log_returns(returns, start_price)
    return np.percentile(prices, QUANTILES, axis=0)


def plot_fan_chart(
    path: str | os.PathLike,
    history: np.ndarray,
    scenarios: np.ndarray,
    *,
    history_dates: pd.DatetimeIndex | None = None,
    future_dates: pd.DatetimeIndex | None = None,
    realized: np.ndarray | None = None,
    title: str = "",
    shown_history: int | None = None,
) -> None:
    """Write the fan chart of ``scenarios`` (log returns [N, H]) after the price ``history``.

    ``realized`` are the real prices after the history's last one (any number);
    the first ``H`` are drawn. Dates label the x axis when given, else steps
    (0 = the context's last price).
    """
    horizon = scenarios.shape[1]
    shown = shown_history or max(3 * horizon, 60)
    past = np.asarray(history, dtype=np.float64)[-shown - 1 :]
    bands = price_quantiles(scenarios, float(past[-1]))
    if history_dates is not None and future_dates is not None:
        x_past = history_dates[-len(past) :]
        x_future = pd.DatetimeIndex([history_dates[-1], *future_dates])
    else:
        x_past = np.arange(-len(past) + 1, 1)
        x_future = np.arange(0, horizon + 1)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot(x_past, past, color="black", lw=1.2, label="history")
    ax.fill_between(x_future, bands[0], bands[4], color="tab:blue", alpha=0.18, label="5-95%")
    ax.fill_between(x_future, bands[1], bands[3], color="tab:blue", alpha=0.35, label="25-75%")
    ax.plot(x_future, bands[2], color="tab:blue", lw=1.2, label="median")
    if realized is not None and len(realized):
        after = np.concatenate([[past[-1]], np.asarray(realized, dtype=np.float64)[:horizon]])
        ax.plot(x_future[: len(after)], after, color="tab:red", lw=1.2, label="realized")
    ax.set_ylabel("price")
    ax.set_title(title or f"{scenarios.shape[0]} scenarios of {horizon} steps", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
