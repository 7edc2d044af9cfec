"""UNet and noise schedules from diffusers, an EMA of the weights, and the sampling loop.

diffusers' ``UNet2DModel`` and schedulers are used as they are. Two defaults are
wrong for signed scalograms and are switched off here: the schedulers'
``clip_sample`` (clamps x0 to [-1, 1]) and ``DDPMPipeline`` (clamps to [0, 1]);
the sampling loop below is ours and short instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    UNet2DModel,
    UniPCMultistepScheduler,
)

from data.labels import Conditioning
from models.conditioning import unet_kwargs
from utils.errors import ScalodiffError
from utils.presets import DEFAULT_STEPS

SAMPLERS = {
    "ddpm": DDPMScheduler,
    "ddim": DDIMScheduler,
    "dpm": DPMSolverMultistepScheduler,
    "unipc": UniPCMultistepScheduler,
}


def check_image_size(height: int, width: int, levels: int) -> None:
    """Raise if the UNet's ``levels - 1`` halvings cannot divide the image."""
    factor = 2 ** (levels - 1)
    if height % factor or width % factor:

        def near(n: int) -> str:
            lo = max(factor, n // factor * factor)
            return f"{lo} or {lo + factor}" if lo != n else str(n)

        raise ScalodiffError(
            f"image of {height} x {width} cannot pass a UNet with {levels} levels: both sides must be "
            f"multiples of {factor}. Use an image height of {near(height)} rows (the height is SCALES "
            f"plus one row each for the mean, VOLATILITY_ROW and LOCAL_VOL_WINDOW when on) and a width of {near(width)} (WINDOW_SIZE + 2 EDGE_MARGIN, or IMAGE_SIZE), or fewer "
            "BLOCK_OUT_CHANNELS levels"
        )


def build_unet(
    settings: dict[str, Any],
    channels: int,
    height: int,
    width: int,
    conditioning: Conditioning | None = None,
    context_channels: int = 0,
) -> UNet2DModel:
    """UNet2DModel sized by ``BLOCK_OUT_CHANNELS``, ``LAYERS_PER_BLOCK`` and ``ATTENTION_LEVELS``.

    With ``conditioning`` the UNet gets a class embedding (models.conditioning);
    ``context_channels`` more input channels carry a known history to continue
    (models.continuation). Without either the model is built exactly as an
    unconditional one always was.
    """
    blocks = tuple(settings["BLOCK_OUT_CHANNELS"])
    levels = len(blocks)
    attention = int(settings["ATTENTION_LEVELS"])
    if not 0 <= attention <= levels:
        raise ScalodiffError(
            f"setting ATTENTION_LEVELS must be between 0 and {levels}, got {attention}"
        )
    check_image_size(height, width, levels)
    groups = 32 if all(c % 32 == 0 for c in blocks) else 8
    if any(c % groups for c in blocks):
        raise ScalodiffError(
            f"setting BLOCK_OUT_CHANNELS {blocks}: every entry must be a multiple of 8 (GroupNorm groups)"
        )
    # Attention sits in the lowest levels, where the image is smallest.
    down = tuple(
        "AttnDownBlock2D" if i >= levels - attention else "DownBlock2D" for i in range(levels)
    )
    up = tuple("AttnUpBlock2D" if i < attention else "UpBlock2D" for i in range(levels))
    return UNet2DModel(
        sample_size=(height, width),
        in_channels=channels + context_channels,
        out_channels=channels,
        block_out_channels=blocks,
        layers_per_block=int(settings["LAYERS_PER_BLOCK"]),
        down_block_types=down,
        up_block_types=up,
        norm_num_groups=groups,
        attention_head_dim=min(64, blocks[-1]),
        **unet_kwargs(conditioning),
    )


def build_noise_scheduler(settings: dict[str, Any]) -> DDPMScheduler:
    """The training noise schedule; ``clip_sample`` is off because scalograms are signed."""
    return DDPMScheduler(
        num_train_timesteps=int(settings["NUM_TIMESTEPS"]),
        beta_schedule=settings["BETA_SCHEDULE"],
        prediction_type=settings["PREDICTION_TYPE"],
        clip_sample=False,
    )


def make_sampler(name: str, train_config: dict[str, Any]) -> Any:
    """A sampling scheduler built from the training schedule's config (``from_config``)."""
    if name not in SAMPLERS:
        raise ScalodiffError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    extra: dict[str, Any] = {}
    if name == "dpm":
        extra = {"algorithm_type": "dpmsolver++", "solver_order": 2}
    sampler = SAMPLERS[name].from_config(train_config, **extra)
    for key in ("clip_sample", "thresholding"):
        if key in sampler.config and sampler.config[key]:
            sampler.register_to_config(**{key: False})
    return sampler


def default_steps(name: str, num_train_timesteps: int) -> int:
    """Solver steps when none are asked for (DDPM takes every training step)."""
    return num_train_timesteps if name == "ddpm" else DEFAULT_STEPS[name]


class EMA:
    """Exponential moving average of a model's parameters, with warm-up.

    The effective decay is ``min(decay, (1 + step) / (10 + step))``: early in a
    short CPU run the average follows the weights closely instead of being stuck
    near the random initialisation.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.step = 0
        self.shadow = [p.detach().clone().float() for p in model.parameters()]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights."""
        self.step += 1
        d = min(self.decay, (1 + self.step) / (10 + self.step))
        params = [p.detach().float() for p in model.parameters()]
        if self.shadow and self.shadow[0].device != params[0].device:
            # Built (or restored) on the CPU before the model was moved to its device.
            self.shadow = [s.to(params[0].device) for s in self.shadow]
        torch._foreach_lerp_(self.shadow, params, 1.0 - d)

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        """Write the averaged weights into ``model``."""
        for s, p in zip(self.shadow, model.parameters(), strict=True):
            p.copy_(s.to(p.dtype))

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "step": self.step, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.step = int(state["step"])
        for s, t in zip(self.shadow, state["shadow"], strict=True):
            s.copy_(t)


def initial_noise(
    shape: tuple[int, ...], seeds: list[int], device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, list[torch.Generator]]:
    """Gaussian noise drawn from one generator per sample, so sample i never depends on the batch."""
    gens = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    noise = torch.stack([torch.randn(shape, generator=g, dtype=torch.float32) for g in gens])
    return noise.to(device=device, dtype=dtype), gens


def sampling_layout(device: torch.device) -> torch.memory_format:
    """The memory layout the sampling loop runs the UNet in on ``device``.

    On a CPU oneDNN's convolutions take channels-last tensors about 1.2x faster
    (1.2x for the whole forward of the cpu preset's UNet; benchmarks/sampling.py
    prints the ratio); the results differ only by float rounding. Elsewhere the
    default layout: channels-last was not measured there.
    """
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


@torch.inference_mode()
def sample(
    unet: UNet2DModel,
    sampler: Any,
    seeds: list[int],
    steps: int,
    device: torch.device | str = "cpu",
    on_step: Callable[[], None] | None = None,
    class_labels: torch.Tensor | None = None,
    null_labels: torch.Tensor | None = None,
    guidance: float = 1.0,
    context: torch.Tensor | None = None,
) -> torch.Tensor:
    """Denoise one batch of scalograms from per-sample seeded noise.

    Parameters
    ----------
    unet : UNet2DModel
        The (EMA) denoiser, in eval mode.
    sampler : diffusers scheduler
        From :func:`make_sampler`; its state is reset here.
    seeds : list of int
        One seed per sample: sample i is the same whatever the batch it is in.
    steps : int
        Solver steps.
    device : torch.device or str
        Where to run.
    on_step : callable, optional
        Called after every solver step (progress bars).
    class_labels : Tensor, optional
        One label per sample for a conditional UNet (see models.conditioning);
        None for an unconditional one.
    null_labels : Tensor, optional
        The null label per sample; with ``guidance`` other than 1 every step mixes
        the conditional and unconditional predictions (classifier-free guidance).
    guidance : float, default 1.0
        Guidance scale g: ``uncond + g * (cond - uncond)``; 1 is the conditional
        model alone, 0 the unconditional one.
    context : Tensor, optional
        For a UNet with context channels (models.continuation): the known history
        per sample, fed beside the noisy image at every step. None on such a UNet
        is the empty history (an unconditional window); a UNet without context
        channels refuses one.

    Returns
    -------
    Tensor of shape (len(seeds), C, H, W), float32, on ``device``.
    """
    device = torch.device(device)
    cfg = unet.config
    layout = sampling_layout(device)
    unet.to(memory_format=layout)
    # The noise has the output's channels; any further input channels are the context.
    shape = (_out_channels(cfg), *_as_pair(cfg.sample_size))
    dtype = next(unet.parameters()).dtype
    x, gens = initial_noise(shape, seeds, device, dtype)
    context = _context_input(cfg, context, len(seeds), device, dtype)
    sampler.set_timesteps(steps, device=device)
    x = x * sampler.init_noise_sigma
    # DDPM adds fresh noise each step; a list of CPU generators keeps it per sample too.
    step_kwargs = {"generator": gens} if isinstance(sampler, DDPMScheduler) else {}
    if class_labels is not None:
        class_labels = class_labels.to(device)
        null_labels = None if null_labels is None else null_labels.to(device)
    for t in sampler.timesteps:
        model_in = sampler.scale_model_input(x, t)
        if context is not None:
            model_in = torch.cat([model_in, context], dim=1)
        model_in = model_in.contiguous(memory_format=layout)
        out = denoise(unet, model_in, t.to(device), class_labels, null_labels, guidance)
        x = sampler.step(out, t, x, **step_kwargs).prev_sample
        if on_step is not None:
            on_step()
    return x.float()


def denoise(
    unet: UNet2DModel,
    x: torch.Tensor,
    t: torch.Tensor,
    class_labels: torch.Tensor | None = None,
    null_labels: torch.Tensor | None = None,
    guidance: float = 1.0,
) -> torch.Tensor:
    """One model evaluation at time ``t``, guided when asked.

    Classifier-free guidance ``uncond + g * (cond - uncond)`` runs the conditional
    and the unconditional halves as one batch of 2B (one pass over the weights);
    g = 1 and g = 0 need one half only and skip the other.
    """
    if class_labels is None:
        return unet(x, t).sample
    if null_labels is None or guidance == 1.0:
        return unet(x, t, class_labels=class_labels).sample
    if guidance == 0.0:
        return unet(x, t, class_labels=null_labels).sample
    both = unet(torch.cat([x, x]), t, class_labels=torch.cat([class_labels, null_labels])).sample
    cond, uncond = both.chunk(2)
    return uncond + guidance * (cond - uncond)


def _as_pair(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _context_input(
    cfg: Any, context: torch.Tensor | None, n: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor | None:
    """The context channels to feed: as given, zeros (no history) or none (no such channels)."""
    extra = cfg.in_channels - _out_channels(cfg)
    if extra == 0:
        if context is not None:
            raise ScalodiffError(
                "this checkpoint was trained without context channels (CONTEXT_FRACTIONS = ()), "
                "so it cannot continue a history; train with --set CONTEXT_FRACTIONS=(0.25,0.5,0.75)"
            )
        return None
    height, width = _as_pair(cfg.sample_size)
    if context is None:
        return torch.zeros((n, extra, height, width), device=device, dtype=dtype)
    return context.to(device=device, dtype=dtype)


def _out_channels(cfg: Any) -> int:
    # Denoisers with a diffusers-like config but one channel count (evaluation/denoiser1d.py)
    # have no out_channels: input and output have the same channels.
    return int(getattr(cfg, "out_channels", cfg.in_channels))
