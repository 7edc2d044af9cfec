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
and Sondergaard (2013). Working in the series domain (``x`` has ``L`` entries,
``c`` has ``C * H * L``) keeps each iteration at two matrix products.

Continuation over scales. From a random or zero start the iteration stalls in
a poor fixed point (about 100% error on S&P 500 windows). Instead we start from
``x = 0`` with only the largest scales constrained and add smaller scales stage
by stage: rows at neighbouring scales are strongly correlated, so the signs that
the current estimate gives a newly added row are mostly right already. This
brings the error to a few percent; ``benchmarks/transform.py`` measures it.

Resized images. When the image was resized in time (``W < L`` columns), the
full-resolution magnitudes are unknown. Interpolating them back and retrieving
from those gave 33% error for the 128 x 128 reference preset; instead, each
iteration replaces the current full-resolution magnitudes ``m`` by the nearest
ones consistent with the image, ``m + R^+ (M - R m)`` (``R`` the resize, ``R^+``
its pseudo-inverse), which brought the error to about 5%.

What no algorithm can recover: ``|W x|`` equals ``|W (-x)|`` exactly, and the
mean row only fixes the window mean, which shifts the scalogram at the window
edges by too little to decide the sign. The result is either ``x`` or close to
``2 mean(x) - x``, each with probability about 1/2.
"""

from __future__ import annotations

import torch


def _project_magnitude(
    coef: torch.Tensor,
    magnitude: torch.Tensor,
    mean_row: torch.Tensor | None,
    first: int,
    resize: tuple[torch.Tensor, torch.Tensor] | None,
) -> torch.Tensor:
    """In place: give wavelet rows ``first:`` of ``coef`` their target magnitudes.

    ``coef`` is ``(B, C, H, L)``; its first ``S = magnitude.shape[1]`` rows are
    wavelet rows and a following row, if any, is the mean row. Rows before
    ``first`` are left as they are (not yet constrained). With ``resize =
    (R^T, R^+^T)`` the magnitudes are ``(B, S, W)`` image columns.
    """
    n_scales = magnitude.shape[1]
    wav = coef[:, :, first:n_scales]
    # Real coefficients: |c| keeps the channel axis, as the norm does for complex ones.
    amp = wav.abs() if coef.shape[1] == 1 else torch.linalg.vector_norm(wav, dim=1, keepdim=True)
    if resize is None:
        target = magnitude[:, first:]
    else:
        resize_t, resize_pinv_t = resize
        current = amp[:, 0]
        target = current + (magnitude[:, first:] - current @ resize_t) @ resize_pinv_t
        target = target.clamp_min(0)
    wav.mul_(target.unsqueeze(1) / amp.clamp_min(torch.finfo(coef.dtype).tiny))
    # Where the coefficient is exactly zero (the start) its sign or phase is
    # undefined: put the target on the real part.
    wav[:, 0] = torch.where(amp[:, 0] == 0, target, wav[:, 0])
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
    n_stages: int,
    resize: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Series whose scalogram magnitudes best match ``magnitude``.

    Parameters
    ----------
    magnitude : torch.Tensor, shape (B, S, W)
        Target magnitudes of the wavelet rows, smallest scale first (negative
        values are clipped to 0). ``W = L`` unless ``resize`` is given.
    mean_row : torch.Tensor, shape (B, L), or None
        Target of the signed mean row, placed after the wavelet rows.
    forward_t : torch.Tensor, shape (L, C * H * L)
        Transposed analysis operator: ``x @ forward_t`` is the flattened scalogram.
    pinv_t : torch.Tensor, shape (C * H * L, L)
        Transposed least-squares inverse of the same operator.
    n_channels : int
        ``C``: 1 for a real wavelet, 2 (real, imaginary) for a complex one.
    n_iter : int
        Total number of projection pairs over all stages.
    momentum : float
        Fast Griffin-Lim acceleration in [0, 1); 0 is plain Griffin-Lim.
    n_stages : int
        Continuation stages; stage ``k`` constrains the largest
        ``ceil(S * k / n_stages)`` scales. 1 means plain Griffin-Lim.
    resize : (torch.Tensor, torch.Tensor) or None
        ``(R^T, R^+^T)``, shapes ``(L, W)`` and ``(W, L)``, when the magnitudes
        were resized from ``L`` to ``W`` columns by ``m @ R^T``.

    Returns
    -------
    torch.Tensor, shape (B, L)
        Each window's result depends only on its own inputs (no randomness,
        no coupling across the batch).
    """
    batch, n_scales = magnitude.shape[:2]
    width = forward_t.shape[0]
    n_rows = n_scales + (0 if mean_row is None else 1)
    magnitude = magnitude.clamp_min(0)
    n_stages = max(1, min(n_stages, n_scales, n_iter))
    per_stage = n_iter // n_stages if n_iter else 0
    x = torch.zeros((batch, width), dtype=magnitude.dtype, device=magnitude.device)
    previous = x
    for stage in range(n_stages):
        first = n_scales - -(-n_scales * (stage + 1) // n_stages)  # ceil division
        steps = per_stage if stage < n_stages - 1 else n_iter - per_stage * (n_stages - 1)
        for _ in range(steps):
            coef = (x @ forward_t).view(batch, n_channels, n_rows, width)
            coef = _project_magnitude(coef, magnitude, mean_row, first, resize)
            projected = coef.view(batch, -1) @ pinv_t
            x = projected + momentum * (projected - previous)
            previous = projected
    return previous
