"""Continue a known history: one checkpoint generates a window from nothing or after given returns.

A model trained with CONTEXT_FRACTIONS sees, beside the noisy image, the
scalogram of its window's first returns with every later return set to zero
(masked to the known columns) and a mask channel that marks the known columns.
Half of the training windows get no history (so the same model stays the
unconditional one), the other half the first ``margin + k`` returns of their
model window, ``k = round(f * WINDOW_SIZE)`` for ``f`` drawn from
CONTEXT_FRACTIONS. The left edge margin is part of the history: the margin's
returns are the ones before the first known output return, so a continued
window starts exactly where its history ends.

A continued window's returns are the transform's unit-RMS inverse scaled so that
its known columns have the RMS of the known returns: the level follows the
context, never the fitted level draw; the local volatility row (the shape) is
generated given the context. The known returns are then written back unchanged,
so a history is never altered (:func:`continue_window`).

The model continues a window with its new returns' level 13% below the known
part's on average (S&P 500, 1,000 steps, 128 training windows: mean log ratio
-0.136 against the real windows' -0.024), leans on the history's whole level
where the real series leans on its last weeks, and spreads the new level too
little around what the history predicts (residual standard deviation 0.235
against 0.301), so rolled paths drifted calm and their volatility swung too
little over years. A correction fitted at the end of training
(models/calibration.fit_continuation_level, setting CONTINUATION_LEVEL) gives
the new returns' log ratio the real continuations' line in the known part's
log RMS, that of its last RECENT returns and a moving RMS of its last days
(half-life SHORT_HALFLIFE), and their skewed distribution around it
(:func:`level_correction`).

A shock at the end of a history raised the model's next returns about half as
much as it raises the real series' (S&P 500, 128 known, 192 training windows of
which 64 end in the largest shocks: slope of the next 5 returns' log RMS on the
moving RMS given the other regressors 0.46, real 0.90; mean log ratio over the
history's RMS on the shock windows 0.34 against 0.62), and the real response
fades over weeks. The same fit gives the new returns in each NEAR_BINS bin but
the last a line in the regressors for their level relative to the last bin's
(:func:`near_profile`), applied first.

The UNet damps the first few returns it generates right after a known part
(RMS 0.67 and 0.79 of its later new returns at the first two positions on the
S&P 500) and then overshoots (1.14 at positions 4-7). The same fit gives each
of the first START_SPAN new positions a gain that flattens that profile
(:func:`start_gains`), applied before the level correction. A continuation with ``overlap`` (JOIN_OVERLAP) instead
gives the model the k returns before the history's last ``overlap`` and writes
those real returns over the damped ones; the model then does not see the latest
returns, the ones a next-day forecast rests on most.

Scenarios of one history (generate.py --context) keep the model's spread and shapes but,
by default (SCENARIO_MEAN = "drift"), not its mean: :func:`centre_on_drift` moves the
mean over the scenarios of every day onto the training returns' mean. On the S&P 500 the
mean the model reads from a history is the training years' reversal of the last weeks,
and on validation years not used to train it (a model trained on the first 60%, 50
dates of the next 20%) that mean scored no better than the drift at 1, 5 and 20
days: a higher CRPS at each, within the noise (README, "Long paths and scenarios").

Long paths roll windows (:func:`extend`): each new window continues the last
``margin + k + overlap`` returns of the path so far and adds
``WINDOW_SIZE - k - overlap`` returns.
Window ``j`` of path ``i`` is drawn from the seed ``derive_seed(seed, i, j)``,
so a path is the same whatever the batch of paths it is sampled in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from models.diffusion import sample
from transforms.volatility import EPS, VolatilityScalogram
from utils.errors import ScalodiffError
from utils.seeding import derive_seed

# Fewest scenarios centre_on_drift is asked to centre: centring takes one degree of freedom,
# so their spread around the drift is (N-1)/N of independent draws' (6% less variance at
# 16), and two would come out as mirror images.
MIN_CENTRED_SCENARIOS = 16
# Share of training windows that get no history: the unconditional model keeps half the data.
NO_CONTEXT_SHARE = 0.5
# Returns at the end of a history whose log RMS is the level correction's second regressor:
# the real S&P 500's next-block level leans on the last 32 returns more than the model's does.
RECENT = 32
# New positions after the known part whose RMS the start gains flatten, in bins that pool
# positions where single ones would be too noisy for 128 calibration windows.
START_BINS = ((0, 1), (1, 2), (2, 4), (4, 8), (8, 16), (16, 32))
START_SPAN = START_BINS[-1][1]
# Half-life in returns of the level correction's third regressor, a moving average of squared
# returns that one shock moves: on the S&P 500 the next 5 returns' level leans on it with slope
# 0.7 given the other two, the model's continuations with about half that.
SHORT_HALFLIFE = 5
# Bins of new positions whose level relative to the last bin's gets its own line in the
# regressors: the real response to a shock fades over weeks (slope 0.9 on the next 5
# returns, 0.3 beyond 60 on the S&P 500), one factor for the whole window cannot.
NEAR_BINS = ((0, 5), (5, 20), (20, 60), (60, None))


def known_lengths(fractions: Sequence[float] | None, window_size: int) -> tuple[int, ...]:
    """The numbers of known returns a model trained with ``fractions`` continues, ascending.

    >>> known_lengths((0.25, 0.5, 0.75), 256)
    (64, 128, 192)
    """
    return tuple(sorted({max(1, round(float(f) * window_size)) for f in fractions or ()}))


def default_known(
    fractions: Sequence[float] | None, window_size: int, rolling: bool = False
) -> int:
    """The known returns a continuation uses unless told (CONTEXT_KNOWN = None): for a real
    history (scenarios) the trained length nearest half a window; for rolled long paths
    (``rolling``) the shortest trained length.

    Rolling with the shortest history adds the most new returns a window (188 instead of
    124 at L = 256, 30% fewer windows) and its paths kept the slow swings of volatility
    better (S&P 500, 2,520 returns: ACF of |r| at lag 20 0.145 against 0.114 with 128
    known; real 0.24).

    >>> default_known((0.25, 0.5, 0.75), 256), default_known((0.25, 0.5, 0.75), 256, True)
    (128, 64)
    """
    trained = known_lengths(fractions, window_size)
    if rolling:
        return trained[0]
    return min(trained, key=lambda v: abs(v - window_size / 2))


def default_known_lengths(fractions: Sequence[float] | None, window_size: int) -> tuple[int, ...]:
    """The known lengths generate.py continues with unless told, ascending: the ones the
    level correction is fitted for at the end of training.

    >>> default_known_lengths((0.25, 0.5, 0.75), 256)
    (64, 128)
    """
    both = {default_known(fractions, window_size, rolling) for rolling in (False, True)}
    return tuple(sorted(both))


def context_channel_count(transform: Any) -> int:
    """Extra UNet input channels: the known part's scalogram channels plus the mask."""
    return int(transform.channels) + 1


def draw_known_columns(
    fractions: Sequence[float], window_size: int, margin: int, n: int, generator: torch.Generator
) -> torch.Tensor:
    """Known model columns per training window: 0 for NO_CONTEXT_SHARE of them, else margin + k."""
    ks = torch.tensor([margin + k for k in known_lengths(fractions, window_size)])
    none = torch.rand(n, generator=generator) < NO_CONTEXT_SHARE
    pick = torch.randint(0, len(ks), (n,), generator=generator)
    return torch.where(none, torch.zeros_like(ks[pick]), ks[pick])


def context_channels(
    transform: Any, windows: torch.Tensor, known_cols: torch.Tensor
) -> torch.Tensor:
    """The UNet's context input [B, C + 1, H, W] for normalized model windows [B, W]
    (a joint model's [B, A, W]: the same columns of every series are known).

    Only the first ``known_cols[b]`` returns of window b are read: the rest are set
    to zero before the transform and its image is kept on the known columns only.
    The last channel is the mask (1 on known columns). ``known_cols`` 0 gives zeros.
    """
    width = windows.shape[-1]
    mask = torch.arange(width, device=windows.device)[None, :] < known_cols[:, None].to(
        windows.device
    )
    mask = mask.to(windows.dtype)
    per_return = mask if windows.ndim == 2 else mask[:, None, :]
    # An all-zero window gives a finite image (its RMS is EPS), which the mask then removes.
    image = transform.forward(windows * per_return) * mask[:, None, None, :]
    height = image.shape[2]
    mask_channel = mask[:, None, None, :].expand(-1, 1, height, -1)
    return torch.cat([image, mask_channel.to(image.dtype)], dim=1)


def continue_window(transform: Any, images: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Normalized output windows [B, L] from generated images, continuing ``known`` [B, c]
    (a joint model: [B, A, L] continuing [B, A, c], each series scaled on its own).

    ``known`` holds the first c model-window returns (the left margin, then the
    known output returns). The generated window is scaled so that its first c
    returns have the RMS of ``known``; its new returns get the fitted near
    profile, start gains and level correction, in that order; the first c
    returns are replaced by ``known`` itself and the margins dropped.
    """
    u = transform.unit_inverse(images.double(), generated=True)
    c = known.shape[-1]
    known = known.to(u)
    rms = known.square().mean(-1, keepdim=True).sqrt()
    y = u * rms / u[..., :c].square().mean(-1, keepdim=True).sqrt().clamp_min(EPS)
    m = transform.margin
    new = y[..., c : y.shape[-1] - m]  # the new output returns, without the right margin
    new *= torch.exp(near_profile(transform, known, new.shape[-1]))
    new *= start_gains(transform, known.shape[-1], new)
    y[..., c:] *= torch.exp(level_correction(transform, known, new))
    y[..., :c] = known
    return y[..., m : y.shape[-1] - m]


def level_features(known: torch.Tensor) -> torch.Tensor:
    """The regressors of the level correction for histories ``known`` [..., c]: [..., 4] of
    a constant, the known part's log RMS, the log RMS of its last RECENT returns and the
    log of an exponential moving RMS with half-life SHORT_HALFLIFE."""
    log_rms = VolatilityScalogram._log_rms  # the level row's own measure
    whole = log_rms(known)
    age = torch.arange(known.shape[-1] - 1, -1, -1, dtype=known.dtype, device=known.device)
    weights = 0.5 ** (age / SHORT_HALFLIFE)
    short = 0.5 * torch.log(known.square() @ (weights / weights.sum()) + EPS)
    recent = log_rms(known[..., -RECENT:])
    return torch.stack([torch.ones_like(whole), whole, recent, short], dim=-1)


def near_bins(n: int) -> list[tuple[int, int]]:
    """The NEAR_BINS that ``n`` new returns reach, cut at ``n``.

    >>> near_bins(124), near_bins(16)
    ([(0, 5), (5, 20), (20, 60), (60, 124)], [(0, 5), (5, 16)])
    """
    return [(lo, min(n, hi or n)) for lo, hi in NEAR_BINS if lo < n]


def fitted_level(part: Any, given: int) -> dict[str, Any] | None:
    """The level correction ``part`` holds for windows given ``given`` model columns, or None."""
    return next((f for f in part.continuation_level or [] if int(f["known"]) == given), None)


def start_gains(transform: Any, given: int, new: torch.Tensor) -> torch.Tensor:
    """Per-position gains [..., n] for the new returns ``new`` [..., n] of windows given
    ``given`` model columns (a joint model's [B, A, n], each series its own): the fit's
    ``start_gains`` on the first positions, 1 elsewhere and where none was fitted."""
    parts = getattr(transform, "parts", [transform])
    gains = torch.ones(new.shape[-2:] if len(parts) > 1 else new.shape[-1:], dtype=new.dtype)
    for a, part in enumerate(parts):
        fit = fitted_level(part, given)
        if fit is None or not fit.get("start_gains"):
            continue
        g = torch.tensor(fit["start_gains"], dtype=new.dtype)[: new.shape[-1]]
        (gains[a] if len(parts) > 1 else gains)[: len(g)] = g
    return gains.to(new.device)


def near_profile(transform: Any, known: torch.Tensor, n: int) -> torch.Tensor:
    """Log factors [..., n] for the ``n`` new returns of windows continuing ``known`` [..., c]
    (a joint model's [B, A, ...], each series its own fit): in each :func:`near_bins` bin
    but the last, the fit's ``near_slopes`` line in :func:`level_features` (how much more
    the real bin's level relative to the last bin's follows the history than the model's
    does); 0 in the last bin and where none was fitted."""
    parts = getattr(transform, "parts", [transform])
    features = level_features(known)
    out = torch.zeros((*known.shape[:-1], n), dtype=known.dtype, device=known.device)
    for a, part in enumerate(parts):
        fit = fitted_level(part, known.shape[-1])
        if fit is not None and fit.get("near_slopes"):
            rows = (slice(None), a) if len(parts) > 1 else (slice(None),)
            out[rows] = near_factors(features[rows], fit["near_slopes"], n)
    return out


def near_factors(features: torch.Tensor, slopes: Any, n: int) -> torch.Tensor:
    """Log factors [..., n]: the line ``slopes`` [bins - 1, 4] of each :func:`near_bins` bin
    but the last in ``features`` [..., 4], on every position of the bin; 0 in the last."""
    lines = torch.cat(
        [features.new_tensor(np.asarray(slopes)).reshape(-1, 4), features.new_zeros(1, 4)]
    )
    bin_of = [b for b, (lo, hi) in enumerate(near_bins(n)) for _ in range(lo, hi)]
    return (features @ lines.T)[..., bin_of]


def level_correction(transform: Any, known: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Log factor [..., 1] for the generated ``new`` returns [..., n] of windows continuing
    ``known`` [..., c] (a joint model's [B, A, ...], each series its own fit); 0 where no
    correction was fitted for c model columns.

    With ``f`` the regressors (:func:`level_features`) and ``y`` the generated log ratio
    of the new returns' RMS to the known part's, the corrected ratio is
    ``real_line . f + residual_map(y - generated_line . f)``: the real continuations'
    conditional mean and distribution of the level instead of the model's.
    """
    parts = getattr(transform, "parts", [transform])
    features = level_features(known)
    ratio = VolatilityScalogram._log_rms(new) - features[..., 1]
    out = torch.zeros_like(ratio)
    for a, part in enumerate(parts):
        fit = fitted_level(part, known.shape[-1])
        if fit is None:
            continue
        rows = (slice(None), a) if len(parts) > 1 else (slice(None),)
        f = features[rows]
        moved = [fit["shift"], fit["slope"], fit.get("recent_slope", 0.0)]
        shift = f @ f.new_tensor([*moved, fit.get("short_slope", 0.0)])
        line = [*fit.get("line", [0.0] * 3), 0.0][:4]  # saved with three regressors: no short
        residual = ratio[rows] - f @ f.new_tensor(line)
        out[rows] = shift + residual_map(residual, fit) - residual
    return out.unsqueeze(-1)


def residual_map(residual: torch.Tensor, fit: dict[str, Any]) -> torch.Tensor:
    """Generated level residuals mapped onto the real ones' distribution.

    Piecewise linear through the fit's quantile pairs, with the ratio of the
    spreads as the slope beyond them; a fit without quantiles (saved before
    they were fitted, or refused as broken) scales by that ratio alone.

    >>> fit = {"spread": 2.0, "generated_quantiles": [-1.0, 0.0, 1.0], "real_quantiles": [-1.0, -0.5, 2.0]}
    >>> residual_map(torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0]), fit).tolist()
    [-3.0, -0.75, -0.5, 0.75, 6.0]
    """
    spread = fit.get("spread", 1.0)
    if not fit.get("generated_quantiles"):
        return residual * spread
    g = residual.new_tensor(fit["generated_quantiles"])
    q = residual.new_tensor(fit["real_quantiles"])
    i = torch.searchsorted(g, residual.contiguous()).clamp(1, len(g) - 1)
    inside = q[i - 1] + (residual - g[i - 1]) * (q[i] - q[i - 1]) / (g[i] - g[i - 1])
    below = q[0] + (residual - g[0]) * spread
    above = q[-1] + (residual - g[-1]) * spread
    return torch.where(residual < g[0], below, torch.where(residual > g[-1], above, inside))


@dataclass
class Continuer:
    """A context model ready to continue histories given in real units.

    ``known`` is k, the output returns each window continues; every window adds
    ``transform.output_size - k`` new returns.
    """

    unet: torch.nn.Module
    sampler: Any
    steps: int
    transform: Any  # a VolatilityScalogram, or a JointScalogram of them
    normalizer: Any  # a ReturnNormalizer, or a joint model's JointNormalizer
    known: int
    device: torch.device
    labels: torch.Tensor | None = None
    null_labels: torch.Tensor | None = None
    guidance: float = 1.0
    overlap: int = 0

    @property
    def history(self) -> int:
        """Returns of history each window reads: the left margin, k and the overlap."""
        return self.transform.margin + self.known + self.overlap

    @property
    def kept(self) -> int:
        """Returns at the start of each output window that are the history's own."""
        return self.known + self.overlap

    @property
    def new_per_window(self) -> int:
        return self.transform.output_size - self.kept

    def window(self, history: np.ndarray, seeds: list[int], rows: slice) -> np.ndarray:
        """Whole windows [B, L] in real units continuing ``history`` [B, >= self.history]
        (a joint model: [B, A, L] continuing [B, A, >= self.history]).

        The first k + overlap returns are the history's last ones, unchanged: the
        model is given the k before the last ``overlap``, and the ``overlap``
        returns it generates next (damped, right after the known part) are replaced
        by the real ones. ``rows`` selects the label rows of a conditional model.
        """
        tail = np.asarray(history, dtype=np.float64)[..., -self.history :]
        given = self.transform.margin + self.known
        z = torch.from_numpy(self.normalizer.transform(tail[..., :given], dtype=np.float64))
        windows = torch.zeros((*tail.shape[:-1], self.transform.window_size), dtype=torch.float64)
        windows[..., :given] = z
        cols = torch.full((len(tail),), given)
        ctx = context_channels(self.transform, windows, cols).float()
        images = sample(
            self.unet,
            self.sampler,
            seeds,
            self.steps,
            self.device,
            class_labels=None if self.labels is None else self.labels[rows],
            null_labels=None if self.null_labels is None else self.null_labels[rows],
            guidance=self.guidance,
            context=ctx,
        )
        y = continue_window(self.transform, images.cpu(), z).numpy()
        out = np.asarray(self.normalizer.inverse(y, generated=True), dtype=np.float64)
        out[..., : self.kept] = tail[..., self.transform.margin :]
        return out


def centre_on_drift(paths: np.ndarray, drift: float) -> np.ndarray:
    """Scenarios ``paths`` [..., N, H] (N of one history) moved so that their mean on
    every day is ``drift``: every scenario is shifted by the same amount on a given day,
    so the differences between them, and each day's spread, are kept.

    >>> x = np.arange(12.0).reshape(1, 3, 4)
    >>> y = centre_on_drift(x, 0.5)
    >>> y.mean(axis=1).tolist(), bool(np.allclose(y.std(axis=1), x.std(axis=1)))
    ([[0.5, 0.5, 0.5, 0.5]], True)
    """
    n = paths.shape[-2]
    if n < 2:
        raise ScalodiffError(
            f"centring scenarios on the drift needs 2 or more of them, got {n}; ask for more, "
            "or keep the model's own mean (SCENARIO_MEAN = 'model')"
        )
    return paths - paths.mean(axis=-2, keepdims=True) + drift


def extend(
    cont: Continuer,
    history: np.ndarray,
    n_new: int,
    seed: int,
    batch: int,
    on_window: Callable[[], None] | None = None,
) -> np.ndarray:
    """``n_new`` returns [N, n_new] continuing each row of ``history`` [N, h], window by window
    (a joint model: [N, A, n_new] continuing [N, A, h]).

    Window j (from 1) of row i uses ``derive_seed(seed, i, j)``; rows are
    sampled ``batch`` at a time, which does not change them.
    """
    history = np.asarray(history, dtype=np.float64)
    n, have = history.shape[0], history.shape[-1]
    if have < cont.history:
        raise ScalodiffError(
            f"a continuation reads the last {cont.history} returns ({cont.known} known, the "
            f"{cont.transform.margin}-return edge margin and a JOIN_OVERLAP of {cont.overlap}), but "
            f"the history has {have}; give a longer context or a smaller CONTEXT_KNOWN (--known)"
        )
    windows = -(-n_new // cont.new_per_window)
    paths = np.empty((*history.shape[:-1], have + windows * cont.new_per_window))
    paths[..., :have] = history
    end = have
    for j in range(1, windows + 1):
        for lo in range(0, n, batch):
            rows = slice(lo, min(n, lo + batch))
            seeds = [derive_seed(seed, i, j) for i in range(rows.start, rows.stop)]
            new = cont.window(paths[rows, ..., :end], seeds, rows)[..., cont.kept :]
            paths[rows, ..., end : end + cont.new_per_window] = new
            if on_window is not None:
                on_window()
        end += cont.new_per_window
    return paths[..., have : have + n_new]
