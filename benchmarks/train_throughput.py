"""Training throughput of each preset: samples/s and achieved GFLOP/s of one training step.

    python benchmarks/train_throughput.py                       # cpu and seed presets on this device
    python benchmarks/train_throughput.py --presets cpu,gpu,seed --json out.json
    python benchmarks/train_throughput.py --presets cpu --bf16 both --channels-last both
    python benchmarks/train_throughput.py --presets gpu --bf16 both --compile both --tf32 both   # on a GPU

One step is what train.py's loop does for one batch on one device: copy the batch
of windows out of the window view, scalogram forward on the device, noise and
timesteps, UNet forward and backward (under bf16 autocast when on), gradient
clipping, AdamW step and the EMA update, and the loss read back to the host. The
data are train.py's: prepare_training_data() and build_transform() on config.py's
data source (the built-in S&P 500 when config.py's CSV file is absent).

FLOPs per sample are counted by torch.utils.flop_counter.FlopCounterMode over one
UNet forward + backward (matmuls, convolutions, attention; the scalogram transform,
elementwise work and the optimizer are not counted but are timed). Achieved GFLOP/s
= counted FLOPs x samples/s; the matmul peak of the device (fp32, and bf16 where
supported) is measured here for context.

Timings on a shared machine are noisy: compare the ratio columns, which come from
one run, rather than absolute numbers from different runs; the configurations are
timed in rounds (one step of each per round) so that a change of load hits all.
The seed preset (the reference: 26.6 M parameters, ~229 GFLOP per sample as counted
here) takes seconds per sample on a CPU, so it
runs with a small batch and few steps by default (--seed-batch-size, --seed-steps).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.training_data import TrainingData, prepare_training_data  # noqa: E402
from models.diffusion import EMA, build_noise_scheduler, build_unet  # noqa: E402
from models.training import diffusion_loss, noised_batch  # noqa: E402
from transforms.build import build_transform  # noqa: E402
from utils.device import resolve_mixed_precision  # noqa: E402
from utils.settings import apply_preset, config_defaults, data_source  # noqa: E402

TOGGLES = ("bf16", "channels_last", "compile", "tf32")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="train_throughput.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--presets",
        default="cpu,seed",
        help="comma-separated presets (cpu, gpu, seed) [%(default)s]",
    )
    p.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="[%(default)s]"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        help="windows per step for every preset but seed (default: the preset's BATCH_SIZE)",
    )
    p.add_argument(
        "--seed-batch-size",
        type=int,
        help="windows per step for the seed preset (default: 2 on CPU, its 16 on a GPU)",
    )
    p.add_argument(
        "--steps", type=int, default=5, help="timed steps per configuration [%(default)s]"
    )
    p.add_argument(
        "--seed-steps",
        type=int,
        help="timed steps for the seed preset (default: 2 on CPU, else --steps)",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="untimed steps first (compile needs them; seed on a CPU: 1) [%(default)s]",
    )
    choice = {"choices": ("auto", "on", "off", "both"), "default": "auto"}
    p.add_argument(
        "--bf16",
        **choice,
        help="bf16 autocast; auto = as train.py with config.py MIXED_PRECISION (auto: on for a bf16 GPU) [%(default)s]",
    )
    p.add_argument(
        "--channels-last",
        **choice,
        help="channels_last UNet weights; auto = on for a GPU, as train.py [%(default)s]",
    )
    p.add_argument(
        "--compile", **choice, help="torch.compile the UNet; auto = config.py COMPILE [%(default)s]"
    )
    p.add_argument(
        "--tf32",
        **choice,
        help="TF32 matmuls (torch.backends.cuda.matmul.allow_tf32) on a GPU; auto = off, as train.py. "
        "cuDNN convolutions use TF32 either way (PyTorch's default, which train.py keeps) [%(default)s]",
    )
    p.add_argument(
        "--threads",
        help="comma-separated torch.set_num_threads values to compare, e.g. 1,2 (default: torch's choice)",
    )
    p.add_argument(
        "--peak-seconds",
        type=float,
        default=2.0,
        help="time spent measuring each matmul peak [%(default)s]",
    )
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    return p.parse_args(argv)


# ------------------------------------------------------------------ device peak


def matmul_peak(device: torch.device, dtype: torch.dtype, seconds: float) -> float:
    """GFLOP/s of a large square matmul: the ceiling the UNet's convolutions work towards."""
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(2):  # warm-up: library selection, page faults
        a @ b
    sync(device)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10 if device.type == "cuda" else 1):
            a @ b
            count += 1
        sync(device)
    return 2 * n**3 * count / (time.perf_counter() - t0) / 1e9


def measure_peaks(device: torch.device, seconds: float, threads: int) -> dict[str, float]:
    """Matmul GFLOP/s in fp32, TF32 (GPU) and bf16 (where supported), with ``threads`` threads."""
    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False  # a variant may have left it on
    peaks = {"fp32": matmul_peak(device, torch.float32, seconds)}
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        peaks["tf32"] = matmul_peak(device, torch.float32, seconds)
        torch.backends.cuda.matmul.allow_tf32 = False
    if bf16_supported(device):
        peaks["bf16"] = matmul_peak(device, torch.bfloat16, seconds)
    return peaks


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------ one step


class Step:
    """train.py's loop body for one batch on one device (no accelerate wrapper: with one
    process it adds nothing but the autocast applied here directly)."""

    def __init__(
        self,
        settings: dict[str, Any],
        data: TrainingData,
        device: torch.device,
        opts: dict[str, bool],
    ) -> None:
        self.settings, self.device, self.opts = settings, device, opts
        self.windows = data.windows
        self.transform = build_transform(settings, self.windows)
        torch.manual_seed(settings["SEED"])
        self.unet = build_unet(
            settings, self.transform.channels, self.transform.height, self.transform.width
        ).to(device)
        if opts["channels_last"]:
            self.unet = self.unet.to(memory_format=torch.channels_last)  # as train.py does on a GPU
        self.scheduler = build_noise_scheduler(settings)
        self.optimizer = torch.optim.AdamW(
            self.unet.parameters(), lr=settings["LR"], weight_decay=settings["WEIGHT_DECAY"]
        )
        self.ema = EMA(self.unet, settings["EMA_DECAY"])
        self.model = torch.compile(self.unet) if opts["compile"] else self.unet
        self.rng = np.random.default_rng(0)
        self.gen = torch.Generator().manual_seed(0)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Windows -> scalograms on the device -> noisy input and target, as train.py builds them."""
        idx = np.sort(self.rng.choice(len(self.windows), size, replace=False))
        x = torch.from_numpy(self.windows[idx]).to(self.device, non_blocking=True)
        with torch.no_grad():
            x0 = self.transform.forward(x)
        return noised_batch(self.scheduler, x0, self.gen)

    def forward_backward(
        self, model: torch.nn.Module, noisy: torch.Tensor, t: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.opts["bf16"]):
            loss = diffusion_loss(model, noisy, t, target)
        loss.backward()
        return loss

    def __call__(self, size: int) -> float:
        loss = self.forward_backward(self.model, *self.batch(size))
        if self.settings["GRAD_CLIP"] is not None:  # None: no clipping
            torch.nn.utils.clip_grad_norm_(self.unet.parameters(), self.settings["GRAD_CLIP"])
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.unet)
        return loss.item()  # train.py reads the loss every step; this also waits for the GPU

    def flops_per_sample(self, size: int) -> float:
        """FLOPs of one UNet forward + backward per sample, counted on the eager model."""
        batch = self.batch(size)
        # The fused CPU attention kernel is not in the counter's table; the math backend runs
        # the same two matmuls as ops it does count.
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            self.forward_backward(self.unet, *batch)
        self.optimizer.zero_grad(set_to_none=True)
        return counter.get_total_flops() / size


def run_step(config: dict[str, Any]) -> float:
    """Seconds of one step of ``config``, with its thread count and TF32 setting in force."""
    torch.set_num_threads(config["threads"])
    torch.backends.cuda.matmul.allow_tf32 = config["opts"]["tf32"]
    step = config["step"]
    sync(step.device)
    t0 = time.perf_counter()
    step(config["batch"])
    return time.perf_counter() - t0


# ------------------------------------------------------------------ main


def variants(
    args: argparse.Namespace, device: torch.device, settings: dict[str, Any]
) -> list[dict[str, bool]]:
    """Every combination of the toggles asked for; the first one is train.py's default here."""
    cuda = device.type == "cuda"
    mixed = resolve_mixed_precision(settings["MIXED_PRECISION"], use_cpu=not cuda)
    default = {
        "bf16": mixed == "bf16",
        "channels_last": cuda,
        "compile": settings["COMPILE"],
        "tf32": False,
    }
    options = []
    for name in TOGGLES:
        value = getattr(args, name)
        if value == "auto":
            options.append([default[name]])
        elif value == "both":
            options.append([default[name], not default[name]])
        else:
            options.append([value == "on"])
        if name == "bf16" and True in options[-1] and not bf16_supported(device):
            raise SystemExit(f"bf16 is not supported on {device}")
    return [dict(zip(TOGGLES, combo, strict=True)) for combo in itertools.product(*options)]


def label(opts: dict[str, bool], device: torch.device) -> str:
    names = [n for n in TOGGLES if opts[n] and (n != "tf32" or device.type == "cuda")]
    return "+".join(names) or "fp32"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    thread_counts = (
        [int(n) for n in args.threads.split(",")] if args.threads else [torch.get_num_threads()]
    )
    torch.set_num_threads(thread_counts[0])
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    cpu = device.type == "cpu"
    base = config_defaults()
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]

    # Peaks per thread count, measured before and after the steps; the higher is kept (load
    # only ever lowers a peak).
    peaks = {n: measure_peaks(device, args.peak_seconds, n) for n in thread_counts}
    where = torch.cuda.get_device_name(device) if use_cuda else f"CPU, {os.cpu_count()} cores"
    print(f"device: {where}; torch {torch.__version__}")

    # Build every configuration first, then time them in rounds (one step of each per round):
    # on a shared machine the load drifts, and round-robin lets the drift hit all alike.
    configs: list[dict[str, Any]] = []
    for preset in presets:
        settings = apply_preset({**base, "PRESET": preset}, cuda_available=use_cuda)
        source, _note = data_source(settings)
        data = prepare_training_data(settings, source)  # the same data and window view as train.py
        seed = preset == "seed"
        if seed:
            size = args.seed_batch_size or (2 if cpu else settings["BATCH_SIZE"])
            steps = args.seed_steps or (2 if cpu else args.steps)
        else:
            size, steps = args.batch_size or settings["BATCH_SIZE"], args.steps
        flops = None
        for threads, opts in itertools.product(thread_counts, variants(args, device, settings)):
            step = Step(settings, data, device, opts)
            if flops is None:  # the same for every variant: count once, at a small batch
                flops = step.flops_per_sample(min(size, 2))
            name = label(opts, device) + (f" {threads}t" if len(thread_counts) > 1 else "")
            config = {
                "preset": preset,
                "variant": name,
                "opts": opts,
                "threads": threads,
                "step": step,
                "batch": size,
                "steps": steps,
                "flops": flops,
                "times": [],
            }
            for _ in range(args.warmup if not (seed and cpu) else 1):
                run_step(config)
            configs.append(config)
    for round_ in range(max(c["steps"] for c in configs)):
        for c in configs:
            if round_ < c["steps"]:
                c["times"].append(run_step(c))
        print(
            f"  round {round_ + 1}: "
            + ", ".join(
                f"{c['preset']} {c['variant']} {c['times'][-1]:.2f} s"
                for c in configs
                if round_ < c["steps"]
            ),
            flush=True,
        )
    for n in thread_counts:
        after = measure_peaks(device, args.peak_seconds, n)
        peaks[n] = {k: max(v, after[k]) for k, v in peaks[n].items()}
        shown = ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks[n].items())
        print(f"matmul peak with {n} thread(s), best of before and after: {shown}")

    rows: list[dict[str, Any]] = []
    for c in configs:
        per_step = statistics.median(c["times"])
        rate = c["batch"] / per_step
        step = c["step"]
        rows.append(
            {
                "preset": c["preset"],
                "variant": c["variant"],
                **c["opts"],
                "threads": c["threads"],
                "params_m": sum(p.numel() for p in step.unet.parameters()) / 1e6,
                "image": f"{step.transform.channels}x{step.transform.height}x{step.transform.width}",
                "batch": c["batch"],
                "steps": c["steps"],
                "step_s_median": per_step,
                "step_s_all": c["times"],
                "samples_per_s": rate,
                "gflop_per_sample": c["flops"] / 1e9,
                "gflop_per_s": c["flops"] * rate / 1e9,
            }
        )
    del configs

    seeds = {r["variant"]: r for r in rows if r["preset"] == "seed"}
    reference = next(iter(seeds.values()), None)
    for r in rows:
        first = next(x for x in rows if x["preset"] == r["preset"])
        r["x_default"] = r["samples_per_s"] / first["samples_per_s"]
        # Against the seed preset under the same settings when it ran them, else its default.
        same = seeds.get(r["variant"], reference)
        r["x_seed"] = r["samples_per_s"] / same["samples_per_s"] if same else None
        r["x_seed_default"] = r["samples_per_s"] / reference["samples_per_s"] if reference else None
        kind = "bf16" if r["bf16"] else "tf32" if r["tf32"] and use_cuda else "fp32"
        peak = peaks[r["threads"]][kind]
        r["pct_of_peak"] = 100 * r["gflop_per_s"] / peak
    print()
    print(table(rows, peaks))
    if reference:
        print(
            f"\nx seed = samples/s over the seed preset's (batch {reference['batch']}) with the same "
            "variant, or its default."
        )
        # The target compares train.py's default cpu run with the reference implementation,
        # which trained in fp32 without compile; that seed row exists with --bf16 both.
        cpu_default = next((r for r in rows if r["preset"] == "cpu"), None)
        plain = [r for r in seeds.values() if not (r["bf16"] or r["compile"] or r["channels_last"])]
        if cpu_default and plain:
            ratio = cpu_default["samples_per_s"] / plain[0]["samples_per_s"]
            print(
                f"cpu preset as train.py runs it ({cpu_default['variant']}) over the seed reference "
                f"({plain[0]['variant']}): {ratio:.1f}x (target on 2 cores: >= 30)"
            )
    if args.json:
        payload = {
            "device": where,
            "torch": torch.__version__,
            "peaks_gflop_s_by_threads": peaks,
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    return 0


def table(rows: list[dict[str, Any]], peaks: dict[str, float]) -> str:
    """A markdown table of the results."""
    head = "| preset | variant | params (M) | image | batch | GFLOP/sample | s/step | samples/s | GFLOP/s | % of peak | x default | x seed |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        x_seed = f"{r['x_seed']:.1f}" if r["x_seed"] is not None else "-"
        lines.append(
            f"| {r['preset']} | {r['variant']} | {r['params_m']:.2f} | {r['image']} | {r['batch']} | "
            f"{r['gflop_per_sample']:.2f} | {r['step_s_median']:.3f} | {r['samples_per_s']:.2f} | "
            f"{r['gflop_per_s']:.1f} | {r['pct_of_peak']:.0f} | {r['x_default']:.2f} | {x_seed} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
