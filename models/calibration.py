"""What the finished model is calibrated by: its local rows' spread, its tails, its continued level.

A diffusion model trained for minutes generates the smooth local-volatility row
with too little movement inside each window: on the S&P 500 after 1,000 steps its
within-window standard deviation was 0.74 of the standardized row against the
real rows' 0.97. The windows then cluster too little and their tails are thin
(pooled excess kurtosis 4.5 against 7.8; scaling the generated rows' deviations
by 1.25 gave 5.6 and cut the distance of the ACF of ``|r|`` from 0.195 to 0.159).

:func:`fit_local_spread` takes the windows :func:`calibration_images` sampled
with the finished model, as generate.py would, and returns the ratio of the real rows' within-window
standard deviation to the generated ones'; the transform applies it to generated
rows (``VolatilityScalogram.local_spread``) and the checkpoint keeps it.

The same model's tails stop short: Gaussian noise through a smooth network and a
power of 1.0-1.3 reach about 5 standard deviations, and the generated 99.9%
quantile of ``|r|`` fell 5-25% short of the real on all seven series of
benchmarks/tails.py (S&P 500 6.14 against 7.21 std; a GARCH-t(3.5) series 5.88
against 7.95). :func:`fit_tail_stretch` compares the generated windows' returns
with the training returns on each side beyond the generated 95% quantile ``t``,
where both look like power laws, and fits the power ``b`` of ``|z| -> t (|z|/t)**b``
that gives the generated quantiles the real ones' slope on a log scale (a Pareto
quantile plot: a tail of index ``a`` becomes one of index ``a / b``). The
normalizer applies it to generated values only (ReturnNormalizer.stretch_tails),
less the mean move it gives them: a heavier stretch on the losing side would
otherwise pull the drift down, and a daily drift is a few percent of the scale.
:func:`fit_normalizer_level_shape` then fits, on the same windows so stretched,
the residual's power at each volatility level (data/level_shape.py), which the
normalizer applies after the stretch.

A context model continues a window with the level of its new returns biased
and too little spread (models/continuation.py): :func:`fit_continuation_level`
continues training windows from their own first returns and regresses the real
and the generated log ratio (new returns' RMS over the known part's) each on the
known part's log RMS, that of its last returns and a moving RMS of its last days
(evenly spaced training windows and those whose history ends in the largest
shocks, which the last regressor must answer); the continuation moves a
generated ratio from the generated line to the real one and maps its distance
from the line onto the real distances' distribution, on new returns only. The
real distances are skewed (a calm drift with sudden rises of volatility: on the
S&P 500, 64 known returns, skewness 0.91 over these windows, 0.93 over all
training windows) where the model's are less so (0.51), so a map of quantiles
gives rolled paths their volatility spikes, where one factor (the ratio of the
spreads, kept for the far tails) would only widen a symmetric draw. The same
continued windows give the gains that flatten the model's RMS over the first new
positions (damped, then loud: 0.67, 0.79, 1.02 and 1.14 of the window's later new
returns at positions 0, 1, 2-3 and 4-7 on the S&P 500 with 128 known, where real
windows are flat), so that a continuation can start right after the latest
known return.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import stats

from data.labels import Conditioning
from data.level_shape import SHAPE_KEYS, fit_level_shape
from data.returns import ReturnNormalizer
from models.conditioning import Request, label_tensors
from models.continuation import (
    START_BINS,
    START_SPAN,
    context_channels,
    continue_window,
    level_features,
    near_bins,
    near_factors,
)
from models.diffusion import default_steps, make_sampler, sample
from transforms.volatility import EPS, VolatilityScalogram
from utils.seeding import derive_seed

SPREAD_RANGE = (0.5, 2.0)  # a fitted ratio is kept in here: beyond, the model is broken, not shy
REAL_WINDOWS = 2048  # training windows, evenly spaced, that give the real rows' spread
CALIBRATION_SEED = 7_919  # not a seed users sample with, so the fit is not tuned to their paths
CALIBRATION_WINDOWS = 128  # generated windows both fits share (32,768 returns at L = 256)
SHOCK_WINDOWS = 64  # windows added to the level fit whose history ends in a shock
TAIL_FRACTION = 0.05  # the stretch starts at each side's generated 95% quantile
TAIL_MIN_POINTS = 5  # the fitted quantiles reach as far as 5 values of the smaller sample
TAIL_QUANTILES = 16
TAIL_POWER_RANGE = (0.5, 2.0)  # beyond, the model is broken, not shy
LEVEL_LIMIT = 1.0  # a fitted shift or slope beyond +-1 (a factor e) means a broken model
# Residual quantiles of the level map, as far out as 128 windows resolve (2.6 values beyond each end).
LEVEL_PROBABILITIES = (0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98)


def evenly_spaced(total: int, count: int) -> np.ndarray:
    """Indices of at most ``count`` of ``total`` windows, evenly spaced from first to last.

    >>> evenly_spaced(10, 4).tolist(), evenly_spaced(3, 8).tolist()
    ([0, 3, 6, 9], [0, 1, 2])
    """
    return np.linspace(0, total - 1, min(count, total)).astype(int)


def within_window_std(rows: torch.Tensor) -> float:
    """Standard deviation of local rows [B, W] around each row's own mean.

    >>> within_window_std(torch.tensor([[0.0, 2.0], [5.0, 7.0]]))
    1.0
    """
    rows = rows.double()
    return float((rows - rows.mean(dim=-1, keepdim=True)).square().mean().sqrt())


def _sampling(loaded: dict[str, Any]) -> tuple[Any, int]:
    """The run's sampler and its number of steps."""
    run = loaded["settings"]
    name = run.get("SAMPLER") or "dpm"
    steps = run.get("SAMPLING_STEPS") or default_steps(
        name, loaded["scheduler_config"]["num_train_timesteps"]
    )
    return make_sampler(name, loaded["scheduler_config"]), steps


def calibration_images(
    loaded: dict[str, Any],
    n: int = CALIBRATION_WINDOWS,
    device: torch.device | str = "cpu",
    conditioning: Conditioning | None = None,
) -> tuple[torch.Tensor, list[int]]:
    """``n`` images sampled as generate.py would, and their seeds (for the level draws).

    ``loaded`` is a checkpoint as ``utils.checkpoint.load_for_sampling`` returns it;
    sampled with the run's sampler and steps; a conditional model with its null
    label (the unconditional model it also learned), as the fits compare with all
    training windows.
    """
    sampler, steps = _sampling(loaded)
    seeds = [derive_seed(CALIBRATION_SEED, i) for i in range(n)]
    labels, _ = label_tensors(conditioning, Request(None, "all windows"), n)
    unet = loaded["unet"].to(device)
    images = sample(unet, sampler, seeds, steps, device, class_labels=labels).cpu()
    return images, seeds


def fit_local_spread(
    images: torch.Tensor, transform: VolatilityScalogram, windows: Any
) -> dict[str, float]:
    """The factor that gives the generated ``images``' local rows the training rows' spread.

    ``windows`` are the normalized training windows [N, L] (a joint model's
    [N, A, L]; margins included). Returns ``factor`` (clipped to SPREAD_RANGE),
    ``real`` and ``generated`` (the two spreads) and ``n``.
    """
    generated = within_window_std(transform.local_rows(images))
    picked = evenly_spaced(len(windows), REAL_WINDOWS)
    real_windows = torch.from_numpy(np.asarray(windows[picked], dtype=np.float64))
    real = within_window_std(transform.local_rows(transform.forward(real_windows)))
    factor = float(np.clip(real / max(generated, 1e-12), *SPREAD_RANGE))
    return {"factor": factor, "real": real, "generated": generated, "n": len(images)}


def fit_tail_side(generated: np.ndarray, real: np.ndarray) -> tuple[float, float]:
    """(start, power) mapping the tail of magnitudes ``generated`` onto that of ``real``.

    ``start`` is the generated (1 - TAIL_FRACTION) quantile; ``power`` the least-squares
    slope of log real against log generated quantiles (the ratio of the two tail
    indices; a gap between the quantiles at the start is the body's, left as it is) at
    TAIL_QUANTILES tail probabilities from TAIL_FRACTION down to TAIL_MIN_POINTS values
    of the smaller sample, evenly spaced on a log scale (clipped to TAIL_POWER_RANGE).

    >>> rng = np.random.default_rng(0)
    >>> g, r = np.abs(rng.standard_t(4, 20000)), np.abs(rng.standard_t(4, 20000))
    >>> round(fit_tail_side(g, r)[1], 1), round(fit_tail_side(g, g**1.5)[1], 2)
    (1.0, 1.5)
    """
    generated, real = np.abs(generated), np.abs(real)
    if min(len(generated), len(real)) * TAIL_FRACTION <= TAIL_MIN_POINTS:
        return (float(generated.max()) if len(generated) else 0.0), 1.0  # too few for a tail
    start = float(np.quantile(generated, 1 - TAIL_FRACTION))
    smallest = TAIL_MIN_POINTS / min(len(generated), len(real))
    if start <= 0:
        return start, 1.0
    probs = 1 - np.geomspace(TAIL_FRACTION, smallest, TAIL_QUANTILES)
    x = np.log(np.quantile(generated, probs).clip(min=1e-300))
    y = np.log(np.quantile(real, probs).clip(min=1e-300))
    x, y = x - x.mean(), y - y.mean()
    power = float(x @ y / (x @ x)) if x @ x > 0 else 1.0
    return start, float(np.clip(power, *TAIL_POWER_RANGE))


def fit_tail_stretch(
    generated: np.ndarray, real: np.ndarray, normalizer: ReturnNormalizer
) -> dict[str, Any]:
    """Fit ``normalizer``'s tail stretch (each sign apart) from generated and real log returns.

    Both are in real units, any shape; ``generated`` were decoded without a
    stretch. Sets ``normalizer.tail_start``, ``tail_power`` and ``tail_shift`` (the
    mean move the stretch gives ``generated``, which it then subtracts: the
    stretched values keep the unstretched ones' mean) and returns them with the
    sample size.
    """
    g = np.asarray(generated, dtype=np.float64).ravel() / normalizer.scale
    r = np.asarray(real, dtype=np.float64).ravel() / normalizer.scale
    sides = [fit_tail_side(-g[g < 0], -r[r < 0]), fit_tail_side(g[g > 0], r[r > 0])]
    normalizer.tail_start = (sides[0][0], sides[1][0])
    normalizer.tail_power = (sides[0][1], sides[1][1])
    normalizer.tail_shift = 0.0
    normalizer.tail_shift = float(np.mean(normalizer.stretch_tails(g) - g)) if g.size else 0.0
    return {
        "start": normalizer.tail_start,
        "power": normalizer.tail_power,
        "shift": normalizer.tail_shift,
        "n": g.size,
    }


def fit_normalizer_level_shape(
    generated: np.ndarray, real: np.ndarray, normalizer: ReturnNormalizer
) -> dict[str, Any]:
    """Fit ``normalizer``'s level shape (data/level_shape.py) and return the fit.

    ``generated`` are log returns [N, L] decoded without the stretch or the shape;
    ``real`` the training returns in time order; the shape is fitted on the
    generated returns as the fitted stretch leaves them, and applied after it.
    """
    normalizer.level_shape = None
    stretched = normalizer.stretch_tails(np.asarray(generated, dtype=np.float64) / normalizer.scale)
    fit = fit_level_shape(stretched, np.asarray(real, dtype=np.float64) / normalizer.scale)
    normalizer.level_shape = {k: fit[k] for k in SHAPE_KEYS}
    return fit


def fit_continuation_level(
    loaded: dict[str, Any],
    transform: Any,
    windows: Any,
    known: int,
    n: int = CALIBRATION_WINDOWS,
    device: torch.device | str = "cpu",
    conditioning: Conditioning | None = None,
    shocks: int = SHOCK_WINDOWS,
) -> list[dict[str, Any]]:
    """Each series' correction of windows continuing ``known`` output returns.

    ``windows`` are the normalized training windows [N, W] (a joint model's
    [N, A, W]; margins included). ``n`` of them, evenly spaced, and ``shocks``
    whose history ends in a shock (:func:`_level_windows`) are continued from
    their first ``margin + known`` returns as generate.py continues a history
    (with whatever correction ``transform`` already holds). In that order, fitted
    and applied to the generated windows as continuations apply them:

    - ``near_slopes`` (:func:`_near_slopes`, all windows): per near bin but the
      last, how much more the real bin's level relative to the last bin's follows
      the history;
    - ``start_gains`` (:func:`_start_gains`, the evenly spaced windows);
    - the level: the real and the generated log ratio of the new returns' RMS to
      the known part's, each regressed (all windows) on
      :func:`models.continuation.level_features`: ``shift``, ``slope``,
      ``recent_slope``, ``short_slope`` (real minus generated coefficients, each
      clipped to +-LEVEL_LIMIT) and ``line`` (the generated coefficients); the
      residuals of the evenly spaced windows (the population's shares) give
      ``spread`` (real over generated standard deviation, clipped to
      SPREAD_RANGE), ``generated_quantiles`` and ``real_quantiles`` (at
      LEVEL_PROBABILITIES; None where a piece of the map they make would have a
      slope outside SPREAD_RANGE squared, a broken model), both skewnesses, and
      the mean ratios and residual deviations behind them.

    Returns one dict a series, with ``known`` (the model columns given).
    """
    sampler, steps = _sampling(loaded)
    given, margin = transform.margin + known, transform.margin
    picked = _level_windows(windows, given, n, shocks)
    real = torch.from_numpy(np.asarray(windows[picked], dtype=np.float64))
    seeds = [derive_seed(CALIBRATION_SEED, 1, i) for i in range(len(picked))]
    labels, _ = label_tensors(conditioning, Request(None, "all windows"), len(picked))
    cols = torch.full((len(picked),), given)
    ctx = context_channels(transform, real, cols).float()
    unet = loaded["unet"].to(device)
    images = sample(unet, sampler, seeds, steps, device, class_labels=labels, context=ctx).cpu()
    generated = continue_window(transform, images, real[..., :given])[..., known:]
    real_new = real[..., given : real.shape[-1] - margin]
    features = level_features(real[..., :given])
    near = _near_slopes(features.numpy(), generated.numpy(), real_new.numpy())
    for a in range(1 if real.ndim == 2 else real.shape[1]):
        pick, slopes = ((slice(None),), near) if real.ndim == 2 else ((slice(None), a), near[a])
        generated[pick] *= torch.exp(near_factors(features[pick], slopes, generated.shape[-1]))
    even = slice(0, min(n, len(windows)))  # the evenly spaced windows: the population's shares
    spaced = evenly_spaced(len(windows), REAL_WINDOWS)
    gains = _start_gains(
        generated[even].numpy(),
        np.asarray(windows[spaced], dtype=np.float64)[..., given : real.shape[-1] - margin],
    )
    generated[..., :START_SPAN] *= torch.from_numpy(gains[..., : generated.shape[-1]])
    features = features.numpy()
    log_rms = VolatilityScalogram._log_rms  # the level row's own measure, over the last axis
    real_ratio = log_rms(real_new).numpy() - features[..., 1]
    gen_ratio = log_rms(generated).numpy() - features[..., 1]
    fits = []
    for a in range(1 if real.ndim == 2 else real.shape[1]):
        pick = (slice(None),) if real.ndim == 2 else (slice(None), a)
        x = features[pick]
        real_line, real_res = _line(x, real_ratio[pick])
        gen_line, gen_res = _line(x, gen_ratio[pick])
        real_res, gen_res = real_res[even], gen_res[even]
        real_sd, gen_sd = _sd(real_res, x.shape[1]), _sd(gen_res, x.shape[1])
        shift, slope, recent, short = np.clip(real_line - gen_line, -LEVEL_LIMIT, LEVEL_LIMIT)
        spread = float(np.clip(real_sd / max(gen_sd, 1e-12), *SPREAD_RANGE))
        fits.append({
            "known": float(given), "shift": float(shift), "slope": float(slope),
            "recent_slope": float(recent), "short_slope": float(short),
            "line": [float(v) for v in gen_line],
            "spread": spread, **_residual_map(gen_res, real_res),
            "near_slopes": near[a if near.ndim > 2 else slice(None)].tolist(),
            "start_gains": [float(v) for v in gains[a if gains.ndim > 1 else slice(None)]],
            "generated": float(gen_ratio[pick][even].mean()),
            "real": float(real_ratio[pick][even].mean()),
            "generated_sd": gen_sd, "real_sd": real_sd,
        })  # fmt: skip
    return fits


def _level_windows(windows: Any, given: int, n: int, shocks: int) -> np.ndarray:
    """The training windows the level fit continues: ``n`` evenly spaced, then up to
    ``shocks`` others whose history ends with the highest short-term level over its
    whole (a series of a joint model: its highest), so that the rare shocks the near
    slopes and the level's short-term slope must answer are in the fit."""
    even = evenly_spaced(len(windows), n)
    jump = np.empty(len(windows))
    for lo in range(0, len(windows), 4096):  # a chunk at a time: windows may be a lazy view
        chunk = np.asarray(windows[lo : lo + 4096], dtype=np.float64)[..., :given]
        features = level_features(torch.from_numpy(chunk))
        jump[lo : lo + len(chunk)] = (
            (features[..., 3] - features[..., 1]).reshape(len(chunk), -1).amax(-1).numpy()
        )
    jump[even] = -np.inf
    count = min(shocks, len(windows) - len(even))
    return np.concatenate([even, np.argsort(-jump, kind="stable")[:count]])


def _near_slopes(features: np.ndarray, generated: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Per :func:`models.continuation.near_bins` bin but the last, real minus generated
    coefficients of the bin's log RMS relative to the last bin's on ``features`` [N, 4]
    ([N, A, 4]), without the constant (the start gains, fitted after, give the mean
    profile): [bins - 1, 4] ([A, bins - 1, 4]), each clipped to +-LEVEL_LIMIT;
    ``generated`` and ``real`` are the new returns [N, n] ([N, A, n]). The last bin is
    the reference the level correction then moves with the rest: one factor per window
    leaves these relative levels as they are.

    >>> rng = np.random.default_rng(0); x = np.c_[np.ones(400), rng.normal(size=(400, 3))]
    >>> real = rng.normal(size=(400, 30)); real[:, :5] *= np.exp(0.5 * x[:, 3:])
    >>> (np.round(_near_slopes(x, rng.normal(size=(400, 30)), real)[0], 1) + 0.0).tolist()
    [0.0, 0.0, 0.0, 0.5]
    """

    def relative(new: np.ndarray) -> np.ndarray:
        bins = [
            np.log(np.mean(np.square(new[..., lo:hi]), axis=-1) + EPS)
            for lo, hi in near_bins(new.shape[-1])
        ]
        return 0.5 * (np.stack(bins[:-1], axis=-1) - bins[-1][..., None])  # [N, (A,) bins - 1]

    if len(near_bins(generated.shape[-1])) < 2:  # too few new returns for a profile
        return np.zeros((*generated.shape[1:-1], 0, features.shape[-1]))
    y_real, y_gen = relative(real), relative(generated)
    if features.ndim == 2:
        features, y_real, y_gen = features[:, None], y_real[:, None], y_gen[:, None]
    slopes = np.stack(
        [
            np.linalg.lstsq(features[:, a], y_real[:, a], rcond=None)[0]
            - np.linalg.lstsq(features[:, a], y_gen[:, a], rcond=None)[0]
            for a in range(features.shape[1])
        ]
    ).transpose(0, 2, 1)  # [A, bins - 1, 4]
    slopes = np.clip(slopes, -LEVEL_LIMIT, LEVEL_LIMIT)
    slopes[..., 0] = 0.0
    return slopes[0] if generated.ndim == 2 else slopes


def _start_profile(new: np.ndarray) -> np.ndarray:
    """RMS of each START_BINS bin of the new returns ``new`` [N, n] ([N, A, n]) relative to
    the positions beyond the bins, each window over its own (a window's level cancels):
    [n_bins] ([A, n_bins]); bins that would leave fewer than half the returns beyond
    them are left out (NaN)."""
    new = np.moveaxis(np.asarray(new, dtype=np.float64), 0, -2)  # [..., N, n]
    bins = [(lo, hi) for lo, hi in START_BINS if 2 * hi <= new.shape[-1]]
    profile = np.full((*new.shape[:-2], len(START_BINS)), np.nan)
    if not bins:
        return profile
    later = np.maximum(np.mean(np.square(new[..., bins[-1][1] :]), axis=-1), 1e-300)
    for b, (lo, hi) in enumerate(bins):
        relative = np.mean(np.square(new[..., lo:hi]), axis=-1) / later
        profile[..., b] = np.sqrt(np.mean(relative, axis=-1))
    return profile


def _start_gains(generated: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Gains [START_SPAN] (a joint model's [A, START_SPAN]) that give the generated new
    returns' :func:`_start_profile` the real ones' (1 where a bin is left out); clipped to
    SPREAD_RANGE.

    The real new returns have no profile of their own beyond noise (a series does not
    know where a window starts), but the per-window ratio is not 1 on average, so the
    generated profile is matched to theirs rather than to 1.

    >>> real = np.ones((4, 64)); gen = real.copy(); gen[:, 0] = 0.5; gen[:, 4:8] = 2.0
    >>> _start_gains(gen, real)[[0, 1, 4, 31]].tolist(), _start_gains(gen[:, :12], real[:, :12])[[0, 4]].tolist()
    ([2.0, 1.0, 0.5, 1.0], [2.0, 1.0])
    """
    ratio = _start_profile(real) / _start_profile(generated)
    ratio = np.where(np.isnan(ratio), 1.0, np.clip(ratio, *SPREAD_RANGE))
    gains = np.ones((*ratio.shape[:-1], START_SPAN))
    for b, (lo, hi) in enumerate(START_BINS):
        gains[..., lo:hi] = ratio[..., b : b + 1]
    return gains


def _residual_map(generated: np.ndarray, real: np.ndarray) -> dict[str, Any]:
    """The quantiles that map generated level residuals onto real ones, and both skewnesses."""
    gen_q = np.quantile(generated, LEVEL_PROBABILITIES)
    real_q = np.quantile(real, LEVEL_PROBABILITIES)
    slopes = np.diff(real_q) / np.maximum(np.diff(gen_q), 1e-12)
    low, high = SPREAD_RANGE[0] ** 2, SPREAD_RANGE[1] ** 2
    usable = bool(np.all((slopes >= low) & (slopes <= high)))
    return {
        "generated_quantiles": [float(v) for v in gen_q] if usable else None,
        "real_quantiles": [float(v) for v in real_q] if usable else None,
        "generated_skew": float(stats.skew(generated)),
        "real_skew": float(stats.skew(real)),
    }


def _line(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares coefficients of ``y`` on the columns of ``x`` and the residuals."""
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    return coef, y - x @ coef


def _sd(residual: np.ndarray, n_coef: int) -> float:
    """Standard deviation of regression residuals (``n_coef`` degrees of freedom spent)."""
    return float(np.sqrt(np.square(residual).sum() / max(len(residual) - n_coef, 1)))
