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

Testing hook: with the environment variable SCALODIFF_DUMP_WEIGHTS=DIR set, every
process writes its final raw weights to DIR/rank<R>.safetensors (tests check that
data-parallel ranks end with identical weights). Unset, nothing is written.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from safetensors.torch import save_file
from tqdm.auto import tqdm

from data.builtin import list_datasets
from data.conditional import prepare_conditional, several_series
from data.quality import screen_prices
from data.readers import load_prices
from data.returns import ReturnNormalizer, log_returns, split_by_time
from data.windows import check_length, model_window, windows_view
from models.conditioning import training_labels
from models.diffusion import EMA, build_noise_scheduler, build_unet
from transforms.volatility import VolatilityScalogram, transform_from_json
from transforms.wavelet import Scalogram
from utils import checkpoint as ckpt
from utils.errors import ScalodiffError, run_script
from utils.runs import default_run_name, new_run_dir, resume_run_dir
from utils.seeding import derive_seed
from utils.settings import SettingsParser, apply_preset, data_source

STOP_SETTINGS = ("EPOCHS", "MAX_STEPS", "MAX_MINUTES")
# The transform's per-row scales are fitted on at most this many windows, evenly spaced
# over the training part. Stride-1 windows of a long series overlap almost entirely, so
# more add nothing to a root mean square, while fitting on all 8 M windows of 10 M minute
# bars took float64 copies of every window (16 GiB) and many minutes.
FIT_WINDOWS = 65_536


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
    p.add_setting("--epochs", "EPOCHS", "stop after this many passes over the data", type=int)
    p.add_setting("--max-steps", "MAX_STEPS", "stop after this many optimizer steps", type=int)
    p.add_setting("--max-minutes", "MAX_MINUTES", "stop after this many minutes", type=float)
    p.add_setting("--checkpoint-every", "CHECKPOINT_EVERY", "save every N steps", type=int)
    p.add_setting("--device", "DEVICE", "auto, cpu or cuda")
    p.add_setting("--seed", "SEED", "random seed", type=int)
    p.add_setting(
        "--condition",
        "CONDITION",
        "label to condition on: vol-regime, trend, asset (several series) or realized-vol",
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
        "--list-datasets", action="store_true", help="list the built-in datasets and exit"
    )
    return p


def lr_at(progress: float, step: int, settings: dict[str, Any]) -> float:
    """Linear warmup over WARMUP_STEPS, then cosine decay to 10% of LR as progress goes 0 -> 1."""
    peak = settings["LR"]
    if step < settings["WARMUP_STEPS"]:
        return peak * (step + 1) / settings["WARMUP_STEPS"]
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def resolve_mixed_precision(setting: str, use_cpu: bool) -> str:
    """``auto`` means bf16 autocast where the hardware has native bf16, else fp32.

    On a CPU that means AVX512-BF16 or AMX (oneDNN reports it); there bf16
    autocast roughly doubled training throughput of the cpu preset in our runs.
    Elsewhere bf16 is emulated and slower, so auto stays in fp32.
    """
    if setting != "auto":
        return setting
    if use_cpu:
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "no"


def prepare_data(
    settings: dict[str, Any], normalizer_json: dict | None, conditioning_json: dict | None = None
) -> dict[str, Any]:
    """Prices -> log returns -> normalizer (fitted on the training split) -> window view.

    A conditional run (CONDITION set, or several series) also gets per-window labels
    (``labels``) and their meaning (``conditioning``) from data.conditional.
    """
    if settings.get("CONDITION") or several_series(settings["CSV_PATH"], settings["COLUMN"]):
        return prepare_conditional(settings, normalizer_json, conditioning_json)
    source, note = data_source(settings)
    if note:
        print(note)
    prices = load_prices(
        source,
        settings["COLUMN"],
        max_missing_frac=settings["MAX_MISSING_FRAC"],
        date_format=settings["DATE_FORMAT"],
    )
    prices = screen_prices(prices, settings["OUTLIERS"])
    returns = log_returns(prices.values)
    check_length(len(returns), model_window(settings), prices.source, settings["TRAIN_FRAC"])
    train, _held_out = split_by_time(returns, settings["TRAIN_FRAC"])
    if normalizer_json is None:
        normalizer = ReturnNormalizer(power=settings["RETURN_POWER"], clip=settings["RETURN_CLIP"])
        normalizer.fit(train)
    else:
        normalizer = ReturnNormalizer.from_json(normalizer_json)
    z = np.ascontiguousarray(normalizer.transform(train), dtype=np.float32)
    windows = windows_view(z, model_window(settings), settings["STRIDE"])
    return {
        "prices": prices,
        "source": prices.source,
        "train_returns": train,
        "normalizer": normalizer,
        "windows": windows,
        "last_train_price": float(prices.values[len(train)]),
    }


def make_transform(
    settings: dict[str, Any], windows: np.ndarray, saved: dict | None
) -> Scalogram | VolatilityScalogram:
    """The scalogram transform, fitted per scale on the training windows (or as saved)."""
    if saved is not None:
        return transform_from_json(saved)
    transform = Scalogram(
        window_size=model_window(settings),
        n_scales=settings["SCALES"],
        wavelet=settings["WAVELET"],
        mode=settings["TRANSFORM_MODE"],
        scale_min=settings["SCALE_MIN"],
        scale_max=settings["SCALE_MAX"],
        include_mean=settings["TRANSFORM_MODE"] != "magnitude",
        image_width=settings["IMAGE_SIZE"],
    )
    fit_windows = windows[:: -(-len(windows) // FIT_WINDOWS)]
    if settings["LOCAL_VOL_WINDOW"] and not settings["VOLATILITY_ROW"]:
        raise ScalodiffError(
            "setting LOCAL_VOL_WINDOW needs VOLATILITY_ROW = True: the local row is relative "
            "to the window's RMS, which the volatility row carries"
        )
    if settings["VOLATILITY_ROW"]:
        return VolatilityScalogram(
            transform, settings["LOCAL_VOL_WINDOW"], settings["EDGE_MARGIN"]
        ).fit(fit_windows)
    return transform.fit(fit_windows)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors with exit status 2 for problems the user can fix."""
    return run_script(train, argv, "free space or set SAVE_DIR (--save-dir) to a disk with room")


def train(argv: list[str] | None = None) -> int:
    """Parse settings, prepare data and model, run the loop; return the exit status."""
    parser = build_parser()
    args, settings = parser.parse(argv)
    if args.list_datasets:
        print(list_datasets())
        return 0

    if args.resume:
        run_dir, resume_from, settings = resume_run_dir(
            args.resume, settings, parser.explicit, STOP_SETTINGS
        )
    else:
        resume_from = None
    use_cpu = settings["DEVICE"] == "cpu" or not torch.cuda.is_available()
    if settings["DEVICE"] == "cuda" and use_cpu:
        raise ScalodiffError("setting DEVICE is 'cuda' but no CUDA GPU is visible; use auto or cpu")
    mp = resolve_mixed_precision(settings["MIXED_PRECISION"], use_cpu)
    accel = Accelerator(
        cpu=use_cpu, mixed_precision=mp, gradient_accumulation_steps=settings["GRAD_ACCUM"]
    )
    settings = apply_preset(settings, cuda_available=accel.device.type == "cuda")
    saved = ckpt.load_train_state(resume_from) if resume_from else None
    saved_json = (
        {n: ckpt.read_json(resume_from, f"{n}.json") for n in ("normalizer", "transform")}
        if resume_from
        else {}
    )
    if resume_from and (resume_from / "conditioning.json").is_file():
        saved_json["conditioning"] = ckpt.read_json(resume_from, "conditioning.json")
    data = prepare_data(settings, saved_json.get("normalizer"), saved_json.get("conditioning"))
    settings["LAST_TRAIN_PRICE"] = data["last_train_price"]
    windows = data["windows"]
    # Conditional runs only: the label of every window and what the labels mean.
    labels, conditioning = data.get("labels"), data.get("conditioning")
    transform = make_transform(settings, windows, saved_json.get("transform"))

    torch.manual_seed(settings["SEED"])  # same initial weights on every rank
    unet = build_unet(settings, transform.channels, transform.height, transform.width, conditioning)
    noise_scheduler = build_noise_scheduler(settings)
    optimizer = torch.optim.AdamW(
        unet.parameters(), lr=settings["LR"], weight_decay=settings["WEIGHT_DECAY"]
    )
    ema = EMA(unet, settings["EMA_DECAY"])
    counters = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "elapsed_s": 0.0, "samples": 0}
    if saved is not None:
        unet.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        ema.load_state_dict(
            {
                "decay": settings["EMA_DECAY"],
                "step": saved["counters"]["step"],
                "shadow": saved["ema"],
            }
        )
        counters = saved["counters"]
    if accel.device.type == "cuda":
        unet = unet.to(memory_format=torch.channels_last)
    model, optimizer = accel.prepare(unet, optimizer)
    if settings["COMPILE"]:
        model = torch.compile(model)
    # The plain UNet under the DDP and torch.compile wrappers: its state-dict keys have no
    # "_orig_mod." prefix, so a checkpoint of a compiled run loads into a plain UNet (resume).
    raw = accel.unwrap_model(model, keep_torch_compile=False)
    ema_unet = copy.deepcopy(raw).to("cpu").eval()

    world, rank, device = accel.num_processes, accel.process_index, accel.device
    per_device = settings["BATCH_SIZE"]
    global_batch = per_device * world
    steps_per_epoch = len(windows) // global_batch // settings["GRAD_ACCUM"]
    if steps_per_epoch == 0:
        raise ScalodiffError(
            f"{data['source']}: {len(windows)} training windows are fewer than one step's {global_batch * settings['GRAD_ACCUM']}; "
            "lower BATCH_SIZE (--batch-size) or STRIDE, or use a longer series"
        )
    limits = [settings["EPOCHS"] * steps_per_epoch]
    if settings["MAX_STEPS"]:
        limits.append(settings["MAX_STEPS"])
    total_steps = min(limits)
    max_seconds = settings["MAX_MINUTES"] * 60 if settings["MAX_MINUTES"] else math.inf

    if resume_from is None:
        # Claimed only now that data and model are ready: a failed start leaves no folder.
        # Every rank must agree on the folder: rank 0 names and creates it (the time differs
        # between processes) and passes on its error too, so that no rank trains on alone.
        name, problem = args.run_name or default_run_name(settings), None
        if accel.is_main_process:
            try:
                new_run_dir(settings, name)
            except ScalodiffError as exc:
                problem = str(exc)
        name, problem = broadcast_object_list([name, problem])
        if problem is not None:
            raise ScalodiffError(problem)
        run_dir = Path(settings["SAVE_DIR"]) / name

    if accel.is_main_process:
        n_params = sum(p.numel() for p in unet.parameters()) / 1e6
        print(
            f"data: {data['source']}: {len(data['train_returns'])} training returns, "
            f"{len(windows)} windows of {settings['WINDOW_SIZE']}\n"
            f"model: preset {settings['PRESET']}, {n_params:.2f} M parameters, images "
            f"{transform.channels} x {transform.height} x {transform.width} "
            f"({transform.describe()} rows; returns power {data['normalizer'].power:g}), "
            f"{world} process(es) on {device}\n"
            f"run: {run_dir} (stops at {total_steps} steps"
            + (f" or {settings['MAX_MINUTES']:g} minutes" if settings["MAX_MINUTES"] else "")
            + ")"
        )
    log_path = run_dir / "train_log.csv"
    log_file = None
    if accel.is_main_process:
        new_log = not log_path.exists()
        log_file = open(log_path, "a", newline="")  # noqa: SIM115 (closed in finally)
        log_writer = csv.writer(log_file)
        if new_log:
            log_writer.writerow(["step", "epoch", "loss", "lr", "samples_per_s", "elapsed_s"])

    def save() -> Path:
        ema.copy_to(ema_unet)
        return ckpt.save_checkpoint(
            run_dir, counters["step"], ema_unet, noise_scheduler, transform.to_json(),
            data["normalizer"].to_json(), settings, data["train_returns"],
            {
                "model": raw.state_dict(),
                "ema": ema.shadow,
                "optimizer": optimizer.state_dict(),
                "lr_scheduler": {},
                "counters": counters,
            },
            keep=settings["KEEP_CHECKPOINTS"],
            extra_json={"conditioning": conditioning.to_json()} if conditioning else None,
        )  # fmt: skip

    limit = f"{total_steps} steps" + (
        f" or {settings['MAX_MINUTES']:g} min" if settings["MAX_MINUTES"] else ""
    )
    # The bar counts percent of whichever limit binds first (steps or minutes), so its
    # remaining-time estimate is right for a time-limited run too.
    bar = tqdm(
        total=100.0, initial=0.0, disable=not accel.is_main_process, unit="%",
        desc=f"train (stops at {limit})", dynamic_ncols=True,
        bar_format="{l_bar}{bar}| {n:.1f}% [{elapsed}<{remaining}{postfix}]",
    )  # fmt: skip
    bar.update(
        min(100.0, 100 * max(counters["step"] / total_steps, counters["elapsed_s"] / max_seconds))
    )
    start, elapsed0, smooth_loss = time.perf_counter(), counters["elapsed_s"], None
    last_saved = counters["step"] if saved is not None else -1
    perm = None
    model.train()
    try:
        while counters["step"] < total_steps and counters["elapsed_s"] < max_seconds:
            progress = max(counters["step"] / total_steps, counters["elapsed_s"] / max_seconds)
            lr = lr_at(progress, counters["step"], settings)
            for group in optimizer.param_groups:
                group["lr"] = lr
            for _ in range(settings["GRAD_ACCUM"]):
                if (
                    perm is None
                    or counters["batch_in_epoch"] >= steps_per_epoch * settings["GRAD_ACCUM"]
                ):
                    if perm is not None:
                        counters["epoch"] += 1
                        counters["batch_in_epoch"] = 0
                    # The data order depends only on (SEED, epoch): a resumed run sees the same batches.
                    g = torch.Generator().manual_seed(
                        derive_seed(settings["SEED"], counters["epoch"])
                    )
                    perm = torch.randperm(len(windows), generator=g).numpy()
                b = counters["batch_in_epoch"]
                idx = perm[b * global_batch : (b + 1) * global_batch][rank::world]
                counters["batch_in_epoch"] += 1
                rows = np.sort(idx)
                x = torch.from_numpy(windows[rows]).to(device, non_blocking=True)
                # Noise and times are a function of (SEED, step, rank, micro-batch): resumable exactly.
                g = torch.Generator().manual_seed(
                    derive_seed(settings["SEED"], counters["step"], rank, b)
                )
                with torch.no_grad():
                    x0 = transform.forward(x)
                noise = torch.randn(x0.shape, generator=g).to(device)
                t = torch.randint(
                    0, noise_scheduler.config.num_train_timesteps, (x0.shape[0],), generator=g
                ).to(device)
                noisy = noise_scheduler.add_noise(x0, noise, t)
                class_labels = None  # drawn after t, so an unconditional run draws as it always did
                if conditioning is not None:
                    drop = settings["CONDITION_DROP"]
                    class_labels = training_labels(conditioning, labels[rows], drop, g).to(device)
                target = (
                    noise
                    if settings["PREDICTION_TYPE"] == "epsilon"
                    else noise_scheduler.get_velocity(x0, noise, t)
                )
                with accel.accumulate(model), accel.autocast():
                    pred = model(noisy, t, class_labels=class_labels).sample
                    loss = torch.nn.functional.mse_loss(pred.float(), target)
                    accel.backward(loss)
                    if accel.sync_gradients and settings["GRAD_CLIP"] is not None:
                        accel.clip_grad_norm_(model.parameters(), settings["GRAD_CLIP"])
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
            # One all-reduce carries the loss and the clock. Every rank then holds the same
            # elapsed time, so all agree on the learning rate (which follows MAX_MINUTES) and on
            # the step at which MAX_MINUTES stops the run: a rank stopping alone would leave the
            # others waiting in the next gradient all-reduce, and different rates split weights.
            clock = torch.tensor(elapsed0 + time.perf_counter() - start, dtype=torch.float64)
            local = torch.stack([loss.detach().double(), clock.to(loss.device)])
            loss_value, elapsed = accel.reduce(local, "mean").tolist()
            if not math.isfinite(loss_value):
                kept = (
                    f"; the last good checkpoint is {ckpt.list_checkpoints(run_dir)[-1]}"
                    if ckpt.list_checkpoints(run_dir)
                    else ""
                )
                raise ScalodiffError(
                    f"loss became {loss_value} at step {counters['step']}: training stopped{kept}. "
                    "Lower LR (--lr), check the data for extreme values, or set RETURN_CLIP"
                )
            ema.update(raw)
            counters["step"] += 1
            counters["samples"] += global_batch * settings["GRAD_ACCUM"]
            counters["elapsed_s"] = elapsed
            smooth_loss = (
                loss_value if smooth_loss is None else 0.95 * smooth_loss + 0.05 * loss_value
            )
            rate = (counters["samples"] - 0) / max(counters["elapsed_s"], 1e-9)
            if accel.is_main_process:
                done = 100 * max(
                    counters["step"] / total_steps, counters["elapsed_s"] / max_seconds
                )
                bar.update(min(100.0, done) - bar.n)
                bar.set_postfix(
                    step=counters["step"], loss=f"{smooth_loss:.4f}", samples_s=f"{rate:.1f}",
                    epoch=counters["epoch"],
                )  # fmt: skip
                log_writer.writerow(
                    [
                        counters["step"],
                        counters["epoch"],
                        f"{loss_value:.6f}",
                        f"{lr:.3e}",
                        f"{rate:.2f}",
                        f"{counters['elapsed_s']:.1f}",
                    ]
                )
            if counters["step"] % settings["CHECKPOINT_EVERY"] == 0:
                accel.wait_for_everyone()
                if accel.is_main_process:
                    save()
                    log_file.flush()
                last_saved = counters["step"]
    except KeyboardInterrupt:
        if accel.is_main_process:
            bar.close()
            print(
                f"\ninterrupted: saved {save()}; continue with `python train.py --resume {run_dir}`"
            )
        return 130
    finally:
        bar.close()
        if log_file is not None:
            log_file.close()
    accel.wait_for_everyone()
    dump = os.environ.get("SCALODIFF_DUMP_WEIGHTS")
    if dump:  # testing hook (see the module docstring): every rank writes its own weights
        Path(dump).mkdir(parents=True, exist_ok=True)
        state = raw.state_dict()
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in state.items()},
            Path(dump) / f"rank{rank}.safetensors",
        )
    if accel.is_main_process:
        final = save() if last_saved != counters["step"] else ckpt.list_checkpoints(run_dir)[-1]
        print(
            f"done: {counters['step']} steps, {counters['samples']} samples in "
            f"{counters['elapsed_s'] / 60:.1f} min; checkpoint {final}\nnext: python generate.py"
        )
    accel.end_training()
    return 0


if __name__ == "__main__":
    sys.exit(main())
