"""What generate.py prints and draws for a joint model's paths against the real aligned windows."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from data.joint import joint_windows  # noqa: E402
from evaluation.joint_metrics import (  # noqa: E402
    MAX_LAG,
    abs_cross_correlation,
    joint_figures,
    joint_intervals,
    std_ratios,
    window_correlations,
)
from utils.paths_io import prices_from_log_returns  # noqa: E402

# (key, label) of the figures printed for each pair of series.
ROWS = (
    ("corr", "return correlation, mean over windows"),
    ("corr_p10", "  its 10% quantile across windows"),
    ("corr_p90", "  its 90% quantile across windows"),
    ("corr_pooled", "return correlation, all returns pooled"),
    ("abs_corr_lag0", "|r| correlation, same day"),
    ("abs_corr_lag1", "|r| correlation, 1 day apart"),
    ("abs_corr_lag5", "|r| correlation, 5 days apart"),
    ("tail_dep", "both below their 5% quantile / independence"),
    ("corr_high_vol", "correlation, most volatile third of windows"),
    ("corr_low_vol", "correlation, calmest third of windows"),
)


def real_joint_windows(real_returns: np.ndarray, length: int, stride: int = 1) -> np.ndarray:
    """Real aligned windows ``[N, A, length]`` from a joint checkpoint's returns ``[T, A]``."""
    real = np.asarray(real_returns, dtype=np.float64)
    return np.ascontiguousarray(joint_windows(real.T, min(length, len(real)), stride))


def format_joint(real: np.ndarray, generated: np.ndarray, names: list[str]) -> str:
    """A table per pair of series: real windows, generated [95% interval]; then std ratios."""
    figures_real, figures_gen = joint_figures(real), joint_figures(generated)
    intervals = joint_intervals(generated)
    lines = []
    for pair, gen in figures_gen.items():
        a, b = (int(i) for i in pair.split("-"))
        lines.append(
            f"{names[a]} and {names[b]}: real ({len(real)} windows) | generated "
            f"({len(generated)} paths) [95%]"
        )
        for key, label in ROWS:
            lo, hi = intervals[pair][key]
            lines.append(
                f"  {label:<45} {figures_real[pair][key]:7.3f} | {gen[key]:7.3f} [{lo:.3f}, {hi:.3f}]"
            )
    ratios = std_ratios(generated, real)
    lines.append(
        "return std, generated / real: "
        + ", ".join(f"{n} {r:.3f}" for n, r in zip(names, ratios, strict=True))
    )
    return "\n".join(lines)


def plot_joint(
    path: Path,
    real: np.ndarray,
    generated: np.ndarray,
    names: list[str],
    start_prices: list[float],
    title: str,
) -> None:
    """Prices of a few joint paths per series, and the first pair's dependence, real vs generated."""
    n_assets = generated.shape[1]
    fig, axes = plt.subplots(2, max(n_assets, 3), figsize=(4.2 * max(n_assets, 3), 7.5))
    colors = plt.cm.tab10(np.arange(6))
    for a in range(n_assets):
        ax = axes[0, a]
        for i in range(min(6, len(generated))):
            ax.plot(
                prices_from_log_returns(generated[i, a], start_prices[a]), color=colors[i], lw=0.9
            )
        ax.set_title(f"{names[a]}: 6 joint paths (same colour = same path)", fontsize=9)
        ax.set_xlabel("step")
    for ax in axes[0, n_assets:]:
        ax.axis("off")
    _dependence_panels(axes[1], real, generated, names)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _dependence_panels(
    axes: np.ndarray, real: np.ndarray, generated: np.ndarray, names: list[str]
) -> None:
    """Same-day returns scatter, per-window correlations and |r| cross-correlations of pair (0, 1)."""
    scale = real[:, :2].reshape(-1, 2, real.shape[-1]).std(axis=(0, 2))
    # Real stride-1 windows overlap: the scatter takes non-overlapping ones, every day once.
    apart = real[:: real.shape[-1]]
    # Generated first: the real days (fewer) stay visible on top.
    for data, shown, label, color in (
        (generated, generated, "generated", "C1"),
        (real, apart, "real", "k"),
    ):
        flat = shown[:, :2] / scale[None, :, None]
        axes[0].scatter(
            flat[:, 0].ravel(), flat[:, 1].ravel(), s=2, alpha=0.25, color=color, label=label
        )
        axes[1].hist(
            window_correlations(data, 0, 1),
            bins=40,
            density=True,
            alpha=0.5,
            color=color,
            label=label,
        )
        lags = np.arange(MAX_LAG + 1)
        axes[2].plot(
            lags,
            [abs_cross_correlation(data, 0, 1, k).mean() for k in lags],
            "o-",
            color=color,
            label=label,
        )
    axes[0].set(
        xlabel=f"{names[0]} (real std)", ylabel=f"{names[1]} (real std)", title="same-day returns"
    )
    axes[1].set(xlabel="correlation of returns in a window", title="per-window correlation")
    axes[2].set(
        xlabel="lag (days)", ylabel="corr(|r_a(t)|, |r_b(t+lag)|)", title="volatility spillover"
    )
    for ax in axes[:3]:
        ax.legend(fontsize=8)
