"""Confidence intervals, the error of a metric, and whether a model separates from the controls.

Every number in the comparison table comes with a 95% interval: for a
statistic or a distance, a percentile bootstrap over the generator's paths
(:func:`bootstrap_facts`, the real side held fixed: it is the same reference
for every generator); for a classifier or a GRU score, a t-interval over
seeds or folds (:func:`t_interval`).

The *error* of a metric is how far a generator is from the real data on it
(smaller is better): ``|synth - real|`` for a statistic, ``|log ratio|`` for
the std ratio, ``|accuracy - 0.5|`` for a classifier's accuracy, the value
itself for a distance or a GRU score. A metric *separates* when the trained
model's error interval lies entirely below the error interval of every
negative control (:func:`separates`): only then can the metric tell a model
that learned something from one that did not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from evaluation.compare import STAT_KEYS, Facts, PerWindow, compare_facts, facts_of

LEVEL = 0.95
N_BOOT = 200  # bootstrap resamples per generator: the 2.5% and 97.5% points from 5 values each
ACCURACY_KEYS = ("features_acc", "cnn_acc")
Interval = list[float]


def percentile_interval(replicates: Sequence[float], level: float = LEVEL) -> Interval:
    """The central ``level`` range of bootstrap replicates (NaNs dropped; NaN if fewer than 10)."""
    v = np.asarray(replicates, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 10:
        return [math.nan, math.nan]
    tail = (1 - level) / 2
    lo, hi = np.quantile(v, [tail, 1 - tail])
    return [float(lo), float(hi)]


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    r"""Mean :math:`\pm\, t_{n-1} \cdot s / \sqrt n` of repeated values (NaN for fewer than two)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return [math.nan, math.nan]
    half = stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return [float(v.mean() - half), float(v.mean() + half)]


def normal_interval(values: Sequence[float]) -> Interval:
    """Mean +- 1.96 standard errors of independent values (NaN for fewer than two): the
    interval of a mean over many paths or dates.

    >>> [round(v, 3) for v in normal_interval([1.0, 2.0, 3.0, 4.0])]
    [1.235, 3.765]
    """
    v = np.asarray(values, dtype=np.float64)
    half = 1.96 * v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else math.nan
    return [float(v.mean() - half), float(v.mean() + half)]


def metric_error(key: str, kind: str, value: float | None, real: float | None = None) -> float:
    """Distance from the real data on one metric (smaller is better); NaN when unknown.

    ``kind`` is the table's: "stat" (a statistic of each side, compared with
    ``real``), "acc" (a classifier's accuracy, 0.5 being ideal), or a distance
    or score (the value itself, 0 being ideal; the std ratio as ``|log ratio|``).
    """
    if value is None or not math.isfinite(value):
        return math.nan
    if kind == "stat":
        return abs(value - real) if real is not None and math.isfinite(real) else math.nan
    if kind == "acc":
        return abs(value - 0.5)
    if key == "std_ratio":
        return abs(math.log(value)) if value > 0 else math.inf
    return value


def deviation_interval(ci: Interval, center: float) -> Interval:
    """The interval of ``|x - center|`` for ``x`` in ``ci`` (e.g. an accuracy's around 0.5)."""
    lo, hi = ci
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [math.nan, math.nan]
    if lo <= center <= hi:
        return [0.0, max(center - lo, hi - center)]
    return sorted([abs(lo - center), abs(hi - center)])


def _kind(key: str) -> tuple[str, str]:
    """(metric key, kind) for a key of :func:`compare_facts`."""
    for name in STAT_KEYS:
        if key == f"{name}_synth":
            return name, "stat"
    return key, "dist"


def bootstrap_facts(
    pw: PerWindow,
    reals: dict[str, Facts],
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = LEVEL,
) -> dict[str, dict[str, dict[str, Interval]]]:
    """Bootstrap intervals of every :func:`compare_facts` number, resampling the generator's paths.

    Each replicate draws ``len(pw)`` paths with replacement, recomputes their
    facts (:func:`~evaluation.compare.facts_of`) and compares them with each
    real fact set of ``reals`` (split name -> facts), which stays fixed. The
    interval is the replicates' central ``level`` range, moved by their median's
    offset from the point estimate (see :func:`centered_interval`).

    Returns
    -------
    dict
        split -> ``{"ci": {key: [lo, hi]}, "error_ci": {metric: [lo, hi]}}``; ``ci``
        is keyed like :func:`compare_facts` (a statistic under ``key_synth``),
        ``error_ci`` by metric (``kurtosis``, ``acf_abs_dist``, ...).
    """
    rng = np.random.default_rng(seed)
    caches: dict[str, dict] = {split: {} for split in reals}
    full = facts_of(pw)
    points = {split: compare_facts(real, full, caches[split]) for split, real in reals.items()}
    reps: dict[str, dict[str, list[float]]] = {split: {} for split in reals}
    errs: dict[str, dict[str, list[float]]] = {split: {} for split in reals}
    for _ in range(n_boot):
        f = facts_of(pw, rng.integers(0, len(pw), len(pw)))
        for split, real in reals.items():
            c = compare_facts(real, f, caches[split])
            for key, v in c.items():
                if key.endswith("_real"):
                    continue
                reps[split].setdefault(key, []).append(v)
                metric, kind = _kind(key)
                errs[split].setdefault(metric, []).append(
                    metric_error(metric, kind, v, c.get(f"{metric}_real"))
                )
    out = {}
    for split, point in points.items():
        ci = {k: centered_interval(v, point[k], level) for k, v in reps[split].items()}
        error_ci = {}
        for metric, v in errs[split].items():
            kind = "stat" if metric in STAT_KEYS else "dist"
            value = point.get(f"{metric}_synth" if kind == "stat" else metric)
            e = metric_error(metric, kind, value, point.get(f"{metric}_real"))
            lo, hi = centered_interval(v, e, level)
            error_ci[metric] = [max(lo, 0.0), hi]  # an error is never negative
        out[split] = {"ci": ci, "error_ci": error_ci}
    return out


def centered_interval(replicates: list[float], point: float, level: float) -> Interval:
    """The percentile interval moved so that the replicates' median sits on the point estimate.

    A resample repeats paths, which biases some figures (a distance between
    curves grows with the noise of a smaller effective sample); the shift by
    that bias, estimated as median(replicates) - point, removes it to first order.
    """
    lo, hi = percentile_interval(replicates, level)
    v = np.asarray(replicates, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not (math.isfinite(lo) and math.isfinite(point)):
        return [lo, hi]
    shift = float(np.median(v)) - point
    return [lo - shift, hi - shift]


def separates(model_ci: Interval | None, control_cis: Sequence[Interval | None]) -> bool | None:
    """Is the model's error interval below every control's? None when an interval is missing.

    With no controls at all there is nothing to separate from: None.
    """
    if model_ci is None or not control_cis or not all(map(_finite, [model_ci, *control_cis])):
        return None
    return all(model_ci[1] < c[0] for c in control_cis)  # type: ignore[index]


def _finite(ci: Interval | None) -> bool:
    # A bound read back from JSON can be None (a NaN written as null): no interval then.
    return ci is not None and len(ci) == 2 and all(x is not None and math.isfinite(x) for x in ci)
