"""The few figures generate.py prints: ones that an untrained model cannot fake.

The std ratio and the ACF of |r| pooled over windows are set by the volatility
level each path draws (VOL_LEVEL = "fitted"), so an untrained model scores as
well on them as a trained one. These figures look inside the windows instead:

- the L2 distance of the within-window ACF of |r| (lags 1-20) to the real curve;
- the excess kurtosis of returns divided by their window's RMS (the mixture of
  window levels cannot produce it);
- the L2 distance of the leverage curve corr(r_t, r_{t+k}^2), lags 1-20, to the real one.

Each comes with a 95% bootstrap interval over the generated paths and, when
the checkpoint carries one, the same figure for the untrained model
(:func:`untrained_reference`, computed once at the end of training).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data.windows import windows_view
from evaluation import metrics as m
from evaluation.intervals import LEVEL, centered_interval

LAGS = 20
N_BOOT = 200
# (key, label, kind): "dist" is 0 for the real windows themselves.
FIGURES = [
    ("acf_abs20_dist", "ACF |r| in windows, L2 to real (lags 1-20)", "dist"),
    ("kurtosis_std", "excess kurtosis of r / window RMS", "stat"),
    ("leverage_dist", "leverage, L2 to real (lags 1-20)", "dist"),
]


def _parts(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-window curves and the RMS-standardized returns, from which each figure is a mean."""
    r = np.asarray(x, dtype=np.float64)
    lags = min(LAGS, r.shape[1] - 1)
    rms = np.sqrt(np.mean(r**2, axis=1, keepdims=True))
    z = np.divide(r, rms, out=np.zeros_like(r), where=rms > 0)
    a = np.abs(r)
    return {"acf_abs": m.lagged_corr(a, a, lags), "leverage": m.lagged_corr(r, r**2, lags), "z": z}


def _figures(parts: dict[str, np.ndarray], real: dict[str, np.ndarray], rows=None) -> dict:
    pick = (lambda a: a) if rows is None else (lambda a: a[rows])
    return {
        "acf_abs20_dist": m.curve_distance(pick(parts["acf_abs"]).mean(0), real["acf_abs"]),
        "kurtosis_std": m.excess_kurtosis(pick(parts["z"])),
        "leverage_dist": m.curve_distance(pick(parts["leverage"]).mean(0), real["leverage"]),
    }


def realism_summary(
    real_windows: np.ndarray,
    synth: np.ndarray,
    untrained: dict[str, Any] | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> dict[str, Any]:
    """The figures of the module docstring for ``synth`` against ``real_windows`` (both ``[N, L]``).

    Returns ``{"n_paths", "n_real", "figures": {key: {"real", "synth", "ci", "untrained"}},
    "iid_acf_abs20_dist"}``: ``real`` is the real windows' own value (0 for a
    distance), ``untrained`` the value stored by :func:`untrained_reference`
    (None without one), and ``iid_acf_abs20_dist`` what a generator without any
    clustering would score (the norm of the real ACF curve).
    """
    rp = _parts(real_windows)
    real = {"acf_abs": rp["acf_abs"].mean(0), "leverage": rp["leverage"].mean(0)}
    sp = _parts(synth)
    point = _figures(sp, real)
    rng = np.random.default_rng(seed)
    reps = [_figures(sp, real, rng.integers(0, len(synth), len(synth))) for _ in range(n_boot)]
    real_values = {"acf_abs20_dist": 0.0, "kurtosis_std": m.excess_kurtosis(rp["z"]),
                   "leverage_dist": 0.0}  # fmt: skip
    figures = {
        key: {
            "real": real_values[key],
            "synth": point[key],
            "ci": centered_interval([r[key] for r in reps], point[key], LEVEL),
            "untrained": None if not untrained else untrained.get(key),
        }
        for key, _, _ in FIGURES
    }
    return {
        "n_paths": int(len(synth)),
        "n_real": int(len(real_windows)),
        "figures": figures,
        "iid_acf_abs20_dist": float(np.linalg.norm(real["acf_abs"])),
        "untrained_paths": None if not untrained else untrained.get("n_paths"),
    }


def format_realism(summary: dict[str, Any]) -> str:
    """The summary as a small table: figure, real, generated [95% interval], untrained."""
    labels = {key: label for key, label, _ in FIGURES}
    has_ref = any(f["untrained"] is not None for f in summary["figures"].values())
    n_ref = summary.get("untrained_paths")
    head = ["figure", "real", f"generated ({summary['n_paths']} paths) [95%]"]
    if has_ref:
        head.append(f"untrained ({n_ref} paths)" if n_ref else "untrained")
    rows = [head]
    for key, f in summary["figures"].items():
        lo, hi = f["ci"]
        row = [labels[key], f"{f['real']:.3f}", f"{f['synth']:.3f} [{lo:.3f}, {hi:.3f}]"]
        if has_ref:
            row.append("" if f["untrained"] is None else f"{f['untrained']:.3f}")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                       for i, c in enumerate(r)).rstrip() for r in rows]  # fmt: skip
    lines.append(
        f"({summary['n_real']} real windows; distances are 0 for the real windows, "
        f"{summary['iid_acf_abs20_dist']:.3f} on ACF |r| for paths without any clustering"
        + ("" if has_ref else "; no untrained reference in this checkpoint")
        + ")"
    )
    return "\n".join(lines)


def untrained_reference(loaded: dict[str, Any], n: int = 64, seed: int = 0) -> dict[str, Any]:
    """The summary figures of the checkpoint's model at its initial weights, for the checkpoint.

    Samples ``n`` paths with the untrained UNet (:mod:`evaluation.controls`),
    the run's sampler, steps and VOL_LEVEL, and compares them with the
    checkpoint's training windows. Store the result with
    ``utils.checkpoint.write_untrained_reference``.
    """
    from evaluation.controls import sample_paths, untrained_unet
    from models.diffusion import default_steps

    run = loaded["settings"]
    sampler = run.get("SAMPLER") or "dpm"
    steps = run.get("SAMPLING_STEPS") or default_steps(
        sampler, loaded["scheduler_config"]["num_train_timesteps"]
    )
    vol_level = run.get("VOL_LEVEL") or "model"
    x = sample_paths(loaded, untrained_unet(loaded), n, seed, sampler, steps, vol_level=vol_level)
    real = np.asarray(loaded["real_returns"], dtype=np.float64)
    length = x.shape[1]
    if len(real) < length:
        raise ValueError(f"{len(real)} training returns are fewer than one window of {length}")
    real_windows = windows_view(real, length, max(1, length // 4))
    rp = _parts(real_windows)
    point = _figures(
        _parts(x), {"acf_abs": rp["acf_abs"].mean(0), "leverage": rp["leverage"].mean(0)}
    )
    return {"n_paths": n, "seed": seed, "sampler": sampler, "steps": int(steps),
            "vol_level": vol_level, **point}  # fmt: skip
