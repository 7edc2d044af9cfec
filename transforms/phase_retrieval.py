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
``c`` has ``C * H * L``) keeps each iteration at one analysis and one synthesis,
done by dense products or by FFT (``fft_operator.py``), whichever is faster.

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
edges by too little to decide the sign. The result is close to either ``x`` or
``2 mean(x) - x``; on S&P 500 windows about half come back mirrored.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from transforms.fft_operator import fft_analyze, fft_synthesize


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
    analyze: Callable[[torch.Tensor], torch.Tensor],
    synthesize: Callable[[torch.Tensor], torch.Tensor],
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
    analyze : callable
        ``x (B, L) -> c (B, C, H, L)``: the (standardized) scalogram operator;
        ``C`` is 1 for a real wavelet and 2 (real, imaginary) for a complex one.
    synthesize : callable
        ``c (B, C, H, L) -> x (B, L)``: its least-squares inverse.
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
    n_scales = magnitude.shape[1]
    magnitude = magnitude.clamp_min(0)
    n_stages = max(1, min(n_stages, n_scales, n_iter))
    per_stage = n_iter // n_stages
    x = torch.zeros(
        (magnitude.shape[0], resize[0].shape[0] if resize else magnitude.shape[2]),
        dtype=magnitude.dtype,
        device=magnitude.device,
    )
    previous = x
    for stage in range(n_stages):
        first = n_scales - -(-n_scales * (stage + 1) // n_stages)  # ceil division
        steps = per_stage if stage < n_stages - 1 else n_iter - per_stage * (n_stages - 1)
        for _ in range(steps):
            coef = _project_magnitude(analyze(x), magnitude, mean_row, first, resize)
            projected = synthesize(coef)
            x = projected + momentum * (projected - previous)
            previous = projected
    return previous


def operator_pair(tensor, use_fft: bool, n_channels: int, height: int, dtype, device):
    """``(analyze, synthesize)`` for :func:`griffin_lim`, by FFT or dense products.

    ``tensor(name, dtype, device)`` returns the cached operator tensors of an
    ``OperatorSet`` (standardized, full resolution).
    """
    if use_fft:
        spectra, gram_inv = (tensor(n, dtype, device) for n in ("spectra", "gram_inv"))
        return (
            lambda x: fft_analyze(x, spectra, n_channels),
            lambda c: fft_synthesize(c, spectra, gram_inv),
        )
    fwd, inv = (tensor(n, dtype, device) for n in ("fwd_std", "inv_std"))
    return (
        lambda x: (x @ fwd).view(x.shape[0], n_channels, height, -1),
        lambda c: c.reshape(c.shape[0], -1) @ inv,
    )
