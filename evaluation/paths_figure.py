"""Figures written by generate.py: paths, scalograms, return distribution, volatility clustering.

Matplotlib runs with the Agg backend: figures go to files and never block on a window.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from evaluation.metrics import acf  # noqa: E402
from utils.paths_io import prices_from_log_returns  # noqa: E402


def _show_scalogram(ax: plt.Axes, image: torch.Tensor, title: str, vmax: float) -> None:
    """First channel of a [C, H, W] scalogram, small scales at the top."""
    ax.imshow(
        image[0].numpy(),
        aspect="auto",
        cmap="RdBu_r",
        vmin=-vmax,
        vmax=vmax,
        interpolation="nearest",
    )
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("time step")
    ax.set_ylabel("scale (row)")


def plot_generation(
    path: str | os.PathLike,
    real_windows: np.ndarray,
    synth: np.ndarray,
    real_images: torch.Tensor,
    synth_images: torch.Tensor,
    start_price: float = 100.0,
    title: str = "",
    n_paths: int = 20,
) -> Path:
    """Write a 2 x 3 figure comparing generated paths with real windows.

    Panels: example price paths (real in black), a real and a generated
    scalogram, the return histogram on a log scale with a Gaussian of the real
    std, and the ACF of r and |r| (volatility clustering).

    Parameters
    ----------
    path : str or PathLike
        PNG to write.
    real_windows, synth : ndarray of shape (N, L)
        Log returns in real units.
    real_images, synth_images : Tensor of shape (N, C, H, W)
        Standardized scalograms (only the first of each is drawn).
    start_price : float
        Price every drawn path starts from.
    title : str
        Figure title.
    n_paths : int
        Generated paths drawn.
    """
    path = Path(path)
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    length = synth.shape[1]
    steps = np.arange(length + 1)

    ax = axes[0, 0]
    for prices in prices_from_log_returns(synth[:n_paths], start_price):
        ax.plot(steps, prices, lw=0.8, alpha=0.7)
    rng = np.random.default_rng(0)
    for i in rng.choice(len(real_windows), size=min(3, len(real_windows)), replace=False):
        ax.plot(steps, prices_from_log_returns(real_windows[i], start_price), color="black", lw=1.2)
    ax.set_title(
        f"{min(n_paths, len(synth))} generated price paths (black: real windows)", fontsize=9
    )
    ax.set_xlabel("step")
    ax.set_ylabel("price")

    vmax = float(
        max(real_images[:1].abs().quantile(0.99), synth_images[:1].abs().quantile(0.99), 1e-6)
    )
    _show_scalogram(axes[0, 1], real_images[0], "real scalogram (standardized)", vmax)
    _show_scalogram(axes[0, 2], synth_images[0], "generated scalogram", vmax)

    ax = axes[1, 0]
    real_flat, synth_flat = real_windows.ravel(), synth.ravel()
    lim = np.quantile(np.abs(np.concatenate([real_flat, synth_flat])), 0.9995)
    bins = np.linspace(-lim, lim, 81)
    ax.hist(
        real_flat, bins=bins, density=True, histtype="step", color="black", lw=1.5, label="real"
    )
    ax.hist(
        synth_flat,
        bins=bins,
        density=True,
        histtype="step",
        color="tab:red",
        lw=1.5,
        label="generated",
    )
    sd = real_flat.std()
    grid = np.linspace(-lim, lim, 400)
    ax.plot(
        grid,
        np.exp(-0.5 * (grid / sd) ** 2) / (sd * np.sqrt(2 * np.pi)),
        ":",
        color="gray",
        label="Gaussian",
    )
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.5 / (len(synth_flat) * (bins[1] - bins[0])))
    ax.set_title("log returns (log density)", fontsize=9)
    ax.legend(fontsize=8)

    lags = np.arange(1, min(20, length - 1) + 1)
    for ax, fn, name in ((axes[1, 1], np.asarray, "r"), (axes[1, 2], np.abs, "|r|")):
        ax.plot(lags, acf(fn(real_windows), len(lags)), "o-", color="black", ms=3, label="real")
        ax.plot(lags, acf(fn(synth), len(lags)), "o-", color="tab:red", ms=3, label="generated")
        ax.axhline(0, color="gray", lw=0.5)
        ax.set_title(f"mean ACF of {name} within windows", fontsize=9)
        ax.set_xlabel("lag")
        ax.legend(fontsize=8)

    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
