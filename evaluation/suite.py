"""Every metric of every generator against the real windows: what evaluate.py computes.

:func:`evaluate` takes the real returns (split by time) and each generator's
``[N, L]`` log returns, and returns the ``metrics.json`` dict: per generator
and split, the stylized-fact comparison with a bootstrap interval for every
number, the features classifier and (unless ``fast``) the CNN and GRU scores,
each with an interval; memorization; and real-against-real references.
Negative controls (:mod:`evaluation.controls`) are generators like any other,
flagged ``"control": True``.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

import numpy as np
from tqdm import tqdm

from data.windows import windows_view
from evaluation import classifiers, scores
from evaluation.compare import compare_facts, curves, facts_of, per_window
from evaluation.intervals import N_BOOT, bootstrap_facts, t_interval
from evaluation.scores import MAX_WINDOWS, TrainSettings

DEFAULT_SEEDS = (0, 1, 2)


def clean(obj):
    """NaN and inf become null so metrics.json is strict JSON."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def evaluate(
    train: np.ndarray,
    test: np.ndarray,
    synthetic: dict[str, np.ndarray],
    window: int,
    stride: int = 1,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    fast: bool = False,
    max_windows: int = MAX_WINDOWS,
    progress: bool = True,
    gru: tuple[TrainSettings, TrainSettings] | None = None,
    controls: Sequence[str] = (),
    n_boot: int = N_BOOT,
    cnn: classifiers.CNNSettings | None = None,
) -> tuple[dict, dict]:
    """Every metric of every generator against the real training and held-out windows.

    Parameters
    ----------
    train, test : np.ndarray
        1-D real log returns before and after the time split.
    synthetic : dict
        Generator name -> ``[N, window]`` log returns.
    fast : bool
        Skip the CNN and the GRU scores (the features classifier takes seconds and stays).
    gru : (TrainSettings, TrainSettings), optional
        Settings of the discriminative and predictive GRUs (default:
        :data:`evaluation.scores.DISCRIMINATIVE`, :data:`~evaluation.scores.PREDICTIVE`);
        ``max_windows`` overrides their field.
    controls : sequence of str
        Names in ``synthetic`` that are negative controls: reported, flagged, not ranked.
    n_boot : int
        Bootstrap resamples of each generator's paths for the intervals; 0: none.

    Returns
    -------
    results, context
        ``results`` is what ``metrics.json`` holds; ``context`` the arrays and
        fact sets the figures need.
    """
    train_w = windows_view(train, window, stride)
    has_test = len(test) >= window
    test_w = windows_view(test, window, stride) if has_test else None
    purge = -(-window // stride)  # rows of sliding windows this close share returns
    facts_train = facts_of(per_window(train_w))
    facts_test = facts_of(per_window(test_w)) if has_test else None
    reals = {"in_sample": facts_train, **({"out_of_sample": facts_test} if has_test else {})}
    gens: dict[str, dict] = {}
    facts_synth = {}
    notes: list[str] = []
    items = tqdm(synthetic.items(), desc="facts and classifiers", disable=not progress,
                 file=sys.stderr)  # fmt: skip
    for i, (name, x) in enumerate(items):
        pw = per_window(x)
        f = facts_synth[name] = facts_of(pw)
        g = gens[name] = {"n_paths": int(len(x)), "control": name in controls, "curves": curves(f)}
        for split, real in reals.items():
            g[split] = compare_facts(real, f)
        if not has_test:
            g["out_of_sample"] = None
        if n_boot > 0:
            for split, iv in bootstrap_facts(pw, reals, n_boot, seed=i).items():
                g[split].update(iv)
        g["memorization"] = None
        if has_test:  # every training window (stride 1), or a copy shifted by a step is missed
            g["memorization"] = scores.memorization(
                x, windows_view(train, window, 1), windows_view(test, window, 1), max_windows
            )
        classify = partial(_classify, notes, train_w, x, purge, 0, seeds, max_windows)
        g["in_sample"]["features_acc"] = classify(classifiers.features_classifier)
        if not fast:
            g["in_sample"]["cnn_acc"] = classify(partial(classifiers.cnn_classifier, settings=cnn))
    held = compare_facts(facts_train, facts_test) if has_test else None
    if held is not None:  # two real periods told apart: a reference, not a floor
        classify = partial(_classify, notes, train_w, test_w, purge, purge, seeds, max_windows)
        held["features_acc"] = classify(classifiers.features_classifier)
    reference: dict = {"heldout_vs_train": held}
    if not fast:
        disc, pred = gru or (scores.DISCRIMINATIVE, scores.PREDICTIVE)
        disc, pred = (replace(t, max_windows=max_windows) for t in (disc, pred))
        scale = float(np.std(train))  # one input scale for every model: volatility errors show
        how = (disc, pred, purge, scale)
        gru_scores(train_w, test_w, synthetic, gens, reference, seeds, how, progress, notes)
    real = {"train": _real_info(train, train_w, facts_train), "test": None}
    if has_test:
        real["test"] = _real_info(test, test_w, facts_test)
    results = {"real": real, "generators": gens, "reference": reference, "notes": notes}
    context = {
        "train": train,
        "train_w": train_w,
        "scale": float(np.std(train)),
        "synthetic": synthetic,
        "facts_train": facts_train,
        "facts_test": facts_test,
        "facts_synth": facts_synth,
    }
    return results, context


def _classify(notes, real, synth, real_purge, synth_purge, seeds, max_windows, fn) -> dict | None:
    """A classifier's result, or None with a note when there are too few windows for its folds."""
    try:
        return fn(real, synth, real_purge, synth_purge, seeds=seeds, max_windows=max_windows)
    except ValueError as exc:
        if str(exc) not in notes:
            notes.append(str(exc))
        return None


def _real_info(series: np.ndarray, windows: np.ndarray, facts) -> dict:
    return {"n_returns": int(len(series)), "n_windows": int(len(windows)), "curves": curves(facts)}


def _disc(notes: list[str], *args, **kwargs) -> float:
    """A discriminative score, or NaN with a note when there are too few windows for one."""
    try:
        return scores.discriminative_score(*args, **kwargs)
    except scores.TooFewWindows as exc:
        if str(exc) not in notes:
            notes.append(str(exc))
        return float("nan")


def _with_interval(values: list[float]) -> dict:
    """:func:`scores.mean_std` plus a t-interval over seeds (the score is its own error)."""
    out = scores.mean_std(values)
    out["ci"] = out["error_ci"] = t_interval(values)
    return out


def gru_scores(train_w, test_w, synthetic, gens, reference, seeds, how, progress, notes) -> None:
    """Discriminative and predictive scores over seeds, written into ``gens`` and ``reference``.

    In-sample, the classifier splits the training windows in purged time
    blocks (see :func:`evaluation.scores.split_rows`); out-of-sample it is
    trained on training-period windows and tested on held-out windows. Besides
    each generator, the real data scores itself: held-out windows as if they
    were a generator (how far apart two real periods are) and a forecaster
    trained on real training windows (the error to beat).
    """
    disc_st, pred_st, purge, scale = how
    tests = {"in_sample": train_w}
    if test_w is not None:
        tests["out_of_sample"] = test_w
    disc: dict[tuple[str, str], list[float]] = defaultdict(list)
    pred: dict[tuple[str, str], list[float]] = defaultdict(list)
    real_key = "(real)"
    tasks = [(name, seed) for name in [*synthetic, real_key] for seed in seeds]
    for name, seed in tqdm(tasks, desc="GRU scores", disable=not progress, file=sys.stderr):
        d = partial(_disc, notes, train_w, seed=seed, scale=scale, settings=disc_st)
        if name == real_key:
            if test_w is not None:
                disc[name, "in_sample"].append(d(test_w, real_purge=purge, synth_purge=purge))
            fitted_on = train_w
        else:
            x = synthetic[name]
            disc[name, "in_sample"].append(d(x, real_purge=purge))
            if test_w is not None:
                disc[name, "out_of_sample"].append(d(x, real_test=test_w))
            fitted_on = x
        for split, v in scores.predictive_score(fitted_on, tests, seed, scale, pred_st).items():
            pred[name, split].append(v)
    for (name, split), v in disc.items():
        target = reference["heldout_vs_train"] if name == real_key else gens[name][split]
        target["discriminative"] = _with_interval(v)
    for (name, split), v in pred.items():
        if name == real_key:
            reference.setdefault("predictive_real_trained", {})[split] = _with_interval(v)
        else:
            gens[name][split]["predictive_mae"] = _with_interval(v)
