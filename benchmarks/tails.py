"""Heavy tails on every market: train the default model on each series and compare the tails.

    python benchmarks/tails.py                             # every series, the default settings
    python benchmarks/tails.py --series sp500 garch-t --set MAX_STEPS=1100 --set MAX_MINUTES=120
    python benchmarks/tails.py --quick                     # a tiny model, seconds a series (tests)

For each series: train.py with the default settings (plus any --set) into
OUT/checkpoints/NAME, generate.py --n paths, and the negative controls of
evaluation/controls.py (an untrained model, the level draw alone, shuffled real
windows) with as many paths. Per series and generator it prints the excess
kurtosis of all returns pooled, the Hill index of the top 5% of |r|, the 1% and
99% quantiles and the 99.9% quantile of |r| in units of the real returns' standard
deviation, and the within-window ACF-of-|r| distance (lags 1-20) with its 95%
interval; then the targets: kurtosis within +-30% of the real, Hill within +-0.5,
and on the S&P 500 the ACF distance at most 10% above --acf-baseline. Real figures
are those of the training returns (TRAIN_FRAC), which the model was trained on.

A sample's kurtosis rests on its few largest values, and more so the heavier the
tail, so each series also gets the spread of kurtosis at the real series' own
length: of our paths laid end to end and cut into runs of that length, of the
real returns resampled with replacement, and, for garch-t, of fresh series from
its own process; with the real value's percentile among each and the share of
each within +-30% of it.

Series: the built-in sp500, nasdaq and wti; aapl, msft and goog from --shared-data
(``Adj Close``; skipped with a note when the folder is missing); garch-t, a simulated
GARCH(1,1) with t(3.5) innovations (a known heavy tail), written to OUT/garch_t.csv.
Writes OUT/tails.json and OUT/tails.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import generate  # noqa: E402  (the repository root is on the path only now)
import train  # noqa: E402
from data.windows import windows_view  # noqa: E402
from evaluation import metrics as m  # noqa: E402
from evaluation.controls import make_controls  # noqa: E402
from evaluation.summary import realism_summary  # noqa: E402
from models.diffusion import default_steps  # noqa: E402
from utils import checkpoint as ckpt  # noqa: E402
from utils.errors import ScalodiffError, run_script  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_STOCKS = ("aapl", "msft", "goog")
ALL_SERIES = ("sp500", "nasdaq", "wti", *SHARED_STOCKS, "garch-t")
QUICK_SERIES = ("sp500", "garch-t")
# Today's default run before the fitted tail settings (1,000 steps, 256 paths): the
# within-window ACF-of-|r| distance generate.py printed, 0.137 [0.119, 0.159].
ACF_BASELINE = 0.137
QUICK_SETTINGS = {
    "WINDOW_SIZE": 32, "SCALES": 5, "BLOCK_OUT_CHANNELS": "(8,16)", "LAYERS_PER_BLOCK": 1,
    "NUM_TIMESTEPS": 50, "BATCH_SIZE": 8, "STRIDE": 4, "SAMPLING_STEPS": 3, "MAX_STEPS": 4,
    "EDGE_MARGIN": 2, "LOCAL_VOL_WINDOW": 7,
}  # fmt: skip


def garch_t_prices(n: int = 6000, seed: int = 0, dof: float = 3.5) -> pd.DataFrame:
    """Prices of a GARCH(1,1) with unit-variance t innovations (daily-sized: returns in percent / 100)."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta = 0.02, 0.08, 0.90
    shocks = rng.standard_t(dof, n) / np.sqrt(dof / (dof - 2))
    var, returns = omega / (1 - alpha - beta), np.empty(n)
    for t in range(n):
        returns[t] = np.sqrt(var) * shocks[t]
        var = omega + alpha * returns[t] ** 2 + beta * var
    close = 100 * np.exp(np.cumsum(np.r_[0.0, returns / 100]))
    return pd.DataFrame({"Close": close})


def sources(names: list[str], shared: Path, out: Path) -> dict[str, tuple[str, str | None]]:
    """The --data and --column of each series; shared stocks missing on disk are left out."""
    found: dict[str, tuple[str, str | None]] = {}
    for name in names:
        if name in SHARED_STOCKS:
            path = shared / f"{name}_daily.csv"
            if not path.is_file():
                print(f"{name}: {path} not found, skipped")
                continue
            found[name] = (str(path), "Adj Close")
        elif name == "garch-t":
            path = out / "garch_t.csv"
            garch_t_prices().to_csv(path, index=False)
            found[name] = (str(path), "Close")
        else:
            found[name] = (name, None)
    return found


def tail_figures(x: np.ndarray, real_std: float) -> dict[str, float]:
    """Pooled excess kurtosis, Hill index (top 5%), the 1%/99% quantiles and the 99.9% quantile
    of |r|, in real-std units."""
    r = np.asarray(x, dtype=np.float64).ravel()
    q01, q99 = np.quantile(r, [0.01, 0.99]) / real_std
    return {
        "kurtosis": m.excess_kurtosis(r),
        "hill": m.hill_tail_index(r),
        "q01": float(q01),
        "q99": float(q99),
        "q999_abs": float(np.quantile(np.abs(r), 0.999) / real_std),
    }


def kurtosis_spread(values: list[float], real: float) -> dict[str, float]:
    """5%, 50% and 95% points of kurtosis values, the real's percentile among them, and the
    share within +-30% of the real."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:  # fewer generated returns than the real series has
        nan = float("nan")
        return {"p05": nan, "median": nan, "p95": nan, "real_percentile": nan,
                "within_30": nan, "count": 0}  # fmt: skip
    lo, mid, hi = np.quantile(v, [0.05, 0.5, 0.95])
    return {
        "p05": float(lo),
        "median": float(mid),
        "p95": float(hi),
        "real_percentile": float(100 * np.mean(v < real)),
        "within_30": float(np.mean(np.abs(v / real - 1) <= 0.3)) if real else float("nan"),
        "count": len(v),
    }


def kurtosis_at_length(paths: np.ndarray, length: int) -> list[float]:
    """Excess kurtosis of consecutive runs of ``length`` returns, the paths laid end to end:
    what one series as long as the real one would show (heavy tails make the pooled
    kurtosis of many more returns larger)."""
    flat = np.asarray(paths, dtype=np.float64).ravel()
    return [m.excess_kurtosis(c) for c in flat[: len(flat) // length * length].reshape(-1, length)]


def resampled_kurtosis(real: np.ndarray, draws: int = 400, seed: int = 0) -> list[float]:
    """Excess kurtosis of the real returns resampled with replacement ``draws`` times: how
    much the real figure itself depends on its few largest days."""
    rng = np.random.default_rng(seed)
    return [m.excess_kurtosis(rng.choice(real, len(real))) for _ in range(draws)]


def garch_t_kurtosis(length: int, draws: int = 200) -> list[float]:
    """Excess kurtosis of fresh series of ``length`` returns from garch-t's own process."""
    return [
        m.excess_kurtosis(np.diff(np.log(garch_t_prices(length, seed=1000 + k)["Close"])))
        for k in range(draws)
    ]


def evaluate_series(name: str, step_dir: Path, paths: np.ndarray, n: int) -> dict[str, Any]:
    """Figures of the real training returns, our paths and the controls for one series."""
    loaded = ckpt.load_for_sampling(step_dir)
    real = np.asarray(loaded["real_returns"], dtype=np.float64)
    length = paths.shape[1]
    real_windows = windows_view(real, length, max(1, length // 4))
    run = loaded["settings"]
    sampler = run.get("SAMPLER") or "dpm"
    steps = run.get("SAMPLING_STEPS") or default_steps(
        sampler, loaded["scheduler_config"]["num_train_timesteps"]
    )
    controls = make_controls(
        loaded, n, 0, sampler, steps, vol_level=run.get("VOL_LEVEL") or "model"
    )
    rows = {"real": {**tail_figures(real, real.std()), "acf_dist": 0.0, "acf_ci": [0.0, 0.0]}}
    for label, x in {"ours": paths, **controls}.items():
        acf = realism_summary(real_windows, x)["figures"]["acf_abs20_dist"]
        rows[label] = {**tail_figures(x, real.std()), "acf_dist": acf["synth"], "acf_ci": acf["ci"]}
    normalizer = json.loads((step_dir / "normalizer.json").read_text())
    transform = json.loads((step_dir / "transform.json").read_text())
    real_k = rows["real"]["kurtosis"]
    spreads = {
        "ours_at_real_length": kurtosis_spread(kurtosis_at_length(paths, len(real)), real_k),
        "real_resampled": kurtosis_spread(resampled_kurtosis(real), real_k),
    }
    if name == "garch-t":
        spreads["true_process"] = kurtosis_spread(garch_t_kurtosis(len(real)), real_k)
    return {
        "series": name,
        "n_paths": n,
        "power": normalizer.get("power"),
        "local_spread": transform.get("local_spread", 1.0),
        "tail_power": normalizer.get("tail_power", [1.0, 1.0]),
        "tail_shift": normalizer.get("tail_shift", 0.0),
        "rows": rows,
        "kurtosis_spread": spreads,
        "n_real": len(real),
    }


def verdicts(result: dict[str, Any], acf_baseline: float) -> list[str]:
    """The targets of one series, each as 'met' or 'missed' with the numbers."""
    real, ours = result["rows"]["real"], result["rows"]["ours"]
    ratio = ours["kurtosis"] / real["kurtosis"] if real["kurtosis"] else float("nan")
    hill_gap = ours["hill"] - real["hill"]
    lines = [
        f"kurtosis {ours['kurtosis']:.2f} vs real {real['kurtosis']:.2f} ({ratio - 1:+.0%}): "
        f"{'met' if abs(ratio - 1) <= 0.3 else 'missed'} (+-30%)",
        f"Hill {ours['hill']:.2f} vs real {real['hill']:.2f} ({hill_gap:+.2f}): "
        f"{'met' if abs(hill_gap) <= 0.5 else 'missed'} (+-0.5)",
    ]
    for label, k in result.get("kurtosis_spread", {}).items():
        lines.append(
            f"kurtosis {label.replace('_', ' ')} ({k['count']} x {result['n_real']} returns): "
            f"median {k['median']:.2f}, 5-95% [{k['p05']:.2f}, {k['p95']:.2f}], the real at its "
            f"{k['real_percentile']:.0f}th percentile, {k['within_30']:.0%} within +-30% of it"
        )
    if result["series"] == "sp500":
        limit = 1.1 * acf_baseline
        lines.append(
            f"ACF |r| distance {ours['acf_dist']:.3f} vs the earlier default's {acf_baseline:.3f}: "
            f"{'met' if ours['acf_dist'] <= limit else 'missed'} (at most {limit:.3f})"
        )
    return lines


def table(results: list[dict[str, Any]], acf_baseline: float) -> str:
    """Markdown: a row per series and generator, then each series' targets."""
    head = (
        "| series | generator | excess kurtosis | Hill (5%) | q01 / std | q99 / std | q99.9 abs r / std | ACF abs r dist [95%] |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for res in results:
        for label, r in res["rows"].items():
            ci = "" if label == "real" else f" [{r['acf_ci'][0]:.3f}, {r['acf_ci'][1]:.3f}]"
            lines.append(
                f"| {res['series']} | {label} | {r['kurtosis']:.2f} | {r['hill']:.2f} | "
                f"{r['q01']:.2f} | {r['q99']:.2f} | {r.get('q999_abs', float('nan')):.2f} | "
                f"{r['acf_dist']:.3f}{ci} |"
            )
    lines.append("")
    for res in results:
        tail = res.get("tail_power", [1.0, 1.0])
        fitted = (
            f"power {res['power']:.3f}, local spread {res['local_spread']:.3f}, "
            f"tail stretch {tail[0]:.2f} / {tail[1]:.2f} less {res.get('tail_shift', 0.0):+.4f}"
        )
        lines.append(
            f"- {res['series']} ({res['n_paths']} paths; {fitted}): "
            + "; ".join(verdicts(res, acf_baseline))
        )
    return "\n".join(lines)


def _call(script: Any, argv: list[str]) -> None:
    if script.main(argv) != 0:
        raise ScalodiffError(f"{Path(script.__file__).name} stopped with an error (above)")


def run_series(name: str, data: tuple[str, str | None], out: Path, n: int, sets: list[str]) -> dict:
    """Train, generate and evaluate one series."""
    source, column = data
    flags = [*sets, "--data", source, "--save-dir", str(out / "checkpoints"), "--run-name", name]
    flags += ["--no-progress", "--seed", "0"] + (["--column", column] if column else [])
    print(f"\n=== {name}: train.py {' '.join(flags)}", flush=True)
    _call(train, flags)
    step_dir = ckpt.resolve_checkpoint(out / "checkpoints" / name, out / "checkpoints")
    paths_file = out / f"{name}.npy"
    _call(generate, [*sets, "--checkpoint", str(step_dir), "--n", str(n), "--seed", "0",
                     "--out", str(paths_file), "--no-plot", "--overwrite", "--no-progress"])  # fmt: skip
    return evaluate_series(name, step_dir, np.load(paths_file), n)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--series", nargs="+", choices=ALL_SERIES, help="series to run (default: all)")
    p.add_argument("--out", type=Path, default=Path("outputs/tails"), help="output folder")
    p.add_argument(
        "--n", type=int, default=256, help="paths per generator and control (default 256)"
    )
    p.add_argument("--shared-data", type=Path, default=ROOT.parent / "shared" / "data",
                   help="folder with aapl_daily.csv, msft_daily.csv, goog_daily.csv")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a config.py setting for every run, e.g. MAX_STEPS=1100 (repeatable)")  # fmt: skip
    p.add_argument("--acf-baseline", type=float, default=ACF_BASELINE,
                   help=f"the S&P 500 ACF distance to stay within 10%% of (default {ACF_BASELINE})")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="tiny models, 16 paths, sp500 and garch-t")
    return p


def tails(argv: list[str] | None = None) -> int:
    """Run the benchmark; print and write the table."""
    args = build_parser().parse_args(argv)
    sets = [f"{k}={v}" for k, v in QUICK_SETTINGS.items()] if args.quick else []
    sets = [flag for kv in [*sets, *args.set] for flag in ("--set", kv)]
    n = 16 if args.quick else args.n
    names = list(args.series or (QUICK_SERIES if args.quick else ALL_SERIES))
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name, data in sources(names, args.shared_data, args.out).items():
        results.append(run_series(name, data, args.out, n, sets))
        # Written after every series: a long run stopped part-way keeps what it measured.
        (args.out / "tails.json").write_text(json.dumps(results, indent=1))
        (args.out / "tails.md").write_text(table(results, args.acf_baseline) + "\n")
    print("\n" + table(results, args.acf_baseline))
    print(f"\nwrote {args.out / 'tails.md'} and {args.out / 'tails.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_script(tails, argv, "check --out and the series' files")


if __name__ == "__main__":
    sys.exit(main())
