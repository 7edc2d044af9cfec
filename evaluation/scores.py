"""Model-based scores: discriminative (GRU classifier), predictive (TSTR), memorization.

The two GRU scores follow TimeGAN (Yoon et al., 2019) and Diffusion-TS: a
small post-hoc recurrent network is trained from scratch for every score and
seed. It is kept small (hidden 32, 6-15 epochs, at most ``max_windows``
windows per side, one thread) so that a full evaluation takes minutes on two
CPU cores. Inputs are the returns and their absolute values, both divided by
one common scale (the real training std), so that a generator with the wrong
volatility level is easy to tell apart, as it should be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from utils.threads import single_thread

MAX_WINDOWS = 1000  # at most this many windows per side train and test a GRU score


class _GRU(nn.Module):
    """One-layer GRU over (r, |r|) features and a linear read-out at every step."""

    def __init__(self, hidden: int, n_features: int = 2) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.head(out).squeeze(-1)  # [B, L]


def _features(x: np.ndarray, scale: float, chunk: int = 1) -> torch.Tensor:
    """``[N, L]`` returns -> ``[N, ceil(L / chunk), 2 * chunk]``: (r, |r|) / scale per step.

    With ``chunk > 1`` each GRU step reads ``chunk`` consecutive returns (the
    window is zero-padded to a multiple of ``chunk``): the same information
    in a sequence ``chunk`` times shorter.
    """
    z = np.asarray(x, dtype=np.float64) / scale
    pad = -z.shape[1] % chunk
    if pad:
        z = np.pad(z, ((0, 0), (0, pad)))
    z = z.reshape(len(z), -1, chunk)
    return torch.from_numpy(np.concatenate([z, np.abs(z)], axis=-1).astype(np.float32))


def _subsample(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= k else x[np.sort(rng.choice(len(x), k, replace=False))]


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of a post-hoc GRU; small and CPU-fast by design.

    ``chunk`` is the number of returns each GRU step reads (see :func:`_features`).
    """

    hidden: int = 32
    epochs: int = 6
    batch: int = 128
    lr: float = 1e-2
    max_windows: int = MAX_WINDOWS
    chunk: int = 1


# Reading 8 returns per step, the classifier scored both higher and far more stably
# across seeds on sp500 (e.g. GARCH-t: 0.45-0.46 over 4 seeds, against 0.10-0.36 at 1).
DISCRIMINATIVE = TrainSettings(epochs=15, batch=64, lr=5e-3, chunk=8)
# The forecaster must read one step at a time; its MAE varied by < 0.01 across seeds.
PREDICTIVE = TrainSettings(epochs=6, batch=128, lr=1e-2, chunk=1)


def _fit(model: nn.Module, x: torch.Tensor, loss_fn, s: TrainSettings, g: torch.Generator) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=s.lr)
    for _ in range(s.epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), s.batch):
            idx = order[i : i + s.batch]
            loss = loss_fn(model(x[idx]), idx)
            opt.zero_grad()
            loss.backward()
            opt.step()


class TooFewWindows(ValueError):
    """Too few windows for a score (e.g. a short held-out period of overlapping windows)."""


def split_rows(n: int, purge: int, rng: np.random.Generator, test_frac: float = 0.2):
    """Indices ``(train, test)`` of ``n`` rows, about ``test_frac`` of them for testing.

    ``purge = 0``: rows are independent; a random split. ``purge > 0``: rows
    are windows in time order and rows fewer than ``purge`` apart share
    returns (``purge = ceil(L / stride)`` for sliding windows). The rows are
    then cut into ``round(1 / test_frac)`` contiguous blocks, a random block
    is the test set, and training rows within ``purge`` of it are dropped, so
    no test window shares a single return with a training window. Only blocks
    that leave at least 4 training rows are drawn; with none,
    :class:`TooFewWindows` is raised.
    """
    if purge <= 0:
        perm = rng.permutation(n)
        k = max(1, round(test_frac * n))
        return np.sort(perm[k:]), np.sort(perm[:k])
    n_blocks = max(2, round(1 / test_frac))
    bounds = np.linspace(0, n, n_blocks + 1).round().astype(int)
    rows = np.arange(n)
    splits = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        train = rows[(rows <= lo - purge) | (rows >= hi - 1 + purge)]
        if len(train) >= 4 and hi > lo:
            splits.append((train, rows[lo:hi]))
    if not splits:
        raise TooFewWindows(
            f"{n} overlapping windows (each sharing returns with the next {purge - 1}) "
            "are too few to split into training and test windows that share no return"
        )
    return splits[int(rng.integers(len(splits)))]


def discriminative_score(
    real: np.ndarray,
    synth: np.ndarray,
    seed: int = 0,
    scale: float | None = None,
    settings: TrainSettings | None = None,
    real_test: np.ndarray | None = None,
    real_purge: int = 0,
    synth_purge: int = 0,
) -> float:
    r"""Post-hoc discriminative score :math:`|\text{acc} - 0.5|` of a GRU telling real from synthetic.

    Each side is split into training and test rows (about 80/20, see
    :func:`split_rows`); both sets are balanced, at most ``max_windows``
    windows in all per side. The classifier's test accuracy gives the score:
    0 means indistinguishable, 0.5 perfectly separable. Its logit is the mean
    of the GRU's per-step outputs (more stable across seeds than the last step).

    Overlapping windows must not be split at random: with sliding windows of
    one real series, a test window shares almost all its returns with training
    windows, and the classifier scores by recognising them. (Measured: a
    perfect generator, fresh paths of the very GARCH process that made the
    "real" series, scored 0.37 with a random split and 0.02 with this one.)

    Parameters
    ----------
    real, synth : np.ndarray
        ``[N, L]`` log returns of the same L.
    seed : int
        Seeds the subsamples, the splits, the initial weights and the batch order.
    scale : float, optional
        Divides both inputs; defaults to the std of ``real``.
    real_test : np.ndarray, optional
        Real windows to test on instead of a split of ``real`` (out-of-sample:
        train on the training period, test on the held-out period).
    real_purge, synth_purge : int
        ``purge`` of :func:`split_rows` for each side: ``ceil(L / stride)`` for
        sliding windows of one series, 0 for independent paths.
    """
    s = settings or DISCRIMINATIVE
    rng = np.random.default_rng(seed)
    if real_test is None:
        r_tr, r_te = split_rows(len(real), real_purge, rng)
        real_tr, real_te = real[r_tr], real[r_te]
    else:
        real_tr, real_te = real, real_test
    s_tr, s_te = split_rows(len(synth), synth_purge, rng)
    n_tr = min(len(real_tr), len(s_tr), int(0.8 * s.max_windows))
    n_te = min(len(real_te), len(s_te), s.max_windows - n_tr)
    if n_tr < 4 or n_te < 1:
        raise TooFewWindows(
            f"too few windows for a discriminative score: {n_tr} train, {n_te} test"
        )
    scale = float(np.std(real)) if scale is None else scale

    def pick(a: np.ndarray, k: int) -> torch.Tensor:
        return _features(_subsample(a, k, rng), scale, s.chunk)

    x_tr = torch.cat([pick(real_tr, n_tr), pick(synth[s_tr], n_tr)])
    y_tr = torch.cat([torch.ones(n_tr), torch.zeros(n_tr)])
    x_te = torch.cat([pick(real_te, n_te), pick(synth[s_te], n_te)])
    y_te = torch.cat([torch.ones(n_te), torch.zeros(n_te)])
    with torch.random.fork_rng(devices=[]), single_thread():
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        model = _GRU(s.hidden, 2 * s.chunk)

        def loss_fn(out: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return nn.functional.binary_cross_entropy_with_logits(out.mean(1), y_tr[idx])

        _fit(model, x_tr, loss_fn, s, g)
        with torch.no_grad():
            acc = ((model(x_te).mean(1) > 0).float() == y_te).float().mean().item()
    return abs(acc - 0.5)


def predictive_score(
    train: np.ndarray,
    tests: dict[str, np.ndarray],
    seed: int = 0,
    scale: float | None = None,
    settings: TrainSettings | None = None,
) -> dict[str, float]:
    r"""Train-on-synthetic, test-on-real: MAE of one-step-ahead forecasts of :math:`|r|`.

    A GRU reads :math:`(r_s, |r_s|)_{s \le t}` and predicts :math:`|r_{t+1}|`, trained
    with the L1 loss on ``train`` windows; for each test set it reports

    .. math:: \text{MAE} = \frac{1}{N(L-1)} \sum_{w,t} \left| \hat a_{w,t+1} - |r_{w,t+1}| \right| / \text{scale}

    in units of ``scale`` (default: the std of the first test set). Lower is
    better; compare with the same model trained on real training windows.

    Parameters
    ----------
    train : np.ndarray
        ``[N, L]`` windows to train on (synthetic for TSTR).
    tests : dict
        Name -> ``[M, L]`` windows to test on (e.g. real training and held-out windows).
    """
    s = settings or PREDICTIVE
    if s.chunk != 1:
        raise ValueError("the predictive score forecasts one step at a time: use chunk=1")
    rng = np.random.default_rng(seed)
    if scale is None:
        scale = float(np.std(next(iter(tests.values()))))
    x = _features(_subsample(train, s.max_windows, rng), scale)
    with torch.random.fork_rng(devices=[]), single_thread():
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        model = _GRU(s.hidden)

        def loss_fn(out: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return (out[:, :-1] - x[idx, 1:, 1]).abs().mean()

        _fit(model, x, loss_fn, s, g)
        result = {}
        with torch.no_grad():
            for name, windows in tests.items():
                xt = _features(_subsample(windows, s.max_windows, rng), scale)
                result[name] = (model(xt)[:, :-1] - xt[:, 1:, 1]).abs().mean().item()
    return result


def mean_std(values: Sequence[float]) -> dict[str, float | list[float]]:
    """``{"mean", "std", "values"}`` of repeated scores (std with ddof=0; 0 for one value)."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std()), "values": v.tolist()}


# -------------------------------------------------------------------- memorization


def nearest_distances(queries: np.ndarray, reference: np.ndarray, chunk: int = 256) -> np.ndarray:
    r"""Euclidean distance from each query window to its nearest reference window.

    .. math:: d_i = \min_j \lVert q_i - x_j \rVert_2
              = \min_j \sqrt{\lVert q_i\rVert^2 + \lVert x_j\rVert^2 - 2\, q_i \cdot x_j}

    Computed by matrix products in chunks of queries to bound memory.
    """
    q = np.asarray(queries, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    out = np.empty(len(q))
    for i in range(0, len(q), chunk):
        block = q[i : i + chunk]
        d2 = np.einsum("ij,ij->i", block, block)[:, None] + ref_sq[None, :] - 2 * block @ ref.T
        out[i : i + chunk] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def memorization(
    synth: np.ndarray,
    train: np.ndarray,
    holdout: np.ndarray,
    max_queries: int = MAX_WINDOWS,
    seed: int = 0,
) -> dict[str, float]:
    r"""Are synthetic windows closer to the training windows than new real data is?

    With :math:`d^{syn}_i` the distance from synthetic window :math:`i` to its
    nearest training window and :math:`d^{hold}_j` the same for held-out real
    windows (:func:`nearest_distances`):

    .. math:: \text{ratio} = \operatorname{median}_i d^{syn}_i \,/\, \operatorname{median}_j d^{hold}_j,
              \qquad \text{copy\_frac} = \frac1M \#\{i : d^{syn}_i < q_{0.01}(d^{hold})\}

    A ratio well below 1 (and a copy fraction well above 0.01) means the
    generator reproduces training windows. Caveat: the distance is in raw
    returns, so a generator with a much lower volatility than the held-out
    period also gets a ratio below 1; read it next to the std ratio.
    Pass *all* training windows (stride 1), or a copy shifted by a few steps is missed.
    """
    rng = np.random.default_rng(seed)
    d_syn = nearest_distances(_subsample(np.asarray(synth), max_queries, rng), train)
    d_hold = nearest_distances(_subsample(np.asarray(holdout), max_queries, rng), train)
    med_hold = float(np.median(d_hold))
    return {
        "ratio": float(np.median(d_syn)) / med_hold if med_hold > 0 else float("nan"),
        "copy_frac": float(np.mean(d_syn < np.quantile(d_hold, 0.01))),
        "median_dist_synth": float(np.median(d_syn)),
        "median_dist_holdout": med_hold,
    }
