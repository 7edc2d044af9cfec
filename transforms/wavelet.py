"""The scalogram transform: windows of returns <-> wavelet images, both ways.

Everything the model sees passes through :class:`Scalogram`: training windows on
the way in, generated images on the way out. Forward and inverse share one set
of parameters and one linear operator built from PyWavelets (see
``transforms/cwt_operator.py``), so the transform itself adds no error: the
signed and complex modes invert exactly, and the magnitude mode recovers the
lost signs by phase retrieval (``transforms/phase_retrieval.py``), up to a
mirror image that magnitudes cannot resolve.

Default scale range. Scales run log-spaced from 1 to ``window_size / 2``. The
largest scale must reach periods of about a window, or the lowest non-zero
frequencies are barely measured and the inverse amplifies noise there: with
``scale_max = L / 8`` the condition number of the operator is ~1000, with
``L / 4`` ~50, with ``L / 2`` 10-25 (for 15 to 128 scales, with the mean row).
Scale 1 of 'morl' (centre 0.81 cycles per sample) lies above the Nyquist
frequency and aliases; we keep the reference's range and accept that row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import numpy as np
import pywt
import torch

from transforms.cwt_operator import (
    OperatorSet,
    continuous_wavelet,
    cwt_matrix,
    magnitude_rows,
    make_scales,
    pywt_coefficients,
)
from transforms.phase_retrieval import griffin_lim, operator_pair
from transforms.validation import (
    check_choice,
    check_condition,
    check_image_batch,
    check_int,
    check_positive_float,
    check_saved_scales,
    check_series_batch,
    check_stds,
    check_training_windows,
    check_wavelet_fits_mode,
    float64_batches,
)
from utils.errors import ScalodiffError
from utils.threads import single_thread

MODES = ("signed", "complex", "magnitude")
SPACINGS = ("log", "linear")
BACKENDS = ("matrix", "pywt")
JSON_TYPE = "scalodiff.Scalogram"
JSON_VERSION = 1
# Phase retrieval uses FFTs up to this many windows and dense products above
# (measured crossover on 2 CPU cores: about 64 windows).
FFT_MAX_BATCH = 32


class Scalogram:
    """Wavelet scalogram of return windows, with an exact least-squares inverse.

    Parameters
    ----------
    window_size : int
        Samples per window ``L``.
    n_scales : int
        Number of wavelet scales ``S``.
    wavelet : str
        A PyWavelets continuous wavelet: a real one ('morl', 'mexh', ...) for
        ``mode='signed'``, a complex one ('cmor1.5-1.0', ...) for
        ``mode='complex'``, either for ``mode='magnitude'``.
    mode : {'signed', 'complex', 'magnitude'}
        'signed': real coefficients with their sign, 1 channel. 'complex': real
        and imaginary parts, 2 channels. 'magnitude': ``|W|``, 1 channel, as the
        reference does; its inverse is phase retrieval (approximate).
    scale_min, scale_max : float
        Smallest and largest scale; ``scale_max=None`` means ``window_size / 2``.
    spacing : {'log', 'linear'}
        Spacing of the scales between ``scale_min`` and ``scale_max``.
    include_mean : bool
        Add a last row holding the window mean (constant along time, signed in
        every mode). Wavelets have zero mean, so without it the mean reaches the
        scalogram only through edge effects (condition number 26 instead of 18
        for 64 scales) and the magnitude mode loses it.
    backend : {'matrix', 'pywt'}
        'matrix' multiplies by the precomputed operator (batched, any device).
        'pywt' calls ``pywt.cwt(method='conv')`` in float64 on CPU, one call per
        batch (PyWavelets loops over the windows); it is the reference and slow.
        Both give the same numbers and share the inverse.
    image_width : int or None
        Image columns. ``None`` keeps ``window_size``. Otherwise time is resized
        like ``F.interpolate(mode='bilinear', align_corners=False)``. In 'signed'
        and 'complex' modes the resize is part of the linear operator and the
        inverse stays exact while the operator is well conditioned; in
        'magnitude' mode the phase retrieval keeps its full-resolution
        magnitudes consistent with the image (approximate, see the benchmark).
    phase_iters : int
        Iterations of the magnitude-mode phase retrieval.
    phase_momentum : float
        Fast Griffin-Lim momentum in [0, 1).
    phase_stages : int
        Continuation stages of the phase retrieval: scales are constrained from
        the largest down, in this many steps (1 is plain Griffin-Lim).
    scales : array_like or None
        Exact scale values as saved by :meth:`to_json`; they must agree with
        ``n_scales``, ``scale_min``, ``scale_max`` and ``spacing`` to 1e-9.

    Attributes
    ----------
    channels, height, width : int
        Image shape ``(C, H, W)``; ``height = n_scales + include_mean``.
    scales : numpy.ndarray
        Increasing scales: image row ``i`` is ``scales[i]`` (highest frequency
        first), the mean row comes last.
    stds : numpy.ndarray or None
        Per-row scale ``(C, H)`` set by :meth:`fit`: the root mean square of the
        row over the training windows (the std of a zero-mean row). We do not
        subtract a mean, so the standardized transform stays linear.
    cond, raw_cond : float
        Condition number of the operator the inverse uses (standardized once
        fitted), and of the plain operator.

    Notes
    -----
    Forward agrees with ``pywt.cwt(x, scales, wavelet, method='conv')`` including
    its zero padding at the window edges. The inverse is the pseudo-inverse of
    the operator in standardized coordinates (where a diffusion model's errors
    are roughly white); it undoes the forward exactly and maps any other image
    to the series whose scalogram is nearest to it.

    Magnitude mode cannot tell ``x`` from ``2 mean(x) - x`` (``|W|`` is the same
    but at the window edges), so about half the reconstructions come back
    mirrored about the mean; their distribution is right only for statistics
    that are symmetric under that flip (not skewness or the leverage effect).

    Memory: the operator and its inverse are dense, ``C * H * W * L`` entries
    each (64 scales, ``L = 256``: 17 M, 68 MB in float32 per device and dtype).

    Examples
    --------
    >>> import torch
    >>> from transforms.wavelet import Scalogram
    >>> tr = Scalogram(window_size=64, n_scales=15)
    >>> x = torch.randn(8, 64, dtype=torch.float64)
    >>> tr = tr.fit(x)
    >>> img = tr.forward(x)
    >>> tuple(img.shape)
    (8, 1, 16, 64)
    >>> bool(torch.allclose(tr.inverse(img), x, atol=1e-10))
    True
    """

    def __init__(
        self,
        window_size: int = 256,
        n_scales: int = 31,
        wavelet: str = "morl",
        mode: str = "signed",
        scale_min: float = 1.0,
        scale_max: float | None = None,
        spacing: str = "log",
        include_mean: bool = True,
        backend: str = "matrix",
        image_width: int | None = None,
        phase_iters: int = 320,
        phase_momentum: float = 0.99,
        phase_stages: int = 32,
        *,
        scales: np.ndarray | list[float] | None = None,
    ) -> None:
        self.window_size = check_int("window_size", window_size, minimum=2)
        self.n_scales = check_int("n_scales", n_scales, minimum=1)
        self.mode = check_choice("mode", mode, MODES)
        self.spacing = check_choice("spacing", spacing, SPACINGS)
        self.backend = check_choice("backend", backend, BACKENDS)
        if not isinstance(include_mean, bool):
            raise ScalodiffError(f"include_mean={include_mean!r} must be True or False")
        self.include_mean = include_mean
        self._wavelet_obj = continuous_wavelet(wavelet)
        self.wavelet = wavelet
        check_wavelet_fits_mode(wavelet, self._wavelet_obj.complex_cwt, self.mode)
        self.scale_min = check_positive_float("scale_min", scale_min)
        default_max = self.window_size / 2
        self.scale_max = (
            default_max if scale_max is None else check_positive_float("scale_max", scale_max)
        )
        if self.n_scales > 1 and not self.scale_max > self.scale_min:
            raise ScalodiffError(
                f"scale_max={self.scale_max!r} must be larger than scale_min={self.scale_min!r} "
                f"when n_scales={self.n_scales} > 1; e.g. scale_max={default_max:g} (window_size/2)"
            )
        self.image_width = (
            None if image_width is None else check_int("image_width", image_width, minimum=2)
        )
        self.phase_iters = check_int("phase_iters", phase_iters, minimum=1)
        self.phase_stages = check_int("phase_stages", phase_stages, minimum=1)
        if not (isinstance(phase_momentum, (int, float)) and 0 <= phase_momentum < 1):
            raise ScalodiffError(
                f"phase_momentum={phase_momentum!r} must be a number in [0, 1); 0.99 is typical"
            )
        self.phase_momentum = float(phase_momentum)
        computed = make_scales(self.n_scales, self.scale_min, self.scale_max, self.spacing)
        self.scales = computed if scales is None else check_saved_scales(scales, computed, self)
        self.stds: np.ndarray | None = None
        self._build_operator()

    # ------------------------------------------------------------------ shape
    @property
    def channels(self) -> int:
        return 2 if self.mode == "complex" else 1

    @property
    def height(self) -> int:
        return self.n_scales + (1 if self.include_mean else 0)

    @property
    def width(self) -> int:
        return self.window_size if self.image_width is None else self.image_width

    @property
    def _op_channels(self) -> int:
        """Channels of the linear operator: 2 for a complex wavelet in any mode."""
        return 2 if self._wavelet_obj.complex_cwt else 1

    @property
    def cond(self) -> float:
        """Condition number of the operator the inverse uses (standardized if fitted)."""
        return self._ops.cond

    # -------------------------------------------------------------- operator
    def _build_operator(self) -> None:
        try:
            wav = cwt_matrix(self.wavelet, self.scales, self.window_size)
        except ValueError as err:  # PyWavelets: "Selected scale of ... too small."
            raise ScalodiffError(
                f"scale_min={self.scale_min!r} is too small for wavelet={self.wavelet!r} "
                f"({err}); use scale_min >= 1"
            ) from None
        # Settings the inverse cannot handle are rejected here, not after training.
        self._ops = OperatorSet(
            wav, self.include_mean, self.width, self.mode != "magnitude", self._check_cond
        )
        self.raw_cond = self._ops.raw_cond
        self._resize = self._ops.resize

    def _check_cond(self, cond: float, what: str) -> None:
        check_condition(cond, what, self)

    def _row_scale(self) -> np.ndarray:
        """Per operator row (C_op, H) scale: stds, shared by both parts in magnitude mode."""
        if self.stds is None:
            return np.ones((self._op_channels, self.height))
        return np.broadcast_to(self.stds, (self._op_channels, self.height))

    def _tensor(self, name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        return self._ops.tensor(name, dtype, device)

    # --------------------------------------------------------------- forward
    @torch.no_grad()
    def forward(self, x: torch.Tensor, standardize: bool = True) -> torch.Tensor:
        """Scalogram images of a batch of windows.

        Parameters
        ----------
        x : torch.Tensor, shape (B, L), float32 or float64, any device
        standardize : bool
            Divide each row by its fitted std (ignored before :meth:`fit`).

        Returns
        -------
        torch.Tensor, shape (B, C, H, W), same dtype and device as ``x``
        """
        check_series_batch(x, self.window_size)
        return self._images(x, standardize and self.stds is not None, self.backend)

    __call__ = forward

    def _images(self, x: torch.Tensor, std: bool, backend: str) -> torch.Tensor:
        if backend == "pywt":
            coef = self._pywt_coefficients(x, std)
        else:
            coef = x @ self._tensor("fwd_std" if std else "fwd_raw", x.dtype, x.device)
        batch = x.shape[0]
        if self.mode != "magnitude":
            width = self.width if backend == "matrix" else self.window_size
            out = coef.view(batch, self.channels, self.height, width)
            if backend == "pywt" and self._resize is not None:
                out = out @ self._tensor("resize", x.dtype, x.device)
            return out
        return self._magnitude_image(coef.view(batch, self._op_channels, self.height, -1))

    def _magnitude_image(self, coef: torch.Tensor) -> torch.Tensor:
        out = magnitude_rows(coef, self.n_scales, self.include_mean)
        if self._resize is not None:
            out = out @ self._tensor("resize", coef.dtype, coef.device)
        return out

    def _pywt_coefficients(self, x: torch.Tensor, standardize: bool) -> torch.Tensor:
        """(B, C_op*H*L) full-resolution coefficients from ``pywt.cwt``, computed on CPU.

        Always in float64: ``pywt.cwt`` in float32 differentiates an integrated
        wavelet in float32 and loses 1e-4 to 4e-3 of relative accuracy.
        """
        data = x.detach().cpu().double().numpy()
        shape = (data.shape[0], self._op_channels, self.height, self.window_size)
        full = np.zeros(shape)
        full[:, :, : self.n_scales] = pywt_coefficients(data, self.scales, self.wavelet)
        if self.include_mean:
            full[:, 0, self.n_scales] = data.mean(axis=1, keepdims=True)
        if standardize:
            full /= self._row_scale()[None, :, :, None]
        return torch.from_numpy(full.reshape(shape[0], -1)).to(x.device, x.dtype)

    # --------------------------------------------------------------- inverse
    @torch.no_grad()
    def inverse(
        self, s: torch.Tensor, standardized: bool = True, generated: bool = False
    ) -> torch.Tensor:
        """Series from scalogram images: least squares, or phase retrieval for magnitudes.

        Parameters
        ----------
        s : torch.Tensor, shape (B, C, H, W), float32 or float64, any device
        standardized : bool
            ``s`` is standardized (as :meth:`forward` returns it after :meth:`fit`).
        generated : bool
            Whether ``s`` came from the model; the same inverse either way here (only
            the volatility transform treats generated images differently).

        Returns
        -------
        torch.Tensor, shape (B, L), same dtype and device as ``s``
        """
        context = f"mode={self.mode!r}, n_scales={self.n_scales}, include_mean={self.include_mean}"
        check_image_batch(s, (self.channels, self.height, self.width), context)
        std = standardized or self.stds is None
        batch = s.shape[0]
        if self.mode != "magnitude":
            inv = self._tensor("inv_std" if std else "inv_raw", s.dtype, s.device)
            return s.reshape(batch, -1) @ inv
        if not std:
            scale = torch.as_tensor(self.stds, dtype=s.dtype, device=s.device)
            s = s / scale[None, :, :, None]
        resize = None
        mean_row = s[:, 0, self.n_scales] if self.include_mean else None
        if self._resize is not None:
            resize = (
                self._tensor("resize", s.dtype, s.device),
                self._tensor("resize_pinv", s.dtype, s.device),
            )
            if mean_row is not None:  # a valid mean row is constant: keep its average
                mean_row = mean_row.mean(dim=-1, keepdim=True).expand(-1, self.window_size)
        # Few windows: FFTs beat reading the dense operator twice per iteration.
        use_fft = batch <= FFT_MAX_BATCH
        analyze, synthesize = operator_pair(
            self._tensor, use_fft, self._op_channels, self.height, s.dtype, s.device
        )
        with single_thread() if use_fft and s.device.type == "cpu" else contextlib.nullcontext():
            return griffin_lim(
                s[:, 0, : self.n_scales],
                mean_row,
                analyze,
                synthesize,
                self.phase_iters,
                self.phase_momentum,
                self.phase_stages,
                resize,
            )

    # ---------------------------------------------------------- fit and save
    def fit(self, x: torch.Tensor | np.ndarray, batch_size: int = 1024) -> Scalogram:
        """Fit the per-row stds on training windows ``(N, L)``; returns ``self``.

        Works in float64 on CPU, ``batch_size`` windows at a time, so memory stays
        bounded whatever ``N``. Rows that are identically zero keep a scale of 1.
        """
        batch_size = check_int("batch_size", batch_size, minimum=1)
        data = check_training_windows(x, self.window_size)
        return self.fit_batches(float64_batches(data, batch_size))

    def fit_batches(self, batches: Iterable[torch.Tensor]) -> Scalogram:
        """Fit the per-row stds on float64 CPU batches of windows ``(B, L)``; returns ``self``.

        For callers that change the windows on their way in (VolatilityScalogram
        divides each by its RMS) without holding all of them changed at once.
        """
        self.stds = None
        self._ops.set_row_scale(self._row_scale())
        total = torch.zeros((self.channels, self.height), dtype=torch.float64)
        count = 0
        for chunk in batches:
            # The matrix path gives the same numbers as pywt and is much faster.
            img = self._images(chunk, False, "matrix")
            total += img.square().sum(dim=(0, 3))
            count += chunk.shape[0]
        if count == 0:
            raise ScalodiffError("training windows are empty; fit needs at least one window")
        rms = (total / (count * self.width)).sqrt().numpy()
        self.stds = np.where(rms > 0, rms, 1.0)
        self._ops.set_row_scale(self._row_scale())
        return self

    def to_json(self) -> dict:
        """A JSON-serialisable dict that :meth:`from_json` turns back into this transform."""
        return {
            "type": JSON_TYPE,
            "version": JSON_VERSION,
            "window_size": self.window_size,
            "n_scales": self.n_scales,
            "wavelet": self.wavelet,
            "mode": self.mode,
            "scale_min": self.scale_min,
            "scale_max": self.scale_max,
            "spacing": self.spacing,
            "include_mean": self.include_mean,
            "backend": self.backend,
            "image_width": self.image_width,
            "phase_iters": self.phase_iters,
            "phase_momentum": self.phase_momentum,
            "phase_stages": self.phase_stages,
            "scales": [float(v) for v in self.scales],
            "stds": None if self.stds is None else self.stds.tolist(),
            "pywavelets_version": pywt.__version__,
        }

    @classmethod
    def from_json(cls, d: dict) -> Scalogram:
        """Rebuild a transform saved by :meth:`to_json`, fitted stds included."""
        if not isinstance(d, dict) or d.get("type") != JSON_TYPE:
            raise ScalodiffError(
                f"transform JSON has type {d.get('type') if isinstance(d, dict) else d!r}, "
                f"expected {JSON_TYPE!r}; pass the dict written by Scalogram.to_json()"
            )
        if d.get("version") != JSON_VERSION:
            raise ScalodiffError(
                f"transform JSON version {d.get('version')!r} is not supported (expected "
                f"{JSON_VERSION}); re-save the transform with this version of scalodiff"
            )
        params = {k: v for k, v in d.items() if k not in ("type", "version", "stds")}
        params.pop("pywavelets_version", None)
        try:
            obj = cls(**params)
        except TypeError as err:
            raise ScalodiffError(f"transform JSON has bad keys ({err}); re-save it") from None
        if d.get("stds") is not None:
            obj.stds = check_stds(d["stds"], (obj.channels, obj.height))
            obj._ops.set_row_scale(obj._row_scale())
        return obj

    def describe(self) -> str:
        """The image's rows in words, e.g. ``13 signed morl scales + mean``."""
        return f"{self.n_scales} {self.mode} {self.wavelet} scales" + (
            " + mean" if self.include_mean else ""
        )

    def __repr__(self) -> str:
        return (
            f"Scalogram(window_size={self.window_size}, n_scales={self.n_scales}, "
            f"wavelet={self.wavelet!r}, mode={self.mode!r}, scales={self.scale_min:g}.."
            f"{self.scale_max:g} {self.spacing}, include_mean={self.include_mean}, "
            f"image={self.channels}x{self.height}x{self.width}, "
            f"fitted={self.stds is not None})"
        )
