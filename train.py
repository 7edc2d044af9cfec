"""Train a diffusion model on wavelet scalograms of log returns.

    python train.py                       # config.py as it is (built-in S&P 500 if CSV_PATH is missing)
    python train.py --data my_prices.csv --column close --max-minutes 20
    python train.py --resume              # continue the newest run under SAVE_DIR
    accelerate launch --multi_gpu --num_processes 2 train.py   # several GPUs

The loop below is the whole training algorithm: windows of normalized log
returns are turned into scalograms on the training device, noised at a random
diffusion time, and the UNet learns to predict v (or the noise). AdamW with
warmup and cosine decay, gradient clipping, an EMA of the weights for sampling,
atomic checkpoints every CHECKPOINT_EVERY steps and at the end.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from safetensors.torch import save_file

from data.batches import BatchOrder
from data.builtin import list_datasets
from data.training_data import TrainingData, prepare_training_data
from evaluation.summary import untrained_reference
from models.calibration import (
    calibration_images,
    fit_continuation_level,
    fit_local_spread,
    fit_normalizer_level_shape,
    fit_tail_stretch,
)
from models.conditioning import training_labels
from models.continuation import (
    SHORT_HALFLIFE,
    START_BINS,
    context_channel_count,
    context_channels,
    default_known_lengths,
    draw_known_columns,
)
from models.decode import decode
from models.diffusion import EMA, build_noise_scheduler, build_unet, default_steps
from models.training import (
    Budget,
    check_finite,
    diffusion_loss,
    lr_at,
    noised_batch,
    set_lr,
    steps_per_epoch,
)
from transforms.build import build_transform
from utils import checkpoint as ckpt
from utils.device import resolve_device, resolve_mixed_precision
from utils.errors import run_script
from utils.runs import check_same_data, claim_run_dir, default_run_name, resume_run_dir
from utils.seeding import derive_seed
from utils.settings import SettingsParser, apply_preset, data_source
from utils.train_log import TrainingLog

STOP_SETTINGS = ("EPOCHS", "MAX_STEPS", "MAX_MINUTES")
# The untrained model's figures are sampled at the end of training only when that is quick
# (the cpu preset's DPM-20 takes seconds; the seed preset's DDPM-1000 would take an hour).
UNTRAINED_REFERENCE_MAX_STEPS = 100


def build_parser() -> SettingsParser:
    """The command line: each flag overrides one config.py setting."""
    p = SettingsParser(prog="train.py", description=__doc__)
    p.add_setting(
        "--data", "CSV_PATH", "price file (CSV, Parquet, HistData) or built-in dataset name"
    )
    p.add_setting("--column", "COLUMN", "price column (case-insensitive)")
    p.add_setting("--preset", "PRESET", "model size: cpu, gpu, seed (the reference) or auto")
    p.add_setting("--save-dir", "SAVE_DIR", "folder that holds the runs")
    p.add_setting("--window", "WINDOW_SIZE", "returns per window = generated path length", type=int)
    p.add_setting("--stride", "STRIDE", "step between window starts", type=int)
    p.add_setting("--batch-size", "BATCH_SIZE", "windows per step and device", type=int)
    p.add_setting("--lr", "LR", "peak learning rate", type=float)
    p.add_setting(
        "--epochs",
        "EPOCHS",
        "stop after this many passes over the data (presets: cpu 1000, gpu 200, seed 10)",
        type=int,
    )
    p.add_setting(
        "--max-steps",
        "MAX_STEPS",
        "stop after this many optimizer steps (None: no limit)",
        type=int,
    )
    p.add_setting(
        "--max-minutes",
        "MAX_MINUTES",
        "stop after this many minutes (None: no limit; presets: cpu 9, gpu 60, seed none)",
        type=float,
    )
    p.add_setting("--checkpoint-every", "CHECKPOINT_EVERY", "save every N steps", type=int)
    p.add_setting("--device", "DEVICE", "auto, cpu or cuda")
    p.add_setting("--seed", "SEED", "random seed", type=int)
    p.add_setting(
        "--condition",
        "CONDITION",
        "label to condition on: vol-regime, trend, asset (several series) or realized-vol (None: unconditional)",
    )
    p.add_setting(
        "--joint",
        "JOINT",
        "one joint model of the several series in --data (e.g. sp500,nasdaq): paths that move together",
        action="store_const",
        const=True,
    )
    p.add_argument(
        "--run-name", help="name of the run folder under SAVE_DIR (default: time and data)"
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="DIR",
        help="continue a run from its newest checkpoint: the newest run under SAVE_DIR, or DIR",
    )
    p.add_argument(
        "--allow-data-change",
        action="store_true",
        help="with --resume: continue even though the data read differ from the run's",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--list-datasets", action="store_true", help="list the built-in datasets and exit"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors with exit status 2 for problems the user can fix."""
    return run_script(train, argv, "free space or set SAVE_DIR (--save-dir) to a disk with room")


def train(argv: list[str] | None = None) -> int:
    """Parse settings, prepare data, transform and networks, claim the run folder, fit."""
    parser = build_parser()
    args, settings = parser.parse(argv)
    if args.list_datasets:
        print(list_datasets())
        return 0
    run_dir, resume_from = None, None
    if args.resume:
        run_dir, resume_from, settings = resume_run_dir(
            args.resume, settings, parser.explicit, STOP_SETTINGS
        )
    accel = start_accelerator(settings)
    settings = apply_preset(settings, cuda_available=accel.device.type == "cuda")
    saved = ckpt.load_resume_state(resume_from) if resume_from else {}
    source, note = data_source(settings, explicit="CSV_PATH" in parser.explicit)
    if note:
        print(note)
    data = prepare_training_data(
        settings, source, saved.get("normalizer"), saved.get("conditioning"), saved.get("joint")
    )
    if resume_from is not None and not args.allow_data_change:
        check_same_data(resume_from, settings.get("DATA_SHA256"), data)
    # The run records the data it read, so that a resume reads the same data again.
    settings.update(CSV_PATH=data.resolved, DATA_SHA256=data.sha256)
    settings["LAST_TRAIN_PRICE"] = data.last_train_price
    transform = build_transform(settings, data.windows, saved.get("transform"))
    net = Networks.build(settings, transform, data, saved.get("train_state"), accel.device)
    windows_per_step = settings["BATCH_SIZE"] * accel.num_processes * settings["GRAD_ACCUM"]
    per_epoch = steps_per_epoch(len(data.windows), windows_per_step, data.source)
    if run_dir is None:
        # Claimed only now that data and model are ready: a failed start leaves no folder.
        name = args.run_name or default_run_name(settings)
        run_dir = claim_run_dir(settings, name, accel.is_main_process)
    progress = not args.no_progress
    return fit(accel, settings, data, transform, net, per_epoch, run_dir, resume_from, progress)


def fit(
    accel: Accelerator,
    settings: dict[str, Any],
    data: TrainingData,
    transform: Any,
    net: Networks,
    per_epoch: int,
    run_dir: Path,
    resume_from: Path | None,
    progress: bool = True,
) -> int:
    """The training loop, from ``net``'s counters until the budget is spent; the exit status."""
    model, optimizer = net.prepare(accel, settings["COMPILE"])
    counters = net.counters
    world, rank, device = accel.num_processes, accel.process_index, accel.device
    accum, global_batch = settings["GRAD_ACCUM"], settings["BATCH_SIZE"] * world
    budget = Budget.from_settings(settings, per_epoch)
    order = BatchOrder(
        len(data.windows), global_batch, per_epoch * accum, settings["SEED"], rank, world
    )
    if accel.is_main_process:
        print(describe_run(settings, data, transform, net.unet, world, device, run_dir, budget))
    done = 100 * budget.progress(counters["step"], counters["elapsed_s"])
    log = TrainingLog(
        run_dir / "train_log.csv", accel.is_main_process, budget.describe(), done, progress
    )
    start, elapsed0, last_saved = time.perf_counter(), counters["elapsed_s"], resume_from
    model.train()
    try:
        while not budget.done(counters["step"], counters["elapsed_s"]):
            progress = budget.progress(counters["step"], counters["elapsed_s"])
            lr = lr_at(progress, counters["step"], settings)
            set_lr(optimizer, lr)
            for _ in range(accum):
                rows, b = order.next(counters)
                x = torch.from_numpy(data.windows[rows]).to(device, non_blocking=True)
                # Noise and times are a function of (SEED, step, rank, micro-batch): resumable exactly.
                g = torch.Generator().manual_seed(
                    derive_seed(settings["SEED"], counters["step"], rank, b)
                )
                with torch.no_grad():
                    x0 = transform.forward(x)
                noisy, t, target = noised_batch(net.scheduler, x0, g)
                labels = None  # drawn after t, so an unconditional run draws as it always did
                if data.conditioning is not None:
                    labels = training_labels(
                        data.conditioning, data.labels[rows], settings["CONDITION_DROP"], g
                    ).to(device)
                if settings["CONTEXT_FRACTIONS"]:  # drawn last, for the same reason as labels
                    noisy = with_context(settings, transform, x, noisy, g)
                with accel.accumulate(model), accel.autocast():
                    loss = diffusion_loss(model, noisy, t, target, labels)
                    accel.backward(loss)
                    if (
                        accel.sync_gradients and settings["GRAD_CLIP"] is not None
                    ):  # None: no clipping
                        accel.clip_grad_norm_(model.parameters(), settings["GRAD_CLIP"])
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
            loss_value, elapsed = mean_over_processes(
                accel, loss, elapsed0 + time.perf_counter() - start
            )
            check_finite(loss_value, counters["step"], last_saved)
            net.ema.update(net.raw)
            counters["step"] += 1
            counters["samples"] += global_batch * accum
            counters["elapsed_s"] = elapsed
            log.record(counters, loss_value, lr, 100 * budget.progress(counters["step"], elapsed))
            if counters["step"] % settings["CHECKPOINT_EVERY"] == 0:
                accel.wait_for_everyone()
                if accel.is_main_process:
                    net.save(run_dir, settings, transform, data)
                    log.flush()
                last_saved = run_dir / ckpt.step_dir_name(counters["step"])
    except KeyboardInterrupt:
        log.close()
        if accel.is_main_process:
            saved_to = net.save(run_dir, settings, transform, data)
            print(
                f"\ninterrupted: saved {saved_to}; continue with `python train.py --resume {run_dir}`"
            )
        return 130
    finally:
        log.close()
    accel.wait_for_everyone()
    _dump_weights_for_tests(net.raw, rank)
    if accel.is_main_process:
        final = last_saved
        if final is None or final.name != ckpt.step_dir_name(counters["step"]):
            final = net.save(run_dir, settings, transform, data)
        print(finish_checkpoint(final, settings, transform, data, accel.device))
        print(done_message(counters, final, run_dir))
    accel.end_training()
    return 0


def with_context(
    settings: dict[str, Any],
    transform: Any,
    windows: torch.Tensor,
    noisy: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """The noisy batch with each window's known history beside it (models.continuation)."""
    known = draw_known_columns(
        settings["CONTEXT_FRACTIONS"],
        settings["WINDOW_SIZE"],
        transform.margin,
        windows.shape[0],
        generator,
    )
    with torch.no_grad():
        ctx = context_channels(transform, windows, known.to(windows.device))
    return torch.cat([noisy, ctx.to(noisy.dtype)], dim=1)


def finish_checkpoint(
    final: Path, settings: dict[str, Any], transform: Any, data: TrainingData, device: Any
) -> str:
    """Fit what needs the finished model and store it in its checkpoint; say what was fitted.

    The generated local rows' spread (LOCAL_SPREAD = "fitted") goes into the
    transform; an unconditional run also keeps its untrained model's figures, which
    generate.py prints beside the trained ones.
    """
    steps = settings["SAMPLING_STEPS"] or default_steps(
        settings["SAMPLER"], settings["NUM_TIMESTEPS"]
    )
    fit_spread = settings["LOCAL_SPREAD"] == "fitted" and getattr(transform, "local_window", 0)
    fit_tails = settings.get("TAIL_STRETCH") == "fitted"
    fit_level = settings.get("CONTINUATION_LEVEL") == "fitted" and settings["CONTEXT_FRACTIONS"]
    single = data.conditioning is None and data.joint is None
    reference = single and steps <= UNTRAINED_REFERENCE_MAX_STEPS
    lines, loaded = [], {}
    if fit_spread or fit_tails or fit_level or reference:
        loaded = ckpt.load_for_sampling(final)
    if fit_spread or fit_tails:
        images, seeds = calibration_images(loaded, device=device, conditioning=data.conditioning)
    if fit_spread:
        fit = fit_local_spread(images, transform, data.windows)
        transform.local_spread = fit["factor"]
        loaded["transform"] = transform.to_json()  # what the untrained reference samples with
        ckpt.write_json_atomic(final, "transform.json", loaded["transform"])
        lines.append(
            f"local volatility row: generated spread {fit['generated']:.3f} against the training "
            f"rows' {fit['real']:.3f} ({fit['n']} windows): generated rows scaled by "
            f"{fit['factor']:.3f} (LOCAL_SPREAD = fitted)"
        )
    if fit_tails:
        lines.append(stretch_tails(final, loaded, transform, data, images, seeds, settings))
    if fit_level:
        lines.append(correct_continuation_level(final, loaded, transform, data, device, settings))
    if reference:
        ckpt.write_untrained_reference(final, untrained_reference(loaded))
        lines.append("untrained model's figures stored for generate.py's comparison")
    elif data.joint is not None:
        lines.append(
            "no untrained reference stored for a joint model: benchmarks/joint.py compares it "
            "with an untrained one and with independent draws"
        )
    elif data.conditioning is None:
        lines.append(
            f"no untrained reference stored: its 64 paths would take {steps} sampler steps each "
            "(evaluate.py --controls compares with an untrained model instead)"
        )
    return "\n".join(lines)


def stretch_tails(
    final: Path,
    loaded: dict[str, Any],
    transform: Any,
    data: TrainingData,
    images: torch.Tensor,
    seeds: list[int],
    settings: dict[str, Any],
) -> str:
    """Fit each series' tail stretch (TAIL_STRETCH = "fitted") on the calibration images,
    and a single series' level shape after it, store them in the checkpoint's normalizer (a
    joint model's joint.json: the stretch alone) and say what they are."""
    normalizers = data.joint.normalizers if data.joint is not None else [data.normalizer]
    for n in normalizers:  # fitted on the model as generated (a resumed run restored one)
        n.tail_start, n.tail_power, n.tail_shift = None, (1.0, 1.0), 0.0
        n.level_shape = None
    shape = None
    generated = decode(transform, images, seeds, settings["VOL_LEVEL"] or "model", normalizers)
    if data.joint is not None:
        names, real = data.joint.names, data.train_returns  # [T, A]
        fits = [fit_tail_stretch(generated[:, a], real[:, a], n) for a, n in enumerate(normalizers)]
        loaded["joint"] = data.joint.to_json()
        ckpt.write_json_atomic(final, "joint.json", loaded["joint"])
    else:
        names, fits = [""], [fit_tail_stretch(generated, data.train_returns, data.normalizer)]
        shape = fit_normalizer_level_shape(generated, data.train_returns, data.normalizer)
        loaded["normalizer"] = data.normalizer.to_json()
        ckpt.write_json_atomic(final, "normalizer.json", loaded["normalizer"])
    said = [
        f"powers {f['power'][0]:.3f} / {f['power'][1]:.3f} beyond {f['start'][0]:.2f} / "
        f"{f['start'][1]:.2f} scale units (negative / positive side), less the mean move "
        f"{f['shift']:+.4f} units ({100 * f['shift'] * n.scale:+.4f} %/return: the drift kept)"
        for f, n in zip(fits, normalizers, strict=True)
    ]
    text = (
        f"tails: generated returns stretched to the training returns' tails ({len(images)} "
        f"windows; TAIL_STRETCH = fitted): {per_series(names, said)}"
    )
    if shape is not None:
        text += "\n" + level_shape_line(shape)
    return text


def level_shape_line(fit: dict[str, Any]) -> str:
    """What the level shape fitted: the residual's kurtosis at each level, and the powers."""

    def figures(values: list[float]) -> str:
        return " / ".join(f"{v:.2f}" for v in values)

    edges = " / ".join(f"{e:.2f}" for e in fit["edges"])
    return (
        f"tails by level: residual kurtosis over the 21-return local RMS, split at {edges} "
        f"scale units: training {figures(fit['real_kurtosis'])}, generated "
        f"{figures(fit['generated_kurtosis'])}; powers {figures(fit['powers'])} "
        f"(TAIL_STRETCH = fitted)"
    )


def _bin_gains(fit: dict[str, Any]) -> str:
    """The start gains of a level fit, one figure per START_BINS bin."""
    return " ".join(f"{fit['start_gains'][lo]:.2f}" for lo, _ in START_BINS)


def _near(fit: dict[str, Any]) -> str:
    """The near slopes on the last days' level, one figure per near bin."""
    return " ".join(f"{slopes[3]:+.2f}" for slopes in fit["near_slopes"])


def correct_continuation_level(
    final: Path,
    loaded: dict[str, Any],
    transform: Any,
    data: TrainingData,
    device: Any,
    settings: dict[str, Any],
) -> str:
    """Fit the continued windows' level correction (CONTINUATION_LEVEL = "fitted") for every
    known length generate.py continues by default, store it in the checkpoint's transform
    and say what it is."""
    parts = getattr(transform, "parts", [transform])
    for part in parts:
        part.continuation_level = None  # fitted on the model as generated
    names = data.joint.names if data.joint is not None else [""]
    said = []
    for known in default_known_lengths(settings["CONTEXT_FRACTIONS"], transform.output_size):
        fits = fit_continuation_level(
            loaded, transform, data.windows, known, device=device, conditioning=data.conditioning
        )
        for part, fit in zip(parts, fits, strict=True):
            part.continuation_level = [*(part.continuation_level or []), fit]
        texts = [
            f"log ratio of new to known RMS {f['generated']:+.3f} generated, {f['real']:+.3f} "
            f"real, spread around its line {f['generated_sd']:.3f} / {f['real_sd']:.3f}, "
            f"skewness {f['generated_skew']:+.2f} / {f['real_skew']:+.2f}"
            + ("" if f["generated_quantiles"] else " (no quantile map: spread only)")
            + f", gains on the first new returns {_bin_gains(f)}, slope on the last days' level "
            f"(half-life {SHORT_HALFLIFE}) {f['short_slope']:+.2f} and by weeks {_near(f)}"
            for f in fits
        ]
        said.append(f"{known} known returns: {per_series(names, texts)}")
    loaded["transform"] = transform.to_json()
    ckpt.write_json_atomic(final, "transform.json", loaded["transform"])
    return (
        "continued windows' level given the real continuations' line and distribution "
        f"(CONTINUATION_LEVEL = fitted): {'; '.join(said)}"
    )


def per_series(names: list[str], texts: list[str]) -> str:
    """One text per series, each after its name (a single series has the name "")."""
    return "; ".join(f"{n}: {t}" if n else t for n, t in zip(names, texts, strict=True))


def mean_over_processes(accel: Accelerator, loss: torch.Tensor, clock: float) -> list[float]:
    """The loss and the clock averaged over processes in one all-reduce.

    Every process then holds the same elapsed time, so all agree on the learning rate
    (which follows MAX_MINUTES) and on the step at which MAX_MINUTES stops the run: a
    process stopping alone would leave the others waiting in the next gradient all-reduce,
    and different rates would split the weights.
    """
    clock_t = torch.tensor(clock, dtype=torch.float64, device=loss.device)
    return accel.reduce(torch.stack([loss.detach().double(), clock_t]), "mean").tolist()


def done_message(counters: dict[str, Any], final: Path, run_dir: Path) -> str:
    """What the run did, where its checkpoint is, and what to run next (on this run)."""
    return (
        f"done: {counters['step']} steps, {counters['samples']} samples in "
        f"{counters['elapsed_s'] / 60:.1f} min; checkpoint {final}\n"
        f"next: python generate.py --checkpoint {run_dir}"
    )


def start_accelerator(settings: dict[str, Any]) -> Accelerator:
    """accelerate's wrapper for the device (DEVICE), precision and gradient accumulation."""
    use_cpu = resolve_device(settings["DEVICE"]).type == "cpu"
    # accelerate keeps one precision per process and refuses another; a second run in the same
    # process (benchmarks, tests, the Python API) may ask for another: on a CPU with native bf16
    # "auto" is bf16. The process group (PartialState) is kept.
    AcceleratorState._reset_state()
    return Accelerator(
        cpu=use_cpu,
        mixed_precision=resolve_mixed_precision(settings["MIXED_PRECISION"], use_cpu),
        gradient_accumulation_steps=settings["GRAD_ACCUM"],
    )


class Networks:
    """The UNet being trained, its optimizer, its EMA, the noise schedule and the step counters."""

    def __init__(self, unet: torch.nn.Module, settings: dict[str, Any]) -> None:
        self.unet = self.raw = unet
        self.scheduler = build_noise_scheduler(settings)
        self.optimizer = torch.optim.AdamW(
            unet.parameters(), lr=settings["LR"], weight_decay=settings["WEIGHT_DECAY"]
        )
        self.ema = EMA(unet, settings["EMA_DECAY"])
        self.counters = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "elapsed_s": 0.0, "samples": 0}
        self.ema_unet = unet

    @classmethod
    def build(
        cls,
        settings: dict[str, Any],
        transform: Any,
        data: TrainingData,
        state: dict | None,
        device: torch.device,
    ) -> Networks:
        """Fresh networks seeded by SEED (the same on every process), or restored from ``state``."""
        torch.manual_seed(settings["SEED"])
        context = context_channel_count(transform) if settings["CONTEXT_FRACTIONS"] else 0
        unet = build_unet(
            settings,
            transform.channels,
            transform.height,
            transform.width,
            data.conditioning,
            context_channels=context,
        )
        net = cls(unet, settings)
        if state is not None:
            unet.load_state_dict(state["model"])
            net.optimizer.load_state_dict(state["optimizer"])
            net.ema.load_state_dict(
                {
                    "decay": settings["EMA_DECAY"],
                    "step": state["counters"]["step"],
                    "shadow": state["ema"],
                }
            )
            net.counters = state["counters"]
        if device.type == "cuda":
            net.unet = unet.to(memory_format=torch.channels_last)
        return net

    def prepare(self, accel: Accelerator, compile_model: bool) -> tuple[Any, Any]:
        """The model and optimizer wrapped for the device and processes (and compiled if asked)."""
        model, optimizer = accel.prepare(self.unet, self.optimizer)
        if compile_model:
            model = torch.compile(model)
        # The plain UNet under the DDP and torch.compile wrappers: its state-dict keys have no
        # "_orig_mod." prefix, so a checkpoint of a compiled run loads into a plain UNet (resume).
        self.raw = accel.unwrap_model(model, keep_torch_compile=False)
        self.ema_unet = copy.deepcopy(self.raw).to("cpu").eval()
        return model, optimizer

    def save(
        self, run_dir: Path, settings: dict[str, Any], transform: Any, data: TrainingData
    ) -> Path:
        """Write a checkpoint of the EMA weights and the resumable state; return its folder."""
        self.ema.copy_to(self.ema_unet)
        return ckpt.save_checkpoint(
            run_dir,
            self.counters["step"],
            self.ema_unet,
            self.scheduler,
            transform.to_json(),
            data.normalizer.to_json(),
            settings,
            data.real_returns,
            {
                "model": self.raw.state_dict(),
                "ema": self.ema.shadow,
                "optimizer": self.optimizer.state_dict(),
                "counters": self.counters,
            },
            keep=settings["KEEP_CHECKPOINTS"],
            extra_json=extra_records(data),
        )


def extra_records(data: TrainingData) -> dict[str, dict[str, Any]] | None:
    """The JSON records a conditional or joint checkpoint keeps beside the model."""
    if data.conditioning is not None:
        return {"conditioning": data.conditioning.to_json()}
    if data.joint is not None:
        return {"joint": data.joint.to_json()}
    return None


def powers(data: TrainingData) -> str:
    """The returns' power transform, one per series of a joint run."""
    normalizers = data.joint.normalizers if data.joint is not None else [data.normalizer]
    return ", ".join(f"{n.power:.3g}" for n in normalizers)


def describe_run(
    settings: dict[str, Any],
    data: TrainingData,
    transform: Any,
    unet: torch.nn.Module,
    world: int,
    device: torch.device,
    run_dir: Path,
    budget: Budget,
) -> str:
    """What this run trains on, with which model, where it writes and when it stops."""
    n_params = sum(p.numel() for p in unet.parameters()) / 1e6
    return (
        (f"{data.note}\n" if data.note else "")
        + f"data: {data.source}: {len(data.train_returns)} training returns, "
        f"{len(data.windows)} windows of {settings['WINDOW_SIZE']}\n"
        f"model: preset {settings['PRESET']}, {n_params:.2f} M parameters, images "
        f"{transform.channels} x {transform.height} x {transform.width} "
        f"({transform.describe()} rows; returns power {powers(data)}"
        f"{' fitted to the tails' if settings['RETURN_POWER'] == 'fitted' else ''}), "
        f"{world} process(es) on {device}\n"
        f"run: {run_dir} (stops at {budget.describe('minutes')})"
    )


def _dump_weights_for_tests(raw: torch.nn.Module, rank: int) -> None:
    """A testing hook: with SCALODIFF_DUMP_WEIGHTS=DIR set, every process writes its final
    raw weights to DIR/rank<R>.safetensors (tests/test_distributed.py checks that
    data-parallel ranks end with identical weights). Unset, nothing is written."""
    dump = os.environ.get("SCALODIFF_DUMP_WEIGHTS")
    if dump:
        Path(dump).mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in raw.state_dict().items()}
        save_file(state, Path(dump) / f"rank{rank}.safetensors")


if __name__ == "__main__":
    sys.exit(main())
