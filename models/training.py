"""One optimizer step's pieces, shared by train.py and the 1-D diffusion baseline.

The stopping budget (EPOCHS, MAX_STEPS, MAX_MINUTES: the first one reached
stops), the learning rate (linear warmup, then cosine decay over the budget),
and the diffusion loss: a clean batch is noised at random diffusion times and
the model learns to predict v (or the noise) by mean squared error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import DDPMScheduler

from utils.errors import ScalodiffError


@dataclass
class Budget:
    """When training stops: ``total_steps`` optimizer steps or ``max_seconds``, whichever first.

    Examples
    --------
    >>> b = Budget.from_settings({"EPOCHS": 3, "MAX_STEPS": None, "MAX_MINUTES": 1.0}, 10)
    >>> b.total_steps, b.describe(), b.progress(15, 0.0)
    (30, '30 steps or 1 min', 0.5)
    """

    total_steps: int
    max_seconds: float
    max_minutes: float | None = None

    @classmethod
    def from_settings(cls, settings: dict[str, Any], steps_per_epoch: int) -> Budget:
        """The budget that EPOCHS, MAX_STEPS and MAX_MINUTES set, for ``steps_per_epoch``."""
        limits = [settings["EPOCHS"] * steps_per_epoch]
        if settings["MAX_STEPS"]:
            limits.append(settings["MAX_STEPS"])
        minutes = settings["MAX_MINUTES"]
        return cls(min(limits), minutes * 60 if minutes else math.inf, minutes or None)

    def progress(self, step: int, elapsed_s: float) -> float:
        """How far the run is, 0 -> 1, by whichever limit binds first."""
        return max(step / self.total_steps, elapsed_s / self.max_seconds)

    def done(self, step: int, elapsed_s: float) -> bool:
        """True once either limit is reached."""
        return step >= self.total_steps or elapsed_s >= self.max_seconds

    def describe(self, minutes: str = "min") -> str:
        """``"N steps"`` or ``"N steps or M min"``."""
        limit = f"{self.total_steps} steps"
        return limit + (f" or {self.max_minutes:g} {minutes}" if self.max_minutes else "")


def steps_per_epoch(n_windows: int, windows_per_step: int, source: str) -> int:
    """Optimizer steps in one pass over the windows; an error when not even one fits."""
    steps = n_windows // windows_per_step
    if steps == 0:
        raise ScalodiffError(
            f"{source}: {n_windows} training windows are fewer than one step's {windows_per_step}; "
            "lower BATCH_SIZE (--batch-size) or STRIDE, or use a longer series"
        )
    return steps


def lr_at(progress: float, step: int, settings: dict[str, Any]) -> float:
    """Linear warmup over WARMUP_STEPS, then cosine decay to 10% of LR as progress goes 0 -> 1."""
    peak = settings["LR"]
    if step < settings["WARMUP_STEPS"]:
        return peak * (step + 1) / settings["WARMUP_STEPS"]
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def noised_batch(
    scheduler: DDPMScheduler, x0: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Noise a clean batch at random diffusion times; return (noisy, times, target).

    The noise, then the times, are drawn from ``generator`` on the CPU, so a step's
    draws depend only on its seed, not on the device. The target is the noise for
    epsilon prediction, else the velocity v.
    """
    device = x0.device
    noise = torch.randn(x0.shape, generator=generator).to(device)
    t = torch.randint(
        0, scheduler.config.num_train_timesteps, (x0.shape[0],), generator=generator
    ).to(device)
    noisy = scheduler.add_noise(x0, noise, t)
    if scheduler.config.prediction_type == "epsilon":
        return noisy, t, noise
    return noisy, t, scheduler.get_velocity(x0, noise, t)


def diffusion_loss(
    model: torch.nn.Module,
    noisy: torch.Tensor,
    t: torch.Tensor,
    target: torch.Tensor,
    class_labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error of the model's prediction, in float32 whatever the autocast."""
    extra = {} if class_labels is None else {"class_labels": class_labels}
    pred = model(noisy, t, **extra).sample
    return torch.nn.functional.mse_loss(pred.float(), target)


def check_finite(loss: float, step: int, last_good: Path | None = None) -> None:
    """Stop on a NaN or infinite loss with what to change, naming the last good checkpoint."""
    if not math.isfinite(loss):
        kept = f"; the last good checkpoint is {last_good}" if last_good is not None else ""
        raise ScalodiffError(
            f"loss became {loss} at step {step}: training stopped{kept}. "
            "Lower LR (--lr), check the data for extreme values, or set RETURN_CLIP"
        )
