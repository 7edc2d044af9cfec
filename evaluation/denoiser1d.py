"""A small 1-D U-Net that denoises windows of returns, for the raw-returns diffusion baseline.

The scalogram model's question is "does the wavelet image help?"; answering it
needs a diffusion model that sees the same normalized returns as a plain
sequence. This network is that model's denoiser: residual 1-D convolutions
over time at a few resolutions, joined by skip connections, with
self-attention over the whole window at the lowest resolution (so that, like
the scalogram UNet's attention level, it can relate volatility at both ends
of a window) and the diffusion time added to every block through diffusers'
sinusoidal :class:`~diffusers.models.embeddings.Timesteps` embedding, as in
``UNet2DModel``.

It takes and returns images of height 1, ``[B, 1, 1, L]``, and carries a
``config`` with ``in_channels`` and ``sample_size`` like a diffusers model:
that is what lets :func:`models.diffusion.sample` (written for ``UNet2DModel``)
drive it unchanged, with the same schedulers and per-sample seeded noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn
from torch.nn import functional as F

from utils.errors import ScalodiffError


@dataclass
class Denoiser1DOutput:
    """The prediction, under the attribute name diffusers models use (``.sample``)."""

    sample: torch.Tensor


def _groups(channels: int) -> int:
    # GroupNorm needs the channels divisible by the groups; 8 suits the small widths used here.
    return 8 if channels % 8 == 0 else 1


class _ResBlock(nn.Module):
    """Norm -> SiLU -> conv, plus the time embedding, twice, around a residual connection."""

    def __init__(self, c_in: int, c_out: int, t_dim: int, kernel: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2)
        self.time = nn.Linear(t_dim, c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, padding=kernel // 2)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(emb))[:, :, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class _Attention(nn.Module):
    """Multi-head self-attention over time positions, residual."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x).transpose(1, 2)  # [B, L, C]
        h, _ = self.attn(h, h, h, need_weights=False)
        return x + h.transpose(1, 2)


# Why not diffusers' UNet1DModel: measured (batch 32, L = 256, one thread, train step, a
# shared 2-core machine), its residual layout (DownResnetBlock1D / MidResTemporalBlock1D,
# channels 32-64-128-128) is as small and fast as this network (1.90 M parameters and 46
# samples/s against 1.66 M and 49) but has no self-attention, and its attention layout (the
# Dance Diffusion blocks, AttnDownBlock1D with Fourier time features) ties the time-feature
# width to the first level's channels and failed on these channels with a shape error. This
# network keeps attention at its lowest level, as the scalogram UNet has, so the baseline
# differs from our model in the representation only.
class Denoiser1D(nn.Module):
    """1-D U-Net over ``length`` time steps; ``channels[i]`` filters at resolution ``length / 2**i``.

    Parameters
    ----------
    length : int
        Window length; must be divisible by ``2 ** (len(channels) - 1)``.
    channels : tuple of int
        Width per level (multiples of 8 use 8 GroupNorm groups).
    layers : int
        Residual blocks per level on the way down (one more on the way up, for the skips).
    kernel : int
        Odd convolution width.
    attention : bool
        Self-attention at the lowest resolution.

    Examples
    --------
    >>> net = Denoiser1D(32, channels=(8, 16), layers=1)
    >>> net(torch.zeros(2, 1, 1, 32), torch.tensor(5)).sample.shape
    torch.Size([2, 1, 1, 32])
    """

    def __init__(
        self,
        length: int,
        channels: tuple[int, ...] = (32, 64, 128, 128),
        layers: int = 1,
        kernel: int = 3,
        attention: bool = True,
    ) -> None:
        super().__init__()
        levels = len(channels)
        if levels < 1 or layers < 1 or kernel < 1 or kernel % 2 == 0:
            raise ScalodiffError(
                f"1-D denoiser: need at least one level and one layer and an odd kernel, got "
                f"channels={channels}, layers={layers}, kernel={kernel}"
            )
        if length % 2 ** (levels - 1):
            raise ScalodiffError(
                f"1-D denoiser: a window of {length} steps cannot be halved {levels - 1} times; "
                f"use a length divisible by {2 ** (levels - 1)} or fewer levels"
            )
        # What models.diffusion.sample reads from a diffusers model: the image shape it denoises.
        self.config = SimpleNamespace(in_channels=1, sample_size=(1, length))
        c0, t_dim = channels[0], 4 * channels[0]
        self.time_proj = Timesteps(c0, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(c0, t_dim)
        self.conv_in = nn.Conv1d(1, c0, kernel, padding=kernel // 2)

        self.down = nn.ModuleList()
        skips, c = [c0], c0
        for i, width in enumerate(channels):
            for _ in range(layers):
                self.down.append(_ResBlock(c, width, t_dim, kernel))
                c = width
                skips.append(c)
            if i < levels - 1:
                self.down.append(nn.Conv1d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList(
            [
                _ResBlock(c, c, t_dim, kernel),
                _Attention(c) if attention else nn.Identity(),
                _ResBlock(c, c, t_dim, kernel),
            ]
        )
        self.up = nn.ModuleList()
        for i, width in reversed(list(enumerate(channels))):
            for _ in range(layers + 1):
                self.up.append(_ResBlock(c + skips.pop(), width, t_dim, kernel))
                c = width
            if i > 0:
                self.up.append(
                    nn.Sequential(
                        nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv1d(c, c, 3, padding=1)
                    )
                )
        self.norm_out = nn.GroupNorm(_groups(c), c)
        self.conv_out = nn.Conv1d(c, 1, kernel, padding=kernel // 2)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int) -> Denoiser1DOutput:
        """Predict the model target (v or noise) for ``[B, 1, 1, L]`` noisy windows at ``timestep``."""
        x = sample[:, :, 0, :]  # [B, 1, L]
        t = torch.as_tensor(timestep, device=x.device)
        if t.ndim == 0:  # the sampling loop passes one time for the whole batch
            t = t.expand(x.shape[0])
        emb = self.time_embed(self.time_proj(t).to(x.dtype))
        h = self.conv_in(x)
        hs = [h]
        for block in self.down:
            h = block(h, emb) if isinstance(block, _ResBlock) else block(h)
            hs.append(h)
        for block in self.mid:
            h = block(h, emb) if isinstance(block, _ResBlock) else block(h)
        for block in self.up:
            if isinstance(block, _ResBlock):
                h = block(torch.cat([h, hs.pop()], dim=1), emb)
            else:
                h = block(h)
        out = self.conv_out(F.silu(self.norm_out(h)))
        return Denoiser1DOutput(sample=out[:, :, None, :])
