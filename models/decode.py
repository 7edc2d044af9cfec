"""Sampled scalograms -> log returns in real units, for one series or a joint model's several."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from data.joint import JointInfo
from data.returns import ReturnNormalizer
from transforms.joint import JointScalogram
from transforms.volatility import VolatilityScalogram
from utils.seeding import derive_seed


def checkpoint_normalizers(
    loaded: dict[str, Any], normalizer_json: dict[str, Any] | None = None
) -> list[ReturnNormalizer]:
    """The normalizer of each series a checkpoint generates: a joint model's one per series,
    else ``normalizer_json`` (a multi-asset model's chosen series) or the checkpoint's own."""
    if loaded.get("joint") is not None:
        return JointInfo.from_json(loaded["joint"]).normalizers
    return [ReturnNormalizer.from_json(normalizer_json or loaded["normalizer"])]


def draws_levels(transform: Any, vol_level: str) -> bool:
    """True when ``vol_level`` = "fitted" and the transform has fitted levels to draw."""
    if vol_level != "fitted":
        return False
    if isinstance(transform, JointScalogram):
        return transform.level_rows is not None
    return isinstance(transform, VolatilityScalogram)


def decode(
    transform: Any,
    images: torch.Tensor,
    seeds: list[int],
    vol_level: str,
    normalizers: list[ReturnNormalizer],
) -> np.ndarray:
    """Generated images -> log returns ``[B, L]`` (a joint model: ``[B, A, L]``).

    With ``vol_level`` = "fitted" each path's volatility level is drawn with a seed
    derived from its own (``seeds[i]``), so path i never depends on the batch.
    """
    if draws_levels(transform, vol_level):
        rows = transform.draw_rows([derive_seed(k, 1) for k in seeds])
        z = transform.inverse(images.double(), rows=rows, generated=True)
    else:
        z = transform.inverse(images.double(), generated=True)
    z = z.cpu().numpy()
    if isinstance(transform, JointScalogram):
        return np.stack(
            [n.inverse(z[:, a], generated=True) for a, n in enumerate(normalizers)], axis=1
        )
    return normalizers[0].inverse(z, generated=True)
