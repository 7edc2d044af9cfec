"""Several series' scalograms as the channels of one image (a joint model).

Windows of A aligned series ``[B, A, L]`` become images ``[B, A * C, H, W]``:
series a's image (C channels, its own wavelet and volatility rows) sits in
channels ``a * C ... (a + 1) * C - 1``. One UNet sees all of them at every
layer, so what it generates for one series is generated together with the others:
same-day co-movement, volatility that spills over, crashes on the same days.

Each series keeps its own transform, fitted on its own windows (row scales and
volatility levels differ between markets). The volatility levels that
unconditional paths get (VOL_LEVEL = "fitted") are drawn jointly: a training
window is picked and all series take its levels, so calm and wild windows stay
calm or wild together, as they are in the data; drawing each series' level on
its own would make them independent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from transforms.volatility import VolatilityScalogram, transform_from_json
from transforms.wavelet import Scalogram
from utils.errors import ScalodiffError

JSON_TYPE = "scalodiff.JointScalogram"
LEVEL_WINDOWS = 4096  # training windows, evenly spaced, whose levels are kept for drawing


class JointScalogram:
    """One transform per series, their images stacked along the channels.

    >>> base = [VolatilityScalogram(Scalogram(window_size=32, n_scales=6)) for _ in range(2)]
    >>> x = torch.randn(5, 2, 32, dtype=torch.float64)
    >>> tr = JointScalogram(base).fit(x)
    >>> tuple(tr.forward(x).shape), tuple(tr.inverse(tr.forward(x)).shape)
    ((5, 2, 8, 32), (5, 2, 32))
    """

    def __init__(self, parts: list[VolatilityScalogram | Scalogram]) -> None:
        if len(parts) < 2:
            raise ScalodiffError(f"a joint transform needs two or more series, got {len(parts)}")
        self.parts = parts
        # Standardized log RMS of every series in LEVEL_WINDOWS training windows: [M, A].
        self.level_rows: np.ndarray | None = None

    @property
    def n_assets(self) -> int:
        return len(self.parts)

    @property
    def channels(self) -> int:
        return sum(p.channels for p in self.parts)

    @property
    def height(self) -> int:
        return self.parts[0].height

    @property
    def width(self) -> int:
        return self.parts[0].width

    @property
    def window_size(self) -> int:
        return self.parts[0].window_size

    @property
    def output_size(self) -> int:
        return getattr(self.parts[0], "output_size", self.parts[0].window_size)

    @property
    def margin(self) -> int:
        return getattr(self.parts[0], "margin", 0)

    @property
    def local_window(self) -> int:
        return getattr(self.parts[0], "local_window", 0)

    @property
    def local_spread(self) -> float:
        return getattr(self.parts[0], "local_spread", 1.0)

    @local_spread.setter
    def local_spread(self, value: float) -> None:
        for p in self.parts:
            p.local_spread = float(value)

    def describe(self) -> str:
        """The image's layout in words."""
        return f"{self.n_assets} series as channels, each {self.parts[0].describe()}"

    def _check(self, x: torch.Tensor | np.ndarray) -> None:
        if x.ndim != 3 or x.shape[1] != self.n_assets:
            raise ScalodiffError(
                f"a joint transform of {self.n_assets} series takes windows [B, {self.n_assets}, L], "
                f"got shape {tuple(x.shape)}"
            )

    def fit(self, x: torch.Tensor | np.ndarray) -> JointScalogram:
        """Fit each series' transform on its own windows of ``x`` ``[N, A, L]``."""
        self._check(x)
        for a, part in enumerate(self.parts):
            part.fit(x[:, a])
        if isinstance(self.parts[0], VolatilityScalogram):
            picked = np.linspace(0, len(x) - 1, min(LEVEL_WINDOWS, len(x))).astype(int)
            chosen = torch.as_tensor(np.asarray(x[picked]), dtype=torch.float64)
            rows = [p.forward(chosen[:, a])[:, 0, -1, 0] for a, p in enumerate(self.parts)]
            self.level_rows = torch.stack(rows, dim=1).numpy()
        return self

    def forward(self, x: torch.Tensor, standardize: bool = True) -> torch.Tensor:
        """Windows ``[B, A, L]`` -> images ``[B, A * C, H, W]``."""
        self._check(x)
        return torch.cat(
            [p.forward(x[:, a], standardize=standardize) for a, p in enumerate(self.parts)], dim=1
        )

    def split(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Images ``[B, A * C, H, W]`` -> each series' image ``[B, C, H, W]``."""
        if images.ndim != 4 or images.shape[1] != self.channels:
            raise ScalodiffError(
                f"expected joint images of shape [B, {self.channels}, {self.height}, {self.width}], "
                f"got {tuple(images.shape)}"
            )
        return list(torch.split(images, [p.channels for p in self.parts], dim=1))

    def draw_rows(self, seeds: list[int]) -> torch.Tensor:
        """Standardized log-RMS levels ``[B, A]``: row i is all series' levels in one training
        window, picked with ``seeds[i]``."""
        if self.level_rows is None:
            raise ScalodiffError("the joint transform has no fitted volatility levels to draw")
        picks = [np.random.default_rng(int(s)).integers(len(self.level_rows)) for s in seeds]
        return torch.from_numpy(self.level_rows[picks])

    def unit_inverse(
        self, images: torch.Tensor, standardized: bool = True, generated: bool = False
    ) -> torch.Tensor:
        """Images -> whole windows ``[B, A, L]`` (margins kept), each series at unit RMS."""
        return torch.stack(
            [
                p.unit_inverse(i, standardized, generated)
                for p, i in zip(self.parts, self.split(images), strict=True)
            ],
            dim=1,
        )

    def inverse(
        self,
        images: torch.Tensor,
        standardized: bool = True,
        rows: torch.Tensor | None = None,
        generated: bool = False,
    ) -> torch.Tensor:
        """Images ``[B, A * C, H, W]`` -> windows ``[B, A, L]`` (each series' own inverse);
        ``rows`` ``[B, A]`` replaces the images' volatility levels."""
        out = []
        for a, (part, image) in enumerate(zip(self.parts, self.split(images), strict=True)):
            kwargs: dict[str, Any] = {"standardized": standardized, "generated": generated}
            if isinstance(part, VolatilityScalogram) and rows is not None:
                kwargs["rows"] = rows[:, a]
            out.append(part.inverse(image, **kwargs))
        return torch.stack(out, dim=1)

    def local_rows(self, images: torch.Tensor) -> torch.Tensor:
        """Every series' local-volatility row, ``[B * A, W]`` (for the spread calibration)."""
        return torch.cat(
            [p.local_rows(i) for p, i in zip(self.parts, self.split(images), strict=True)]
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :meth:`from_json` turns back into this transform."""
        return {
            "type": JSON_TYPE,
            "parts": [p.to_json() for p in self.parts],
            "level_rows": None if self.level_rows is None else self.level_rows.tolist(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JointScalogram:
        """Rebuild a transform saved by :meth:`to_json`."""
        tr = cls([transform_from_json(p) for p in d["parts"]])
        if d.get("level_rows") is not None:
            tr.level_rows = np.asarray(d["level_rows"], dtype=np.float64)
        return tr
