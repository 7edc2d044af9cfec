"""The volatility row: exact round trip, JSON, and scale moving only that row."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data.builtin import load_builtin
from data.returns import log_returns
from data.windows import windows_view
from transforms.volatility import VolatilityScalogram, transform_from_json
from transforms.wavelet import Scalogram


@pytest.fixture(scope="module")
def windows() -> torch.Tensor:
    r = log_returns(load_builtin("sp500").values)
    return torch.from_numpy(np.ascontiguousarray(windows_view(r, 256, 64)))


def test_round_trip_on_sp500_is_exact(windows: torch.Tensor) -> None:
    tr = VolatilityScalogram(Scalogram(window_size=256, n_scales=14)).fit(windows)
    img = tr.forward(windows)
    assert img.shape == (len(windows), 1, 16, 256)
    err = (tr.inverse(img) - windows).norm(dim=1) / windows.norm(dim=1)
    assert float(err.max()) < 1e-10
    x32 = windows.float()
    err32 = (tr.inverse(tr.forward(x32)) - x32).norm(dim=1) / x32.norm(dim=1)
    assert float(err32.mean()) < 1e-5


def test_scaling_a_window_moves_only_the_volatility_row(windows: torch.Tensor) -> None:
    tr = VolatilityScalogram(Scalogram(window_size=256, n_scales=14)).fit(windows)
    a, b = tr.forward(windows[:4]), tr.forward(3.0 * windows[:4])
    torch.testing.assert_close(a[:, :, :-1], b[:, :, :-1])
    shift = (b[:, :, -1] - a[:, :, -1]) * tr.log_rms_std
    torch.testing.assert_close(shift, torch.full_like(shift, float(np.log(3.0))))
    # The row is standardized over the training windows.
    rows = tr.forward(windows)[:, 0, -1, 0]
    assert abs(float(rows.mean())) < 1e-6 and abs(float(rows.std()) - 1) < 0.01


def test_json_round_trip_gives_the_same_images(windows: torch.Tensor) -> None:
    tr = VolatilityScalogram(Scalogram(window_size=256, n_scales=14)).fit(windows)
    again = transform_from_json(tr.to_json())
    assert isinstance(again, VolatilityScalogram)
    torch.testing.assert_close(again.forward(windows[:8]), tr.forward(windows[:8]), rtol=0, atol=0)
    plain = Scalogram(window_size=256, n_scales=15).fit(windows)
    assert isinstance(transform_from_json(plain.to_json()), Scalogram)
