"""The scalogram operator applied by FFT, for the many products of phase retrieval.

Every row of the operator is a Toeplitz matrix (a convolution cropped to the
window), so ``A x`` and ``A^T c`` can be computed by FFTs of length ``2L``
instead of dense products. Lags run from ``-(L-1)`` to ``L-1``: ``2L - 1``
values, which fit a circular buffer of ``2L`` without wrapping onto each other,
so the circular convolution is exact. The least-squares inverse is then
``P c = G^{-1} A^T c`` with the small ``L x L`` inverse Gram matrix ``G^{-1}``.

Why: with a few windows, the dense products of phase retrieval read the whole
operator (33 MB in float32 for 128 scales) twice per iteration and run at
memory speed; the FFT needs kilobytes of kernel spectra. The dense inverse stays
the exact one used by :meth:`Scalogram.inverse` in the linear modes, since the
Gram route squares the condition number (fine for an iterative approximation,
not for a 1e-5 round trip in float32).
"""

from __future__ import annotations

import numpy as np
import torch


def toeplitz_spectra(operator: np.ndarray) -> np.ndarray:
    """Kernel spectra ``(C*H, L+1)`` of an operator ``(C, H, L, L)`` of Toeplitz rows.

    Row ``(c, h)`` maps ``x`` to ``y[n] = sum_m k[n - m] x[m]``; ``k[lag]`` is
    read from the first column (lags >= 0) and first row (lags < 0) and stored
    circularly in a buffer of length ``2L``.
    """
    n_channels, height, size, _ = operator.shape
    kernels = np.zeros((n_channels, height, 2 * size))
    kernels[..., :size] = operator[..., :, 0]  # lags 0 .. L-1
    kernels[..., size + 1 :] = operator[..., 0, :0:-1]  # lags -(L-1) .. -1
    return np.fft.rfft(kernels.reshape(n_channels * height, 2 * size), axis=-1)


def fft_analyze(x: torch.Tensor, spectra: torch.Tensor, n_channels: int) -> torch.Tensor:
    """``A x`` for windows ``(B, L)`` as ``(B, C, H, L)``."""
    batch, size = x.shape
    spec = torch.fft.rfft(x, n=2 * size)
    rows = torch.fft.irfft(spec[:, None, :] * spectra, n=2 * size)[..., :size]
    return rows.reshape(batch, n_channels, -1, size)


def fft_synthesize(
    coef: torch.Tensor, spectra: torch.Tensor, gram_inv: torch.Tensor
) -> torch.Tensor:
    """``G^{-1} A^T c`` for scalograms ``(B, C, H, L)``: the least-squares series ``(B, L)``."""
    batch, size = coef.shape[0], coef.shape[-1]
    spec = torch.fft.rfft(coef.reshape(batch, -1, size), n=2 * size)
    # Sum over rows in the frequency domain: one inverse FFT per window.
    adjoint = torch.fft.irfft((spec * spectra.conj()).sum(dim=1), n=2 * size)[:, :size]
    return adjoint @ gram_inv
