"""The discrete CWT as a matrix, built from PyWavelets, and its least-squares inverse.

``pywt.cwt`` is linear in its input and, for a window of fixed length ``L``, shift
invariant: each scale convolves with one kernel and crops the same number of
samples whatever the input. Its output at time ``n`` for a unit impulse at time
``m`` therefore depends only on the lag ``n - m``, and one ``pywt.cwt`` call on a
single impulse of length ``2L - 1`` yields every entry of the ``L x L`` Toeplitz
matrix of each scale. Multiplying by that matrix reproduces ``pywt.cwt(...,
method='conv')`` to rounding (same products, other summation order), with zero
padding at the window edges exactly as PyWavelets does.

The inverse is the Moore-Penrose pseudo-inverse ``P = (A^T A)^{-1} A^T`` of the
stacked operator ``A``, computed once in float64 from the eigendecomposition of
the small ``L x L`` Gram matrix. ``P A = I`` makes the round trip exact, and
``A P`` is the orthogonal projection onto valid scalograms, so a generated
scalogram is mapped to the series whose scalogram is closest to it.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pywt
import torch

from transforms.fft_operator import toeplitz_spectra
from utils.errors import ScalodiffError
from utils.threads import single_thread

# PyWavelets' own default: the wavelet is sampled on 2**12 points before scaling.
PYWT_PRECISION = 12

# Above COND_WARN the float32 round trip may miss 1e-5 and the inverse amplifies a
# model's errors; above COND_LIMIT a float32 inverse is useless (eps32 * 1e6 ~ 0.1).
COND_WARN = 1e3
COND_LIMIT = 1e6


def continuous_wavelet(name: str) -> pywt.ContinuousWavelet:
    """Return PyWavelets' continuous wavelet ``name`` or raise a ScalodiffError.

    Parameters
    ----------
    name : str
        A continuous wavelet name as PyWavelets spells it, e.g. ``'morl'``,
        ``'mexh'``, ``'gaus2'`` or ``'cmor1.5-1.0'``.
    """
    families = pywt.wavelist(kind="continuous")
    hint = (
        f"use one of PyWavelets' continuous wavelets {families}; the families cmor, shan "
        "and fbsp need their parameters in the name, e.g. 'cmor1.5-1.0'"
    )
    if not isinstance(name, str):
        raise ScalodiffError(f"wavelet={name!r} is not a string; {hint}")
    if name in ("cmor", "shan", "fbsp"):
        # PyWavelets accepts these with silent defaults (and a FutureWarning); a
        # checkpoint should say which wavelet it used.
        raise ScalodiffError(f"wavelet={name!r} has no parameters; {hint}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pywt.ContinuousWavelet(name)
    except (ValueError, TypeError) as err:
        raise ScalodiffError(
            f"wavelet={name!r} is not a continuous wavelet ({err}); {hint}"
        ) from None


def make_scales(n_scales: int, scale_min: float, scale_max: float, spacing: str) -> np.ndarray:
    """Scales from ``scale_min`` to ``scale_max`` inclusive, log- or linearly spaced.

    Parameters are assumed validated by the caller (see ``Scalogram``).
    """
    if n_scales == 1:
        return np.array([float(scale_min)])
    if spacing == "log":
        return np.geomspace(scale_min, scale_max, n_scales)
    return np.linspace(scale_min, scale_max, n_scales)


# Small: a complex 128-scale operator for L=256 is 134 MB in float64.
@functools.lru_cache(maxsize=4)
def _cwt_matrix_cached(wavelet: str, scales: tuple[float, ...], window_size: int) -> np.ndarray:
    size = window_size
    impulse = np.zeros(2 * size - 1)
    impulse[size - 1] = 1.0
    response, _ = pywt.cwt(
        impulse,
        np.asarray(scales),
        continuous_wavelet(wavelet),
        method="conv",
        precision=PYWT_PRECISION,
    )
    # response[s, lag + size - 1] is the output at time n for an impulse at time m
    # with n - m = lag; gather it into matrix[s, n, m].
    lag_index = np.arange(size)[:, None] - np.arange(size)[None, :] + size - 1
    matrix = response[:, lag_index]
    parts = (matrix.real, matrix.imag) if np.iscomplexobj(matrix) else (matrix,)
    out = np.ascontiguousarray(np.stack(parts).astype(np.float64))
    out.setflags(write=False)  # shared between transforms through the cache
    return out


def cwt_matrix(wavelet: str, scales: np.ndarray, window_size: int) -> np.ndarray:
    """The CWT of ``pywt.cwt(x, scales, wavelet, method='conv')`` as a matrix.

    Returns
    -------
    numpy.ndarray, shape (C, S, L, L), float64, read-only
        ``C`` is 1 for a real wavelet and 2 (real, imaginary) for a complex one;
        ``out[c, s] @ x`` is scale ``s`` of the CWT of a window ``x``.
    """
    return _cwt_matrix_cached(wavelet, tuple(float(s) for s in scales), int(window_size))


def _gram_eigh(operator: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eigendecomposition of ``A^T A`` in float64.

    Runs through torch (MKL) rather than numpy (OpenBLAS) so the two libraries'
    thread pools do not fight over the same cores.
    """
    op = torch.from_numpy(np.ascontiguousarray(operator, dtype=np.float64))
    gram = op.T @ op
    with single_thread():
        eigval, eigvec = torch.linalg.eigh(gram)
    return op, eigval, eigvec


def _cond_from_eigval(eigval: torch.Tensor, n_cols: int) -> float:
    lo, hi = float(eigval[0]), float(eigval[-1])
    if lo <= hi * np.finfo(np.float64).eps * n_cols:
        return float("inf")
    return float(np.sqrt(hi / lo))


def pywt_coefficients(data: np.ndarray, scales: np.ndarray, wavelet: str) -> np.ndarray:
    """The reference: ``pywt.cwt(method='conv')`` of windows ``(B, L)`` as ``(B, C, S, L)``.

    One call for the whole batch; PyWavelets loops over the windows itself.
    """
    coef, _ = pywt.cwt(data, scales, continuous_wavelet(wavelet), method="conv", axis=-1)
    coef = np.moveaxis(coef, 0, 1)
    parts = (coef.real, coef.imag) if np.iscomplexobj(coef) else (coef,)
    return np.stack(parts, axis=1)


def magnitude_rows(coef: torch.Tensor, n_scales: int, include_mean: bool) -> torch.Tensor:
    """``(B, 1, H, L)`` image: ``|c|`` of the wavelet rows of ``coef`` ``(B, C, H, L)``.

    The modulus over the channels for a complex wavelet, the absolute value for a
    real one; the mean row keeps its sign.
    """
    batch, _, height, size = coef.shape
    out = torch.empty((batch, 1, height, size), dtype=coef.dtype, device=coef.device)
    wav = coef[:, :, :n_scales]
    if coef.shape[1] == 1:
        torch.abs(wav[:, 0], out=out[:, 0, :n_scales])
    else:
        torch.linalg.vector_norm(wav, dim=1, out=out[:, 0, :n_scales])
    if include_mean:
        out[:, 0, n_scales] = coef[:, 0, n_scales]
    return out


def condition_number(operator: np.ndarray) -> float:
    """Ratio of the largest to the smallest singular value of a tall matrix ``(R, L)``."""
    _, eigval, _ = _gram_eigh(operator)
    return _cond_from_eigval(eigval, operator.shape[1])


def gram_pinv(operator: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Pseudo-inverse of a tall full-column-rank matrix and its condition number.

    Parameters
    ----------
    operator : numpy.ndarray, shape (R, L), float64

    Returns
    -------
    pinv : numpy.ndarray, shape (L, R)
        ``(A^T A)^{-1} A^T``; all NaN if ``A`` is singular.
    cond : float
        Ratio of the largest to the smallest singular value (``inf`` if singular).
    gram_inv : numpy.ndarray, shape (L, L)
        ``(A^T A)^{-1}``.
    """
    op, eigval, eigvec = _gram_eigh(operator)
    cond = _cond_from_eigval(eigval, operator.shape[1])
    if not np.isfinite(cond):
        nan = np.full(operator.shape[::-1], np.nan)
        return nan, cond, nan[:, : operator.shape[1]]
    # The Gram matrix squares the condition number, which stays far below
    # 1/eps64 for every operator we accept (COND_LIMIT).
    gram_inv = (eigvec / eigval) @ eigvec.T
    return (gram_inv @ op.T).numpy(), cond, gram_inv.numpy()


def bilinear_time_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Linear interpolation along time as a ``(n_out, n_in)`` matrix.

    Same weights as ``F.interpolate(mode='bilinear', align_corners=False,
    antialias=False)`` along the last axis; as a matrix the resize composes with
    the CWT operator into one linear map.
    """
    scale = n_in / n_out
    src = np.clip((np.arange(n_out) + 0.5) * scale - 0.5, 0, None)
    lo = np.minimum(np.floor(src).astype(int), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    out = np.zeros((n_out, n_in))
    out[np.arange(n_out), lo] += 1 - frac
    out[np.arange(n_out), hi] += frac
    return out


class OperatorSet:
    """The linear operator of one transform, its pseudo-inverse, and their tensors.

    Parameters
    ----------
    wavelet_matrix : numpy.ndarray, shape (C, S, L, L)
        From :func:`cwt_matrix`.
    include_mean : bool
        Append the mean row ``1/L`` (channel 0; zero in channel 1).
    width : int
        Image width ``W``; ``W != L`` adds the bilinear time resize.
    resize_is_linear : bool
        Fold the resize into the operator (signed/complex modes). In magnitude
        mode the resize follows the modulus and is kept apart.
    on_cond : callable(cond, what)
        Called with each condition number computed, to warn or raise.

    Tensors are cached per (name, dtype, device) and rebuilt after
    :meth:`set_row_scale`, so repeated calls on the training device cost one
    matrix product each.
    """

    def __init__(self, wavelet_matrix, include_mean, width, resize_is_linear, on_cond) -> None:
        n_channels, n_scales, size, _ = wavelet_matrix.shape
        height = n_scales + (1 if include_mean else 0)
        full = np.zeros((n_channels, height, size, size))
        full[:, :n_scales] = wavelet_matrix
        if include_mean:
            full[0, n_scales] = 1.0 / size
        self.size = size
        self.resize = self.resize_pinv = None
        if width != size:
            self.resize = bilinear_time_matrix(size, width)  # (W, L)
            # Used by phase retrieval to lift image columns back to time samples.
            self.resize_pinv = np.linalg.pinv(self.resize)  # (L, W)
        # (C, H, W_op, L): the map the pseudo-inverse inverts.
        self.linear = self.resize @ full if resize_is_linear and self.resize is not None else full
        self._on_cond = on_cond
        self.raw_cond = condition_number(self.linear.reshape(-1, size))
        on_cond(self.raw_cond, "")
        self.set_row_scale(np.ones(self.linear.shape[:2]))

    def set_row_scale(self, row_scale: np.ndarray) -> None:
        """Divide every row ``(c, h)`` of the operator by ``row_scale[c, h]`` from now on."""
        self.row_scale = np.asarray(row_scale, dtype=np.float64)
        self._pinv: np.ndarray | None = None
        self._cond = float("nan")
        self._tensors: dict[tuple, torch.Tensor] = {}

    @property
    def cond(self) -> float:
        """Condition number of the row-scaled operator."""
        self.pinv()
        return self._cond

    def pinv(self) -> np.ndarray:
        """``(L, C*H*W_op)`` pseudo-inverse of the row-scaled operator, float64."""
        if self._pinv is None:
            scaled = self.linear / self.row_scale[:, :, None, None]
            pinv, cond, gram_inv = gram_pinv(scaled.reshape(-1, self.size))
            self._on_cond(cond, "standardized ")
            self._pinv, self._cond, self._gram_inv = pinv, cond, gram_inv
        return self._pinv

    def tensor(self, name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """One of 'fwd_raw', 'fwd_std', 'inv_std', 'inv_raw', 'resize', 'resize_pinv',
        'spectra', 'gram_inv'.

        Forward matrices are ``(L, rows)`` and inverse ones ``(rows, L)`` so that a
        batch ``(B, L)`` or ``(B, rows)`` multiplies from the left. 'spectra' and
        'gram_inv' (standardized) serve the FFT route of ``fft_operator.py``; they
        need the full-resolution operator (magnitude mode).
        """
        key = (name, dtype, str(device))
        if key not in self._tensors:
            scale = self.row_scale[:, :, None, None]
            if name == "fwd_raw":
                arr = self.linear.reshape(-1, self.size).T
            elif name == "fwd_std":
                arr = (self.linear / scale).reshape(-1, self.size).T
            elif name == "inv_std":
                arr = self.pinv().T
            elif name == "inv_raw":  # undo the row scaling first: P_std diag(1/std)
                pinv = self.pinv().reshape(self.size, *self.linear.shape[:3])
                arr = (pinv / scale[..., 0]).reshape(self.size, -1).T
            elif name == "resize":
                arr = self.resize.T
            elif name == "resize_pinv":
                arr = self.resize_pinv.T
            elif name == "spectra":
                arr = toeplitz_spectra(self.linear / scale)
                dtype = torch.complex64 if dtype == torch.float32 else torch.complex128
            elif name == "gram_inv":
                self.pinv()
                arr = self._gram_inv
            else:
                raise KeyError(name)
            self._tensors[key] = torch.as_tensor(np.ascontiguousarray(arr), dtype=dtype).to(device)
        return self._tensors[key]
