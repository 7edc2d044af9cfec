"""Does a conditional checkpoint give what it is asked for? Three tables.

    python benchmarks/conditional.py --checkpoint checkpoints/<vol-regime run> --n 256 --guidance 1 2 3
    python benchmarks/conditional.py --checkpoint checkpoints/<vol-regime run> --unconditional checkpoints/<plain run>
    python benchmarks/conditional.py --checkpoint checkpoints/<asset run> --n 256

Every path is sampled through generate.sample_returns (as generate.py does),
with the same seeds for every class, so the classes differ only by their label.

1. **Per class** (vol-regime, trend): the real class's median and interquartile
   range of the labelled measure (realized volatility, or cumulative return for
   trend) over the training windows, as saved in the checkpoint; the generated
   paths' median; and the fraction of generated paths inside the real IQR. A
   realized-vol checkpoint is asked for the training windows' quantiles
   ``--targets`` and compared with the real windows whose rank is within 0.05.
   The target: medians ordered as the real ones and at least 70% inside.
2. **Per asset** (asset): each series' std of training log returns against the
   std of the paths generated for it; the target is a ratio within 0.8-1.2.
3. **Unconditional** (``--unconditional DIR``): the conditional model with the null
   label (guidance 0) against an unconditional model of the same data (volatility
   levels as generate.py gives unconditional paths: each checkpoint's VOL_LEVEL),
   both against the conditional checkpoint's real training windows, with
   evaluation.metrics.quick_summary. Error = |synth - real| (std: |ratio - 1|);
   the target is that the conditional model's errors be at most 10% above the
   unconditional model's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import generate  # noqa: E402  (the repository root is on the path only now)
from data.labels import GRID_PROBS, RANK_SCALE, Conditioning, inside, path_measure, summary  # noqa: E402
from data.windows import windows_view  # noqa: E402
from evaluation.metrics import quick_summary  # noqa: E402
from models.conditioning import Request, label_tensors  # noqa: E402
from models.diffusion import default_steps  # noqa: E402
from utils import checkpoint as ckpt  # noqa: E402
from utils.errors import ScalodiffError  # noqa: E402

# quick_summary keys compared in the unconditional table, and how each one's error is taken.
ERRORS = {
    "std": lambda s: abs(s["std_ratio"] - 1.0),
    "kurtosis": lambda s: abs(s["kurtosis_synth"] - s["kurtosis_real"]),
    "abs_acf1": lambda s: abs(s["abs_acf1_synth"] - s["abs_acf1_real"]),
    "abs_acf1_pooled": lambda s: abs(s["abs_acf1_pooled_synth"] - s["abs_acf1_pooled_real"]),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="conditional.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--checkpoint", required=True, metavar="DIR", help="conditional checkpoint or run"
    )
    p.add_argument("--unconditional", metavar="DIR", help="an unconditional checkpoint to compare")
    p.add_argument("--n", type=int, default=256, help="paths per class [%(default)s]")
    p.add_argument(
        "--guidance", type=float, nargs="+", default=[1.0], help="guidance scales [%(default)s]"
    )
    p.add_argument(
        "--targets",
        type=float,
        nargs="+",
        default=[0.1, 0.5, 0.9],
        help="realized-vol: training-window quantiles to ask for [%(default)s]",
    )
    p.add_argument("--sampler", default=None, help="sampler (default: the checkpoint's)")
    p.add_argument("--steps", type=int, default=None, help="solver steps (default: the sampler's)")
    p.add_argument("--seed", type=int, default=0, help="path i uses a seed derived from (seed, i)")
    p.add_argument("--batch-size", type=int, default=64, help="paths per denoising batch")
    p.add_argument("--device", default="cpu", help="cpu or cuda [%(default)s]")
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    return p.parse_args(argv)


class Sampler:
    """One checkpoint, sampled like generate.py with fixed sampler, steps, seed and batch."""

    def __init__(self, path: str, args: argparse.Namespace) -> None:
        self.step_dir = ckpt.resolve_checkpoint(path, "checkpoints")
        self.loaded = ckpt.load_for_sampling(self.step_dir)
        saved = self.loaded["conditioning"]
        self.spec = Conditioning.from_json(saved) if saved is not None else None
        self.name = args.sampler or self.loaded["settings"].get("SAMPLER") or "dpm"
        train_steps = self.loaded["scheduler_config"]["num_train_timesteps"]
        self.steps = args.steps or default_steps(self.name, train_steps)
        self.args = args

    def paths(self, request: Request | None, guidance: float = 1.0) -> np.ndarray:
        """``--n`` paths of log returns in real units for one request (None: unconditional)."""
        a = self.args
        labels, null = label_tensors(self.spec, request, a.n)
        normalizer = request.asset["normalizer"] if request and request.asset else None
        # Levels as generate.py takes them: the generated row for a label, VOL_LEVEL without one.
        level = generate.level_source(self.loaded["settings"].get("VOL_LEVEL"), request)
        returns, _ = generate.sample_returns(
            self.loaded,
            a.n,
            sampler_name=self.name,
            steps=self.steps,
            seed=a.seed,
            batch=a.batch_size,
            device=torch.device(a.device),
            labels=labels,
            null_labels=null,
            guidance=guidance,
            normalizer_json=normalizer,
            vol_level=level,
        )
        return returns


def class_table(s: Sampler, guidance: list[float]) -> list[dict[str, Any]]:
    """Table 1 for vol-regime and trend: real class median and IQR against generated paths."""
    spec, rows = s.spec, []
    for g in guidance:
        for k, name in enumerate(spec.classes):
            m = path_measure(spec.kind, s.paths(Request(k, name), g), spec.periods_per_year)
            real = spec.stats[k]
            rows.append(
                {
                    "guidance": g,
                    "class": name,
                    "real_median": real["median"],
                    "real_q25": real["q25"],
                    "real_q75": real["q75"],
                    "synth_median": float(np.median(m)),
                    **_shares(m, real),
                }
            )
    return rows


def _shares(m: np.ndarray, real: dict[str, float]) -> dict[str, float]:
    """Shares of generated paths below, inside and above the real IQR (where the misses go)."""
    return {
        "below_iqr": float(np.mean(m < real["q25"])),
        "inside_iqr": inside(m, real),
        "above_iqr": float(np.mean(m > real["q75"])),
    }


def target_table(s: Sampler, guidance: list[float], targets: list[float]) -> list[dict[str, Any]]:
    """Table 1 for realized-vol: targets at training quantiles against nearby real windows."""
    spec, rows = s.spec, []
    real = s.loaded["real_returns"]
    length = s.loaded["settings"]["WINDOW_SIZE"]
    measure = path_measure(spec.kind, windows_view(real, length, 1), spec.periods_per_year)
    rank = spec.rank(measure)
    for g in guidance:
        for u in targets:
            value = float(np.interp(u, GRID_PROBS, spec.grid))
            near = summary(measure[np.abs(rank - u) <= 0.05])
            m = path_measure(
                spec.kind, s.paths(Request(RANK_SCALE * u, f"q{u:g}"), g), spec.periods_per_year
            )
            rows.append(
                {
                    "guidance": g,
                    "class": f"{value:.4f} (q{u:g})",
                    "real_median": near["median"],
                    "real_q25": near["q25"],
                    "real_q75": near["q75"],
                    "synth_median": float(np.median(m)),
                    **_shares(m, near),
                }
            )
    return rows


def print_class_table(spec: Conditioning, rows: list[dict[str, Any]]) -> None:
    print(f"\n{spec.kind}: {spec.measure_name} ({spec.unit})\n")
    print(
        "| guidance | class | real median | real IQR | generated median | below IQR | inside real IQR | above IQR |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['guidance']:g} | {r['class']} | {r['real_median']:.4f} | {r['real_q25']:.4f}-"
            f"{r['real_q75']:.4f} | {r['synth_median']:.4f} | {100 * r['below_iqr']:.0f}% | "
            f"{100 * r['inside_iqr']:.0f}% | {100 * r['above_iqr']:.0f}% |"
        )
    for g in sorted({r["guidance"] for r in rows}):
        part = [r for r in rows if r["guidance"] == g]
        ordered = all(np.diff([r["synth_median"] for r in part]) > 0)
        worst = min(r["inside_iqr"] for r in part)
        print(
            f"guidance {g:g}: generated medians {'ordered' if ordered else 'NOT ordered'} as the "
            f"real classes; fewest inside the real IQR {100 * worst:.0f}% (target >= 70%)"
        )


def asset_table(s: Sampler, guidance: list[float]) -> list[dict[str, Any]]:
    """Table 2: each asset's real std against the std of its generated paths."""
    rows = []
    for g in guidance:
        for k, asset in enumerate(s.spec.assets):
            std = float(np.std(s.paths(Request(k, asset["name"], asset), g)))
            rows.append(
                {
                    "guidance": g,
                    "asset": asset["name"],
                    "real_std": asset["std"],
                    "synth_std": std,
                    "ratio": std / asset["std"],
                }
            )
    print("\n| guidance | asset | real std | generated std | ratio | within +-20% |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ok = "yes" if abs(r["ratio"] - 1) <= 0.2 else "no"
        print(
            f"| {r['guidance']:g} | {r['asset']} | {r['real_std']:.5f} | {r['synth_std']:.5f} | "
            f"{r['ratio']:.3f} | {ok} |"
        )
    return rows


def unconditional_table(cond: Sampler, plain: Sampler) -> dict[str, Any]:
    """Table 3: the conditional model's null label against an unconditional model."""
    if cond.spec.kind == "asset":
        raise ScalodiffError(
            "--unconditional: a multi-asset model has no unconditional path to compare"
        )
    if plain.spec is not None:
        raise ScalodiffError(f"--unconditional {plain.step_dir} is a conditional checkpoint")
    real = cond.loaded["real_returns"]
    null_paths = cond.paths(Request(None, "uncond"))
    length = null_paths.shape[1]
    windows = windows_view(real, length, max(1, length // 4))
    ours, theirs = quick_summary(windows, null_paths), quick_summary(windows, plain.paths(None))
    print(
        f"\nunconditional: {cond.step_dir} (null label) vs {plain.step_dir}, {len(windows)} "
        "real windows\n"
    )
    print("| metric | real | unconditional model | conditional, null label | error ratio |")
    print("|---|---|---|---|---|")
    ratios = {}
    for key, error in ERRORS.items():
        real_value = 1.0 if key == "std" else ours[f"{key}_real"]
        pick = "std_ratio" if key == "std" else f"{key}_synth"
        ratios[key] = error(ours) / max(error(theirs), 1e-12)
        print(
            f"| {key}{' ratio' if key == 'std' else ''} | {real_value:.4f} | {theirs[pick]:.4f} | "
            f"{ours[pick]:.4f} | {ratios[key]:.2f} |"
        )
    print("error ratio = conditional error / unconditional error (the target: <= 1.10)")
    return {"conditional": ours, "unconditional": theirs, "error_ratio": ratios}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the tables the checkpoint allows; return them (and write --json)."""
    args = parse_args(argv)
    s = Sampler(args.checkpoint, args)
    if s.spec is None:
        raise ScalodiffError(f"{s.step_dir} is unconditional; train with --condition first")
    print(f"checkpoint {s.step_dir}: {s.spec.kind}, {args.n} paths per class, {s.name}-{s.steps}")
    results: dict[str, Any] = {"checkpoint": str(s.step_dir), "kind": s.spec.kind}
    if s.spec.kind == "asset":
        results["assets"] = asset_table(s, args.guidance)
    else:
        if s.spec.kind == "realized-vol":
            rows = target_table(s, args.guidance, args.targets)
        else:
            rows = class_table(s, args.guidance)
        print_class_table(s.spec, rows)
        results["classes"] = rows
    if args.unconditional:
        results["unconditional"] = unconditional_table(s, Sampler(args.unconditional, args))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    try:
        main()
    except ScalodiffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
