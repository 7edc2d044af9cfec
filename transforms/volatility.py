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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from transforms.validation import check_int, check_training_windows, float64_batches
from transforms.wavelet import Scalogram
from utils.errors import ScalodiffError

JSON_TYPE = "scalodiff.VolatilityScalogram"
EPS = 1e-30  # an all-zero window keeps a finite log RMS; tiny, so real windows come back exactly


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

    def __init__(self, base: Scalogram, row_gain: float = 1.0) -> None:
        if not (isinstance(row_gain, (int, float)) and 0 < row_gain <= 1):
            raise ScalodiffError(f"row_gain={row_gain!r} must be a number in (0, 1]")
        self.base = base
        self.row_gain = float(row_gain)
        self.log_rms_mean = 0.0
        self.log_rms_std = 1.0

    @property
    def channels(self) -> int:
        return self.base.channels

    @property
    def height(self) -> int:
        return self.base.height + 1

    @property
    def width(self) -> int:
        return self.base.width

    @staticmethod
    def _log_rms(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * torch.log(x.square().mean(dim=-1) + EPS)

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
        self.base.fit_batches(
            b / torch.exp(self._log_rms(b))[:, None] for b in float64_batches(data, batch_size)
        )
        return self

    def forward(self, x: torch.Tensor, standardize: bool = True) -> torch.Tensor:
        """Windows [B, L] -> images [B, C, H, W]; the last row holds the window's log RMS."""
        log_rms = self._log_rms(x)
        img = self.base.forward(x / torch.exp(log_rms)[:, None], standardize=standardize)
        row = (log_rms - self.log_rms_mean) / self.log_rms_std * self.row_gain
        row = row[:, None, None, None].expand(-1, img.shape[1], 1, img.shape[3]).to(img.dtype)
        if self.row_gain != 1.0 and self.base.include_mean:
            img = img.clone()
            img[:, 0, self.base.n_scales] *= self.row_gain
        return torch.cat([img, row], dim=2)

    def inverse(self, s: torch.Tensor, standardized: bool = True) -> torch.Tensor:
        """Images [B, C, H, W] -> windows [B, L]: the base inverse times the row's RMS."""
        if s.ndim != 4 or s.shape[2] != self.height:
            raise ScalodiffError(
                f"expected images of shape [B, {self.channels}, {self.height}, {self.width}], got {tuple(s.shape)}"
            )
        body = s[:, :, :-1]
        if self.row_gain != 1.0 and self.base.include_mean:
            body = body.clone()
            body[:, 0, self.base.n_scales] /= self.row_gain
        u = self.base.inverse(body.contiguous(), standardized=standardized)
        # A window divided by its RMS has RMS 1, so a generated one is put back on that
        # set: the least-squares inverse of an image that is not quite a scalogram
        # loses the part of its energy outside the operator's range.
        u = u / u.square().mean(dim=-1, keepdim=True).sqrt().clamp_min(EPS)
        # The row is constant for real images; for generated ones its mean is the least-squares value.
        row = s[:, :, -1].mean(dim=(1, 2)).to(u.dtype) / self.row_gain
        log_rms = row * self.log_rms_std + self.log_rms_mean
        return u * torch.exp(log_rms)[:, None]

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :func:`transform_from_json` turns back into this transform."""
        return {
            "type": JSON_TYPE,
            "log_rms_mean": self.log_rms_mean,
            "log_rms_std": self.log_rms_std,
            "row_gain": self.row_gain,
            "base": self.base.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VolatilityScalogram:
        """Rebuild a transform saved by :meth:`to_json`."""
        tr = cls(Scalogram.from_json(d["base"]), row_gain=float(d.get("row_gain", 1.0)))
        tr.log_rms_mean = float(d["log_rms_mean"])
        tr.log_rms_std = float(d["log_rms_std"])
        return tr


def transform_from_json(d: dict[str, Any]) -> Scalogram | VolatilityScalogram:
    """Either transform, from the dict its ``to_json`` wrote (checkpoints hold one of them)."""
    if isinstance(d, dict) and d.get("type") == JSON_TYPE:
        return VolatilityScalogram.from_json(d)
    return Scalogram.from_json(d)
