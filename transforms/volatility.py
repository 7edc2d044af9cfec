"""Carry each window's volatility level in a row of its own.

Most of the volatility clustering in daily returns lives at horizons longer than
a window: a window from 2008 is wild from start to end, one from 2005 calm. On
S&P 500 windows of 256 days the lag-1 autocorrelation of ``|r|`` is about 0.23
pooled over windows but only about 0.04 inside them. A small diffusion model
trained for minutes learns the shapes of scalograms long before it learns how
their overall energy varies, so it generates windows of one typical volatility.

:class:`VolatilityScalogram` divides each window by its RMS before the wavelet
transform and stores the standardized log RMS as an extra constant row. The
model then generates the volatility level as one explicit number per window,
and the inverse stays exact: ``x = rms * inverse(image)``.

Even so, the cpu preset's model, after minutes of training, generates that row
with too little spread (0.5-0.7 of the real standard deviation in our runs), so
its windows are all of middling volatility. Generation can therefore take the
level from the fitted distribution of the training windows' log RMS instead
(:meth:`VolatilityScalogram.draw_rows`, setting VOL_LEVEL = "fitted"): a
two-stage model where the level is drawn first and the diffusion model supplies
the shape of the window. The levels are then independent of the shapes, and
never outside the training range.

Inside a window the same model makes too little clustering: real S&P 500
windows have a per-window autocorrelation of ``|r|`` of about 0.12 at lags 2-5,
generated ones 0.01. With ``local_window = w`` (setting LOCAL_VOL_WINDOW) the
window is also divided by its own centered moving RMS over ``w`` returns
(relative to the window's RMS), and the log of that curve becomes one more,
time-varying row: a smooth curve, which the UNet generates far better than the
amplitude modulation of the finest wavelet rows. Real images still invert
exactly; a generated window is the base inverse times the generated curve,
renormalized to the level row's RMS.

A UNet generates the columns at an image's borders worse than the inner ones:
in generated S&P 500 windows the first and last four returns came out with
0.46-0.66 of the real mean ``|r|/RMS`` (real 0.78), from the wavelet rows at the
border columns, not from the inverse (real images with white noise added invert
with flat ends) nor from the local row. With ``margin = m`` (setting
EDGE_MARGIN) the transform works on windows of ``L + 2m`` returns and its
inverse returns the middle ``L``: no output return comes from a border column.

The same model generates the local row with too little movement inside a window
(its within-window standard deviation 0.74 against the real rows' 0.97 on the
S&P 500 after 1,000 steps), which thins the tails and the clustering.
``local_spread`` (setting LOCAL_SPREAD, fitted at the end of training by
models/calibration.py) multiplies each generated row's deviations from its own
mean in ``inverse(..., generated=True)``; the inverse of real images stays exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from transforms.validation import check_int, check_training_windows, float64_batches
from transforms.wavelet import Scalogram
from utils.errors import ScalodiffError

JSON_TYPE = "scalodiff.VolatilityScalogram"
N_QUANTILES = 257  # points of the fitted log-RMS quantile function
EPS = 1e-30  # an all-zero window keeps a finite log RMS; tiny, so real windows come back exactly
# Added to the local mean square of a unit-RMS window (the same for every window).
LOCAL_FLOOR = 1e-12


def check_local_window(value: Any, window_size: int) -> int:
    """0 (no local row) or an odd number of returns from 3 up to the window length."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or (value != 0 and not (3 <= value <= window_size and value % 2 == 1))
    ):
        raise ScalodiffError(
            f"local_window (LOCAL_VOL_WINDOW) must be 0 (off) or an odd number of returns from 3 to "
            f"the window length {window_size}, e.g. 21; got {value!r}"
        )
    return int(value)


def check_margin(value: Any, window_size: int) -> int:
    """0 or more returns dropped at each end, leaving at least half of the window."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or not 0 <= value <= window_size // 4
    ):
        raise ScalodiffError(
            f"margin (EDGE_MARGIN) must be a whole number of returns from 0 to a quarter of the "
            f"transform's window {window_size}, e.g. 16; got {value!r}"
        )
    return int(value)


class VolatilityScalogram:
    """A :class:`~transforms.wavelet.Scalogram` of RMS-normalized windows plus a log-RMS row.

    Parameters
    ----------
    base : Scalogram
        The wavelet transform applied to each window divided by its RMS.

    Examples
    --------
    >>> import torch
    >>> tr = VolatilityScalogram(Scalogram(window_size=64, n_scales=14))
    >>> x = torch.randn(8, 64, dtype=torch.float64) * torch.linspace(0.5, 2, 8)[:, None]
    >>> img = tr.fit(x).forward(x)
    >>> tuple(img.shape)
    (8, 1, 16, 64)
    >>> bool(torch.allclose(tr.inverse(img), x, atol=1e-10))
    True
    """

    def __init__(self, base: Scalogram, local_window: int = 0, margin: int = 0) -> None:
        self.base = base
        self.local_window = check_local_window(local_window, base.window_size)
        self.margin = check_margin(margin, base.window_size)
        self.log_rms_mean = 0.0
        self.log_rms_std = 1.0
        self.local_mean = 0.0  # standardization of the local log-RMS row (local_window > 0)
        self.local_std = 1.0
        self.local_spread = 1.0  # generated local rows' deviations are scaled by this in inverse
        # Corrections of continued windows' level (models/calibration.fit_continuation_level):
        # one dict per known length ({"known": model columns given, "shift": ..., ...}), or None.
        self.continuation_level: list[dict[str, Any]] | None = None
        # Standardized log RMS of the training windows at N_QUANTILES evenly spaced
        # probabilities: the fitted distribution of volatility levels (draw_rows).
        self.row_quantiles: np.ndarray | None = None

    @property
    def channels(self) -> int:
        return self.base.channels

    @property
    def window_size(self) -> int:
        """Returns per window that :meth:`forward` takes, margins included."""
        return self.base.window_size

    @property
    def output_size(self) -> int:
        """Returns per window that :meth:`inverse` gives: the input length less both margins."""
        return self.base.window_size - 2 * self.margin

    @property
    def height(self) -> int:
        return self.base.height + (2 if self.local_window else 1)

    @property
    def width(self) -> int:
        return self.base.width

    def describe(self) -> str:
        """The image's rows in words, the volatility rows included."""
        local = f" + local log RMS ({self.local_window} returns)" if self.local_window else ""
        margin = f"; {self.margin} returns dropped at each end" if self.margin else ""
        return f"{self.base.describe()}{local} + log RMS{margin}"

    @staticmethod
    def _log_rms(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * torch.log(x.square().mean(dim=-1) + EPS)

    def _local_log_rms(self, u: torch.Tensor) -> torch.Tensor:
        """Log of the centered moving RMS of unit-RMS windows ``u`` [B, L] (shorter at the edges)."""
        half, size = self.local_window // 2, u.shape[-1]
        cums = torch.nn.functional.pad(torch.cumsum(u.square(), dim=-1), (1, 0))
        t = torch.arange(size, device=u.device)
        lo, hi = (t - half).clamp(min=0), (t + half + 1).clamp(max=size)
        mean_sq = (cums[:, hi] - cums[:, lo]) / (hi - lo).to(u.dtype)
        # The floor keeps a run of zero returns finite; real windows never come near it.
        return 0.5 * torch.log(mean_sq.clamp_min(0) + LOCAL_FLOOR)

    def _normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Windows divided by their RMS (and local RMS); the log RMS and local log RMS."""
        log_rms = self._log_rms(x)
        u = x / torch.exp(log_rms)[:, None]
        if not self.local_window:
            return u, log_rms, None
        local = self._local_log_rms(u)
        return u / torch.exp(local), log_rms, local

    def fit(self, x: torch.Tensor | np.ndarray, batch_size: int = 1024) -> VolatilityScalogram:
        """Fit the log-RMS row's standardization and the base transform on training windows [N, L].

        ``batch_size`` windows at a time, in two passes over ``x``: the windows may be
        a read-only view over one series (train.py's), and neither a float64 copy
        of all of them nor all of them divided by their RMS is ever held.
        """
        batch_size = check_int("batch_size", batch_size, minimum=1)
        data = check_training_windows(x, self.base.window_size)
        log_rms = torch.cat([self._log_rms(b) for b in float64_batches(data, batch_size)])
        self.log_rms_mean = float(log_rms.mean())
        self.log_rms_std = (
            float(log_rms.std()) if data.shape[0] > 1 and float(log_rms.std()) > 0 else 1.0
        )
        rows = ((log_rms - self.log_rms_mean) / self.log_rms_std).numpy()
        self.row_quantiles = np.quantile(rows, np.linspace(0, 1, N_QUANTILES))
        locals_seen: list[torch.Tensor] = []

        def normalized() -> Iterator[torch.Tensor]:
            # One pass normalizes each batch once: the base fit gets the windows and the
            # local rows are kept for their standardization (which the base fit does not use).
            for b in float64_batches(data, batch_size):
                u, _, local = self._normalize(b)
                if local is not None:
                    locals_seen.append(local.flatten())
                yield u

        self.base.fit_batches(normalized())
        if locals_seen:
            local = torch.cat(locals_seen)
            self.local_mean = float(local.mean())
            self.local_std = float(local.std()) if float(local.std()) > 0 else 1.0
        return self

    def forward(self, x: torch.Tensor, standardize: bool = True) -> torch.Tensor:
        """Windows [B, L] -> images [B, C, H, W]; the last row holds the window's log RMS.

        With ``local_window`` the row before it holds the standardized local log RMS.
        """
        u, log_rms, local = self._normalize(x)
        img = self.base.forward(u, standardize=standardize)
        channels, width = img.shape[1], img.shape[3]
        row = (log_rms - self.log_rms_mean) / self.log_rms_std
        rows = [img]
        if local is not None:
            curve = (local - self.local_mean) / self.local_std
            rows.append(curve[:, None, None, :].expand(-1, channels, 1, -1).to(img.dtype))
        rows.append(row[:, None, None, None].expand(-1, channels, 1, width).to(img.dtype))
        return torch.cat(rows, dim=2)

    def draw_rows(self, seeds: list[int]) -> torch.Tensor:
        """Standardized log-RMS values drawn from the training windows' distribution.

        One uniform draw per seed goes through the quantile function fitted in
        :meth:`fit` (linear between its N_QUANTILES points), so value i depends
        only on ``seeds[i]``. Draws stay within the training windows' range.
        """
        if self.row_quantiles is None:
            raise ScalodiffError("the transform is not fitted: no volatility levels to draw from")
        uniforms = np.array([np.random.default_rng(int(s)).random() for s in seeds])
        grid = np.linspace(0, 1, len(self.row_quantiles))
        return torch.from_numpy(np.interp(uniforms, grid, self.row_quantiles))

    def unit_inverse(
        self, s: torch.Tensor, standardized: bool = True, generated: bool = False
    ) -> torch.Tensor:
        """Images [B, C, H, W] -> whole windows [B, L] (margins kept) scaled to unit RMS.

        The shape of each window without its level: :meth:`inverse` multiplies it by
        the level row's RMS, a continuation by the RMS its known returns ask for.
        ``generated`` images get their local rows' deviations scaled by ``local_spread``.
        """
        if s.ndim != 4 or s.shape[2] != self.height:
            raise ScalodiffError(
                f"expected images of shape [B, {self.channels}, {self.height}, {self.width}], got {tuple(s.shape)}"
            )
        extra = self.height - self.base.height  # the level row, and the local row if on
        u = self.base.inverse(s[:, :, :-extra].contiguous(), standardized=standardized)
        if self.local_window:
            # Averaged over channels: the rows of a complex image's two channels are equal.
            row = s[:, :, -2].mean(dim=1).to(u.dtype)
            if generated and self.local_spread != 1.0:
                centre = row.mean(dim=-1, keepdim=True)
                row = centre + self.local_spread * (row - centre)
            local = row * self.local_std + self.local_mean
            u = u * torch.exp(local)
        # A window divided by its RMS has RMS 1, so a generated one is put back on that
        # set: the least-squares inverse of an image that is not quite a scalogram
        # loses the part of its energy outside the operator's range.
        return u / u.square().mean(dim=-1, keepdim=True).sqrt().clamp_min(EPS)

    def inverse(
        self,
        s: torch.Tensor,
        standardized: bool = True,
        rows: torch.Tensor | None = None,
        generated: bool = False,
    ) -> torch.Tensor:
        """Images [B, C, H, W] -> windows [B, L - 2 margin]: the base inverse times the row's RMS.

        ``rows`` (standardized log RMS, shape [B]) replaces the images' own
        volatility rows, e.g. levels from :meth:`draw_rows`. With a margin the
        first and last ``margin`` returns are dropped. ``generated`` images get
        their local rows' deviations scaled by ``local_spread``.
        """
        u = self.unit_inverse(s, standardized, generated)
        # The row is constant for real images; for generated ones its mean is the least-squares value.
        row = s[:, :, -1].mean(dim=(1, 2)) if rows is None else rows.to(s.device)
        row = row.to(u.dtype)
        log_rms = row * self.log_rms_std + self.log_rms_mean
        return (u * torch.exp(log_rms)[:, None])[:, self.margin : u.shape[-1] - self.margin]

    @staticmethod
    def local_rows(images: torch.Tensor) -> torch.Tensor:
        """The local-volatility row of each image ``[B, W]`` (channels averaged: they are equal)."""
        return images[:, :, -2].mean(dim=1)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :func:`transform_from_json` turns back into this transform."""
        return {
            "type": JSON_TYPE,
            "log_rms_mean": self.log_rms_mean,
            "log_rms_std": self.log_rms_std,
            "row_quantiles": None if self.row_quantiles is None else self.row_quantiles.tolist(),
            "local_window": self.local_window,
            "local_mean": self.local_mean,
            "local_std": self.local_std,
            "local_spread": self.local_spread,
            "continuation_level": self.continuation_level,
            "margin": self.margin,
            "base": self.base.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VolatilityScalogram:
        """Rebuild a transform saved by :meth:`to_json`."""
        # Checkpoints written without a local row or a margin have neither key.
        tr = cls(
            Scalogram.from_json(d["base"]), int(d.get("local_window", 0)), int(d.get("margin", 0))
        )
        tr.log_rms_mean = float(d["log_rms_mean"])
        tr.log_rms_std = float(d["log_rms_std"])
        tr.local_mean = float(d.get("local_mean", 0.0))
        tr.local_std = float(d.get("local_std", 1.0))
        tr.local_spread = float(d.get("local_spread", 1.0))
        level = d.get("continuation_level")
        if level is not None:  # checkpoints fitted for one known length hold one dict
            tr.continuation_level = [
                dict(f) for f in ([level] if isinstance(level, dict) else level)
            ]
        if d.get("row_quantiles") is not None:
            tr.row_quantiles = np.asarray(d["row_quantiles"], dtype=np.float64)
        return tr


def transform_from_json(d: dict[str, Any]) -> Any:
    """Any transform, from the dict its ``to_json`` wrote (checkpoints hold one of them):
    a Scalogram, a VolatilityScalogram, or a joint model's JointScalogram of them."""
    if isinstance(d, dict) and d.get("type") == JSON_TYPE:
        return VolatilityScalogram.from_json(d)
    if isinstance(d, dict) and d.get("type") == "scalodiff.JointScalogram":
        from transforms.joint import JointScalogram  # it is built from this module's transforms

        return JointScalogram.from_json(d)
    return Scalogram.from_json(d)
