"""Figures of the evaluation report, each returned as a base64 PNG string.

Every function takes arrays already computed by ``evaluate.py`` (windows and
:class:`evaluation.compare.Facts`) and draws one figure; none of them reads
files. Returns are shown in units of the real training std so that every
generator is drawn on the same axes.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # files only; never open a window (and work without a display)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from evaluation.compare import Facts  # noqa: E402
from utils.paths_io import prices_from_log_returns  # noqa: E402

REAL_COLOR = "black"
HELDOUT_COLOR = "0.55"


def to_base64(fig: plt.Figure) -> str:
    """PNG bytes of ``fig`` as base64 text (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _colors(names: list[str]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {n: cycle[i % len(cycle)] for i, n in enumerate(names)}


def histograms(real: np.ndarray, synth: dict[str, np.ndarray], scale: float) -> str:
    """Histogram of returns / scale per generator against real, log y-axis, N(0,1) overlay."""
    names = list(synth)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    z_real = real.ravel() / scale
    lim = max(6.0, float(np.quantile(np.abs(z_real), 0.9999)))
    bins = np.linspace(-lim, lim, 81)
    grid = np.linspace(-lim, lim, 400)
    gauss = np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi)
    colors = _colors(names)
    for ax, name in zip(axes.ravel(), names, strict=False):
        ax.hist(z_real, bins, density=True, histtype="step", color=REAL_COLOR, label="real (train)")
        ax.hist(
            synth[name].ravel() / scale,
            bins,
            density=True,
            alpha=0.5,
            color=colors[name],
            label=name,
        )
        ax.plot(grid, gauss, "--", color="tab:red", lw=1, label="N(0, 1)")
        ax.set_yscale("log")
        ax.set_ylim(1e-5, 1)
        ax.set_xlabel("return / real std")
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    fig.suptitle("Return distributions (log scale)", y=1.02)
    return to_base64(fig)


def qq_plot(real: np.ndarray, synth: dict[str, np.ndarray], scale: float) -> str:
    """Quantiles of each generator against the real quantiles, both / scale."""
    probs = np.concatenate([np.geomspace(1e-4, 0.01, 20), np.linspace(0.01, 0.99, 60)])
    probs = np.unique(np.concatenate([probs, 1 - probs]))
    q_real = np.quantile(real.ravel() / scale, probs)
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    colors = _colors(list(synth))
    for name, x in synth.items():
        ax.plot(
            q_real, np.quantile(x.ravel() / scale, probs), ".", ms=4, color=colors[name], label=name
        )
    lo, hi = q_real.min(), q_real.max()
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="y = x")
    ax.set_xlabel("real quantile (/ real std)")
    ax.set_ylabel("generated quantile (/ real std)")
    ax.set_title("QQ plot against real training returns")
    ax.legend(fontsize=7)
    return to_base64(fig)


def _curve_panel(ax, real: Facts, held: Facts | None, synth: dict[str, Facts], attr: str, x=None):
    colors = _colors(list(synth))
    y = getattr(real, attr)
    xs = np.arange(1, len(y) + 1) if x is None else x
    ax.plot(xs, y, color=REAL_COLOR, lw=2, label="real (train)")
    if held is not None:
        ax.plot(
            xs, getattr(held, attr), color=HELDOUT_COLOR, lw=2, ls="--", label="real (held-out)"
        )
    for name, f in synth.items():
        ax.plot(xs, getattr(f, attr), color=colors[name], lw=1.2, label=name)
    ax.axhline(0, color="0.8", lw=0.8)
    ax.legend(fontsize=7)


def acf_curves(real: Facts, held: Facts | None, synth: dict[str, Facts]) -> str:
    """ACF of r (lags 1-20) and of |r| (lags 1 to min(100, L/2)), mean over windows."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    _curve_panel(a, real, held, synth, "acf_r")
    a.set(title="ACF of r", xlabel="lag")
    _curve_panel(b, real, held, synth, "acf_abs")
    b.set(title="ACF of |r|", xlabel="lag")
    return to_base64(fig)


def leverage_and_kurtosis(real: Facts, held: Facts | None, synth: dict[str, Facts]) -> str:
    """Leverage corr(r_t, r^2_{t+k}) and excess kurtosis against aggregation horizon."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    _curve_panel(a, real, held, synth, "leverage")
    a.set(title="Leverage: corr(r_t, r²_{t+k})", xlabel="k")
    _curve_panel(b, real, held, synth, "agg_kurtosis", x=np.asarray(real.horizons))
    b.set(title="Aggregational Gaussianity", xlabel="horizon (steps)", ylabel="excess kurtosis")
    b.set_xscale("log")
    b.set_yscale("symlog", linthresh=1)
    return to_base64(fig)


def example_paths(real: np.ndarray, synth: dict[str, np.ndarray], n: int = 8, seed: int = 0) -> str:
    """``n`` price paths 100 exp(cumsum r) from real windows and from each generator."""
    sets = {"real (train)": real, **synth}
    cols = min(4, len(sets))
    rows = -(-len(sets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    rng = np.random.default_rng(seed)
    all_prices = []
    for name, x in sets.items():
        pick = x[np.sort(rng.choice(len(x), min(n, len(x)), replace=False))]
        all_prices.append((name, prices_from_log_returns(pick, 100.0)[:, 1:]))
    lo = min(p.min() for _, p in all_prices)
    hi = max(p.max() for _, p in all_prices)
    for ax, (name, prices) in zip(axes.ravel(), all_prices, strict=False):
        ax.plot(prices.T, lw=0.8)
        ax.set_ylim(lo, hi)  # one y-range, so volatility levels compare at a glance
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
    for ax in axes.ravel()[len(all_prices) :]:
        ax.axis("off")
    fig.suptitle("Example price paths (start 100)", y=1.02)
    return to_base64(fig)


def scalograms(real: np.ndarray, synth: dict[str, np.ndarray], scale: float, seed: int = 0) -> str:
    """|CWT| of one real window and one window of each generator (returns / scale).

    Uses ``transforms.wavelet.Scalogram(window_size=L, n_scales=31)``; raises
    whatever that import or transform raises, for the caller to report.
    """
    import torch

    from transforms.wavelet import Scalogram

    n_scales = 31
    length = real.shape[1]
    sc = Scalogram(window_size=length, n_scales=n_scales)
    rng = np.random.default_rng(seed)
    sets = {"real (train)": real, **synth}
    picks = {k: v[rng.integers(len(v))][None, :] / scale for k, v in sets.items()}
    images = {
        k: np.abs(sc.forward(torch.from_numpy(np.ascontiguousarray(v))).numpy()[0, 0, :n_scales])
        for k, v in picks.items()
    }
    vmax = max(float(np.quantile(im, 0.99)) for im in images.values())
    fig, axes = plt.subplots(1, len(images), figsize=(3.4 * len(images), 2.8), squeeze=False)
    for ax, (name, im) in zip(axes[0], images.items(), strict=True):
        ax.imshow(im, aspect="auto", origin="lower", cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
    axes[0, 0].set_ylabel("scale index (small to large)")
    fig.suptitle("|wavelet coefficients| of one window each (shared colour scale)", y=1.02)
    return to_base64(fig)
