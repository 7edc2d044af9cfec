"""Sampling speed versus quality: DDPM-1000, DDIM, DPM-Solver++ and UniPC on one checkpoint.

    python benchmarks/sampling.py                                  # newest checkpoint under SAVE_DIR
    python benchmarks/sampling.py --checkpoint checkpoints/<run> --n 256 --ddpm-n 64 --json s.json
    python benchmarks/sampling.py --samplers dpm-10,dpm-25 --n 64  # a quick look

Every sampler runs through generate.sample_returns, the function generate.py
calls, with the same seeds: path i starts from the same noise under every
sampler (DDPM then adds fresh noise at each step). For each it prints the time
per generated path and, against the checkpoint's real training returns cut into
windows as generate.py does, evaluation.metrics.quick_summary (std ratio, excess
kurtosis, lag-1 ACF of |r|) plus the distance between the ACF curves of |r|
(lags 1..min(100, L/2), as evaluate.py's acf_abs_dist).

The last columns compare with DDPM-1000: speed-up per path, and the relative
change of the ACF(|r|) distance and of the kurtosis error |kurtosis - real|
(positive = worse). The target: DPM-Solver++ at its default steps at least
40x faster per path than DDPM-1000 and at most 10% worse on those two. The
"+-" columns are bootstrap standard errors over paths: a difference smaller
than them is noise of the sample size, not of the sampler. DDPM-1000 is slow
on a CPU, so it samples --ddpm-n paths (the first ones of the same seeds).

A last line times one UNet forward per sample in the sampler's setting (eval,
inference mode, the sampling loop's memory layout: channels-last on a CPU)
against the same forward in the default layout and a training-mode forward, at
the same batch size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import generate  # noqa: E402  (the repository root is on the path only now)
from data.windows import windows_view  # noqa: E402
from evaluation import metrics as m  # noqa: E402
from models.diffusion import sampling_layout  # noqa: E402
from utils import checkpoint as ckpt  # noqa: E402
from utils.settings import config_defaults  # noqa: E402

DEFAULT_SAMPLERS = "ddpm-1000,ddim-50,dpm-10,dpm-20,dpm-25,dpm-50,unipc-20"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = config_defaults()
    p = argparse.ArgumentParser(
        prog="sampling.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="checkpoint or run folder (default: the newest under SAVE_DIR)",
    )
    p.add_argument(
        "--save-dir",
        default=defaults["SAVE_DIR"],
        help="where to look for the newest checkpoint [%(default)s]",
    )
    p.add_argument(
        "--samplers",
        default=DEFAULT_SAMPLERS,
        help="comma-separated NAME-STEPS; the first is the reference [%(default)s]",
    )
    p.add_argument("--n", type=int, default=256, help="paths per sampler [%(default)s]")
    p.add_argument(
        "--ddpm-n",
        type=int,
        default=64,
        help="paths for DDPM (slow): the first of the same seeds [%(default)s]",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=defaults["SAMPLE_BATCH"],
        help="paths per denoising batch [%(default)s]",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=defaults["SEED"],
        help="path i uses a seed derived from (seed, i) [%(default)s]",
    )
    p.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="[%(default)s]"
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=200,
        help="bootstrap resamples for the +- columns (0: off) [%(default)s]",
    )
    p.add_argument(
        "--no-forward-check",
        action="store_true",
        help="skip the sampling-versus-training forward timing",
    )
    p.add_argument(
        "--vol-level",
        choices=("fitted", "model"),
        help="where paths get their volatility level, as generate.py's --vol-level "
        "(default: the checkpoint's; 'model' isolates the samplers' own differences)",
    )
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    return p.parse_args(argv)


def parse_samplers(text: str) -> list[tuple[str, int]]:
    out = []
    for item in text.split(","):
        name, _, steps = item.strip().rpartition("-")
        if not name or not steps.isdigit():
            raise SystemExit(f"--samplers: {item!r} is not NAME-STEPS, e.g. dpm-25")
        out.append((name, int(steps)))
    return out


# ------------------------------------------------------------------ quality


def quality(
    real_windows: np.ndarray, synth: np.ndarray, acf_real: np.ndarray, lags: int
) -> dict[str, float]:
    """quick_summary plus the ACF(|r|) curve distance and the kurtosis error."""
    q = m.quick_summary(real_windows, synth)
    q["acf_abs_dist"] = m.curve_distance(acf_real, m.acf(np.abs(synth), lags))
    q["kurtosis_err"] = abs(q["kurtosis_synth"] - q["kurtosis_real"])
    return q


def bootstrap_se(
    real_windows: np.ndarray, synth: np.ndarray, acf_real: np.ndarray, lags: int, n: int, seed: int
) -> dict[str, float]:
    """Standard errors of the two compared metrics from resampling the generated paths."""
    if n <= 0:
        return {}
    rng = np.random.default_rng(seed)
    acf_abs_s = m.lagged_corr(np.abs(synth), np.abs(synth), lags)  # per path; resample rows
    dist, kurt = [], []
    for _ in range(n):
        rows = rng.integers(0, len(synth), len(synth))
        dist.append(m.curve_distance(acf_real, acf_abs_s[rows].mean(axis=0)))
        kurt.append(m.excess_kurtosis(synth[rows]))
    return {"acf_abs_dist_se": float(np.std(dist)), "kurtosis_se": float(np.std(kurt))}


# ------------------------------------------------------------------ forward check


def forward_check(
    unet: torch.nn.Module, batch: int, device: torch.device, repeats: int = 3
) -> dict[str, float]:
    """Seconds per sample of one UNet forward: the sampling loop's memory layout against the
    default one (both eval, inference mode), and a training-mode forward."""
    cfg = unet.config
    size = cfg.sample_size if isinstance(cfg.sample_size, int) else tuple(cfg.sample_size)
    shape = (batch, cfg.in_channels, *((size, size) if isinstance(size, int) else size))
    x = torch.randn(shape, device=device)
    t = torch.full((batch,), 500, device=device, dtype=torch.long)
    layout = sampling_layout(device)

    def timed(fn) -> float:
        fn()  # warm-up (kernel choice, allocations)
        best = float("inf")
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - t0)
        return best / batch

    def forward_in(memory_format: torch.memory_format) -> float:
        unet.to(memory_format=memory_format)
        given = x.contiguous(memory_format=memory_format)
        with torch.inference_mode():
            return timed(lambda: unet(given, t))

    unet.eval()
    plain, sampling = [], []
    for _ in range(repeats):  # interleaved, so that a busy moment hits both alike
        plain.append(forward_in(torch.contiguous_format))
        sampling.append(forward_in(layout))
    unet.to(memory_format=torch.contiguous_format).train()
    training = timed(lambda: unet(x, t).sample.sum())  # autograd records the graph
    unet.eval()
    return {
        "batch": batch,
        "layout": str(layout).removeprefix("torch."),
        "sampling_s_per_sample": min(sampling),
        "default_layout_s_per_sample": min(plain),
        "training_fwd_s_per_sample": training,
    }


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    step_dir = ckpt.resolve_checkpoint(args.checkpoint, args.save_dir)
    loaded = ckpt.load_for_sampling(step_dir)
    specs = parse_samplers(args.samplers)
    image = loaded["unet"].config.sample_size
    print(f"checkpoint {step_dir} (step {loaded['step']}), image {image}, on {device}")
    real = loaded["real_returns"]
    real_windows = acf_real = lags = None

    vol_level = args.vol_level or loaded["settings"].get("VOL_LEVEL") or "model"
    print(f"  volatility levels: {vol_level}")
    rows: list[dict[str, Any]] = []
    if args.ddpm_n % args.batch_size and any(name == "ddpm" for name, _ in specs):
        # A smaller last batch costs less per sample on a CPU (cache), which would flatter DDPM.
        print(
            f"  note: --ddpm-n {args.ddpm_n} is not a multiple of --batch-size {args.batch_size}; "
            "per-path speed-ups are like for like only when it is"
        )
    for name, steps in specs:
        n = args.ddpm_n if name == "ddpm" else args.n
        t0 = time.perf_counter()
        returns, _ = generate.sample_returns(
            loaded,
            n,
            sampler_name=name,
            steps=steps,
            seed=args.seed,
            batch=args.batch_size,
            device=device,
            vol_level=vol_level,
        )
        seconds = time.perf_counter() - t0
        if real_windows is None:  # as generate.py compares: real windows of the paths' length
            length = returns.shape[1]
            real_windows = (
                windows_view(real, length, max(1, length // 4))
                if len(real) >= length
                else real[None, :]
            )
            lags = m.abs_acf_max_lag(length)
            acf_real = m.acf(np.abs(real_windows), lags)
            print(f"  real: {len(real_windows)} windows of {length} from the checkpoint")
        row = {
            "sampler": f"{name}-{steps}",
            "name": name,
            "steps": steps,
            "n": n,
            "seconds": seconds,
            "s_per_path": seconds / n,
            "finite": bool(np.isfinite(returns).all()),
        }
        row.update(quality(real_windows, returns, acf_real, lags))
        row.update(bootstrap_se(real_windows, returns, acf_real, lags, args.bootstrap, args.seed))
        rows.append(row)
        print(
            f"  {row['sampler']:10s} {n:5d} paths {seconds:8.1f} s  {1000 * row['s_per_path']:8.1f} ms/path  "
            f"ACF|r| dist {row['acf_abs_dist']:.4f}  kurtosis {row['kurtosis_synth']:.3f}",
            flush=True,
        )

    ref = rows[0]
    for r in rows:
        r["speedup_vs_ref"] = ref["s_per_path"] / r["s_per_path"]
        r["acf_abs_dist_rel"] = _rel(r["acf_abs_dist"], ref["acf_abs_dist"])
        r["kurtosis_err_rel"] = _rel(r["kurtosis_err"], ref["kurtosis_err"])
    print()
    print(table(rows, ref))
    check = None
    if not args.no_forward_check:
        check = forward_check(loaded["unet"].to(device), min(args.batch_size, args.n), device)
        ms = {k: 1000 * v for k, v in check.items() if k.endswith("per_sample")}
        print(
            f"\nUNet forward at batch {check['batch']}: {ms['sampling_s_per_sample']:.2f} ms/sample "
            f"when sampling (eval, inference_mode, {check['layout']}), "
            f"{ms['default_layout_s_per_sample']:.2f} ms/sample in the default layout "
            f"({ms['sampling_s_per_sample'] / ms['default_layout_s_per_sample']:.2f}x), "
            f"{ms['training_fwd_s_per_sample']:.2f} ms/sample in training mode (autograd on)"
        )
    if args.json:
        payload = {
            "checkpoint": str(step_dir),
            "device": str(device),
            "real_windows": len(real_windows),
            "rows": rows,
            "forward_check": check,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    return 0


def _rel(value: float, ref: float) -> float:
    return (value - ref) / ref if ref else float("nan")


def table(rows: list[dict[str, Any]], ref: dict[str, Any]) -> str:
    """The quality-versus-steps table, markdown."""
    head = (
        f"| sampler | paths | ms/path | x faster than {ref['sampler']} | std ratio | kurtosis (real {ref['kurtosis_real']:.2f}) "
        f"| +- | kurtosis err vs {ref['sampler']} | ACF abs r dist | +- | vs {ref['sampler']} | abs_acf1 (real {ref['abs_acf1_real']:.3f}) |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['sampler']} | {r['n']} | {1000 * r['s_per_path']:.1f} | {r['speedup_vs_ref']:.1f} | "
            f"{r['std_ratio']:.3f} | {r['kurtosis_synth']:.3f} | {r.get('kurtosis_se', float('nan')):.3f} | "
            f"{100 * r['kurtosis_err_rel']:+.0f}% | {r['acf_abs_dist']:.4f} | {r.get('acf_abs_dist_se', float('nan')):.4f} | "
            f"{100 * r['acf_abs_dist_rel']:+.0f}% | {r['abs_acf1_synth']:.3f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
