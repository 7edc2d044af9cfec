"""Speed and accuracy of the scalogram transform, printed in one run.

    python benchmarks/transform.py            # full run, a few minutes on 2 busy cores
    python benchmarks/transform.py --quick    # fewer windows for the slow parts

Data: log returns of the S&P 500 prices shipped with ``arch`` (1999-2018),
cut into windows of 256 with stride 8. Standardization is fitted on the first
80% of the windows and errors are measured on the rest.

Sections: (1) forward/inverse times against ``pywt.cwt`` for 512 windows x 256
samples x 64 scales in float32; (2) condition numbers; (3) round-trip errors;
(4) errors after 5% RMS noise on the standardized coefficients; (5) magnitude
mode phase-retrieval errors. Timings are the minimum over repeats; the load
average is printed because other jobs on a shared machine slow every number.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pywt
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transforms.wavelet import Scalogram  # noqa: E402

WINDOW = 256
COMPLEX_WAVELET = "cmor1.5-1.0"


def sp500_windows(stride: int = 8) -> np.ndarray:
    import arch.data.sp500

    prices = arch.data.sp500.load()["Adj Close"].to_numpy()
    returns = np.diff(np.log(prices))
    windows = np.lib.stride_tricks.sliding_window_view(returns, WINDOW)[::stride]
    return np.ascontiguousarray(windows)


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up: operator tensors, allocator, thread pool
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def rel_err(estimate: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    return (estimate - truth).norm(dim=-1) / truth.norm(dim=-1)


def make(mode: str, n_scales: int, **kwargs) -> Scalogram:
    wavelet = COMPLEX_WAVELET if mode == "complex" else "morl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ill-conditioned settings are reported, not warned
        return Scalogram(WINDOW, n_scales, wavelet, mode, **kwargs)


def section_speed(windows: np.ndarray, n_windows: int, repeats: int) -> None:
    print(
        f"\n(1) Speed: {n_windows} windows x {WINDOW} samples x 64 scales, float32, signed 'morl'"
    )
    x = torch.tensor(windows[:n_windows], dtype=torch.float32)
    data = x.numpy()
    start = time.perf_counter()
    tr = make("signed", 64).fit(windows)
    tr.inverse(tr.forward(x[:1]))  # builds forward and inverse operators
    print(f"  one-off operator build, fit and pseudo-inverse: {time.perf_counter() - start:.2f} s")
    img = tr.forward(x)
    rows = {
        "ours forward (matrix)": best_time(lambda: tr.forward(x), repeats),
        "ours inverse (matrix)": best_time(lambda: tr.inverse(img), repeats),
        "pywt.cwt conv (batched call)": best_time(
            lambda: pywt.cwt(data, tr.scales, "morl", method="conv", axis=-1), max(1, repeats // 2)
        ),
        "pywt.cwt fft (batched call)": best_time(
            lambda: pywt.cwt(data, tr.scales, "morl", method="fft", axis=-1), max(1, repeats // 2)
        ),
        "pywt.cwt conv, one call per window": best_time(
            lambda: [pywt.cwt(w, tr.scales, "morl", method="conv") for w in data], 1
        ),
    }
    for name, seconds in rows.items():
        print(f"  {name:38s} {seconds * 1e3:9.1f} ms")
    fwd, inv = rows["ours forward (matrix)"], rows["ours inverse (matrix)"]
    for name in [k for k in rows if k.startswith("pywt")]:
        print(
            f"  {name:38s} / ours forward = {rows[name] / fwd:6.1f}x   / ours inverse = "
            f"{rows[name] / inv:6.1f}x"
        )


def section_conditioning() -> None:
    print("\n(2) Condition numbers of the operator (default range 1..window/2, log, mean row)")
    counts = [15, 16, 31, 32, 63, 64, 128]
    for mode in ("signed", "complex"):
        conds = [make(mode, n).raw_cond for n in counts]
        cells = "  ".join(f"{n}:{c:.3g}" for n, c in zip(counts, conds, strict=True))
        print(f"  {mode:8s} n_scales  {cells}")
    print("  scale_max (64 scales, signed):  ", end="")
    for frac in (8, 4, 2, 1):
        print(f"L/{frac}: {make('signed', 64, scale_max=WINDOW / frac).raw_cond:.3g}  ", end="")
    print(f"  no mean row: {make('signed', 64, include_mean=False).raw_cond:.3g}")


def section_round_trip(train: np.ndarray, test: np.ndarray) -> None:
    print("\n(3) Round trip, float32, held-out windows: mean (max) relative L2 error")
    print("(4) 5% RMS Gaussian noise on the standardized coefficients: mean relative L2 error")
    x32 = torch.tensor(test, dtype=torch.float32)
    x64 = torch.tensor(test, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    for mode in ("signed", "complex"):
        for n_scales in (15, 31, 63, 64, 128):
            tr = make(mode, n_scales).fit(train)
            err = rel_err(tr.inverse(tr.forward(x32)), x32)
            img = tr.forward(x64)
            noise = torch.randn(img.shape, generator=gen, dtype=img.dtype)
            noisy = img + 0.05 * img.square().mean().sqrt() * noise
            noise_err = rel_err(tr.inverse(noisy), x64).mean()
            print(
                f"  {mode:8s} {n_scales:4d} scales (cond {tr.cond:5.1f} standardized): "
                f"round trip {err.mean():.2e} ({err.max():.2e})   noise {noise_err:.2%}"
            )


def section_magnitude(train: np.ndarray, windows: np.ndarray, n_windows: int) -> None:
    print(f"\n(5) Magnitude mode, phase retrieval on {n_windows} windows spread over 1999-2018")
    print("    |W x| cannot tell x from 2 mean(x) - x; 'either sign' takes the closer of the two")
    # Calm years are easy and crises hard, so sample the whole period, not the test years.
    picks = np.linspace(0, len(windows) - 1, n_windows).round().astype(int)
    x = torch.tensor(windows[picks], dtype=torch.float32)
    cases = [
        ("morl, 64 scales", "morl", dict(n_scales=64)),
        (f"{COMPLEX_WAVELET}, 64 scales", COMPLEX_WAVELET, dict(n_scales=64)),
        ("morl, 31 scales", "morl", dict(n_scales=31)),
        (
            "seed preset: morl, 128 scales, no mean row, 128x128 image",
            "morl",
            dict(n_scales=128, include_mean=False, image_width=128),
        ),
    ]
    for name, wavelet, kwargs in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tr = Scalogram(WINDOW, wavelet=wavelet, mode="magnitude", **kwargs).fit(train)
        img = tr.forward(x)
        start = time.perf_counter()
        back = tr.inverse(img)
        seconds = time.perf_counter() - start
        flipped = 2 * x.mean(dim=1, keepdim=True) - x
        plain, other = rel_err(back, x), rel_err(back, flipped)
        either = torch.minimum(plain, other)
        consistency = rel_err(tr.forward(back).flatten(1), img.flatten(1))
        print(
            f"  {name:58s} error {plain.mean():6.1%}  either sign {either.mean():6.1%} "
            f"(median {either.median():5.1%})  |W| mismatch {consistency.mean():5.1%}  "
            f"flipped {(other < plain).float().mean():4.0%}  {seconds:6.1f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=512, help="windows timed in (1)")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats")
    parser.add_argument("--magnitude-windows", type=int, default=64, help="windows in (5)")
    parser.add_argument("--quick", action="store_true", help="16 windows in (5), 3 repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--speed-only", action="store_true", help="run section (1) only")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.magnitude_windows, args.repeats = 16, 3
    windows = sp500_windows()
    split = int(0.8 * len(windows))
    train, test = windows[:split], windows[split:]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, pywt {pywt.__version__}, "
        f"{os.cpu_count()} CPUs, load average {load:.1f}; {len(windows)} S&P 500 windows "
        f"({len(train)} train / {len(test)} test)"
    )
    section_speed(windows, min(args.windows, len(windows)), args.repeats)
    if args.speed_only:
        return
    section_conditioning()
    section_round_trip(train, test)
    section_magnitude(train, windows, args.magnitude_windows)


if __name__ == "__main__":
    main()
