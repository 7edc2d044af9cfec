"""Negative controls: generators that learned nothing, the floor a trained model must clear.

A realism figure supports a claim only if the trained model beats all three:

- ``untrained``: the same pipeline (transform, VOL_LEVEL, sampler) with the
  UNet at its initial weights, built from the checkpoint's settings with the
  training seed, as train.py builds it before its first step;
- ``levels-only``: iid Gaussian windows, each times a volatility level drawn
  as VOL_LEVEL = "fitted" draws it (:meth:`VolatilityScalogram.draw_rows` with
  the same per-path seeds): what the level draw alone gives;
- ``shuffled``: real training windows with their returns permuted inside each
  window: the same marginal and the same window levels, no time structure.

Each returns ``[n, L]`` log returns in real units, like a generator's file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from diffusers import UNet2DModel

from data.returns import ReturnNormalizer
from data.windows import windows_view
from models.continuation import context_channel_count
from models.decode import checkpoint_normalizers, decode
from models.diffusion import build_unet, make_sampler, sample
from transforms.volatility import VolatilityScalogram, transform_from_json
from utils.errors import ScalodiffError
from utils.seeding import derive_seed

CONTROLS = ("untrained", "levels-only", "shuffled")


def _check_unconditional(loaded: dict[str, Any]) -> None:
    if loaded.get("conditioning") is not None:
        raise ScalodiffError(
            "negative controls are built for unconditional checkpoints; this one is conditional "
            "(conditioning.json): compare a model trained without CONDITION"
        )


def untrained_unet(loaded: dict[str, Any]) -> UNet2DModel:
    """The UNet of the checkpoint's settings at its initial weights (seeded by SEED, as train.py)."""
    _check_unconditional(loaded)
    settings = loaded["settings"]
    transform = transform_from_json(loaded["transform"])
    # A context model's UNet reads its history channels too (empty for unconditional windows).
    context = context_channel_count(transform) if settings.get("CONTEXT_FRACTIONS") else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings["SEED"])
        unet = build_unet(
            settings, transform.channels, transform.height, transform.width,
            context_channels=context,
        )  # fmt: skip
    return unet.eval()


def sample_paths(
    loaded: dict[str, Any],
    unet: UNet2DModel,
    n: int,
    seed: int,
    sampler_name: str,
    steps: int,
    batch: int = 64,
    device: torch.device | str = "cpu",
    vol_level: str = "fitted",
) -> np.ndarray:
    """``n`` unconditional paths of ``unet`` through the checkpoint's transform and normalizer.

    The same steps, seeds and level draws as generate.py's sampling, so that
    with the trained UNet it gives generate.py's paths (a test checks it).
    """
    transform = transform_from_json(loaded["transform"])
    normalizers = checkpoint_normalizers(loaded)
    sampler = make_sampler(sampler_name, loaded["scheduler_config"])
    seeds = [derive_seed(seed, i) for i in range(n)]
    unet = unet.to(device)
    out = []
    for lo in range(0, n, batch):
        s = sample(unet, sampler, seeds[lo : lo + batch], steps, device)
        out.append(decode(transform, s, seeds[lo : lo + batch], vol_level, normalizers))
    return np.concatenate(out)


def levels_only(loaded: dict[str, Any], n: int, seed: int) -> np.ndarray:
    """iid Gaussian windows of unit RMS, each times a level drawn as VOL_LEVEL = "fitted" draws it,
    through the checkpoint's tail stretch as the model's windows are."""
    transform = transform_from_json(loaded["transform"])
    if not isinstance(transform, VolatilityScalogram) or transform.row_quantiles is None:
        raise ScalodiffError(
            "the levels-only control draws volatility levels from the checkpoint's fitted level "
            "row, and this checkpoint has none (VOLATILITY_ROW off); train with VOLATILITY_ROW = True"
        )
    normalizer = ReturnNormalizer.from_json(loaded["normalizer"])
    length, margin = transform.window_size, transform.margin
    seeds = [derive_seed(seed, i) for i in range(n)]
    rows = transform.draw_rows([derive_seed(k, 1) for k in seeds]).numpy()
    # As VolatilityScalogram.inverse does: the standardized level back to a log RMS, applied
    # to a unit-RMS window of the transform's length, of which the middle is kept.
    log_rms = rows * transform.log_rms_std + transform.log_rms_mean
    u = np.stack([np.random.default_rng(derive_seed(k, 2)).standard_normal(length) for k in seeds])
    u /= np.sqrt(np.mean(u**2, axis=1, keepdims=True))
    windows = (u * np.exp(log_rms)[:, None])[:, margin : length - margin]
    return normalizer.inverse(windows, generated=True)


def shuffled(returns: np.ndarray, window: int, n: int, seed: int) -> np.ndarray:
    """``n`` real windows (distinct starts while there are enough), each randomly permuted."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < window:
        raise ScalodiffError(
            f"the shuffled control needs at least one window of {window} training returns, got {len(r)}"
        )
    windows = windows_view(r, window, 1)
    rng = np.random.default_rng(seed)
    starts = rng.choice(len(windows), n, replace=n > len(windows))
    return np.stack([rng.permutation(windows[s]) for s in starts])


def make_controls(
    loaded: dict[str, Any],
    n: int,
    seed: int,
    sampler_name: str,
    steps: int,
    batch: int = 64,
    device: torch.device | str = "cpu",
    vol_level: str = "fitted",
    which: tuple[str, ...] = CONTROLS,
) -> dict[str, np.ndarray]:
    """The controls named in ``which`` for a checkpoint loaded by ``utils.checkpoint.load_for_sampling``.

    ``n`` paths each, with the paths' seed, sampler, steps and level source of
    the trained model they are compared with.
    """
    unknown = [c for c in which if c not in CONTROLS]
    if unknown:
        raise ScalodiffError(f"unknown control(s) {unknown}; choose from {', '.join(CONTROLS)}")
    _check_unconditional(loaded)
    window = int(loaded["settings"]["WINDOW_SIZE"])
    makers = {
        "untrained": lambda: sample_paths(
            loaded, untrained_unet(loaded), n, seed, sampler_name, steps, batch, device, vol_level
        ),
        "levels-only": lambda: levels_only(loaded, n, seed),
        "shuffled": lambda: shuffled(loaded["real_returns"], window, n, seed),
    }
    return {name: makers[name]() for name in which}
