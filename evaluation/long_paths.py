"""Paths longer than a window, judged against the real series as a posterior predictive check.

There is one real series, so a long-path statistic has one real value: the
table gives its percentile among the generated paths' values (near 50 is good,
outside 5-95 means the generator rarely makes a series like the real one), for
our paths and for GARCH-t and the stationary bootstrap at the same length. The
real value is taken on the real training series' last T returns, T the paths'
length (the whole series when it is shorter), since kurtosis, Hill and
drawdowns depend on the length. The drift is pooled instead: each
generator's mean return over all its paths against the whole training series'
mean, which no single path pins down.

The seam test asks whether the joins of rolled windows show: the features
classifier (evaluation.classifiers) is trained to tell sub-windows centred on
a join from sub-windows in the middle of one window's new returns. A damped
return or two right after each join hardly moves a 64-return window's features,
so the join profile also gives the RMS of the returns at each position after a
join relative to all rolled returns (1.0: no damping), and the window profile
the RMS of each sixth of the rolled windows' new returns (1.0 each: no level
pattern that repeats with the windows, as a real series has none).

The residual kurtosis by level is the kurtosis of the returns over their
centered moving RMS in calm, middling and loud stretches (by that moving RMS
over the path's RMS): on the S&P 500 it falls with the level, and a generator
whose loud stretches are too heavy-tailed hides their clustering.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from data.level_shape import SHAPE_WINDOW, moment_kurtosis
from data.tails import local_rms
from evaluation.classifiers import features_classifier
from evaluation.intervals import normal_interval
from evaluation.metrics import hill_tail_index, hurst_dfa, lagged_corr

ACF_LAGS = (1, 5, 20, 50, 100, 250)
YEAR = 252  # trading days per drawdown block
MONTH = 21  # trading days in the largest-month statistic
LEVEL_EDGES = (0.75, 1.5)  # moving RMS over the path's RMS: calm, middling, loud
STATISTICS = (
    *(f"ACF |r| lag {k}" for k in ACF_LAGS),
    "excess kurtosis",
    "Hill index (5% tail)",
    "DFA exponent of |r|",
    "yearly max drawdown",
    "largest month's RMS",
)


def yearly_max_drawdown(x: np.ndarray) -> np.ndarray:
    """Mean over non-overlapping YEAR-return blocks of each block's largest fall of the
    cumulative log return from its running peak; shape ``[N]`` (NaN for paths under a year)."""
    n, length = x.shape
    blocks = length // YEAR
    if blocks == 0:
        return np.full(n, np.nan)
    cum = np.cumsum(x[:, : blocks * YEAR].reshape(n, blocks, YEAR), axis=2)
    peak = np.maximum.accumulate(np.maximum(cum, 0.0), axis=2)
    return (peak - cum).max(axis=2).mean(axis=1)


def largest_month(x: np.ndarray) -> np.ndarray:
    """The largest RMS over MONTH consecutive returns (any start) over the path's own RMS,
    shape ``[N]`` (NaN for paths under a month or all zero): how high the path's worst
    crisis stands above its usual level, as October 2008 does in the S&P 500's 2005-2014.
    Every start is tried, so the figure does not hang on where blocks happen to begin.

    >>> x = np.ones((1, 4 * MONTH)); x[0, 30 : 30 + MONTH] = 3.0
    >>> round(float(largest_month(x)[0]), 3)  # 3 over sqrt((1 + 1 + 1 + 9) / 4)
    1.732
    """
    n, length = x.shape
    if length < MONTH:
        return np.full(n, np.nan)
    sums = np.pad(np.cumsum(np.square(x), axis=1), ((0, 0), (1, 0)))
    month_ms = (sums[:, MONTH:] - sums[:, :-MONTH]) / MONTH
    path_ms = sums[:, -1] / length
    return np.sqrt(month_ms.max(axis=1) / np.where(path_ms > 0, path_ms, np.nan))


def path_statistics(x: np.ndarray) -> dict[str, np.ndarray]:
    """Every statistic of :data:`STATISTICS` for each path of log returns ``[N, T]``."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    lags = [k for k in ACF_LAGS if k < x.shape[1] // 2]
    curve = lagged_corr(a, a, max(lags)) if lags else np.empty((len(x), 0))
    out = {
        f"ACF |r| lag {k}": curve[:, k - 1] if k in lags else np.full(len(x), np.nan)
        for k in ACF_LAGS
    }
    c = x - x.mean(axis=1, keepdims=True)
    m2 = (c**2).mean(axis=1)
    out["excess kurtosis"] = (c**4).mean(axis=1) / np.where(m2 > 0, m2, np.nan) ** 2 - 3.0
    out["Hill index (5% tail)"] = np.array([hill_tail_index(p) for p in x])
    out["DFA exponent of |r|"] = hurst_dfa(a)
    out["yearly max drawdown"] = yearly_max_drawdown(x)
    out["largest month's RMS"] = largest_month(x)
    return out


def percentile_table(real: np.ndarray, generators: dict[str, np.ndarray]) -> dict:
    """Where the real series' statistics fall among each generator's paths.

    ``real`` is the real training series (1-D), ``generators`` maps names to
    paths ``[N, T]`` of one length T. Returns ``{"length", "real_length", "real":
    {stat: value}, "generators": {name: {stat: {"percentile", "q05", "median", "q95"}}}}``.
    """
    length = next(iter(generators.values())).shape[1]
    real = np.asarray(real, dtype=np.float64)[-length:]
    real_stats = {k: float(v[0]) for k, v in path_statistics(real[None, :]).items()}
    table: dict = {"length": length, "real_length": len(real), "real": real_stats}
    table["generators"] = {}
    for name, paths in generators.items():
        stats = path_statistics(paths)
        rows = {}
        for key in STATISTICS:
            v = stats[key][np.isfinite(stats[key])]
            r = real_stats[key]
            if v.size == 0 or not np.isfinite(r):
                rows[key] = None
                continue
            below = np.mean(v < r) + 0.5 * np.mean(v == r)
            q05, med, q95 = np.percentile(v, [5, 50, 95])
            rows[key] = {
                "percentile": 100 * float(below),
                "q05": float(q05),
                "median": float(med),
                "q95": float(q95),
            }
        table["generators"][name] = rows
    return table


def format_percentiles(table: dict) -> str:
    """The table as text: statistic, real value, then per generator its percentile and 5-95%."""
    names = list(table["generators"])
    head = f"{'statistic':<24}{'real':>9}" + "".join(f"{n:>30}" for n in names)
    lines = [
        f"real series' percentile among generated paths of {table['length']} returns "
        f"(real: its last {table['real_length']} training returns; * outside 5-95)",
        head,
    ]
    for key in STATISTICS:
        cells = []
        for n in names:
            row = table["generators"][n][key]
            if row is None:
                cells.append(f"{'n/a':>30}")
                continue
            flag = "*" if not 5 <= row["percentile"] <= 95 else " "
            cells.append(
                f"{row['percentile']:>6.0f}{flag} [{row['q05']:8.3f}, {row['q95']:8.3f}]".rjust(30)
            )
        lines.append(f"{key:<24}{table['real'][key]:>9.3f}" + "".join(cells))
    return "\n".join(lines)


def pooled_drift(train: np.ndarray, generators: dict[str, np.ndarray]) -> dict:
    """Each generator's mean log return per step over all its paths, with a 95% interval
    across paths, against the mean of the whole real training series (the drift).

    One path's mean hardly tells a drift from none (a daily index: 0.01% a day against a
    standard error of 0.02% over ten years), but a few hundred paths pooled do, and a
    backtest over long paths compounds what is missing. Returns ``{"real": mean,
    "generators": {name: {"mean", "ci", "n"}}}``; ``ci`` is the mean +- 1.96 standard
    errors of the paths' means.
    """
    out: dict = {"real": float(np.mean(train)), "generators": {}}
    for name, paths in generators.items():
        means = np.asarray(paths, dtype=np.float64).mean(axis=1)
        out["generators"][name] = {
            "mean": float(means.mean()),
            "ci": normal_interval(means),
            "n": len(means),
        }
    return out


def format_drift(drift: dict) -> str:
    """One line per generator: its pooled mean return in percent, the interval, and * where
    the interval leaves out the training series' mean."""
    lines = [
        f"drift: mean log return per step, all paths pooled, in % (real: the training "
        f"series' mean {100 * drift['real']:.4f}%; * where the 95% interval leaves it out)"
    ]
    for name, row in drift["generators"].items():
        lo, hi = row["ci"]
        flag = "*" if np.isfinite(lo) and not lo <= drift["real"] <= hi else " "
        lines.append(
            f"  {name:<22}{100 * row['mean']:>10.4f}{flag} [{100 * lo:.4f}, {100 * hi:.4f}] "
            f"({row['n']} paths)"
        )
    return "\n".join(lines)


def join_positions(length: int, window: int, known: int) -> list[int]:
    """Where rolled windows join in a path of ``length``: window, window + (window - known), ..."""
    step = window - known
    return list(range(window, length, step))


def seam_windows(
    paths: np.ndarray, window: int, known: int, width: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-windows of ``width`` returns inside one window's new returns, and ones centred on a join.

    The inside ones are centred between two joins (or in the first window), as
    far from every join as the rolling allows.
    """
    joins = join_positions(paths.shape[1], window, known)
    step, half = window - known, width // 2
    inside, straddle = [], []
    for j in joins:
        if j + half <= paths.shape[1]:
            straddle.append(paths[:, j - half : j + half])
        centre = j + step // 2
        if centre + half <= paths.shape[1] and step >= width:
            inside.append(paths[:, centre - half : centre + half])
    if not inside or not straddle:
        return np.empty((0, width)), np.empty((0, width))
    return np.concatenate(inside), np.concatenate(straddle)


def seam_test(paths: np.ndarray, window: int, known: int, width: int = 64) -> dict | None:
    """The features classifier's balanced accuracy telling join-straddling sub-windows from
    inside ones (0.5: the joins do not show); None when the paths hold too few of either."""
    inside, straddle = seam_windows(paths, window, known, width)
    if min(len(inside), len(straddle)) < 20:
        return None
    return features_classifier(inside, straddle, seeds=(0,))


def join_profile(paths: np.ndarray, window: int, known: int, width: int = 8) -> np.ndarray | None:
    """RMS of the returns 0..width-1 positions after each join, over the RMS of every return
    after the first window [width] (1.0: the joins do not damp); None without a join."""
    step = window - known
    joins = [
        j for j in join_positions(paths.shape[1], window, known) if j + width <= paths.shape[1]
    ]
    if not joins or step < width:
        return None
    after = np.stack([paths[:, j : j + width] for j in joins], axis=1)
    rolled_rms = np.sqrt(np.mean(np.square(paths[:, window:])))
    return np.sqrt(np.mean(np.square(after), axis=(0, 1))) / rolled_rms


def window_profile(paths: np.ndarray, window: int, known: int, bins: int = 6) -> np.ndarray | None:
    """RMS of each of ``bins`` near-equal stretches of the rolled windows' new returns over
    the RMS of all of them [bins] (1.0 each: the level has no pattern that repeats with
    the windows); a last, partial window is left out. None without a whole rolled window
    or with fewer new returns a window than ``bins``, NaN for all-zero paths.

    >>> x = np.ones((1, 512)); x[0, 256:320] = x[0, 384:448] = 2.0  # two windows of 128 new returns
    >>> np.round(window_profile(x, 256, 128, bins=2), 3).tolist()
    [1.265, 0.632]
    """
    step = window - known
    joins = [j for j in join_positions(paths.shape[1], window, known) if j + step <= paths.shape[1]]
    if not joins or step < bins:
        return None
    new = np.stack([paths[:, j : j + step] for j in joins], axis=1)  # [N, joins, step]
    edges = np.linspace(0, step, bins + 1).astype(int)
    stretches = [np.mean(np.square(new[..., lo:hi])) for lo, hi in pairwise(edges)]
    whole = np.mean(np.square(new))
    return np.sqrt(np.array(stretches) / whole) if whole > 0 else np.full(bins, np.nan)


def residual_kurtosis_by_level(paths: np.ndarray, edges: tuple[float, ...] = LEVEL_EDGES) -> list:
    """Kurtosis (about 0) of the returns over their centered SHAPE_WINDOW-return moving RMS,
    pooled over ``paths`` [N, T] (or one series [T]) in each level bin: that moving RMS
    over its path's RMS split at ``edges``; NaN for an empty bin.

    >>> rng = np.random.default_rng(0)
    >>> level = np.repeat([1.0, 4.0], [750, 250])  # calm, then loud; the middle bin: the change
    >>> [round(k, 1) for k in residual_kurtosis_by_level(rng.standard_normal((64, 1000)) * level)]
    [2.7, 3.1, 2.8]
    >>> [round(k, 1) for k in residual_kurtosis_by_level(rng.uniform(-1, 1, (64, 1000)) * level)]
    [1.8, 2.8, 1.8]
    """
    x = np.atleast_2d(np.asarray(paths, dtype=np.float64))
    rms = np.sqrt(np.mean(x**2, axis=1, keepdims=True))
    x = x / np.where(rms > 0, rms, 1.0)
    level = local_rms(x, SHAPE_WINDOW)
    z, where = (x / level).ravel(), np.searchsorted(edges, level, side="right").ravel()
    return [
        moment_kurtosis(z[where == b]) if (where == b).any() else float("nan")
        for b in range(len(edges) + 1)
    ]
