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
from utils.errors import ScalodiffError


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
    torch.testing.assert_close(again.draw_rows([1, 2, 3]), tr.draw_rows([1, 2, 3]))


def test_drawn_levels_follow_the_training_levels(windows: torch.Tensor) -> None:
    tr = VolatilityScalogram(Scalogram(window_size=256, n_scales=14)).fit(windows)
    rows = tr.forward(windows)[:, 0, -1, 0].double().numpy()
    drawn = tr.draw_rows(list(range(4000))).numpy()
    # Same distribution: quantiles agree, and nothing outside the training range.
    for q in (0.1, 0.5, 0.9):
        assert abs(np.quantile(drawn, q) - np.quantile(rows, q)) < 0.1
    assert drawn.min() >= rows.min() - 1e-9 and drawn.max() <= rows.max() + 1e-9
    # Value i depends on seed i only.
    torch.testing.assert_close(tr.draw_rows([7, 8])[1:], tr.draw_rows([8]))


def test_inverse_with_drawn_levels_sets_each_window_rms(windows: torch.Tensor) -> None:
    tr = VolatilityScalogram(Scalogram(window_size=256, n_scales=14)).fit(windows)
    img = tr.forward(windows[:16])
    noisy = img + 0.3 * torch.randn(img.shape, generator=torch.Generator().manual_seed(0))
    rows = tr.draw_rows(list(range(16)))
    out = tr.inverse(noisy, rows=rows)
    want = torch.exp(rows * tr.log_rms_std + tr.log_rms_mean)
    torch.testing.assert_close(out.square().mean(dim=1).sqrt(), want, rtol=1e-9, atol=0)
    # Without levels, the row's own values set the RMS (and real images come back exactly).
    torch.testing.assert_close(tr.inverse(img), windows[:16], rtol=0, atol=1e-10)


# ------------------------------------------------------------- local volatility row


def test_local_row_round_trip_is_exact_and_holds_the_moving_rms(windows: torch.Tensor) -> None:
    tr = VolatilityScalogram(Scalogram(window_size=256, n_scales=13), local_window=21)
    tr.fit(windows)
    img = tr.forward(windows)
    assert img.shape == (len(windows), 1, 16, 256) and tr.height == 16
    err = (tr.inverse(img) - windows).norm(dim=1) / windows.norm(dim=1)
    assert float(err.max()) < 1e-10
    # The row before the level row is the standardized log of the centered moving RMS
    # of the unit-RMS window, computed here the slow way at an inner and an edge point.
    u = windows[0] / windows[0].square().mean().sqrt()
    for t, (lo, hi) in {100: (90, 111), 3: (0, 14)}.items():
        expected = 0.5 * np.log(float(u[lo:hi].square().mean()) + 1e-12)
        got = float(img[0, 0, -2, t]) * tr.local_std + tr.local_mean
        assert got == pytest.approx(expected, abs=1e-9)
    # A window whose volatility doubles halfway has a local row that rises with it.
    calm_then_wild = windows[5].clone()
    calm_then_wild[128:] *= 2.0
    curve = tr.forward(calm_then_wild[None])[0, 0, -2]
    assert float(curve[160:].mean() - curve[:96].mean()) * tr.local_std == pytest.approx(
        float(np.log(2.0)), abs=0.35
    )


def test_local_row_json_and_drawn_levels(windows: torch.Tensor) -> None:
    tr = VolatilityScalogram(Scalogram(window_size=256, n_scales=13), local_window=21)
    tr.fit(windows)
    back = transform_from_json(tr.to_json())
    assert back.local_window == 21 and back.height == 16
    torch.testing.assert_close(back.forward(windows[:8]), tr.forward(windows[:8]))
    # A noisy image still comes back at the drawn level exactly.
    noisy = tr.forward(windows[:8]) + 0.3 * torch.randn(8, 1, 16, 256, dtype=torch.float64)
    rows = tr.draw_rows(list(range(8)))
    out = tr.inverse(noisy, rows=rows)
    log_rms = 0.5 * torch.log(out.square().mean(dim=1))
    torch.testing.assert_close(log_rms, rows * tr.log_rms_std + tr.log_rms_mean)
    # Old checkpoints (no local fields) load with the row off.
    old = {k: v for k, v in tr.to_json().items() if not k.startswith("local")}
    assert transform_from_json(old).local_window == 0


@pytest.mark.parametrize("bad", [-1, 1, 2, 20, 257, 3.0, True])
def test_bad_local_window_is_a_clear_error(bad) -> None:
    with pytest.raises(ScalodiffError, match="LOCAL_VOL_WINDOW"):
        VolatilityScalogram(Scalogram(window_size=256, n_scales=13), local_window=bad)


def test_margin_round_trip_returns_the_middle_exactly(windows: torch.Tensor) -> None:
    base = Scalogram(window_size=256, n_scales=13)
    tr = VolatilityScalogram(base, local_window=21, margin=16).fit(windows)
    assert (tr.window_size, tr.output_size) == (256, 224)
    back = tr.inverse(tr.forward(windows))
    assert back.shape == (len(windows), 224)
    err = (back - windows[:, 16:-16]).norm(dim=1) / windows[:, 16:-16].norm(dim=1)
    assert float(err.max()) < 1e-10
    again = transform_from_json(tr.to_json())
    assert again.margin == 16
    torch.testing.assert_close(again.inverse(tr.forward(windows[:3])), back[:3])
    old = tr.to_json()
    del old["margin"]  # checkpoints written before margins existed
    assert transform_from_json(old).margin == 0


def test_noisy_scalograms_invert_with_flat_ends(windows: torch.Tensor) -> None:
    """White noise on the wavelet rows does not damp a window's ends: the least-squares
    inverse treats every position alike, so damped ends of generated windows come from
    the generated image, not from the inverse."""
    from evaluation.edges import edge_deviation

    tr = VolatilityScalogram(Scalogram(window_size=256, n_scales=13), local_window=21).fit(windows)
    img = tr.forward(windows)
    noise = torch.randn(img.shape, generator=torch.Generator().manual_seed(0), dtype=img.dtype)
    img[:, :, :-2] += 0.5 * noise[:, :, :-2]
    dev = edge_deviation(windows.numpy(), tr.inverse(img).numpy())
    assert dev["max_abs"] < 0.08, dev


@pytest.mark.parametrize("bad", [-1, 65, 2.0, True])
def test_bad_margin_is_a_clear_error(bad) -> None:
    with pytest.raises(ScalodiffError, match="EDGE_MARGIN"):
        VolatilityScalogram(Scalogram(window_size=256, n_scales=13), margin=bad)
