"""Our model against every baseline on the same data: train, fit, sample, evaluate, one table.

    python benchmarks/compare_generators.py --data sp500 --out outputs/compare   # 2 x 9 min + scoring
    python benchmarks/compare_generators.py --data sp500 --minutes 2 --n 128 --fast   # a quick look
    python benchmarks/compare_generators.py --checkpoint RUN --n 128 --baselines gaussian garch
    python benchmarks/compare_generators.py --checkpoint checkpoints/<run> --out cmp  # reuse a model

Stages, each announced as it starts:

1. real data: the price series split by time (TRAIN_FRAC) as train.py and evaluate.py split it;
2. train.py, in-process, for --minutes (default: the preset's MAX_MINUTES, 9 on the cpu
   preset) into DIR/checkpoints/scalodiff; skipped with --checkpoint;
3. generate.py: --n paths with --seed from that checkpoint, into DIR/paths/scalodiff.npy;
4. the baselines (gaussian, bootstrap, garch-t, diffusion1d; --baselines picks some),
   fitted on the same training returns (checked against those the checkpoint saved), --n
   paths each. diffusion1d trains under the checkpoint's own settings (noise schedule,
   batch, learning rate, EMA, stopping rule), so its budget is the scalogram model's: the
   same minutes of training loop;
5. evaluate.py on every file plus the negative controls (an untrained model, the level
   draw alone, shuffled real windows: evaluation/controls.py), --n paths each:
   DIR/metrics.json and DIR/report.html, in-sample and out-of-sample, every value with a
   95% interval, the features classifier, and the CNN and GRU scores over --seeds
   (skipped with --fast);
6. DIR/comparison.md and DIR/comparison.json: a row per metric, a column per generator and
   control, whether the metric separates our model from every control, the clear best
   marked, the ranking on separating metrics (evaluation/leaderboard.py);
7. with --screenshot: headless Chromium screenshot DIR/report.png, every figure checked
   (benchmarks/screenshot_report.py).

--set NAME=VALUE reaches train.py and generate.py (and, through the checkpoint's
settings, diffusion1d), e.g. --set BATCH_SIZE=64. Rerunning into the same --out
needs --checkpoint DIR/checkpoints/scalodiff (the trained model is kept) or a new --out.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import evaluate  # noqa: E402  (the repository root is on the path only now)
import generate  # noqa: E402
import train  # noqa: E402
from evaluation import leaderboard  # noqa: E402
from evaluation.baselines import NAMES, TRAINED, fit_baseline  # noqa: E402
from evaluation.intervals import N_BOOT  # noqa: E402
from evaluation.scores import MAX_WINDOWS  # noqa: E402
from evaluation.suite import DEFAULT_SEEDS, clean  # noqa: E402
from utils import checkpoint as ckpt  # noqa: E402
from utils.errors import ScalodiffError, run_script  # noqa: E402
from utils.paths_io import write_paths  # noqa: E402
from utils.settings import SettingsParser, data_source  # noqa: E402

OURS = "scalodiff"
# Settings of the current command line that diffusion1d takes over those of a reused checkpoint.
SAMPLING = ("SAMPLER", "SAMPLING_STEPS", "SAMPLE_BATCH", "DEVICE")


def build_parser() -> SettingsParser:
    """The command line; flags that override a config.py setting say which."""
    p = SettingsParser(prog="compare_generators.py", description=__doc__)
    p.add_setting("--data", "CSV_PATH", "price file or built-in name (sp500, nasdaq, wti)")
    p.add_setting("--column", "COLUMN", "price column of the file")
    p.add_setting(
        "--minutes",
        "MAX_MINUTES",
        "training budget of each trained model (ours and diffusion1d), wall-clock minutes",
        type=float,
    )
    p.add_setting("--n", "N_SAMPLES", "paths per generator", type=int)
    p.add_setting(
        "--seed", "SEED", "seed of training and of the paths of every generator", type=int
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default: OUTPUT_DIR/compare)")
    p.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="use this trained run or checkpoint instead of training ours (stage 2)",
    )
    p.add_argument(
        "--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS), metavar="S",
        help="seeds of the GRU scores (default: 0 1 2)",
    )  # fmt: skip
    p.add_argument(
        "--max-windows", type=int, default=MAX_WINDOWS, metavar="N",
        help=f"windows per side for the GRU scores (default: {MAX_WINDOWS})",
    )  # fmt: skip
    p.add_argument(
        "--baselines", nargs="+", default=list(NAMES), metavar="NAME",
        help=f"baselines to compare, of {', '.join(NAMES)} (default: all)",
    )  # fmt: skip
    p.add_argument(
        "--bootstrap", type=int, default=N_BOOT, metavar="B",
        help=f"bootstrap resamples per generator for the intervals (default: {N_BOOT})",
    )  # fmt: skip
    p.add_argument(
        "--reuse", nargs="+", default=[], metavar="NAME",
        help="generators whose paths an earlier run into the same --out wrote (DIR/paths/NAME.npy "
        "and DIR/paths/records.json) are scored again instead of made again, e.g. after a stop "
        "in the evaluation, or to score a new model against the same baselines",
    )  # fmt: skip
    p.add_argument("--fast", action="store_true", help="skip the CNN and GRU scores (minutes)")
    p.add_argument(
        "--screenshot", action="store_true", help="screenshot report.html with headless Chromium"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


class Stages:
    """Announces each stage with its number and the time since the start."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.times: dict[str, float] = {}
        self._name, self._t = "", self.start

    def __call__(self, name: str, what: str) -> None:
        self.end()
        self.done += 1
        self._name, self._t = name, time.perf_counter()
        print(f"\n[{self.done}/{self.total}] {what}  (at {self._t - self.start:.0f} s)", flush=True)

    def end(self) -> None:
        if self._name:
            self.times[self._name] = round(time.perf_counter() - self._t, 1)
            self._name = ""


def reused_records(paths: Path, names: list[str]) -> dict[str, dict]:
    """The records of the generators in ``names`` whose earlier paths are reused."""
    known = (OURS, *NAMES)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ScalodiffError(f"--reuse {' '.join(unknown)}: choose from {', '.join(known)}")
    file = paths / "records.json"
    records = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    missing = [n for n in names if n not in records or not (paths / f"{n}.npy").is_file()]
    if missing:
        raise ScalodiffError(
            f"--reuse {' '.join(missing)}: no earlier paths of it in {paths} (NAME.npy and its "
            "record in records.json); leave it out of --reuse to make it again"
        )
    return {n: records[n] for n in names}


def save_record(paths: Path, name: str, record: dict) -> None:
    """Keep what is known of a generator beside its paths, for a later --reuse."""
    file = paths / "records.json"
    records = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    records[name] = record
    file.write_text(json.dumps(records, indent=1), encoding="utf-8")


def _call(script: Any, argv: list[str]) -> None:
    """Run a script's main in this process; its own one-line error is already printed."""
    rc = script.main(argv)
    if rc != 0:
        name = Path(script.__file__).name
        raise ScalodiffError(f"{name} stopped with exit status {rc} (its message is above)")


def _check_split(step_dir: Path, train_returns: np.ndarray) -> None:
    """The checkpoint must have trained on exactly the returns the baselines are fitted on."""
    saved = np.load(step_dir / "real_returns.npy", allow_pickle=False)
    tail = train_returns[-len(saved) :] if len(saved) else train_returns[:0]
    if len(train_returns) < len(saved) or not np.allclose(saved, tail, rtol=1e-12, atol=0):
        raise ScalodiffError(
            f"{step_dir} was trained on other returns than the training split of this --data "
            "(another file, column or TRAIN_FRAC); pass the data and settings it was trained with"
        )


def train_ours(s: dict[str, Any], source: str, run_dir: Path, forwarded: list[str]) -> None:
    """train.py in this process, into ``run_dir``, for MAX_MINUTES when this command sets it."""
    flags = ["--data", source, "--save-dir", str(run_dir.parent), "--run-name", run_dir.name]
    flags += ["--seed", str(s["SEED"])] + (["--column", s["COLUMN"]] if s["COLUMN"] else [])
    if s["MAX_MINUTES"]:
        flags += ["--max-minutes", str(s["MAX_MINUTES"])]
    _call(train, [*forwarded, *flags])


def generate_ours(step_dir: Path, s: dict[str, Any], paths: Path, forwarded: list[str]) -> dict:
    """generate.py in this process; returns what the comparison records about our model."""
    run = ckpt.read_json(step_dir, "settings.json")
    counters_file = step_dir / "train_state" / "counters.json"
    counters = json.loads(counters_file.read_text()) if counters_file.is_file() else {}
    t0 = time.perf_counter()
    _call(generate, [*forwarded, "--checkpoint", str(step_dir), "--n", str(s["N_SAMPLES"]),
                     "--seed", str(s["SEED"]), "--out", str(paths / f"{OURS}.npy"),
                     "--plot", str(paths / f"{OURS}.png"), "--overwrite"])  # fmt: skip
    return {
        "kind": "trained",
        "checkpoint": str(step_dir),
        "train_steps": counters.get("step"),
        "train_samples": counters.get("samples"),
        "train_minutes": round(counters.get("elapsed_s", float("nan")) / 60, 2),
        "budget_minutes": run.get("MAX_MINUTES"),
        "sample_s": round(time.perf_counter() - t0, 1),
    }


def run_baselines(
    names: list[str],
    train_r: np.ndarray,
    d1: dict[str, Any],
    paths: Path,
    start_price: float,
    progress: bool,
) -> tuple[dict[str, Path], dict[str, dict]]:
    """Fit the baselines ``names`` on ``train_r``, write N_SAMPLES paths each; return files and records."""
    n, seed, window = int(d1["N_SAMPLES"]), int(d1["SEED"]), int(d1["WINDOW_SIZE"])
    files, info = {}, {}
    for name in names:
        print(f"{name}: fitting", flush=True)
        t0 = time.perf_counter()
        gen = fit_baseline(name, train_r, settings=d1, progress=progress)
        t1 = time.perf_counter()
        x = gen.sample(n, window, seed=seed)
        files[name] = write_paths(paths / f"{name}.npy", x, start_price, overwrite=True)
        info[name] = {"kind": "trained" if name in TRAINED else "classical",
                      "fit_s": round(t1 - t0, 1), "sample_s": round(time.perf_counter() - t1, 1)}  # fmt: skip
        stats = getattr(gen, "stats", None)
        if stats is not None:
            info[name].update(train_steps=stats.steps, train_samples=stats.samples,
                              train_minutes=round(stats.seconds / 60, 2),
                              budget_minutes=d1["MAX_MINUTES"], parameters=stats.parameters)  # fmt: skip
        print(f"{name}: {info[name]}", flush=True)
        save_record(paths, name, info[name])
    return files, info


def compare(argv: list[str] | None = None) -> int:
    """Run every stage (see the module docstring); return the exit status."""
    parser = build_parser()
    args, s = parser.parse(argv)
    if not args.seeds or args.max_windows < 5:
        raise ScalodiffError("--seeds needs at least one seed and --max-windows at least 5")
    unknown = [b for b in args.baselines if b not in NAMES]
    if unknown:
        raise ScalodiffError(f"--baselines {' '.join(unknown)}: choose from {', '.join(NAMES)}")
    baselines = [b for b in NAMES if b in args.baselines]
    out = Path(args.out) if args.out else Path(s["OUTPUT_DIR"]) / "compare"
    paths, run_dir = out / "paths", out / "checkpoints" / OURS
    if not args.checkpoint and run_dir.exists() and any(run_dir.iterdir()):
        raise ScalodiffError(
            f"{run_dir} holds a trained model from an earlier comparison; reuse it with "
            f"--checkpoint {run_dir}, or choose another --out"
        )
    forwarded = [x for item in args.set for x in ("--set", item)]
    source, note = data_source(s)
    if note:
        print(f"note: {note}")
    stage = Stages(7 if args.screenshot else 6)

    stage("data", f"real data: {source}, split by time at TRAIN_FRAC={s['TRAIN_FRAC']}")
    train_r, test_r = evaluate.load_real(
        source, s["COLUMN"], s["TRAIN_FRAC"], s["MAX_MISSING_FRAC"], s["DATE_FORMAT"]
    )
    print(f"{len(train_r)} training returns, {len(test_r)} held out")

    if args.checkpoint:
        stage("train", f"{OURS}: using the trained model {args.checkpoint} (no training)")
    else:
        budget = f"{s['MAX_MINUTES']:g} min" if s["MAX_MINUTES"] else "the preset's MAX_MINUTES"
        stage("train", f"{OURS}: train.py for {budget} into {run_dir}")
        train_ours(s, source, run_dir, forwarded)
    step_dir = ckpt.resolve_checkpoint(args.checkpoint or run_dir, s["SAVE_DIR"])
    _check_split(step_dir, train_r)
    run = ckpt.read_json(step_dir, "settings.json")
    window = int(run["WINDOW_SIZE"])

    reused = reused_records(paths, args.reuse)
    stage("generate", f"{OURS}: generate.py, {s['N_SAMPLES']} paths of {window} returns")
    if OURS in reused:
        if reused[OURS].get("checkpoint") != str(step_dir):
            raise ScalodiffError(
                f"--reuse {OURS}: its paths came from {reused[OURS].get('checkpoint')}, not from "
                f"{step_dir}; leave {OURS} out of --reuse to sample this checkpoint"
            )
        print(f"{OURS}: reusing {paths / OURS}.npy (--reuse)")
        info = {OURS: reused[OURS]}
    else:
        info = {OURS: generate_ours(step_dir, s, paths, forwarded)}
        save_record(paths, OURS, info[OURS])
    files = {OURS: paths / f"{OURS}.npy"}

    # diffusion1d follows the run's recipe and stopping rule, unless this command sets the budget.
    d1 = {**run, "N_SAMPLES": s["N_SAMPLES"], "SEED": s["SEED"]}
    d1.update({k: s[k] for k in (*SAMPLING, "MAX_MINUTES") if k in parser.explicit})
    rule = ", ".join(f"{k}={d1[k]}" for k in ("MAX_MINUTES", "MAX_STEPS", "EPOCHS") if d1[k])
    stop = f" (diffusion1d stops at the first of {rule})" if "diffusion1d" in baselines else ""
    stage("baselines", f"baselines on the same {len(train_r)} training returns: "
          f"{', '.join(baselines)}{stop}")  # fmt: skip
    start_price = float(run.get("LAST_TRAIN_PRICE") or 100.0)
    fresh = [b for b in baselines if b not in reused]
    more_files, more_info = run_baselines(
        fresh, train_r, d1, paths, start_price, not args.no_progress
    )
    for name in baselines:
        if name in reused:
            print(f"{name}: reusing {paths / name}.npy (--reuse)")
            more_files[name], more_info[name] = paths / f"{name}.npy", reused[name]
    files.update({b: more_files[b] for b in baselines})
    info.update({b: more_info[b] for b in baselines})

    gru = "no CNN or GRU scores (--fast)" if args.fast else f"CNN and GRU over seeds {args.seeds}"
    stage("evaluate", f"evaluate.py: {len(files)} generators and 3 controls, {gru}")
    ev = ["--real", source, "--window", str(window), "--stride", str(s["STRIDE"]),
          "--train-frac", str(s["TRAIN_FRAC"]), "--out", str(out), "--overwrite",
          "--checkpoint", str(step_dir), "--controls", "--seed", str(s["SEED"]),
          "--set", f"MAX_MISSING_FRAC={s['MAX_MISSING_FRAC']}",
          "--synthetic", *map(str, files.values()), "--labels", *files,
          "--seeds", *map(str, args.seeds), "--max-windows", str(args.max_windows),
          "--bootstrap", str(args.bootstrap), *forwarded]  # fmt: skip
    ev += (["--column", s["COLUMN"]] if s["COLUMN"] else []) + (["--fast"] if args.fast else [])
    _call(evaluate, ev + (["--no-progress"] if args.no_progress else []))
    results = json.loads((out / "metrics.json").read_text(encoding="utf-8"))

    stage("table", f"comparison table: {out / 'comparison.md'} and {out / 'comparison.json'}")
    table = leaderboard.build(results, OURS)
    trained = "; ".join(
        f"{k} {v['train_steps']} steps ({v['train_samples']} windows) in {v['train_minutes']} min"
        f" of a {v['budget_minutes']} min budget" for k, v in info.items() if v["kind"] == "trained"
    )  # fmt: skip
    header = (
        f"# Generators compared on {source}\n\n{len(train_r)} training returns, {len(test_r)} "
        f"held out; windows of {window}; {s['N_SAMPLES']} paths per generator and control, seed "
        f"{s['SEED']}. Trained models: {trained}. Controls: {', '.join(table['controls'])}.\n"
    )
    markdown = leaderboard.to_markdown(table, header)
    (out / "comparison.md").write_text(markdown, encoding="utf-8")
    comparison = {
        "settings": {"data": source, "column": s["COLUMN"], "window": window,
                     "n_paths": s["N_SAMPLES"], "seed": s["SEED"], "train_frac": s["TRAIN_FRAC"],
                     "n_train": len(train_r), "n_test": len(test_r),
                     "gru_seeds": None if args.fast else args.seeds},
        "ours": OURS, "generators": info, "controls": table["controls"],
        "metrics": table["metrics"], "splits": table["splits"],
        "files": {k: str(v) for k, v in files.items()}, "stage_seconds": stage.times,
    }  # fmt: skip

    def write_json() -> None:
        text = json.dumps(clean(comparison), indent=1)
        (out / "comparison.json").write_text(text, encoding="utf-8")

    write_json()  # before the screenshot: a browser problem never costs the table
    print("\n" + markdown)
    if args.screenshot:
        from benchmarks.screenshot_report import ReportCheckError, check_report

        stage("screenshot", f"headless Chromium screenshot of {out / 'report.html'}")
        try:
            shot = check_report(out / "report.html", out / "report.png")
        except ReportCheckError as exc:
            raise ScalodiffError(f"report check: {exc}") from exc
        print(f"{shot['rendered']} of {shot['embedded']} figures rendered; {shot['screenshot']}")
        comparison["settings"]["screenshot"] = shot
    stage.end()
    write_json()  # again, with the last stages' times (and the screenshot)
    total = time.perf_counter() - stage.start
    print(f"done in {total / 60:.1f} min: {out / 'comparison.md'}, {out / 'report.html'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors with exit status 2 for problems the user can fix."""
    return run_script(compare, argv, "free space or choose --out on a disk with room")


if __name__ == "__main__":
    sys.exit(main())
