"""How realistic are generated paths? Stylized facts, classifiers, intervals, controls, report.

    python evaluate.py --real sp500 --synthetic outputs/paths.npy gaussian.npy garch.npy
    python evaluate.py --checkpoint checkpoints/<run> --synthetic outputs/paths.npy --controls
    python evaluate.py --checkpoint checkpoints/<run> --synthetic outputs/long.npy  # paths > a window

Each --synthetic file (.npy, .csv or .parquet, as written by generate.py or by
python -m evaluation.baselines) is one generator: any generator plugs in by
writing such a file. The real data is --real, or with --checkpoint the data,
column, TRAIN_FRAC, MAX_MISSING_FRAC and window the checkpoint was trained
with (a flag given as well overrides it). The real series is split by time as
training splits it; every metric is reported in-sample (against the training
windows) and out-of-sample (against the held-out windows), each with a 95%
interval. --controls adds the negative controls of evaluation/controls.py
(an untrained model, the level draw alone, shuffled real windows), built from
the checkpoint. Writes metrics.json and a self-contained report.html to --out
and prints the tables.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data.readers import load_prices
from data.returns import log_returns, split_by_time
from evaluation.intervals import N_BOOT
from evaluation.report import format_table, write_report
from evaluation.scores import MAX_WINDOWS
from evaluation.suite import DEFAULT_SEEDS, clean, evaluate
from utils import checkpoint as ckpt
from utils.errors import ScalodiffError, run_script
from utils.paths_io import read_paths
from utils.settings import SettingsParser, data_source

# What --checkpoint takes from the run's settings (unless the command line sets it too).
FROM_CHECKPOINT = (
    "CSV_PATH", "COLUMN", "TRAIN_FRAC", "MAX_MISSING_FRAC", "DATE_FORMAT", "WINDOW_SIZE",
    "CONTEXT_FRACTIONS",
)  # fmt: skip


def build_parser() -> SettingsParser:
    """The command line; flags that override a config.py setting say which."""
    p = SettingsParser(prog="python evaluate.py", description=__doc__)
    p.add_setting(
        "--real",
        "CSV_PATH",
        "real prices: a CSV/Parquet/HistData file or a built-in name (sp500, nasdaq, wti); "
        "required unless --checkpoint gives the data the model was trained on",
    )
    p.add_argument(
        "--checkpoint",
        metavar="RUN",
        help="a run or checkpoint folder: take the real data, column, TRAIN_FRAC, "
        "MAX_MISSING_FRAC, DATE_FORMAT and window from its settings (needed by --controls)",
    )
    p.add_setting("--column", "COLUMN", "price column of the real file")
    p.add_setting(
        "--window",
        "WINDOW_SIZE",
        "returns per window; must equal the generated paths' length",
        type=int,
    )
    p.add_setting(
        "--known",
        "CONTEXT_KNOWN",
        "long paths: known returns each rolled window continued, for the seam test "
        "(None: generate.py's default for long paths, the shortest of the checkpoint's "
        "trained lengths; without --checkpoint WINDOW_SIZE // 4, the cpu preset's)",
        type=int,
    )
    p.add_setting(
        "--overlap",
        "JOIN_OVERLAP",
        "long paths: the JOIN_OVERLAP they were rolled with, for the seam test",
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
        "--controls",
        action="store_true",
        help="add the negative controls (untrained, levels-only, shuffled) built from "
        "--checkpoint, as many paths as the largest --synthetic file, sampled as generate.py "
        "samples (SAMPLER, SAMPLING_STEPS, VOL_LEVEL from --set or the checkpoint)",
    )
    p.add_setting("--seed", "SEED", "seed of the controls' paths", type=int)
    p.add_argument(
        "--out",
        metavar="DIR",
        help="folder for metrics.json and report.html (default: OUTPUT_DIR/evaluation from config.py)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing metrics.json and report.html"
    )
    p.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=list(DEFAULT_SEEDS),
        metavar="S",
        help="seeds of the classifiers and GRU scores; intervals over them (default: 0 1 2)",
    )
    p.add_argument(
        "--max-windows",
        type=int,
        default=MAX_WINDOWS,
        metavar="N",
        help=f"at most N windows per side train the classifiers and GRU scores (default: {MAX_WINDOWS})",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=N_BOOT,
        metavar="B",
        help=f"bootstrap resamples of each generator's paths for the intervals; 0: none (default: {N_BOOT})",
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help="skip the CNN and the GRU scores (discriminative, predictive): seconds instead of minutes",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def load_real(
    source: str,
    column: str | None,
    train_frac: float,
    max_missing_frac: float = 0.01,
    date_format: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out log returns of a price source, split by time."""
    prices = load_prices(
        source, column=column, max_missing_frac=max_missing_frac, date_format=date_format
    )
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
        if x.shape[1] < window:
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
    lengths = {x.shape[1] for x in out.values()}
    if len(lengths) > 1:
        raise ScalodiffError(
            f"--synthetic files have paths of {sorted(lengths)} steps; compare generators at one "
            f"length: all windows of --window {window}, or all long paths of one length"
        )
    return out


def settings_from_checkpoint(
    s: dict[str, Any], explicit: set[str], checkpoint: str
) -> tuple[dict[str, Any], Path]:
    """``s`` with the run's data settings (those not set on the command line); the step folder."""
    step_dir = ckpt.resolve_checkpoint(checkpoint, s["SAVE_DIR"])
    run = ckpt.read_json(step_dir, "settings.json")
    s = dict(s)
    for name in FROM_CHECKPOINT:
        if name not in explicit and name in run:
            s[name] = run[name]
    return s, step_dir


def check_same_training_data(step_dir: Path, train: np.ndarray, source: str) -> None:
    """The checkpoint must have trained on the training returns evaluated here."""
    saved = np.load(step_dir / "real_returns.npy", allow_pickle=False)
    tail = train[-len(saved) :] if len(saved) else train[:0]
    if len(train) < len(saved) or not np.allclose(saved, tail, rtol=1e-12, atol=0):
        raise ScalodiffError(
            f"{step_dir} was trained on other returns than the training part of {source} "
            "(another file, column or TRAIN_FRAC); drop --real/--column/--train-frac to take "
            "the checkpoint's own"
        )


def build_controls(step_dir: Path, n: int, s: dict[str, Any]) -> dict[str, np.ndarray]:
    """The negative controls of a checkpoint, sampled as generate.py samples it with settings ``s``."""
    from evaluation.controls import make_controls  # torch and diffusers: only when asked
    from models.diffusion import default_steps

    loaded = ckpt.load_for_sampling(step_dir)
    run = loaded["settings"]
    sampler = s["SAMPLER"] or run.get("SAMPLER") or "dpm"
    steps = s["SAMPLING_STEPS"] or default_steps(
        sampler, loaded["scheduler_config"]["num_train_timesteps"]
    )
    vol_level = s["VOL_LEVEL"] or run.get("VOL_LEVEL") or "model"
    return make_controls(
        loaded, n, s["SEED"], sampler, steps, s["SAMPLE_BATCH"], vol_level=vol_level
    )


def evaluate_files(argv: Sequence[str] | None = None) -> int:
    """Parse, load, evaluate, write metrics.json and report.html, print the tables."""
    start = time.perf_counter()
    parser = build_parser()
    args, s = parser.parse(argv)
    if not args.seeds:
        raise ScalodiffError("--seeds needs at least one integer, e.g. --seeds 0 1 2")
    if args.max_windows < 5:
        raise ScalodiffError(f"--max-windows must be at least 5, got {args.max_windows}")
    if args.bootstrap < 0:
        raise ScalodiffError(f"--bootstrap must be 0 (no intervals) or more, got {args.bootstrap}")
    if args.checkpoint is None and "CSV_PATH" not in parser.explicit:
        raise ScalodiffError(
            "which real data? pass --real FILE_OR_NAME (e.g. --real sp500), or --checkpoint RUN "
            "to compare with the data that run was trained on"
        )
    if args.controls and args.checkpoint is None:
        raise ScalodiffError("--controls builds the controls from a model: pass --checkpoint RUN")
    step_dir = None
    if args.checkpoint is not None:
        s, step_dir = settings_from_checkpoint(s, parser.explicit, args.checkpoint)
    window = s["WINDOW_SIZE"]
    out = Path(args.out) if args.out else Path(s["OUTPUT_DIR"]) / "evaluation"
    existing = [p for p in (out / "metrics.json", out / "report.html") if p.exists()]
    if existing and not args.overwrite:
        raise ScalodiffError(
            f"{existing[0]} exists; pass --overwrite to replace it or choose another --out"
        )
    try:  # fail now, not after minutes of scoring
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScalodiffError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    synthetic = load_synthetic(args.synthetic, args.labels, window)
    # The same fallback as train.py for the shipped CSV_PATH (a run recorded before the
    # data actually read was; its training returns are checked below).
    source, note = data_source(s, explicit="CSV_PATH" in parser.explicit)
    if note:
        print(f"note: {note}", file=sys.stderr)
    train, test = load_real(
        source, s["COLUMN"], s["TRAIN_FRAC"], s["MAX_MISSING_FRAC"], s["DATE_FORMAT"]
    )
    if step_dir is not None:
        check_same_training_data(step_dir, train, source)
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
    if next(iter(synthetic.values())).shape[1] > window:
        return evaluate_long(train, synthetic, s, out, start)
    controls: dict[str, np.ndarray] = {}
    if args.controls:
        n = max(len(x) for x in synthetic.values())
        controls = build_controls(step_dir, n, s)
        clash = sorted(set(controls) & set(synthetic))
        if clash:
            raise ScalodiffError(f"--labels {clash} are the names of controls; rename them")
    results, ctx = evaluate(
        train, test, {**synthetic, **controls}, window, s["STRIDE"], args.seeds, args.fast,
        args.max_windows, progress=not args.no_progress, controls=list(controls),
        n_boot=args.bootstrap,
    )  # fmt: skip
    settings = {
        "real": source,
        "column": s["COLUMN"],
        "window": window,
        "stride": s["STRIDE"],
        "train_frac": s["TRAIN_FRAC"],
        "max_missing_frac": s["MAX_MISSING_FRAC"],
        "date_format": s["DATE_FORMAT"],
        "checkpoint": None if step_dir is None else str(step_dir),
        "controls": list(controls),
        "seeds": list(args.seeds),
        "bootstrap": args.bootstrap,
        "fast": args.fast,
        "max_windows": args.max_windows,
        "files": dict(zip(synthetic, args.synthetic, strict=True)),
    }
    results = {"settings": settings, **results}
    report, notes = write_report(out / "report.html", results, figure_list(ctx))
    results["wall_time_s"] = round(time.perf_counter() - start, 1)
    (out / "metrics.json").write_text(json.dumps(clean(results), indent=1), encoding="utf-8")
    for split in ("in_sample", "out_of_sample"):
        if any(g.get(split) for g in results["generators"].values()):
            print(format_table(results, split) + "\n")
    for line in [*results["notes"], *notes]:
        print(f"note: {line}", file=sys.stderr)
    print(f"wrote {out / 'metrics.json'} and {report} in {results['wall_time_s']} s")
    return 0


def evaluate_long(
    train: np.ndarray, synthetic: dict[str, np.ndarray], s: dict[str, Any], out: Path, start: float
) -> int:
    """Paths longer than a window: the percentile table against GARCH-t and the stationary
    bootstrap at the same length and number, their pooled drift, and for rolled windows the
    seam test and the join and window profiles."""
    from evaluation.baselines import fit_baseline
    from evaluation.long_paths import (
        format_drift,
        format_percentiles,
        join_profile,
        percentile_table,
        pooled_drift,
        residual_kurtosis_by_level,
        seam_test,
        window_profile,
    )
    from models.continuation import default_known
    from utils.presets import PRESETS

    n, length = max(len(x) for x in synthetic.values()), next(iter(synthetic.values())).shape[1]
    baselines = {
        "garch-t": fit_baseline("garch", train).sample(n, length, seed=s["SEED"]),
        "bootstrap": fit_baseline("bootstrap", train).sample(n, length, seed=s["SEED"]),
    }
    clash = sorted(set(baselines) & set(synthetic))
    if clash:
        raise ScalodiffError(f"--labels {clash} are the names of baselines; rename them")
    generators = {**synthetic, **baselines}
    table = percentile_table(train, generators)
    print(format_percentiles(table) + "\n")
    table["drift"] = pooled_drift(train, generators)
    print(format_drift(table["drift"]) + "\n")
    by_level = {"real": residual_kurtosis_by_level(train[-length:])}
    by_level |= {name: residual_kurtosis_by_level(x) for name, x in generators.items()}
    table["residual_kurtosis_by_level"] = by_level
    print(
        "residual kurtosis by level (returns over their 21-return moving RMS where that is below "
        "0.75, 0.75-1.5 and above 1.5 times the path's RMS; 3: Gaussian): "
        + "; ".join(f"{k} {' / '.join(f'{v:.2f}' for v in ks)}" for k, ks in by_level.items())
        + "\n"
    )
    window, known = s["WINDOW_SIZE"], s["CONTEXT_KNOWN"]
    if known is None:
        fractions = s.get("CONTEXT_FRACTIONS") or PRESETS["cpu"]["CONTEXT_FRACTIONS"]
        known = default_known(fractions, window, rolling=True)
    known += s["JOIN_OVERLAP"]  # each rolled window also took that many more path returns
    table["seams"] = {}
    for name, paths in synthetic.items():
        seam = seam_test(paths, window, known)
        table["seams"][name] = seam
        after_joins = join_profile(paths, window, known)
        width = 0 if after_joins is None else len(after_joins)
        profiles = {
            "join_profiles": (
                after_joins,
                f"join profile {name}: RMS of the returns 0-{width - 1} after each join over all "
                "rolled returns' (1.0: no damping)",
            ),
            "window_profiles": (
                window_profile(paths, window, known),
                f"window profile {name}: RMS of each sixth of the rolled windows' new returns over "
                "that of all of them (1.0 each: no pattern repeating with the windows)",
            ),
        }
        for key, (profile, said) in profiles.items():
            if profile is not None:
                table.setdefault(key, {})[name] = profile.tolist()
                print(f"{said}: {' '.join(f'{v:.2f}' for v in profile)}")
        if seam is None:
            print(
                f"seam test {name}: too few joins in paths of {length} (window {window}, known {known})"
            )
        else:
            print(
                f"seam test {name} (window {window}, {known} path returns kept a window): features "
                f"classifier telling join-straddling 64-return windows from inside ones, balanced "
                f"accuracy {seam['mean']:.3f} [{seam['ci'][0]:.3f}, {seam['ci'][1]:.3f}] "
                f"(|acc - 0.5| = {abs(seam['mean'] - 0.5):.3f})"
            )
    table["wall_time_s"] = round(time.perf_counter() - start, 1)
    target = out / "long_paths.json"
    target.write_text(json.dumps(clean(table), indent=1), encoding="utf-8")
    print(f"wrote {target} in {table['wall_time_s']} s")
    return 0


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
    """Entry point: one-line errors with exit status 2 for problems the user can fix."""
    return run_script(evaluate_files, argv, "free space or choose --out on a disk with room")


if __name__ == "__main__":
    sys.exit(main())
