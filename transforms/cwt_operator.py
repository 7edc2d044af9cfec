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

from utils.errors import ScalodiffError

# PyWavelets' own default: the wavelet is sampled on 2**12 points before scaling.
PYWT_PRECISION = 12

# Above this condition number the float32 round trip is no longer exact to 1e-5,
# and above the hard limit the operator is numerically singular in float64.
COND_WARN = 1e3
COND_LIMIT = 1e8


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


@functools.lru_cache(maxsize=16)
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
    thread pools do not fight over the same cores. The ``L x L`` eigenproblem
    runs on one thread: it is small, and on busy machines threaded LAPACK took
    seconds instead of milliseconds.
    """
    op = torch.from_numpy(np.ascontiguousarray(operator, dtype=np.float64))
    gram = op.T @ op
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        eigval, eigvec = torch.linalg.eigh(gram)
    finally:
        torch.set_num_threads(threads)
    return op, eigval, eigvec


def _cond_from_eigval(eigval: torch.Tensor, n_cols: int) -> float:
    lo, hi = float(eigval[0]), float(eigval[-1])
    if lo <= hi * np.finfo(np.float64).eps * n_cols:
        return float("inf")
    return float(np.sqrt(hi / lo))


def condition_number(operator: np.ndarray) -> float:
    """Ratio of the largest to the smallest singular value of a tall matrix ``(R, L)``."""
    _, eigval, _ = _gram_eigh(operator)
    return _cond_from_eigval(eigval, operator.shape[1])


def gram_pinv(operator: np.ndarray) -> tuple[np.ndarray, float]:
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
    """
    op, eigval, eigvec = _gram_eigh(operator)
    cond = _cond_from_eigval(eigval, operator.shape[1])
    if not np.isfinite(cond):
        return np.full(operator.shape[::-1], np.nan), cond
    # The Gram matrix squares the condition number, which stays far below
    # 1/eps64 for every operator we accept (COND_LIMIT).
    pinv = (eigvec / eigval) @ (eigvec.T @ op.T)
    return pinv.numpy(), cond


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
