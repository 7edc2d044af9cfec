"""Classifiers that tell real windows from generated ones by their shape, not their level.

Two discriminators besides the GRU score of :mod:`evaluation.scores`:

- :func:`features_classifier`: gradient-boosted trees (scikit-learn's
  ``HistGradientBoostingClassifier``) on stylized facts computed per window
  (:func:`window_features`), with the features that decide it (permutation
  importance, by group of features);
- :func:`cnn_classifier`: a small 1-D convolutional network on windows divided
  by their own RMS, so the volatility level cannot decide it.

Both are trained and tested on time-blocked folds (:func:`blocked_folds`):
real windows are cut into contiguous blocks of time, training windows that
share a return with the test block are dropped, and the generated windows are
split into as many folds. Both report the balanced accuracy on held-out folds
(0.5: indistinguishable, 1: always told apart) with a 95% interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from evaluation import metrics as m
from evaluation.intervals import LEVEL, deviation_interval, t_interval
from utils.threads import single_thread

FOLDS = 5
MAX_WINDOWS = 1000  # windows per side at most (evenly spaced in time), as the GRU score
ACF_LAGS = 20
LEVERAGE_LAGS = 10
LJUNG_BOX_LAGS = 10
HILL_FRAC = 0.1  # top share of a window's |r| for its Hill index


def window_features(x: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Stylized facts of each window ``[N, L]``: a ``[N, F]`` matrix and the feature names.

    ACF of r and of |r| at lags 1-20, skewness and excess kurtosis, Hill index
    of the top 10% of |r|, leverage corr(r_t, r_{t+k}^2) at lags 1-10, log
    realized volatility, maximum drawdown of the window's cumulative return in
    units of RMS * sqrt(L), the share of |r| beyond 3 RMS, and the Ljung-Box
    statistic of |r| over lags 1-10. All but the realized volatility are
    unchanged when a window is multiplied by a constant.
    """
    r = np.asarray(x, dtype=np.float64)
    n, length = r.shape
    lags = min(ACF_LAGS, length - 1)
    a = np.abs(r)
    rms = np.sqrt(np.mean(r**2, axis=1))
    safe = np.where(rms > 0, rms, 1.0)
    z = r / safe[:, None]
    c = z - z.mean(axis=1, keepdims=True)
    m2 = np.mean(c**2, axis=1)
    m2 = np.where(m2 > 0, m2, 1.0)
    acf_abs = m.lagged_corr(a, a, lags)
    lb_lags = min(LJUNG_BOX_LAGS, lags)
    k = np.arange(1, lb_lags + 1)
    ljung_box = length * (length + 2) * np.sum(acf_abs[:, :lb_lags] ** 2 / (length - k), axis=1)
    top = max(2, int(HILL_FRAC * length))
    srt = -np.sort(-np.abs(z), axis=1)[:, : top + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(srt[:, :top]) - np.log(srt[:, top : top + 1])
        hill = 1.0 / logs.mean(axis=1)
    hill = np.where(np.isfinite(hill), hill, 0.0)
    path = np.cumsum(z, axis=1)
    drawdown = np.max(np.maximum.accumulate(np.maximum(path, 0), axis=1) - path, axis=1)
    columns = {
        **{f"acf_r_{i + 1}": col for i, col in enumerate(m.lagged_corr(r, r, lags).T)},
        **{f"acf_abs_{i + 1}": col for i, col in enumerate(acf_abs.T)},
        "skew": np.mean(c**3, axis=1) / m2**1.5,
        "kurtosis": np.mean(c**4, axis=1) / m2**2 - 3,
        "hill": hill,
        **{
            f"leverage_{i + 1}": col
            for i, col in enumerate(m.lagged_corr(r, r**2, min(LEVERAGE_LAGS, lags)).T)
        },
        "log_realized_vol": np.log(np.maximum(rms, 1e-300)),
        "max_drawdown": drawdown / math.sqrt(length),
        "tail_share_3rms": np.mean(np.abs(z) > 3, axis=1),
        "ljung_box_abs": ljung_box,
    }
    return np.column_stack(list(columns.values())), list(columns)


def feature_group(name: str) -> str:
    """The group a feature's importance is reported under: ``acf_abs_3`` -> ``acf_abs``."""
    head, _, tail = name.rpartition("_")
    return head if tail.isdigit() else name


# ------------------------------------------------------------------------ folds


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """At most ``k`` of ``n`` row indices, evenly spaced and in order."""
    return np.arange(n) if n <= k else np.unique(np.linspace(0, n - 1, k).round().astype(int))


def blocked_folds(
    n: int, purge: int, folds: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``folds`` pairs (train rows, test rows) of ``n`` rows.

    ``purge > 0``: the rows are windows in time order, and rows closer than
    ``purge`` share returns; the test rows of each fold are one contiguous
    block and the training rows exclude every row within ``purge`` of it.
    ``purge = 0``: independent rows (generated paths), split at random.
    """
    if purge > 0:
        bounds = np.linspace(0, n, folds + 1).round().astype(int)
        rows = np.arange(n)
        return [
            (rows[(rows <= lo - purge) | (rows >= hi - 1 + purge)], rows[lo:hi])
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        ]
    parts = np.array_split(rng.permutation(n), folds)
    return [(np.sort(np.concatenate(parts[:i] + parts[i + 1 :])), np.sort(p))
            for i, p in enumerate(parts)]  # fmt: skip


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean of the two classes' recalls: 0.5 is chance whatever the class sizes."""
    return float(np.mean([np.mean(pred[y == c] == c) for c in (0, 1)]))


@dataclass
class _Prepared:
    real: np.ndarray
    synth: np.ndarray
    real_purge: int
    synth_purge: int


def _prepare(real, synth, real_purge, synth_purge, max_windows) -> _Prepared:
    """Subsample each side evenly in time to ``max_windows``; scale the purges to match."""
    sides = []
    for x, purge in ((real, real_purge), (synth, synth_purge)):
        x = np.asarray(x, dtype=np.float64)
        rows = evenly_spaced(len(x), max_windows)
        gap = int(np.min(np.diff(rows))) if len(rows) > 1 else 1
        sides.append((x[rows], -(-purge // gap) if purge > 0 else 0))
    (r, rp), (s, sp) = sides
    return _Prepared(r, s, rp, sp)


def _fold_sets(p: _Prepared, folds: int, seed: int):
    """For each fold: (real train, real test, synth train, synth test) row indices.

    Raises ValueError when a fold would have no test rows or fewer than 2 training rows a side.
    """
    rng = np.random.default_rng(seed)
    sets = []
    for side, n, purge in (
        ("real", len(p.real), p.real_purge),
        ("synthetic", len(p.synth), p.synth_purge),
    ):
        f = blocked_folds(n, purge, folds, rng)
        if min(min(len(tr), len(te) * 2) for tr, te in f) < 2:
            purged = f" with {purge} rows purged around each test block" if purge else ""
            raise ValueError(f"{n} {side} windows are too few for {folds} folds{purged}")
        sets.append(f)
    return [(a, b, c, d) for (a, b), (c, d) in zip(*sets, strict=True)]


def _summary(per_fold: np.ndarray, n_real: int, n_synth: int, level: float) -> dict:
    """Accuracy, its interval (t over the values) and that of ``|accuracy - 0.5|``."""
    ci = [min(max(c, 0.0), 1.0) for c in t_interval(per_fold, level)]  # an accuracy's range
    return {
        "mean": float(np.mean(per_fold)),
        "ci": ci,
        "error_ci": deviation_interval(ci, 0.5),
        "values": [float(v) for v in per_fold],
        "n_real": int(n_real),
        "n_synth": int(n_synth),
    }


# ----------------------------------------------------------------- features


def features_classifier(
    real: np.ndarray,
    synth: np.ndarray,
    real_purge: int = 0,
    synth_purge: int = 0,
    seeds: Sequence[int] = (0, 1, 2),
    folds: int = FOLDS,
    max_windows: int = MAX_WINDOWS,
    top: int = 5,
    level: float = LEVEL,
) -> dict:
    """Balanced accuracy of gradient-boosted trees on :func:`window_features`, real vs synthetic.

    For each seed, :func:`blocked_folds` splits both sides; a classifier is
    trained per fold and tested on the held-out fold. A fold's accuracy is
    averaged over seeds; the interval is a t-interval over the ``folds`` fold
    accuracies (their spread includes how much the real periods differ).
    ``importance`` lists the ``top`` feature groups whose columns, permuted
    together in the test folds (first seed), cost the most accuracy.

    ``real_purge``/``synth_purge``: ``ceil(L / stride)`` for sliding windows of
    one series (rows that close share returns), 0 for independent paths.
    """
    # Imported here: scikit-learn takes seconds to import, and only this function needs it.
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    p = _prepare(real, synth, real_purge, synth_purge, max_windows)
    fr, names = window_features(p.real)
    fs, _ = window_features(p.synth)
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(feature_group(name), []).append(i)
    acc = np.zeros((len(seeds), folds))
    drops: dict[str, list[float]] = {g: [] for g in groups}
    # One thread: on shared cores the OpenMP threads of a fit spin, and it takes 5x longer.
    with threadpool_limits(1):
        for si, seed in enumerate(seeds):
            for fi, (rtr, rte, s_tr, s_te) in enumerate(_fold_sets(p, folds, seed)):
                # Equal classes in training (sample weights would make the binning slow).
                k = min(len(rtr), len(s_tr))
                rtr, s_tr = rtr[evenly_spaced(len(rtr), k)], s_tr[evenly_spaced(len(s_tr), k)]
                x_tr = np.vstack([fr[rtr], fs[s_tr]])
                y_tr = np.r_[np.ones(k), np.zeros(k)].astype(int)
                x_te = np.vstack([fr[rte], fs[s_te]])
                y_te = np.r_[np.ones(len(rte)), np.zeros(len(s_te))].astype(int)
                clf = HistGradientBoostingClassifier(
                    max_iter=50, max_leaf_nodes=8, max_bins=63, early_stopping=False,
                    random_state=seed,
                ).fit(x_tr, y_tr)  # fmt: skip
                acc[si, fi] = _balanced_accuracy(y_te, clf.predict(x_te))
                if si == 0:
                    _importance(clf, x_te, y_te, acc[si, fi], groups, drops, seed)
    out = _summary(acc.mean(axis=0), len(p.real), len(p.synth), level)
    ranked = sorted(drops, key=lambda g: -float(np.mean(drops[g])))
    out["importance"] = {g: round(float(np.mean(drops[g])), 4) for g in ranked[:top]}
    return out


def _importance(clf, x_te, y_te, base: float, groups, drops, seed: int) -> None:
    """Accuracy lost when a group's columns are permuted together across the test rows."""
    rng = np.random.default_rng(seed)
    for g, cols in groups.items():
        shuffled = x_te.copy()
        shuffled[:, cols] = x_te[rng.permutation(len(x_te))][:, cols]
        drops[g].append(base - _balanced_accuracy(y_te, clf.predict(shuffled)))


# ---------------------------------------------------------------------- CNN


class _CNN(nn.Module):
    """Three convolutions over (z, |z|), z = window / its RMS, then mean and max over time."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(2, width, 7, padding=3), nn.GELU(), nn.MaxPool1d(4),
            nn.Conv1d(width, width, 5, padding=2), nn.GELU(), nn.MaxPool1d(2),
            nn.Conv1d(width, width, 5, padding=2), nn.GELU(),
        )  # fmt: skip
        self.head = nn.Linear(2 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.head(torch.cat([h.mean(-1), h.amax(-1)], dim=1)).squeeze(-1)


def _cnn_input(x: np.ndarray) -> torch.Tensor:
    rms = np.sqrt(np.mean(x**2, axis=1, keepdims=True))
    z = x / np.where(rms > 0, rms, 1.0)
    return torch.from_numpy(np.stack([z, np.abs(z)], axis=1).astype(np.float32))


@dataclass(frozen=True)
class CNNSettings:
    """Size and training of the CNN: small enough for a few seconds per seed on one core."""

    width: int = 16
    epochs: int = 12
    batch: int = 64
    lr: float = 3e-3


def cnn_classifier(
    real: np.ndarray,
    synth: np.ndarray,
    real_purge: int = 0,
    synth_purge: int = 0,
    seeds: Sequence[int] = (0, 1, 2),
    settings: CNNSettings | None = None,
    max_windows: int = MAX_WINDOWS,
    level: float = LEVEL,
) -> dict:
    """Balanced accuracy of a small 1-D CNN on RMS-standardized windows, real vs synthetic.

    Seed ``s`` trains one network with fold ``s mod FOLDS`` of
    :func:`blocked_folds` held out and tests on it; the interval is a
    t-interval over seeds (so at least two seeds are needed for one).
    """
    s = settings or CNNSettings()
    p = _prepare(real, synth, real_purge, synth_purge, max_windows)
    xr, xs = _cnn_input(p.real), _cnn_input(p.synth)
    accs = []
    for seed in seeds:
        rtr, rte, s_tr, s_te = _fold_sets(p, FOLDS, seed)[seed % FOLDS]
        x_tr = torch.cat([xr[rtr], xs[s_tr]])
        y_tr = torch.cat([torch.ones(len(rtr)), torch.zeros(len(s_tr))])
        with torch.random.fork_rng(devices=[]), single_thread():
            torch.manual_seed(seed)
            g = torch.Generator().manual_seed(seed)
            model = _CNN(s.width)
            opt = torch.optim.Adam(model.parameters(), lr=s.lr)
            # Each class weighs half of the loss, whatever the class sizes.
            w = torch.where(y_tr > 0, 0.5 / len(rtr), 0.5 / len(s_tr)) * len(y_tr)
            for _ in range(s.epochs):
                order = torch.randperm(len(x_tr), generator=g)
                for i in range(0, len(order), s.batch):
                    idx = order[i : i + s.batch]
                    loss = nn.functional.binary_cross_entropy_with_logits(
                        model(x_tr[idx]), y_tr[idx], weight=w[idx]
                    )
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            with torch.no_grad():
                pred = torch.cat([model(xr[rte]), model(xs[s_te])]).numpy() > 0
        y_te = np.r_[np.ones(len(rte)), np.zeros(len(s_te))].astype(int)
        accs.append(_balanced_accuracy(y_te, pred.astype(int)))
    return _summary(np.asarray(accs), len(p.real), len(p.synth), level)
