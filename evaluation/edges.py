"""Do generated windows look the same at their edges as in their middle?

A window generated as one image can be damped or inflated at its first and last
returns (image borders, the inverse transform, moving averages that are shorter
at the ends) while its middle looks right. Two checks see it:

- :func:`position_profile`: mean ``|r|`` at each position of windows divided by
  their own RMS, so the level of a window cannot decide it. Real windows are flat
  across positions (stationarity); :func:`edge_deviation` gives the largest gap
  between the generated and the real profile at the first and last positions, with
  its standard error.
- :func:`edge_discriminator`: a classifier that sees only the first and last
  returns of each RMS-standardized window; accuracy 0.5 means it cannot tell.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

EDGE_POSITIONS = 8  # positions at each end where the profile is compared
EDGE_CLASSIFIER_POSITIONS = 16  # returns at each end the edge classifier sees


def _standardized(windows: np.ndarray) -> np.ndarray:
    """Windows [N, L] divided by their own RMS (an all-zero window stays zero)."""
    x = np.asarray(windows, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] < 2:
        raise ValueError(f"windows must have shape [N, L] with N >= 1 and L >= 2, got {x.shape}")
    rms = np.sqrt(np.mean(x**2, axis=1, keepdims=True))
    return np.divide(x, rms, out=np.zeros_like(x), where=rms > 0)


def position_profile(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``|r| / RMS`` at each position, and its standard error over windows.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((4000, 32))
    >>> mean, se = position_profile(x)
    >>> bool(np.all(np.abs(mean - np.sqrt(2 / np.pi)) < 4 * se))
    True
    """
    a = np.abs(_standardized(windows))
    return a.mean(axis=0), a.std(axis=0, ddof=1) / np.sqrt(a.shape[0])


def edge_deviation(
    real: np.ndarray, synthetic: np.ndarray, positions: int = EDGE_POSITIONS
) -> dict[str, float | list[float]]:
    """Generated minus real profile at the first and last ``positions`` positions.

    Returns the largest absolute gap (``max_abs``), the standard error of that gap
    (both profiles' errors combined), where it is (``at``, a position counted from
    the start, negative from the end) and the gaps themselves (``first``, ``last``).
    Real windows overlapping each other (stride 1) make the real standard error an
    underestimate; the synthetic one dominates at a few hundred paths.
    """
    real_mean, real_se = position_profile(real)
    syn_mean, syn_se = position_profile(synthetic)
    if real_mean.shape != syn_mean.shape:
        raise ValueError(
            f"window lengths differ: real {real_mean.shape}, synthetic {syn_mean.shape}"
        )
    k = min(positions, len(real_mean) // 2)
    gap = syn_mean - real_mean
    se = np.sqrt(real_se**2 + syn_se**2)
    ends = np.r_[np.arange(k), np.arange(len(gap) - k, len(gap))]
    worst = ends[np.argmax(np.abs(gap[ends]))]
    return {
        "max_abs": float(abs(gap[worst])),
        "se": float(se[worst]),
        "at": int(worst if worst < k else worst - len(gap)),
        "first": gap[:k].tolist(),
        "last": gap[-k:].tolist(),
    }


def _edge_features(windows: np.ndarray, positions: int) -> np.ndarray:
    u = _standardized(windows)
    ends = np.concatenate([u[:, :positions], u[:, -positions:]], axis=1)
    return np.concatenate([ends, np.abs(ends)], axis=1)


def edge_discriminator(
    real: np.ndarray,
    synthetic: np.ndarray,
    positions: int = EDGE_CLASSIFIER_POSITIONS,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Cross-validated accuracy of a classifier on the first and last returns only.

    Both sets are cut into ``folds`` contiguous blocks in their own order (real
    windows in time order, so overlapping neighbours do not sit on both sides of a
    split) and the classes are balanced by drawing ``min(N_real, N_synth)`` windows
    of each. Returns the accuracy, its standard error over the held-out windows and
    ``score = |accuracy - 0.5|``.
    """
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    rng = np.random.default_rng(seed)
    n = min(len(real), len(synthetic))
    picks = [np.sort(rng.choice(len(x), n, replace=False)) for x in (real, synthetic)]
    feats = [
        _edge_features(np.asarray(x)[p], positions)
        for x, p in zip((real, synthetic), picks, strict=True)
    ]
    block = np.arange(n) * folds // n  # fold of each window, contiguous in each set's order
    # One thread: the fits are small, and OpenMP spin-waiting on busy shared cores made
    # threaded fits many times slower.
    with threadpool_limits(1):
        correct = _blocked_folds_correct(feats, block, folds, seed)
    accuracy = correct / (2 * n)
    return {
        "accuracy": accuracy,
        "se": float(np.sqrt(accuracy * (1 - accuracy) / (2 * n))),
        "score": abs(accuracy - 0.5),
    }


def _blocked_folds_correct(
    feats: list[np.ndarray], block: np.ndarray, folds: int, seed: int
) -> int:
    """Held-out windows classified right, summed over the folds."""
    correct = 0
    for f in range(folds):
        test, train = block == f, block != f
        clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
        clf.fit(
            np.concatenate([feats[0][train], feats[1][train]]),
            np.r_[np.zeros(train.sum()), np.ones(train.sum())],
        )
        pred = clf.predict(np.concatenate([feats[0][test], feats[1][test]]))
        correct += int(np.sum(pred == np.r_[np.zeros(test.sum()), np.ones(test.sum())]))
    return correct


def format_edges(real: np.ndarray, synthetic: np.ndarray) -> str:
    """One line for generate.py: the largest edge gap of the position profile and its error."""
    d = edge_deviation(real, synthetic)
    where = f"position {d['at']}" if d["at"] >= 0 else f"position {d['at']} from the end"
    return (
        f"window ends: mean |r|/RMS at the first and last {EDGE_POSITIONS} positions differs from "
        f"the real by at most {d['max_abs']:.3f} +- {d['se']:.3f} (at {where})"
    )
