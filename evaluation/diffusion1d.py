"""The 1-D diffusion baseline: the same diffusion, on the returns themselves instead of scalograms.

Does the scalogram help? This baseline answers it by changing only the
representation. It takes the same training windows of normalized log returns
(:class:`data.returns.ReturnNormalizer` fitted on the training split, windows
from :func:`data.windows.windows_view`), the same noise schedule, prediction
target, optimizer, learning-rate schedule, EMA and stopping rule as
``train.py`` (from the same resolved settings: config.py plus the preset, or a
checkpoint's ``settings.json``), and the same DPM-Solver++ sampling loop with
one seeded noise generator per path (:mod:`models.diffusion`). What differs is
the denoiser: :class:`evaluation.denoiser1d.Denoiser1D` reads the window as a
sequence, where ``train.py``'s UNet reads its scalogram.

The budget is wall-clock minutes of the training loop (``MAX_MINUTES``, the cpu
preset's 9 by default), measured as ``train.py`` measures it: from the first
step, after data preparation.

    python -m evaluation.baselines --data sp500 --name diffusion1d --minutes 9 --out d1.npy
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from data.batches import BatchOrder
from data.returns import ReturnNormalizer
from data.windows import windows_view
from evaluation.denoiser1d import Denoiser1D
from models.diffusion import EMA, build_noise_scheduler, default_steps, make_sampler, sample
from models.training import (
    Budget,
    check_finite,
    diffusion_loss,
    lr_at,
    noised_batch,
    set_lr,
    steps_per_epoch,
)
from utils.device import resolve_device, resolve_mixed_precision
from utils.errors import ScalodiffError
from utils.seeding import derive_seed
from utils.settings import apply_preset, config_defaults

# Denoiser size: the cpu preset's UNet layout (4 levels, one residual block each, attention
# at the lowest) in 1-D, 1.66 M parameters against the scalogram UNet's 2.7 M. By
# FlopCounterMode it costs 0.53 GFLOP per training window (forward + backward) against
# the scalogram UNet's 3.0, so in the same minutes it sees several times as many windows.
CHANNELS = (32, 64, 128, 128)
LAYERS = 1
KERNEL = 3

# The 1-D model sees raw windows with no volatility rows to carry the heavy tails, so it
# keeps the compressing power transform whatever RETURN_POWER the scalogram run uses.
RETURN_POWER_1D = 1.5

# Settings of the run that this baseline follows (all in config.py / the preset).
USED = (
    "WINDOW_SIZE",
    "STRIDE",
    "RETURN_CLIP",
    "NUM_TIMESTEPS",
    "BETA_SCHEDULE",
    "PREDICTION_TYPE",
    "BATCH_SIZE",
    "EPOCHS",
    "MAX_STEPS",
    "MAX_MINUTES",
    "LR",
    "WARMUP_STEPS",
    "WEIGHT_DECAY",
    "GRAD_CLIP",
    "EMA_DECAY",
    "MIXED_PRECISION",
    "DEVICE",
    "SEED",
    "SAMPLER",
    "SAMPLING_STEPS",
    "SAMPLE_BATCH",
)


def default_settings() -> dict[str, Any]:
    """config.py with the preset ``train.py`` would pick on this machine filled in."""
    settings = config_defaults()
    cuda = settings["DEVICE"] != "cpu" and torch.cuda.is_available()
    return apply_preset(settings, cuda_available=cuda)


@dataclass
class TrainStats:
    """What one training run did: steps, windows seen, loop seconds, last smoothed loss."""

    steps: int
    samples: int
    seconds: float
    loss: float
    parameters: int


class Diffusion1DBaseline:
    """A trained 1-D diffusion model; :meth:`sample` gives paths of log returns in real units.

    Build it with :meth:`fit`. Path ``i`` of ``sample(n, L, seed)`` starts from
    noise seeded by ``derive_seed(seed, i)`` (as ``generate.py`` seeds its paths),
    so it does not depend on ``n`` or the batch it is sampled in.
    """

    name: ClassVar[str] = "diffusion1d"

    def __init__(
        self,
        model: Denoiser1D,
        scheduler_config: Any,
        normalizer: ReturnNormalizer,
        settings: dict[str, Any],
        stats: TrainStats,
    ) -> None:
        self.model = model.eval()
        self.scheduler_config = scheduler_config
        self.normalizer = normalizer
        self.settings = settings
        self.stats = stats
        self.window = int(settings["WINDOW_SIZE"])

    @classmethod
    def fit(
        cls,
        train_returns: np.ndarray,
        settings: dict[str, Any] | None = None,
        *,
        window: int | None = None,
        minutes: float | None = None,
        max_steps: int | None = None,
        seed: int | None = None,
        channels: tuple[int, ...] = CHANNELS,
        layers: int = LAYERS,
        progress: bool = False,
    ) -> Diffusion1DBaseline:
        """Train on windows of the 1-D training log returns under ``settings``' recipe and budget.

        Parameters
        ----------
        train_returns : np.ndarray
            The training split's log returns, in time order.
        settings : dict, optional
            Resolved settings (every name in :data:`USED`), e.g. a checkpoint's
            ``settings.json`` so the budget and recipe match that run; default
            :func:`default_settings`.
        window, minutes, max_steps, seed : optional
            Override ``WINDOW_SIZE``, ``MAX_MINUTES``, ``MAX_STEPS`` and ``SEED``.
        channels, layers : optional
            Size of the :class:`~evaluation.denoiser1d.Denoiser1D`.
        progress : bool
            Show a progress bar on stderr.
        """
        s = {k: (settings or default_settings())[k] for k in USED}
        for key, value in (
            ("WINDOW_SIZE", window),
            ("MAX_MINUTES", minutes),
            ("MAX_STEPS", max_steps),
            ("SEED", seed),
        ):
            if value is not None:
                s[key] = value
        r = np.asarray(train_returns, dtype=np.float64).ravel()
        if r.size < s["WINDOW_SIZE"]:
            raise ScalodiffError(
                f"diffusion1d: {r.size} training returns cannot fill one window of "
                f"{s['WINDOW_SIZE']}; use a longer series or a smaller window"
            )
        if not np.all(np.isfinite(r)):
            raise ScalodiffError(
                "diffusion1d: training returns contain NaN or inf; clean the prices"
            )
        normalizer = ReturnNormalizer(power=RETURN_POWER_1D, clip=s["RETURN_CLIP"]).fit(r)
        z = np.ascontiguousarray(normalizer.transform(r), dtype=np.float32)
        windows = windows_view(z, s["WINDOW_SIZE"], s["STRIDE"])
        torch.manual_seed(s["SEED"])  # initial weights
        model = Denoiser1D(s["WINDOW_SIZE"], tuple(channels), layers, KERNEL)
        scheduler = build_noise_scheduler(s)
        stats = _train(model, scheduler, windows, s, progress)
        return cls(model, scheduler.config, normalizer, s, stats)

    def sample(self, n: int, length: int, seed: int = 0) -> np.ndarray:
        """``[n, length]`` log returns from the sampler of the settings (DPM-Solver++ by default)."""
        if n < 1 or length != self.window:
            raise ScalodiffError(
                f"diffusion1d samples n >= 1 windows of its training length {self.window}; "
                f"got n={n}, length={length}. Fit it with window={length}"
            )
        name = self.settings["SAMPLER"] or "dpm"
        steps = self.settings["SAMPLING_STEPS"] or default_steps(
            name, self.scheduler_config["num_train_timesteps"]
        )
        sampler = make_sampler(name, self.scheduler_config)
        device = next(self.model.parameters()).device
        seeds = [derive_seed(seed, i) for i in range(n)]
        batch = int(self.settings["SAMPLE_BATCH"])
        out = []
        for lo in range(0, n, batch):
            x = sample(self.model, sampler, seeds[lo : lo + batch], steps, device)
            out.append(self.normalizer.inverse(x[:, 0, 0, :].double().cpu()))
        return np.concatenate(out)


def _train(
    model: Denoiser1D, scheduler: Any, windows: np.ndarray, s: dict[str, Any], progress: bool
) -> TrainStats:
    """train.py's loop for a sequence model on one process, from the same shared pieces:
    the budget, batch order, learning rate, noised batch and loss (models.training)."""
    device = resolve_device(s["DEVICE"])
    model.to(device).train()
    precision = resolve_mixed_precision(s["MIXED_PRECISION"], device.type == "cpu")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    batch = int(s["BATCH_SIZE"])
    per_epoch = steps_per_epoch(len(windows), batch, "diffusion1d")
    budget = Budget.from_settings(s, per_epoch)
    order = BatchOrder(len(windows), batch, per_epoch, s["SEED"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=s["LR"], weight_decay=s["WEIGHT_DECAY"])
    ema = EMA(model, s["EMA_DECAY"])
    counters = {"epoch": 0, "batch_in_epoch": 0}
    step, seen, smooth, elapsed = 0, 0, math.nan, 0.0
    bar = tqdm(
        total=budget.total_steps,
        disable=not progress,
        unit="step",
        file=sys.stderr,
        mininterval=1.0,
        desc=f"diffusion1d (stops at {budget.describe()})",
    )
    start = time.perf_counter()
    while not budget.done(step, elapsed):
        rows, _b = order.next(counters)
        x0 = torch.from_numpy(windows[rows])[:, None, None, :].to(device)
        g = torch.Generator().manual_seed(derive_seed(s["SEED"], step))
        noisy, t, target = noised_batch(scheduler, x0, g)
        set_lr(optimizer, lr_at(budget.progress(step, elapsed), step, s))
        with torch.autocast(device.type, dtype) if dtype else contextlib.nullcontext():
            loss = diffusion_loss(model, noisy, t, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if s["GRAD_CLIP"] is not None:  # None: no clipping
            torch.nn.utils.clip_grad_norm_(model.parameters(), s["GRAD_CLIP"])
        optimizer.step()
        ema.update(model)
        value = loss.detach().item()
        check_finite(value, step)
        smooth = value if math.isnan(smooth) else 0.95 * smooth + 0.05 * value
        step, seen = step + 1, seen + len(x0)
        elapsed = time.perf_counter() - start
        bar.update(1)
        bar.set_postfix(loss=f"{smooth:.4f}", refresh=False)
    bar.close()
    ema.copy_to(model)  # sample from the averaged weights, as generate.py does
    n_params = sum(p.numel() for p in model.parameters())
    return TrainStats(steps=step, samples=seen, seconds=elapsed, loss=smooth, parameters=n_params)
