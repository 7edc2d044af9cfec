"""How realistic are generated paths? Stylized facts, GRU scores, memorization, report.

    python evaluate.py --real sp500 --synthetic outputs/paths.npy gaussian.npy garch.npy

Each --synthetic file (.npy, .csv or .parquet, as written by generate.py or by
python -m evaluation.baselines) is one generator: any generator plugs in by
writing such a file. The real series is split by time as training splits it
(--train-frac); every metric is reported in-sample (against the training
windows) and out-of-sample (against the held-out windows). Writes
metrics.json and a self-contained report.html to --out and prints the tables.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data.readers import load_prices
from data.returns import log_returns, split_by_time
from data.windows import windows_view
from evaluation import scores
from evaluation.compare import compare_facts, curves, stylized_facts
from evaluation.report import format_table, write_report
from evaluation.scores import MAX_WINDOWS, TrainSettings
from utils.errors import EXIT_USER_ERROR, ScalodiffError
from utils.paths_io import read_paths
from utils.settings import SettingsParser, data_source

DEFAULT_SEEDS = (0, 1, 2)


def build_parser() -> SettingsParser:
    """The command line; flags that override a config.py setting say which."""
    p = SettingsParser(prog="python evaluate.py", description=__doc__)
    p.add_setting(
        "--real",
        "CSV_PATH",
        "real prices: a CSV/Parquet/HistData file or a built-in name (sp500, nasdaq, wti); the shipped default falls back to sp500 when missing, as in train.py",
    )
    p.add_setting("--column", "COLUMN", "price column of the real file")
    p.add_setting(
        "--window",
        "WINDOW_SIZE",
        "returns per window; must equal the generated paths' length",
        type=int,
    )
    p.add_setting(
        "--stride", "STRIDE", "step between real window starts (1 uses every window)", type=int
    )
    p.add_setting(
        "--train-frac",
        "TRAIN_FRAC",
        "first fraction of the real series (by time) that is 'in-sample'; use training's value",
        type=float,
    )
    p.add_argument(
        "--synthetic",
        nargs="+",
        required=True,
        metavar="FILE",
        help="generated paths, one file per generator (.npy, .csv or .parquet)",
    )
    p.add_argument(
        "--labels",
        nargs="+",
        metavar="NAME",
        help="names for the --synthetic files, in order (default: file names without suffix)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="folder for metrics.json and report.html (default: OUTPUT_DIR/evaluation from config.py)",
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=list(DEFAULT_SEEDS),
        metavar="S",
        help="seeds of the GRU scores; each score is mean +- std over them (default: 0 1 2)",
    )
    p.add_argument(
        "--max-windows",
        type=int,
        default=MAX_WINDOWS,
        metavar="N",
        help=f"at most N windows per side train the GRU scores (default: {MAX_WINDOWS})",
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help="skip the GRU scores (discriminative, predictive): seconds instead of minutes",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def load_real(source: str, column: str | None, train_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out log returns of a price source, split by time."""
    prices = load_prices(source, column=column)
    train, test = split_by_time(log_returns(prices.values), train_frac)
    return np.asarray(train, dtype=np.float64), np.asarray(test, dtype=np.float64)


def load_synthetic(
    files: Sequence[str], labels: Sequence[str] | None, window: int
) -> dict[str, np.ndarray]:
    """Read each file as ``[N, window]`` log returns, keyed by a unique label."""
    if labels is not None and len(labels) != len(files):
        raise ScalodiffError(
            f"--labels gives {len(labels)} names for {len(files)} --synthetic files; give one per file"
        )
    names = list(labels) if labels else [Path(f).stem for f in files]
    if len(set(names)) != len(names):  # e.g. run1/paths.npy and run2/paths.npy
        names = [f"{Path(f).parent.name}/{Path(f).stem}" for f in files] if not labels else names
    if len(set(names)) != len(names):
        raise ScalodiffError(f"generator names {names} repeat; give distinct --labels")
    out = {}
    for name, f in zip(names, files, strict=True):
        x = read_paths(f)
        if x.shape[1] != window:
            raise ScalodiffError(
                f"{f}: paths have {x.shape[1]} steps but --window is {window}; pass --window {x.shape[1]}"
            )
        if not np.all(np.isfinite(x)):
            raise ScalodiffError(f"{f}: contains NaN or inf log returns; regenerate the file")
        if len(x) < 5:
            raise ScalodiffError(
                f"{f}: only {len(x)} paths; need at least 5 to compare distributions"
            )
        out[name] = x
    return out


def _clean(obj):
    """NaN and inf become null so metrics.json is strict JSON."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
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
    max_windows: int = 1000,
    progress: bool = True,
    gru: tuple[TrainSettings, TrainSettings] | None = None,
) -> tuple[dict, dict]:
    """Every metric of every generator against the real training and held-out windows.

    Parameters
    ----------
    train, test : np.ndarray
        1-D real log returns before and after the time split.
    synthetic : dict
        Generator name -> ``[N, window]`` log returns.
    gru : (TrainSettings, TrainSettings), optional
        Settings of the discriminative and predictive GRUs (default:
        :data:`evaluation.scores.DISCRIMINATIVE`, :data:`~evaluation.scores.PREDICTIVE`);
        ``max_windows`` overrides their field.

    Returns
    -------
    results, context
        ``results`` is what ``metrics.json`` holds; ``context`` the arrays and
        fact sets the figures need.
    """
    train_w = windows_view(train, window, stride)
    has_test = len(test) >= window
    test_w = windows_view(test, window, stride) if has_test else None
    facts_train = stylized_facts(train_w)
    facts_test = stylized_facts(test_w) if has_test else None
    gens: dict[str, dict] = {}
    facts_synth = {}
    for name, x in synthetic.items():
        f = facts_synth[name] = stylized_facts(x)
        mem = None
        if has_test:  # every training window (stride 1), or a copy shifted by a step is missed
            mem = scores.memorization(
                x, windows_view(train, window, 1), windows_view(test, window, 1), max_windows
            )
        gens[name] = {
            "n_paths": int(len(x)),
            "in_sample": compare_facts(facts_train, f),
            "out_of_sample": compare_facts(facts_test, f) if has_test else None,
            "memorization": mem,
            "curves": curves(f),
        }
    notes: list[str] = []
    held = compare_facts(facts_train, facts_test) if has_test else None
    reference: dict = {"heldout_vs_train": held}
    if not fast:
        disc, pred = gru or (scores.DISCRIMINATIVE, scores.PREDICTIVE)
        disc, pred = (replace(t, max_windows=max_windows) for t in (disc, pred))
        purge = -(-window // stride)  # rows of sliding windows this close share returns
        scale = float(np.std(train))  # one input scale for every model: volatility errors show
        how = (disc, pred, purge, scale)
        _gru_scores(train_w, test_w, synthetic, gens, reference, seeds, how, progress, notes)
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


def _gru_scores(train_w, test_w, synthetic, gens, reference, seeds, how, progress, notes) -> None:
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
        target["discriminative"] = scores.mean_std(v)
    for (name, split), v in pred.items():
        if name == real_key:
            reference.setdefault("predictive_real_trained", {})[split] = scores.mean_std(v)
        else:
            gens[name][split]["predictive_mae"] = scores.mean_std(v)


def figure_list(ctx: dict) -> list[tuple[str, object]]:
    """Captions and drawing functions of the report's figures (drawn lazily by write_report)."""
    from evaluation import figures as fg

    real1 = ctx["train"][None, :]  # the series itself: overlapping windows would repeat values
    syn, sc = ctx["synthetic"], ctx["scale"]
    ft, fh, fs = ctx["facts_train"], ctx["facts_test"], ctx["facts_synth"]
    return [
        ("Return histograms", lambda: fg.histograms(real1, syn, sc)),
        ("QQ plot", lambda: fg.qq_plot(real1, syn, sc)),
        ("Autocorrelation of r and |r|", lambda: fg.acf_curves(ft, fh, fs)),
        ("Leverage and aggregational Gaussianity", lambda: fg.leverage_and_kurtosis(ft, fh, fs)),
        ("Example paths", lambda: fg.example_paths(ctx["train_w"], syn)),
        ("Scalograms, real vs generated", lambda: fg.scalograms(ctx["train_w"], syn, sc)),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    start = time.perf_counter()
    try:
        args, s = build_parser().parse(argv)
        if not args.seeds:
            raise ScalodiffError("--seeds needs at least one integer, e.g. --seeds 0 1 2")
        if args.max_windows < 5:
            raise ScalodiffError(f"--max-windows must be at least 5, got {args.max_windows}")
        window = s["WINDOW_SIZE"]
        out = Path(args.out) if args.out else Path(s["OUTPUT_DIR"]) / "evaluation"
        try:  # fail now, not after minutes of scoring
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ScalodiffError(
                f"--out {out}: cannot create the folder ({exc.strerror})"
            ) from None
        synthetic = load_synthetic(args.synthetic, args.labels, window)
        source, note = data_source(s)  # the same fallback as train.py when CSV_PATH is missing
        if note:
            print(f"note: {note}", file=sys.stderr)
        train, test = load_real(source, s["COLUMN"], s["TRAIN_FRAC"])
        if len(train) < window:
            raise ScalodiffError(
                f"{source}: the training part has {len(train)} returns, fewer than --window "
                f"{window}; use a longer series, a smaller --window or a larger --train-frac"
            )
        if len(test) < window:
            print(
                f"note: the held-out part has {len(test)} returns < --window {window}; "
                "out-of-sample metrics and memorization are skipped",
                file=sys.stderr,
            )
        results, ctx = evaluate(
            train, test, synthetic, window, s["STRIDE"], args.seeds, args.fast,
            args.max_windows, progress=not args.no_progress,
        )  # fmt: skip
    except ScalodiffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    settings = {
        "real": source,
        "column": s["COLUMN"],
        "window": window,
        "stride": s["STRIDE"],
        "train_frac": s["TRAIN_FRAC"],
        "seeds": list(args.seeds),
        "fast": args.fast,
        "max_windows": args.max_windows,
        "files": dict(zip(synthetic, args.synthetic, strict=True)),
    }
    results = {"settings": settings, **results}
    report, notes = write_report(out / "report.html", results, figure_list(ctx))
    results["wall_time_s"] = round(time.perf_counter() - start, 1)
    (out / "metrics.json").write_text(json.dumps(_clean(results), indent=1), encoding="utf-8")
    for split in ("in_sample", "out_of_sample"):
        if any(g.get(split) for g in results["generators"].values()):
            print(format_table(results, split) + "\n")
    for line in [*results["notes"], *notes]:
        print(f"note: {line}", file=sys.stderr)
    print(f"wrote {out / 'metrics.json'} and {report} in {results['wall_time_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
