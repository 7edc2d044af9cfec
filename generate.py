"""Generate synthetic price paths from a trained checkpoint.

    python generate.py                               # newest checkpoint, 256 paths, DPM-Solver++ 20 steps
    python generate.py --n 1000 --seed 7 --out paths.parquet --plot paths.png
    python generate.py --sampler ddpm                # all 1000 DDPM steps (slow)
    python generate.py --condition high --guidance 3     # a conditional checkpoint (see README)

Scalograms are sampled from seeded noise (one generator per path: path i is the
same whatever --batch-size), projected back to returns by the transform's exact
least-squares inverse, and mapped to real units by the saved normalizer. It
writes the paths (CSV/Parquet long form, or NPY of log returns), a PNG, and
prints how the generated returns compare with the training data.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from data.labels import Conditioning, inside, matching_windows, path_measure, summary
from data.returns import ReturnNormalizer
from data.windows import windows_view
from evaluation.summary import format_realism, realism_summary
from models.conditioning import Request, label_tensors, resolve_request
from models.diffusion import default_steps, make_sampler, sample
from transforms.volatility import VolatilityScalogram, transform_from_json
from utils import checkpoint as ckpt
from utils.errors import ScalodiffError, run_script
from utils.paths_io import write_paths
from utils.plotting import plot_generation
from utils.seeding import derive_seed
from utils.settings import SettingsParser


def build_parser() -> SettingsParser:
    """The command line: each flag overrides one config.py setting."""
    p = SettingsParser(prog="generate.py", description=__doc__)
    p.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="checkpoint or run folder (default: the newest under SAVE_DIR)",
    )
    p.add_setting("--save-dir", "SAVE_DIR", "where to look for the newest checkpoint")
    p.add_setting("--n", "N_SAMPLES", "number of paths", type=int)
    p.add_setting(
        "--sampler",
        "SAMPLER",
        "dpm (DPM-Solver++), unipc, ddim or ddpm (default: the checkpoint's)",
    )
    p.add_setting(
        "--steps",
        "SAMPLING_STEPS",
        "solver steps (default: dpm 20, unipc 20, ddim 50, ddpm all)",
        type=int,
    )
    p.add_setting("--seed", "SEED", "seed; path i uses a seed derived from (seed, i)", type=int)
    p.add_setting(
        "--batch-size",
        "SAMPLE_BATCH",
        "paths per denoising batch (does not change the paths)",
        type=int,
    )
    p.add_setting(
        "--start-price",
        "START_PRICE",
        "first price of every path (default: last training price)",
        type=float,
    )
    p.add_setting("--device", "DEVICE", "auto, cpu or cuda")
    p.add_argument(
        "--condition",
        metavar="NAME",
        help="conditional checkpoints: the class to generate, e.g. low/mid/high (vol-regime), "
        "down/flat/up (trend); default: unconditional",
    )
    p.add_argument(
        "--realized-vol",
        type=float,
        metavar="X",
        help="realized-vol checkpoints: the target realized volatility, annualized for daily "
        "data (0.25 = 25%% a year), in the units generate.py prints",
    )
    p.add_argument(
        "--asset", metavar="NAME", help="multi-asset checkpoints: the series to generate"
    )
    p.add_setting(
        "--guidance",
        "GUIDANCE",
        "classifier-free guidance scale: 1 conditional model alone, >1 stronger",
        type=float,
    )
    p.add_setting(
        "--vol-level",
        "VOL_LEVEL",
        "fitted: each path's volatility level is drawn from the training windows' levels; "
        "model: taken from the generated image (default: the checkpoint's preset; "
        "a conditional model asked for a label always uses model)",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="paths file: .csv, .parquet or .npy (default: OUTPUT_DIR/<run>-<step>-seed<S>.csv)",
    )
    p.add_argument("--plot", metavar="FILE.png", help="figure file (default: next to --out, .png)")
    p.add_argument("--no-plot", action="store_true", help="skip the figure")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors with exit status 2 for problems the user can fix."""
    return run_script(generate, argv, "free space or choose --out on a disk with room")


def sample_returns(
    loaded: dict[str, Any],
    n: int,
    sampler_name: str,
    steps: int,
    seed: int,
    batch: int,
    device: torch.device,
    labels: torch.Tensor | None = None,
    null_labels: torch.Tensor | None = None,
    guidance: float = 1.0,
    normalizer_json: dict[str, Any] | None = None,
    vol_level: str = "model",
) -> tuple[np.ndarray, torch.Tensor]:
    """Sample ``n`` scalograms in batches; return log returns in real units [n, L] and the scalograms.

    Conditional checkpoints take per-path ``labels`` (and ``null_labels`` for
    guidance, see models.conditioning.label_tensors); ``normalizer_json``
    replaces the checkpoint's normalizer (a multi-asset model's per-asset one).
    ``vol_level="fitted"`` draws each path's volatility level from the training
    windows' levels (transforms.volatility) with a seed derived from the path's.
    """
    transform = transform_from_json(loaded["transform"])
    normalizer = ReturnNormalizer.from_json(normalizer_json or loaded["normalizer"])
    unet = loaded["unet"].to(device)
    sampler = make_sampler(sampler_name, loaded["scheduler_config"])
    seeds = [derive_seed(seed, i) for i in range(n)]
    images, returns = [], []
    with tqdm(total=-(-n // batch) * steps, unit="step", desc=f"{sampler_name}-{steps}") as bar:
        for lo in range(0, n, batch):
            part = slice(lo, lo + batch)
            s = sample(
                unet, sampler, seeds[part], steps, device, on_step=lambda: bar.update(1),
                class_labels=None if labels is None else labels[part],
                null_labels=None if null_labels is None else null_labels[part], guidance=guidance,
            )  # fmt: skip
            if vol_level == "fitted" and isinstance(transform, VolatilityScalogram):
                rows = transform.draw_rows([derive_seed(k, 1) for k in seeds[part]])
                z = transform.inverse(s.double(), rows=rows).cpu().numpy()
            else:
                z = transform.inverse(s.double()).cpu().numpy()
            returns.append(normalizer.inverse(z))
            images.append(s.cpu())
    return np.concatenate(returns), torch.cat(images)


def level_source(vol_level: str | None, request: Request | None) -> str:
    """Where paths get their volatility level: the generated row when a label asks for
    something (the label decides the level), else VOL_LEVEL, as for an unconditional model."""
    if request is not None and request.label is not None:
        return "model"
    return vol_level or "model"


def generate(argv: list[str] | None = None) -> int:
    """Parse settings, sample, write files, print the comparison; return the exit status."""
    parser = build_parser()
    args, settings = parser.parse(argv)
    step_dir = ckpt.resolve_checkpoint(args.checkpoint, settings["SAVE_DIR"])
    loaded = ckpt.load_for_sampling(step_dir)
    run = loaded["settings"]
    sampler_name = settings["SAMPLER"] or run.get("SAMPLER") or "dpm"
    steps = settings["SAMPLING_STEPS"]
    if steps is None:
        steps = default_steps(sampler_name, loaded["scheduler_config"]["num_train_timesteps"])
    if settings["DEVICE"] == "cuda" and not torch.cuda.is_available():
        raise ScalodiffError("setting DEVICE is 'cuda' but no CUDA GPU is visible; use auto or cpu")
    device = torch.device(
        "cuda" if settings["DEVICE"] != "cpu" and torch.cuda.is_available() else "cpu"
    )
    spec, request = conditioning_request(loaded, args)
    guidance = settings["GUIDANCE"]
    asset = request.asset if request is not None else None
    real = loaded["real_returns"]
    last_price = run.get("LAST_TRAIN_PRICE")
    if asset is not None:  # a multi-asset model: this series' returns, price and normalizer
        real, last_price = real[asset["real_start"] : asset["real_stop"]], asset["last_train_price"]
    normalizer_json = asset["normalizer"] if asset is not None else loaded["normalizer"]
    start_price = settings["START_PRICE"] or float(last_price or 100.0)
    # Conditional outputs are named after what was asked for; unconditional names are unchanged.
    asked = (
        ""
        if request is None
        else f"-{request.name}" + (f"-g{guidance:g}" if request.label is not None else "")
    )
    out = Path(args.out) if args.out else (
        Path(settings["OUTPUT_DIR"]) / f"{step_dir.parent.name}-{step_dir.name}-{sampler_name}{steps}-seed{settings['SEED']}{asked}.csv"
    )  # fmt: skip
    plot = None if args.no_plot else Path(args.plot) if args.plot else out.with_suffix(".png")
    for target in (out, plot):
        if target is not None and target.exists() and not args.overwrite:
            raise ScalodiffError(
                f"{target} exists; pass --overwrite to replace it or choose another --out/--plot"
            )

    print(
        f"checkpoint {step_dir} (step {loaded['step']}); {settings['N_SAMPLES']} paths with {sampler_name}, {steps} steps on {device}"
    )
    if spec is not None:
        asking = (
            f"conditioned on {spec.kind} = {request.name}, guidance {guidance:g}"
            if request.label is not None
            else f"unconditional (the null label) from a {spec.kind} model"
        )
        print(f"{asking}; the training windows' {spec.measure_name} ({spec.unit}):")
        print("\n".join(spec.describe()))
    labels, null_labels = label_tensors(spec, request, settings["N_SAMPLES"])
    vol_level = level_source(settings["VOL_LEVEL"] or run.get("VOL_LEVEL"), request)
    if vol_level == "fitted" and run.get("VOLATILITY_ROW"):
        print("volatility levels: drawn from the training windows' (VOL_LEVEL = fitted)")
    t0 = time.perf_counter()
    returns, images = sample_returns(
        loaded,
        settings["N_SAMPLES"],
        sampler_name,
        steps,
        settings["SEED"],
        settings["SAMPLE_BATCH"],
        device,
        labels,
        null_labels,
        guidance,
        normalizer_json,
        vol_level,
    )
    seconds = time.perf_counter() - t0
    write_paths(out, returns, start_price=start_price, overwrite=args.overwrite)
    print(
        f"wrote {out} ({returns.shape[0]} paths x {returns.shape[1]} steps) in {seconds:.1f} s ({seconds / len(returns) * 1000:.0f} ms/path)"
    )

    length = returns.shape[1]
    real_windows = (
        windows_view(real, length, max(1, length // 4)) if len(real) >= length else real[None, :]
    )
    if spec is not None and request.label is not None and spec.kind != "asset":
        real_windows = compare_with_class(spec, request, real_windows, returns)
    print(format_realism(realism_summary(real_windows, returns, loaded["untrained_reference"])))
    if plot is not None:
        transform = transform_from_json(loaded["transform"])
        normalizer = ReturnNormalizer.from_json(normalizer_json)
        real_z = torch.from_numpy(
            np.ascontiguousarray(normalizer.transform(real_windows[:4]), dtype=np.float64)
        )
        plot_generation(
            plot, real_windows, returns, transform.forward(real_z).float(), images,
            start_price=start_price, title=f"{step_dir.parent.name} / {step_dir.name}: {sampler_name}-{steps}{asked}",
        )  # fmt: skip
        print(f"wrote {plot}")
    return 0


def conditioning_request(
    loaded: dict[str, Any], args: Any
) -> tuple[Conditioning | None, Request | None]:
    """The checkpoint's conditioning (None if unconditional) and what the flags ask of it."""
    saved = loaded.get("conditioning")
    spec = Conditioning.from_json(saved) if saved is not None else None
    config = loaded["unet"].config
    if spec is None and (config.num_class_embeds or config.class_embed_type):
        raise ScalodiffError(
            "the checkpoint's UNet is conditional but its conditioning.json is missing; the "
            "checkpoint is damaged: use another step-* folder of the run or retrain"
        )
    return spec, resolve_request(spec, args.condition, args.realized_vol, args.asset)


def compare_with_class(
    spec: Conditioning, request: Request, real_windows: np.ndarray, returns: np.ndarray
) -> np.ndarray:
    """Print how the paths' measure sits in the real class; return the class's real windows."""
    mask = matching_windows(spec, real_windows, request.label)
    if not mask.any():
        print(f"no real window of the paths' length matches {request.name}; comparing with all")
        return real_windows
    real_m = summary(path_measure(spec.kind, real_windows[mask], spec.periods_per_year))
    synth_m = path_measure(spec.kind, returns, spec.periods_per_year)
    print(
        f"{spec.measure_name}: real windows of {request.name} median {real_m['median']:.4f}, IQR "
        f"{real_m['q25']:.4f}-{real_m['q75']:.4f}; generated median {np.median(synth_m):.4f}, "
        f"{100 * inside(synth_m, real_m):.0f}% inside the real IQR"
    )
    return real_windows[mask]


if __name__ == "__main__":
    sys.exit(main())
