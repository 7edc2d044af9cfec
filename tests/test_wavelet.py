"""Tests of the scalogram transform: agreement with PyWavelets, exact inverses, errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import pywt
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.wavelet import Scalogram
from utils.errors import ScalodiffError

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matrices gain nothing from threads, and on a busy shared machine
    OpenMP spin-waiting made these tests ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sp500_windows() -> np.ndarray:
    """Log returns of the built-in S&P 500 prices, 40 windows of 256 spread over 20 years."""
    import arch.data.sp500

    prices = arch.data.sp500.load()["Adj Close"].to_numpy()
    returns = np.diff(np.log(prices))
    windows = np.lib.stride_tricks.sliding_window_view(returns, 256)
    return np.ascontiguousarray(windows[:: len(windows) // 40][:40])


def rel_err(estimate: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Relative L2 error per window."""
    return (estimate - truth).norm(dim=-1) / truth.norm(dim=-1)


def random_windows(n: int, size: int, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    # Fat tails and a drift, like returns; a drift makes the mean row matter.
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.standard_t(4.0, size=(n, size)) * 0.01 + 3e-4, dtype=dtype)


# ----------------------------------------------------------------- agreement
@pytest.mark.parametrize("wavelet", ["morl", "mexh", "cmor1.5-1.0"])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_forward_matches_pywt_conv(wavelet, dtype, tol):
    mode = "complex" if wavelet.startswith("cmor") else "signed"
    tr = Scalogram(window_size=96, n_scales=20, wavelet=wavelet, mode=mode)
    x = torch.randn(5, 96, dtype=torch.float64).to(dtype)
    img = tr.forward(x)
    # The reference runs in float64 on the same (possibly float32) inputs:
    # pywt.cwt's own float32 path is off by 1e-4 to 4e-3 (it differentiates an
    # integrated wavelet, which cancels digits), far more than our rounding.
    ref, _ = pywt.cwt(x.double().numpy(), tr.scales, wavelet, method="conv", axis=-1)
    ref = np.moveaxis(ref, 0, 1)  # (B, S, L)
    parts = [ref.real, ref.imag] if np.iscomplexobj(ref) else [ref]
    for channel, part in enumerate(parts):
        ours = img[:, channel, : tr.n_scales].double().numpy()
        assert np.linalg.norm(ours - part) / np.linalg.norm(part) < tol
    torch.testing.assert_close(img[:, 0, -1], x.mean(dim=1, keepdim=True).expand(-1, 96))


@pytest.mark.parametrize("mode", ["signed", "complex", "magnitude"])
@pytest.mark.parametrize("image_width", [None, 48])
def test_pywt_backend_gives_same_numbers(mode, image_width):
    wavelet = "cmor1.5-1.0" if mode == "complex" else "morl"
    x = random_windows(6, 96)
    kwargs = dict(window_size=96, n_scales=12, wavelet=wavelet, mode=mode, image_width=image_width)
    fast = Scalogram(**kwargs).fit(x)
    slow = Scalogram(**kwargs, backend="pywt")
    slow.stds = fast.stds
    torch.testing.assert_close(slow.forward(x), fast.forward(x), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(
        slow.forward(x, standardize=False), fast.forward(x, standardize=False)
    )


# ---------------------------------------------------------------- round trip
@pytest.mark.parametrize(
    "mode,wavelet,n_scales",
    [
        ("signed", "morl", 64),
        ("complex", "cmor1.5-1.0", 64),
        ("signed", "morl", 15),
        ("signed", "morl", 31),
        pytest.param("signed", "morl", 128, marks=pytest.mark.slow),
        pytest.param("complex", "cmor1.5-1.0", 128, marks=pytest.mark.slow),
    ],
)
def test_round_trip_sp500_float32(sp500_windows, mode, wavelet, n_scales):
    x = torch.tensor(sp500_windows, dtype=torch.float32)
    tr = Scalogram(n_scales=n_scales, wavelet=wavelet, mode=mode).fit(x)
    back = tr.inverse(tr.forward(x))
    assert back.dtype == torch.float32
    assert rel_err(back, x).mean() <= 1e-5


def test_noise_on_standardized_coefficients_stays_small(sp500_windows):
    x = torch.tensor(sp500_windows, dtype=torch.float64)
    tr = Scalogram(n_scales=64).fit(x)
    img = tr.forward(x)
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(img.shape, generator=gen, dtype=img.dtype)
    noisy = img + 0.05 * img.square().mean().sqrt() * noise
    err = rel_err(tr.inverse(noisy), x).mean()
    assert 1e-3 < err <= 0.02  # the lower bound shows the noise did reach the output


def test_inverse_projects_onto_valid_scalograms():
    x = random_windows(4, 64)
    tr = Scalogram(window_size=64, n_scales=15).fit(x)
    img = tr.forward(x)
    junk = torch.randn(img.shape, dtype=img.dtype, generator=torch.Generator().manual_seed(2))
    once = tr.forward(tr.inverse(junk))
    # Projecting a valid scalogram again changes nothing, and the projection is
    # no farther from the junk than the original valid scalogram is.
    torch.testing.assert_close(tr.forward(tr.inverse(once)), once)
    assert (once - junk).norm() <= (img - junk).norm()


@pytest.mark.parametrize(
    "wavelet,image_width", [("morl", None), ("cmor1.5-1.0", None), ("morl", 32)]
)
def test_magnitude_phase_retrieval_error_is_small(wavelet, image_width):
    x = random_windows(6, 64, seed=3)
    tr = Scalogram(64, 31, wavelet, "magnitude", image_width=image_width).fit(x)
    back = tr.inverse(tr.forward(x))
    # |W x| = |W (2 mean - x)| away from the edges: compare modulo that flip.
    flipped = 2 * x.mean(dim=1, keepdim=True) - x
    err = torch.minimum(rel_err(back, x), rel_err(back, flipped))
    assert err.mean() < 0.15
    # and the result has the right magnitudes (it is not just small)
    assert rel_err(tr.forward(back).flatten(1), tr.forward(x).flatten(1)).mean() < 0.1


@settings(max_examples=8, deadline=None)
@given(
    size=st.sampled_from([32, 48, 64]),
    n_scales=st.integers(min_value=12, max_value=24),
    spacing=st.sampled_from(["log", "linear"]),
)
def test_round_trip_exact_in_float64(size, n_scales, spacing):
    x = random_windows(3, size, seed=size + n_scales)
    tr = Scalogram(window_size=size, n_scales=n_scales, spacing=spacing)
    assert rel_err(tr.inverse(tr.forward(x)), x).max() < 1e-10


def test_resized_signed_image_matches_interpolate_and_inverts():
    x = random_windows(4, 128)
    full = Scalogram(window_size=128, n_scales=31)
    small = Scalogram(window_size=128, n_scales=31, image_width=64)
    expected = F.interpolate(full.forward(x), size=(32, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(small.forward(x), expected)
    assert rel_err(small.inverse(small.forward(x)), x).max() < 1e-9


# --------------------------------------------------------- standardization
def test_fit_gives_unit_rms_rows_and_is_undone_exactly():
    x = random_windows(50, 64)
    tr = Scalogram(window_size=64, n_scales=15, wavelet="cmor1.5-1.0", mode="complex")
    tr.fit(x.numpy(), batch_size=7)
    img = tr.forward(x)
    rms = img.square().mean(dim=(0, 3)).sqrt()
    rms[1, -1] = 1.0  # the imaginary mean row is identically zero and keeps scale 1
    torch.testing.assert_close(rms, torch.ones_like(rms))
    raw = tr.forward(x, standardize=False)
    stds = torch.as_tensor(tr.stds)[None, :, :, None]
    torch.testing.assert_close(img * stds, raw)
    torch.testing.assert_close(tr.inverse(raw, standardized=False), x)
    torch.testing.assert_close(tr.inverse(img), x)


def test_fit_batch_size_does_not_change_stds_and_views_are_fine():
    series = random_windows(1, 93)[0].numpy()
    view = np.lib.stride_tricks.sliding_window_view(series, 64)  # read-only, overlapping
    a = Scalogram(window_size=64, n_scales=15).fit(torch.tensor(view), batch_size=1000).stds
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's warning on non-writable arrays
        b = Scalogram(window_size=64, n_scales=15).fit(view, batch_size=4).stds
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_json_round_trip_reproduces_transform_exactly():
    x = random_windows(20, 64)
    tr = Scalogram(window_size=64, n_scales=15, mode="magnitude", image_width=32, phase_iters=20)
    tr.fit(x)
    back = Scalogram.from_json(json.loads(json.dumps(tr.to_json())))
    assert back.to_json() == tr.to_json()
    assert torch.equal(back.forward(x), tr.forward(x))
    assert torch.equal(back.inverse(tr.forward(x)), tr.inverse(tr.forward(x)))


# ------------------------------------------------------ batches and devices
@pytest.mark.parametrize("mode", ["signed", "complex", "magnitude"])
def test_batch_equals_loop(mode):
    wavelet = "cmor1.5-1.0" if mode == "complex" else "morl"
    tr = Scalogram(window_size=48, n_scales=12, wavelet=wavelet, mode=mode, phase_iters=30)
    x = random_windows(5, 48).float()
    batched = tr.forward(x)
    looped = torch.cat([tr.forward(x[i : i + 1]) for i in range(len(x))])
    torch.testing.assert_close(batched, looped)
    inv = tr.inverse(batched)
    inv_loop = torch.cat([tr.inverse(batched[i : i + 1]) for i in range(len(x))])
    torch.testing.assert_close(inv, inv_loop, rtol=1e-4, atol=1e-6)


def test_phase_retrieval_fft_and_dense_routes_agree(monkeypatch):
    import transforms.wavelet as wavelet_module

    x = random_windows(6, 64, seed=5)
    tr = Scalogram(64, 15, "cmor1.5-1.0", "magnitude", image_width=32, phase_iters=40).fit(x)
    img = tr.forward(x)
    by_fft = tr.inverse(img)
    monkeypatch.setattr(wavelet_module, "FFT_MAX_BATCH", 0)
    torch.testing.assert_close(tr.inverse(img), by_fft, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_keeps_dtype_and_no_grad(dtype):
    tr = Scalogram(window_size=32, n_scales=8)
    x = torch.randn(2, 32, dtype=dtype, requires_grad=True)
    img = tr.forward(x)
    assert img.dtype == dtype and not img.requires_grad
    assert tr.inverse(img).dtype == dtype


@CUDA
@pytest.mark.parametrize("mode", ["signed", "complex", "magnitude"])
def test_cuda_matches_cpu(mode):
    wavelet = "cmor1.5-1.0" if mode == "complex" else "morl"
    x = random_windows(8, 64)
    tr = Scalogram(window_size=64, n_scales=15, wavelet=wavelet, mode=mode, phase_iters=40).fit(x)
    img = tr.forward(x.cuda())
    assert img.device.type == "cuda"
    torch.testing.assert_close(img.cpu(), tr.forward(x))
    back = tr.inverse(img)
    assert back.device.type == "cuda"
    torch.testing.assert_close(back.cpu(), tr.inverse(tr.forward(x)), rtol=1e-6, atol=1e-9)
    f32 = tr.inverse(tr.forward(x.float().cuda()))
    assert f32.dtype == torch.float32 and f32.device.type == "cuda"


# -------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs,words",
    [
        (dict(scale_min=0.0), ["scale_min=0.0", "> 0"]),
        (dict(scale_min=-1.0), ["scale_min=-1.0"]),
        (dict(scale_max=-5.0), ["scale_max=-5.0"]),
        (dict(scale_min=8.0, scale_max=4.0), ["scale_max=4.0", "larger than scale_min"]),
        (dict(scale_min=0.01), ["scale_min=0.01", "too small"]),
        (dict(n_scales=0), ["n_scales=0", ">= 1"]),
        (dict(window_size=100.5), ["window_size=100.5"]),
        (dict(wavelet="morlet"), ["wavelet='morlet'", "cmor1.5-1.0"]),
        (dict(wavelet="db4"), ["wavelet='db4'", "continuous"]),
        (dict(wavelet="cmor"), ["wavelet='cmor'", "parameters"]),
        (dict(wavelet="cmor1.5-1.0"), ["mode='signed'", "real wavelet"]),
        (dict(mode="complex"), ["mode='complex'", "complex wavelet"]),
        (dict(mode="phase"), ["mode='phase'", "signed"]),
        (dict(spacing="geometric"), ["spacing='geometric'", "log"]),
        (dict(backend="cuda"), ["backend='cuda'", "matrix"]),
        (dict(phase_momentum=1.0), ["phase_momentum=1.0"]),
        (dict(n_scales=1, scale_min=200.0, include_mean=False), ["not invertible", "n_scales=1"]),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, words):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ScalodiffError) as info:
            Scalogram(**{"window_size": 64, **kwargs})
    for word in words:
        assert word in str(info.value)


def test_poorly_conditioned_settings_warn():
    with pytest.warns(UserWarning, match="condition number"):
        Scalogram(window_size=64, n_scales=4, scale_min=4.0, scale_max=8.0)


def test_bad_inputs_raise_clear_errors():
    tr = Scalogram(window_size=64, n_scales=15)
    with pytest.raises(ScalodiffError, match=r"\(3, 65\).*window_size=64"):
        tr.forward(torch.zeros(3, 65))
    with pytest.raises(ScalodiffError, match=r"x\[None\]"):
        tr.forward(torch.zeros(64))
    with pytest.raises(ScalodiffError, match="float32 or float64"):
        tr.forward(torch.zeros(2, 64, dtype=torch.int64))
    with pytest.raises(ScalodiffError, match="torch.Tensor"):
        tr.forward(np.zeros((2, 64)))
    with pytest.raises(ScalodiffError, match=r"\(B, 1, 16, 64\)"):
        tr.inverse(torch.zeros(2, 1, 15, 64))
    with pytest.raises(ScalodiffError, match="NaN"):
        tr.fit(np.full((4, 64), np.nan))
    with pytest.raises(ScalodiffError, match=r"\(4, 32\)"):
        tr.fit(np.zeros((4, 32)))


def test_json_errors():
    d = Scalogram(window_size=64, n_scales=15).to_json()
    with pytest.raises(ScalodiffError, match="type"):
        Scalogram.from_json({**d, "type": "other"})
    with pytest.raises(ScalodiffError, match="bad keys"):
        Scalogram.from_json({**d, "colour": "red"})
    with pytest.raises(ScalodiffError, match="stds"):
        Scalogram.from_json({**d, "stds": [[1.0, 2.0]]})
    with pytest.raises(ScalodiffError, match="do not match"):
        Scalogram.from_json({**d, "scales": [float(s) * 1.01 for s in d["scales"]]})
