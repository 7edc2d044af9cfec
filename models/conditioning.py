"""How labels reach the UNet, in training and in sampling.

Class labels (vol-regime, trend, asset) use diffusers' ``UNet2DModel`` class
embedding as it is: ``num_class_embeds`` rows, one per class plus one "null"
row that stands for "no label". A continuous target (realized-vol) uses
``class_embed_type="timestep"``: the UNet passes the value through the same
sinusoidal projection as diffusion time, then its own small MLP; the value is
the target's rank among the training windows spread over 0..1000 (the range of
diffusion time, whose frequencies the projection is made for), and the null
label is -1000, far outside it. Both embeddings are added to the time
embedding, which every ResNet block of the UNet reads.

In training a fraction CONDITION_DROP of the labels is replaced by the null
label, so that the same network also learns the unconditional model; sampling
then mixes the two with classifier-free guidance (models.diffusion.denoise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from data.labels import RANK_SCALE, Conditioning
from utils.errors import ScalodiffError


def unet_kwargs(spec: Conditioning | None) -> dict[str, Any]:
    """The ``UNet2DModel`` arguments for a conditioning; none for an unconditional model."""
    if spec is None:
        return {}
    if spec.categorical:
        return {"num_class_embeds": len(spec.classes) + 1}  # + the null class
    return {"class_embed_type": "timestep"}


def training_labels(
    spec: Conditioning, labels: np.ndarray, drop: float, generator: torch.Generator
) -> torch.Tensor:
    """A batch's labels with a fraction ``drop`` replaced by the null label (drawn from ``generator``)."""
    values = torch.from_numpy(np.ascontiguousarray(labels))
    keep = torch.rand(len(values), generator=generator) >= drop
    return torch.where(keep, values, torch.full_like(values, spec.null_label))


@dataclass
class Request:
    """What generate.py was asked for on a conditional checkpoint.

    ``label`` is the label value (None: unconditional, i.e. the null label);
    ``name`` goes into file names and messages; ``asset`` is the asset's record
    (its normalizer, start price and real returns) when one was asked for.
    """

    label: int | float | None
    name: str
    asset: dict[str, Any] | None = None


def resolve_request(
    spec: Conditioning | None,
    condition: str | None,
    realized_vol: float | None,
    asset: str | None,
) -> Request | None:
    """Turn ``--condition``, ``--realized-vol`` and ``--asset`` into a label, checking them.

    Returns None for an unconditional checkpoint asked for nothing. Every
    mismatch (a flag the checkpoint cannot use, an unknown name) is a one-line
    :class:`ScalodiffError` that says what the checkpoint takes.
    """
    asked = [
        f
        for f, v in (
            ("--condition", condition),
            ("--realized-vol", realized_vol),
            ("--asset", asset),
        )
        if v is not None
    ]
    if spec is None:
        if asked:
            raise ScalodiffError(
                f"{asked[0]}: this checkpoint was trained without conditioning (CONDITION None); "
                f"drop {asked[0]}, or train a conditional model: python train.py --condition vol-regime"
            )
        return None
    if len(asked) > 1:
        raise ScalodiffError(f"give one of {' and '.join(asked)}, not both")
    takes = _what_it_takes(spec)
    if spec.kind == "realized-vol":
        if condition is not None or asset is not None:
            raise ScalodiffError(f"{asked[0]}: this checkpoint is conditioned on {takes}")
        if realized_vol is None:
            return Request(label=None, name="uncond")
        if not realized_vol > 0:
            raise ScalodiffError(f"--realized-vol {realized_vol}: give a positive number ({takes})")
        lo, hi = spec.grid[0], spec.grid[-1]
        if not lo <= realized_vol <= hi:
            # The label is a rank among training windows: beyond them it could only be clamped.
            raise ScalodiffError(
                f"--realized-vol {realized_vol:g} lies outside the training windows' range "
                f"{lo:.4f}-{hi:.4f} ({spec.unit}); ask for a value inside it"
            )
        rank = float(spec.rank(np.array([realized_vol]))[0])
        return Request(label=RANK_SCALE * rank, name=f"rv{realized_vol:g}")
    if realized_vol is not None or (asset is not None and spec.kind != "asset"):
        raise ScalodiffError(f"{asked[0]}: this checkpoint is conditioned on {takes}")
    name = asset if asset is not None else condition
    if name is None:
        if spec.kind == "asset":
            raise ScalodiffError(
                f"this checkpoint was trained on several series; choose one with --asset "
                f"({', '.join(spec.classes)})"
            )
        return Request(label=None, name="uncond")
    index = spec.class_index(name, "--asset" if asset is not None else "--condition")
    record = spec.assets[index] if spec.kind == "asset" else None
    return Request(label=index, name=spec.classes[index], asset=record)


def _what_it_takes(spec: Conditioning) -> str:
    if spec.kind == "realized-vol":
        lo, hi = spec.grid[0], spec.grid[-1]
        return (
            f"realized-vol: pass --realized-vol X ({spec.unit}; training windows {lo:.4f}-{hi:.4f})"
        )
    flag = "--asset" if spec.kind == "asset" else "--condition"
    return f"{spec.kind}: pass {flag} with one of {', '.join(spec.classes)}"


def label_tensors(
    spec: Conditioning | None, request: Request | None, n: int
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Per-sample label and null-label tensors for :func:`models.diffusion.sample`.

    An unconditional request on a conditional checkpoint samples with the null
    label alone (no guidance: there is nothing to guide towards).
    """
    if spec is None or request is None:
        return None, None
    dtype = torch.long if spec.categorical else torch.float32
    null = torch.full((n,), spec.null_label, dtype=dtype)
    if request.label is None:
        return null, None
    return torch.full((n,), request.label, dtype=dtype), null
