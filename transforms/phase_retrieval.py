"""Recover a series from CWT magnitudes by alternating projections (fast Griffin-Lim).

The magnitude scalogram keeps ``|W x|`` and drops the sign (real wavelet) or
phase (complex wavelet) of every coefficient. We look for ``x`` whose scalogram
has the given magnitudes by alternating two projections, as Griffin and Lim do
for spectrograms:

1. onto the magnitude constraint: keep each coefficient's current sign or
   phase, replace its size by the target (the mean row, which carries its sign,
   is simply set to its target);
2. onto valid scalograms: ``x = P c`` with ``P`` the least-squares inverse, then
   ``c = A x`` at the start of the next iteration.

The momentum term is the "fast Griffin-Lim" acceleration of Perraudin, Balazs
and Sondergaard (2013), which converges in far fewer iterations. Working in
the series domain (``x`` has ``L`` entries, ``c`` has ``C * H * L``) keeps each
iteration at two matrix products.

Magnitudes never tell ``x`` from ``-x``; only the mean row (when present) does,
so a real-wavelet reconstruction can come back with its sign flipped.
"""

from __future__ import annotations

import torch

# A fixed starting phase pattern, the same for every window, so that the result
# for one window does not depend on the batch it came in.
_INIT_SEED = 20240607


def initial_phase(n_channels: int, n_rows: int, width: int, dtype, device) -> torch.Tensor:
    """A deterministic unit-modulus phase pattern, shape ``(n_channels, n_rows, width)``."""
    gen = torch.Generator().manual_seed(_INIT_SEED)
    if n_channels == 1:
        signs = torch.randint(0, 2, (1, n_rows, width), generator=gen) * 2 - 1
        return signs.to(dtype=dtype, device=device)
    angle = torch.rand((n_rows, width), generator=gen, dtype=torch.float64) * (2 * torch.pi)
    return torch.stack([angle.cos(), angle.sin()]).to(dtype=dtype, device=device)


def _project_magnitude(
    coef: torch.Tensor, magnitude: torch.Tensor, mean_row: torch.Tensor | None
) -> torch.Tensor:
    """In place: give the wavelet rows of ``coef`` the target magnitudes.

    ``coef`` is ``(B, C, H, L)``; its first ``S = magnitude.shape[1]`` rows are
    wavelet rows and a following row, if any, is the mean row.
    """
    n_scales = magnitude.shape[1]
    wav = coef[:, :, :n_scales]
    if coef.shape[1] == 1:
        # Real coefficients: keep the sign, zero counts as positive.
        wav.copy_(torch.where(wav[:, 0] < 0, -magnitude, magnitude).unsqueeze(1))
    else:
        amp = torch.linalg.vector_norm(wav, dim=1, keepdim=True)
        tiny = torch.finfo(coef.dtype).tiny
        scale = magnitude.unsqueeze(1) / amp.clamp_min(tiny)
        wav.mul_(scale)
        # Where the current coefficient is exactly zero the phase is undefined;
        # put the target magnitude on the real part.
        zero = amp[:, 0] == 0
        wav[:, 0] = torch.where(zero, magnitude, wav[:, 0])
    if mean_row is not None:
        coef[:, 0, n_scales] = mean_row
        coef[:, 1:, n_scales] = 0
    return coef


def griffin_lim(
    magnitude: torch.Tensor,
    mean_row: torch.Tensor | None,
    forward_t: torch.Tensor,
    pinv_t: torch.Tensor,
    n_channels: int,
    n_iter: int,
    momentum: float,
) -> torch.Tensor:
    """Series whose scalogram magnitudes best match ``magnitude``.

    Parameters
    ----------
    magnitude : torch.Tensor, shape (B, S, L)
        Target magnitudes of the wavelet rows (negative values are clipped to 0).
    mean_row : torch.Tensor, shape (B, L), or None
        Target of the signed mean row, placed after the wavelet rows.
    forward_t : torch.Tensor, shape (L, C * H * L)
        Transposed analysis operator: ``x @ forward_t`` is the flattened scalogram.
    pinv_t : torch.Tensor, shape (C * H * L, L)
        Transposed least-squares inverse of the same operator.
    n_channels : int
        ``C``: 1 for a real wavelet, 2 (real, imaginary) for a complex one.
    n_iter : int
        Number of projection pairs; 0 returns the inverse of the initial guess.
    momentum : float
        Fast Griffin-Lim acceleration in [0, 1); 0 is plain Griffin-Lim.

    Returns
    -------
    torch.Tensor, shape (B, L)
    """
    batch, n_scales, width = magnitude.shape
    n_rows = n_scales + (0 if mean_row is None else 1)
    magnitude = magnitude.clamp_min(0)
    coef = torch.zeros(
        (batch, n_channels, n_rows, width), dtype=magnitude.dtype, device=magnitude.device
    )
    phase = initial_phase(n_channels, n_scales, width, magnitude.dtype, magnitude.device)
    coef[:, :, :n_scales] = magnitude.unsqueeze(1) * phase
    if mean_row is not None:
        coef[:, 0, n_scales] = mean_row
    x = coef.view(batch, -1) @ pinv_t
    previous = x
    for _ in range(n_iter):
        coef = (x @ forward_t).view(batch, n_channels, n_rows, width)
        projected = _project_magnitude(coef, magnitude, mean_row).view(batch, -1) @ pinv_t
        x = projected + momentum * (projected - previous)
        previous = projected
    return previous
