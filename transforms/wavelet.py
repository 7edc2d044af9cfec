"""The scalogram transform: windows of returns <-> wavelet images, both ways.

Everything the model sees passes through :class:`Scalogram`: training windows on
the way in, generated images on the way out. Forward and inverse share one set
of parameters and one linear operator built from PyWavelets (see
``transforms/cwt_operator.py``), so the transform itself adds no error: the
signed and complex modes invert exactly, and the magnitude mode recovers the
lost signs by phase retrieval (``transforms/phase_retrieval.py``).

Default scale range. Scales run log-spaced from 1 to ``window_size / 2``. The
largest scale must reach periods of about a window, or the lowest non-zero
frequencies are barely measured and the inverse amplifies noise there: with
``scale_max = L / 8`` the condition number of the operator is ~1000, with
``L / 4`` ~50, with ``L / 2`` 10-25 (for 15 to 128 scales, with the mean row).
Scale 1 of 'morl' (centre 0.81 cycles per sample) lies above the Nyquist
frequency and aliases; we keep the reference's range and accept that row.
"""

from __future__ import annotations

import warnings

import numpy as np
import pywt
import torch

from transforms.cwt_operator import (
    COND_LIMIT,
    COND_WARN,
    bilinear_time_matrix,
    condition_number,
    continuous_wavelet,
    cwt_matrix,
    gram_pinv,
    make_scales,
)
from transforms.phase_retrieval import griffin_lim
from transforms.validation import (
    check_choice,
    check_finite,
    check_int,
    check_positive_float,
    check_series_batch,
    check_stds,
)
from utils.errors import ScalodiffError

MODES = ("signed", "complex", "magnitude")
SPACINGS = ("log", "linear")
BACKENDS = ("matrix", "pywt")
JSON_TYPE = "scalodiff.Scalogram"
JSON_VERSION = 1


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
        every mode). Wavelets have zero mean, so without it the inverse must
        guess the mean from edge effects and is poorly conditioned.
    backend : {'matrix', 'pywt'}
        'matrix' multiplies by the precomputed operator (batched, any device).
        'pywt' calls ``pywt.cwt`` on CPU (the reference; slow). Both give the
        same numbers and share the inverse.
    image_width : int or None
        Image columns. ``None`` keeps ``window_size``. Otherwise time is resized
        like ``F.interpolate(mode='bilinear', align_corners=False)``. In 'signed'
        and 'complex' modes the resize is part of the linear operator and the
        inverse stays exact while the operator is well conditioned; in
        'magnitude' mode the inverse interpolates back, then phase-retrieves.
    phase_iters : int
        Iterations of the magnitude-mode phase retrieval.
    phase_momentum : float
        Fast Griffin-Lim momentum in [0, 1).
    scales : array_like or None
        Exact scale values as saved by :meth:`to_json`; they must agree with
        ``n_scales``, ``scale_min``, ``scale_max`` and ``spacing`` to 1e-9.

    Attributes
    ----------
    channels, height, width : int
        Image shape ``(C, H, W)``; ``height = n_scales + include_mean``.
    scales : numpy.ndarray
        The scales, row ``i`` of the image is ``scales[i]``.
    stds : numpy.ndarray or None
        Per-row scale ``(C, H)`` set by :meth:`fit`: the root mean square of the
        row over the training windows (the std of a zero-mean row). We do not
        subtract a mean, so the standardized transform stays linear.
    cond : float
        Condition number of the operator the inverse uses.

    Notes
    -----
    Forward agrees with ``pywt.cwt(x, scales, wavelet, method='conv')`` including
    its zero padding at the window edges. The inverse is the pseudo-inverse of
    the operator in standardized coordinates (where a diffusion model's errors
    are roughly white); it undoes the forward exactly and maps any other image
    to the series whose scalogram is nearest to it.

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
        phase_iters: int = 200,
        phase_momentum: float = 0.99,
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
        self._check_wavelet_fits_mode()
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
        self.phase_iters = check_int("phase_iters", phase_iters, minimum=0)
        if not (isinstance(phase_momentum, (int, float)) and 0 <= phase_momentum < 1):
            raise ScalodiffError(
                f"phase_momentum={phase_momentum!r} must be a number in [0, 1); 0.99 is typical"
            )
        self.phase_momentum = float(phase_momentum)
        self.scales = self._resolve_scales(scales)
        self.stds: np.ndarray | None = None
        self._cache: dict[tuple, torch.Tensor] = {}
        self._pinv64: np.ndarray | None = None
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
        self._pinv()
        return self._cond

    # ------------------------------------------------------------ validation
    def _check_wavelet_fits_mode(self) -> None:
        is_complex = self._wavelet_obj.complex_cwt
        if self.mode == "signed" and is_complex:
            raise ScalodiffError(
                f"wavelet={self.wavelet!r} is complex but mode='signed' needs a real wavelet; "
                "use wavelet='morl', or mode='complex'"
            )
        if self.mode == "complex" and not is_complex:
            raise ScalodiffError(
                f"wavelet={self.wavelet!r} is real but mode='complex' needs a complex wavelet; "
                "use e.g. wavelet='cmor1.5-1.0', or mode='signed'"
            )

    def _resolve_scales(self, given) -> np.ndarray:
        computed = make_scales(self.n_scales, self.scale_min, self.scale_max, self.spacing)
        if given is None:
            return computed
        arr = np.asarray(given, dtype=np.float64)
        if arr.shape != computed.shape or not np.allclose(arr, computed, rtol=1e-9, atol=0):
            raise ScalodiffError(
                f"scales={arr.tolist()!r} do not match n_scales={self.n_scales}, "
                f"scale_min={self.scale_min}, scale_max={self.scale_max}, "
                f"spacing={self.spacing!r}; leave scales=None or fix the other settings"
            )
        return arr

    # -------------------------------------------------------------- operator
    def _build_operator(self) -> None:
        """Full-resolution operator (C_op, H, L, L) and, if resizing, the image operator."""
        size = self.window_size
        try:
            wav = cwt_matrix(self.wavelet, self.scales, size)
        except ValueError as err:  # PyWavelets: "Selected scale of ... too small."
            raise ScalodiffError(
                f"scale_min={self.scale_min!r} is too small for wavelet={self.wavelet!r} "
                f"({err}); use scale_min >= 1"
            ) from None
        op = np.zeros((self._op_channels, self.height, size, size))
        op[:, : self.n_scales] = wav
        if self.include_mean:
            op[0, self.n_scales] = 1.0 / size
        self._op_full = op
        self._resize = None
        if self.width != size:
            self._resize = bilinear_time_matrix(size, self.width)  # (W, L)
            self._upsample = bilinear_time_matrix(self.width, size)  # (L, W)
        if self.mode == "magnitude" or self._resize is None:
            self._op_linear = op  # resize (if any) follows the modulus
        else:
            self._op_linear = self._resize @ op  # (C, H, W, L)
        # Reject settings the inverse cannot handle now, not after training.
        self.raw_cond = condition_number(self._op_linear.reshape(-1, size))
        self._check_cond(self.raw_cond, what="")

    def _check_cond(self, cond: float, what: str) -> None:
        settings = (
            f"n_scales={self.n_scales}, scale_min={self.scale_min:g}, "
            f"scale_max={self.scale_max:g}, include_mean={self.include_mean}, "
            f"image_width={self.image_width}"
        )
        if not cond < COND_LIMIT:
            raise ScalodiffError(
                f"the {what}scalogram operator is not invertible (condition number {cond:.3g}) "
                f"with {settings}; use more scales, include_mean=True, scale_max close to "
                f"window_size/2={self.window_size / 2:g} or a larger image_width"
            )
        if cond > COND_WARN:
            warnings.warn(
                f"scalogram operator condition number {cond:.3g} with {settings}: the inverse "
                "amplifies errors; float32 round trips will not be exact",
                stacklevel=3,
            )

    def _row_scale(self) -> np.ndarray:
        """Per operator row (C_op, H) scale: stds, shared by both parts in magnitude mode."""
        if self.stds is None:
            return np.ones((self._op_channels, self.height))
        if self.mode == "magnitude":
            return np.broadcast_to(self.stds, (self._op_channels, self.height))
        return self.stds

    def _pinv(self) -> np.ndarray:
        """Pseudo-inverse (L, C_op*H*W_op) of the standardized operator, float64."""
        if self._pinv64 is None:
            op_std = self._op_linear / self._row_scale()[:, :, None, None]
            pinv, cond = gram_pinv(op_std.reshape(-1, self.window_size))
            self._check_cond(cond, what="standardized ")
            self._pinv64, self._cond = pinv, cond
        return self._pinv64

    def _tensor(self, name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Operators as tensors, built once per (name, dtype, device)."""
        key = (name, dtype, str(device))
        if key not in self._cache:
            size = self.window_size
            scale = self._row_scale()[:, :, None, None]
            if name == "fwd_raw":
                arr = self._op_linear.reshape(-1, size).T
            elif name == "fwd_std":
                arr = (self._op_linear / scale).reshape(-1, size).T
            elif name == "inv_std":
                arr = self._pinv().T
            elif name == "inv_raw":
                shape = self._op_linear.shape
                arr = (self._pinv().reshape(size, *shape[:3]) / scale[..., 0]).reshape(size, -1).T
            elif name == "resize":
                arr = self._resize.T
            elif name == "upsample":
                arr = self._upsample.T
            else:  # pragma: no cover - internal names only
                raise KeyError(name)
            self._cache[key] = torch.as_tensor(np.ascontiguousarray(arr), dtype=dtype).to(device)
        return self._cache[key]

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
        batch, _, _, size = coef.shape
        out = torch.empty((batch, 1, self.height, size), dtype=coef.dtype, device=coef.device)
        wav = coef[:, :, : self.n_scales]
        if coef.shape[1] == 1:
            torch.abs(wav[:, 0], out=out[:, 0, : self.n_scales])
        else:
            torch.linalg.vector_norm(wav, dim=1, out=out[:, 0, : self.n_scales])
        if self.include_mean:
            out[:, 0, self.n_scales] = coef[:, 0, self.n_scales]
        if self._resize is not None:
            out = out @ self._tensor("resize", coef.dtype, coef.device)
        return out

    def _pywt_coefficients(self, x: torch.Tensor, standardize: bool) -> torch.Tensor:
        """(B, C_op*H*L) coefficients from ``pywt.cwt`` at full resolution, on CPU."""
        data = x.detach().cpu().numpy()
        coef, _ = pywt.cwt(data, self.scales, self._wavelet_obj, method="conv", axis=-1)
        coef = np.moveaxis(coef, 0, 1)  # (B, S, L)
        parts = [coef.real, coef.imag] if np.iscomplexobj(coef) else [coef]
        full = np.zeros(
            (data.shape[0], self._op_channels, self.height, self.window_size), data.dtype
        )
        full[:, :, : self.n_scales] = np.stack(parts, axis=1)
        if self.include_mean:
            full[:, 0, self.n_scales] = data.mean(axis=1, keepdims=True)
        if standardize:
            full /= self._row_scale()[None, :, :, None].astype(data.dtype)
        return torch.from_numpy(full.reshape(data.shape[0], -1)).to(x.device)

    # --------------------------------------------------------------- inverse
    @torch.no_grad()
    def inverse(self, s: torch.Tensor, standardized: bool = True) -> torch.Tensor:
        """Series from scalogram images: least squares, or phase retrieval for magnitudes.

        Parameters
        ----------
        s : torch.Tensor, shape (B, C, H, W), float32 or float64, any device
        standardized : bool
            ``s`` is standardized (as :meth:`forward` returns it after :meth:`fit`).

        Returns
        -------
        torch.Tensor, shape (B, L), same dtype and device as ``s``
        """
        self._check_image(s)
        std = standardized or self.stds is None
        batch = s.shape[0]
        if self.mode != "magnitude":
            inv = self._tensor("inv_std" if std else "inv_raw", s.dtype, s.device)
            return s.reshape(batch, -1) @ inv
        if not std:
            scale = torch.as_tensor(self.stds, dtype=s.dtype, device=s.device)
            s = s / scale[None, :, :, None]
        if self._resize is not None:
            s = s @ self._tensor("upsample", s.dtype, s.device)
        mean_row = s[:, 0, self.n_scales] if self.include_mean else None
        return griffin_lim(
            s[:, 0, : self.n_scales],
            mean_row,
            self._tensor("fwd_std", s.dtype, s.device),
            self._tensor("inv_std", s.dtype, s.device),
            self._op_channels,
            self.phase_iters,
            self.phase_momentum,
        )

    def _check_image(self, s: torch.Tensor) -> None:
        expected = (self.channels, self.height, self.width)
        if not isinstance(s, torch.Tensor):
            raise ScalodiffError(
                f"scalogram of type {type(s).__name__} is not a torch.Tensor; "
                "pass torch.as_tensor(s)"
            )
        if s.dim() != 4 or tuple(s.shape[1:]) != expected:
            raise ScalodiffError(
                f"scalogram shape {tuple(s.shape)} does not match (B, C, H, W) = (B, {expected[0]}, "
                f"{expected[1]}, {expected[2]}) of this transform (mode={self.mode!r}, "
                f"n_scales={self.n_scales}, include_mean={self.include_mean}); load the transform "
                "saved with the model"
            )
        if s.dtype not in (torch.float32, torch.float64):
            raise ScalodiffError(
                f"scalogram dtype {s.dtype} is not supported; use float32 or float64"
            )

    # ---------------------------------------------------------- fit and save
    def fit(self, x: torch.Tensor | np.ndarray, batch_size: int = 1024) -> Scalogram:
        """Fit the per-row stds on training windows ``(N, L)``; returns ``self``.

        Works in float64 on CPU, ``batch_size`` windows at a time, so memory stays
        bounded whatever ``N``. Rows that are identically zero keep a scale of 1.
        """
        batch_size = check_int("batch_size", batch_size, minimum=1)
        data = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        check_series_batch(data, self.window_size, name="training windows", any_float=True)
        if data.shape[0] == 0:
            raise ScalodiffError("training windows are empty; fit needs at least one window")
        data = data.detach().to("cpu", torch.float64)
        check_finite(data, "training windows")
        self.stds = None
        self._invalidate()
        total = torch.zeros((self.channels, self.height), dtype=torch.float64)
        for start in range(0, data.shape[0], batch_size):
            # The matrix path gives the same numbers as pywt and is much faster.
            img = self._images(data[start : start + batch_size], False, "matrix")
            total += img.square().sum(dim=(0, 3))
        rms = (total / (data.shape[0] * self.width)).sqrt().numpy()
        self.stds = np.where(rms > 0, rms, 1.0)
        self._invalidate()
        return self

    def _invalidate(self) -> None:
        self._cache.clear()
        self._pinv64 = None

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
        return obj

    # ------------------------------------------------------------------ UNet
    def check_unet_divisible(self, levels: int) -> None:
        """Raise if a UNet with ``levels`` resolutions cannot take this image size.

        A UNet halves height and width ``levels - 1`` times, so both must be
        multiples of ``2 ** (levels - 1)``.
        """
        levels = check_int("levels", levels, minimum=1)
        factor = 2 ** (levels - 1)
        problems = []
        if self.height % factor:
            extra = 1 if self.include_mean else 0
            lo = (self.height // factor) * factor
            options = [h - extra for h in (lo, lo + factor) if h - extra >= 1]
            problems.append(
                f"height {self.height} (n_scales={self.n_scales}"
                f"{' + 1 mean row' if extra else ''}) is not a multiple of {factor}; "
                f"use n_scales in {options}"
            )
        if self.width % factor:
            lo = (self.width // factor) * factor
            options = [w for w in (lo, lo + factor) if w >= factor]
            name = "window_size" if self.image_width is None else "image_width"
            problems.append(
                f"width {self.width} is not a multiple of {factor}; use {name} in {options}"
            )
        if problems:
            raise ScalodiffError(
                f"a UNet with {levels} levels needs image height and width divisible by "
                f"2**{levels - 1}={factor}: " + "; ".join(problems)
            )

    def __repr__(self) -> str:
        return (
            f"Scalogram(window_size={self.window_size}, n_scales={self.n_scales}, "
            f"wavelet={self.wavelet!r}, mode={self.mode!r}, scales={self.scale_min:g}.."
            f"{self.scale_max:g} {self.spacing}, include_mean={self.include_mean}, "
            f"image={self.channels}x{self.height}x{self.width}, "
            f"fitted={self.stds is not None})"
        )
