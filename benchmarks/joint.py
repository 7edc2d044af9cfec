"""Joint paths against the real aligned windows, the classical joint baselines and the controls.

    python train.py --data sp500,nasdaq --joint --run-name joint       # the default model
    python benchmarks/joint.py --checkpoint checkpoints/joint --n 256 --out runs/joint

For a joint checkpoint (train.py --joint) it samples ``--n`` joint paths of one
window and, at the same sizes:

- ``bootstrap``: a stationary block bootstrap of the aligned training returns,
  the same days for every series (evaluation/joint_baselines.py);
- ``copula-garch``: GARCH(1,1)-t per series joined by a t copula on the
  standardized residuals;
- ``independent`` (negative control): the same model, each series taken from
  paths drawn with another seed, so the series no longer belong together;
- ``untrained`` (negative control): the model at its initial weights.

For every pair of series it prints the cross-asset figures of
evaluation/joint_metrics.py (return correlation, |r| correlation at lags 0-5,
lower-tail dependence, correlation in volatile and calm windows) with 95%
bootstrap intervals over paths, against the real training windows (stride 1),
and each series' return std relative to the real. Then the targets: mean
correlation within 0.05 of the real, same-day |r| correlation within 0.1, tail
dependence within 30%, std ratios within +-20%. Writes OUT/joint.json,
OUT/joint.md, OUT/joint.png and each generator's paths (OUT/NAME.npy).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import generate  # noqa: E402  (the repository root is on the path only now)
from data.joint import JointInfo  # noqa: E402
from evaluation.controls import sample_paths, untrained_unet  # noqa: E402
from evaluation.joint_baselines import CopulaGarchBaseline, JointBootstrapBaseline  # noqa: E402
from evaluation.joint_metrics import joint_figures, joint_intervals, std_ratios  # noqa: E402
from evaluation.joint_report import real_joint_windows  # noqa: E402
from utils.errors import ScalodiffError, run_script  # noqa: E402

GENERATORS = ("ours", "bootstrap", "copula-garch", "independent", "untrained")
KEYS = (
    "corr", "corr_p10", "corr_p90", "corr_pooled", "abs_corr_lag0", "abs_corr_lag1", "abs_corr_lag5",
    "tail_dep", "corr_high_vol", "corr_low_vol",
)  # fmt: skip
# (figure, how it is judged, tolerance): "abs" |ours - real| <= tol, "rel" |ours / real - 1| <= tol.
TARGETS = (("corr", "abs", 0.05), ("abs_corr_lag0", "abs", 0.1), ("tail_dep", "rel", 0.3))
STD_TOLERANCE = 0.2
# Seeds of the independent control's other series: far from the paths' own.
INDEPENDENT_SEED_STEP = 1_000_003


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="benchmarks/joint.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="a joint run or step folder")
    p.add_argument("--n", type=int, default=256, help="paths per generator (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of every generator (default 0)")
    p.add_argument("--out", default="outputs/joint", help="folder for the results")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors with exit status 2."""
    return run_script(run, argv, "free space or choose --out on a disk with room")


def run(argv: list[str] | None = None) -> int:
    """Sample every generator, score them against the real windows, print and write."""
    args = build_parser().parse_args(argv)
    gen = generate.load(args.checkpoint)
    if gen.loaded.get("joint") is None:
        raise ScalodiffError(
            f"{gen.step_dir} is not a joint checkpoint; train one with "
            "`python train.py --data sp500,nasdaq --joint`"
        )
    info = JointInfo.from_json(gen.loaded["joint"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths, seconds = sample_all(gen, args.n, args.seed, not args.no_progress)
    real = real_joint_windows(gen.loaded["real_returns"], paths["ours"].shape[-1])
    results = score(real, paths, info.names)
    results["seconds"] = seconds
    for name, x in paths.items():
        np.save(out / f"{name}.npy", x.astype(np.float32))
    table = format_results(results, info.names)
    print(table)
    (out / "joint.md").write_text(table + "\n")
    (out / "joint.json").write_text(json.dumps(results, indent=1))
    plot_results(out / "joint.png", results, info.names)
    print(f"wrote {out / 'joint.json'}, {out / 'joint.md'}, {out / 'joint.png'}")
    return 0


def sample_all(
    gen: generate.Generator, n: int, seed: int, progress: bool
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every generator's ``n`` joint paths ``[n, A, L]`` and the seconds each took."""
    options = generate.SampleOptions(n=n, seed=seed, progress=progress)
    plan = gen.plan(options)
    paths, seconds = {}, {}
    t0 = time.perf_counter()
    paths["ours"] = gen.generate(plan).returns
    seconds["ours"] = time.perf_counter() - t0
    n_assets, length = paths["ours"].shape[1:]
    train_returns = np.asarray(gen.loaded["real_returns"], dtype=np.float64)
    for name, fit in (
        ("bootstrap", JointBootstrapBaseline.fit),
        ("copula-garch", lambda r: CopulaGarchBaseline.fit(r, copula="t")),
    ):
        t0 = time.perf_counter()
        paths[name] = fit(train_returns).sample(n, length, seed)
        seconds[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    independent = paths["ours"].copy()
    for a in range(1, n_assets):
        other = generate.SampleOptions(
            n=n, seed=seed + a * INDEPENDENT_SEED_STEP, progress=progress
        )
        independent[:, a] = gen.generate(gen.plan(other)).returns[:, a]
    paths["independent"] = independent
    seconds["independent"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    paths["untrained"] = sample_paths(
        gen.loaded, untrained_unet(gen.loaded), n, seed, plan.sampler, plan.steps,
        device=gen.device, vol_level=plan.vol_level,
    )  # fmt: skip
    seconds["untrained"] = time.perf_counter() - t0
    return paths, seconds


def score(real: np.ndarray, paths: dict[str, np.ndarray], names: list[str]) -> dict[str, Any]:
    """Figures, intervals, std ratios and the targets' verdicts of every generator."""
    real_figures = joint_figures(real)
    results: dict[str, Any] = {"names": names, "n_real_windows": len(real), "real": real_figures}
    for name, x in paths.items():
        results[name] = {
            "figures": joint_figures(x),
            "intervals": joint_intervals(x),
            "std_ratios": std_ratios(x, real),
            "n": len(x),
        }
    results["targets"] = {name: verdicts(real_figures, results[name]) for name in paths}
    return results


def verdicts(real: dict[str, dict[str, float]], generated: dict[str, Any]) -> dict[str, bool]:
    """Which targets a generator meets, per pair and figure, and for every std ratio."""
    met = {}
    for pair, figures in generated["figures"].items():
        for key, kind, tol in TARGETS:
            err = figures[key] - real[pair][key]
            if kind == "rel":
                err = figures[key] / real[pair][key] - 1
            met[f"{pair} {key}"] = bool(abs(err) <= tol)
    for a, ratio in enumerate(generated["std_ratios"]):
        met[f"std {a}"] = bool(abs(ratio - 1) <= STD_TOLERANCE)
    return met


def format_results(results: dict[str, Any], names: list[str]) -> str:
    """Markdown tables: one per pair (figures by generator, with intervals), std ratios, targets."""
    gens = [g for g in GENERATORS if g in results]
    lines = []
    for pair in results["real"]:
        a, b = (int(i) for i in pair.split("-"))
        lines += [
            f"### {names[a]} and {names[b]} ({results['n_real_windows']} real windows; "
            f"{results['ours']['n']} paths each, 95% intervals)",
            "",
            "| figure | real | " + " | ".join(gens) + " |",
            "|---" * (len(gens) + 2) + "|",
        ]
        for key in KEYS:
            cells = [f"{results['real'][pair][key]:.3f}"]
            for g in gens:
                lo, hi = results[g]["intervals"][pair][key]
                cells.append(f"{results[g]['figures'][pair][key]:.3f} [{lo:.3f}, {hi:.3f}]")
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["| return std / real | " + " | ".join(gens) + " |", "|---" * (len(gens) + 1) + "|"]
    for a, name in enumerate(names):
        ratios = [f"{results[g]['std_ratios'][a]:.3f}" for g in gens]
        lines.append(f"| {name} | " + " | ".join(ratios) + " |")
    lines += ["", "targets met (|corr - real| <= 0.05, |abs_corr_lag0 - real| <= 0.1, tail_dep "
              "within 30%, std within 20%):"]  # fmt: skip
    for g in gens:
        met = results["targets"][g]
        missed = [k for k, ok in met.items() if not ok]
        lines.append(
            f"- {g}: {sum(met.values())}/{len(met)}"
            + (f" (missed: {', '.join(missed)})" if missed else "")
        )
    return "\n".join(lines)


def plot_results(path: Path, results: dict[str, Any], names: list[str]) -> None:
    """The first pair's figures per generator with intervals, the real value as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pair = next(iter(results["real"]))
    gens = [g for g in GENERATORS if g in results]
    keys = ("corr", "abs_corr_lag0", "abs_corr_lag1", "tail_dep", "corr_high_vol", "corr_low_vol")
    fig, axes = plt.subplots(1, len(keys), figsize=(3.0 * len(keys), 3.6))
    for ax, key in zip(axes, keys, strict=True):
        for i, g in enumerate(gens):
            value = results[g]["figures"][pair][key]
            lo, hi = results[g]["intervals"][pair][key]
            ax.errorbar(i, value, yerr=[[value - lo], [hi - value]], fmt="o", capsize=3)
        ax.axhline(results["real"][pair][key], color="k", lw=1, ls="--", label="real")
        ax.set_xticks(range(len(gens)), gens, rotation=45, ha="right", fontsize=8)
        ax.set_title(key, fontsize=9)
    axes[0].legend(fontsize=8)
    a, b = (int(i) for i in pair.split("-"))
    fig.suptitle(f"{names[a]} and {names[b]}: joint figures, 95% intervals over paths", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
