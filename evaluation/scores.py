"""Model-based scores: discriminative (GRU classifier), predictive (TSTR), memorization.

The two GRU scores follow TimeGAN (Yoon et al., 2019) and Diffusion-TS: a
small post-hoc recurrent network is trained from scratch for every score and
seed. It is kept small (hidden 32, a few epochs, at most ``max_windows``
windows per side) so a full evaluation runs in minutes on two CPU cores.
Inputs are the returns and their absolute values, both divided by one common
scale (the real training std), so a generator with the wrong volatility level
is easy to tell apart, as it should be.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

# Small and CPU-fast by design (see module docstring); the same for every generator.
HIDDEN = 32
EPOCHS = 6
BATCH = 128
LR = 1e-2
MAX_WINDOWS = 1000


class _GRU(nn.Module):
    """One-layer GRU over (r, |r|) and a linear read-out at every step."""

    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.gru = nn.GRU(2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.head(out).squeeze(-1)  # [B, L]


def _features(x: np.ndarray, scale: float) -> torch.Tensor:
    z = np.asarray(x, dtype=np.float64) / scale
    return torch.from_numpy(np.stack([z, np.abs(z)], axis=-1).astype(np.float32))


def _subsample(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= k else x[np.sort(rng.choice(len(x), k, replace=False))]


@dataclass
class TrainSettings:
    """Hyper-parameters of the post-hoc GRUs (defaults are the module constants)."""

    hidden: int = HIDDEN
    epochs: int = EPOCHS
    batch: int = BATCH
    lr: float = LR
    max_windows: int = MAX_WINDOWS


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread, then restore the caller's setting.

    These GRUs are tiny and step through time sequentially: a second thread
    buys almost nothing, and on a loaded machine thread contention made them
    several times slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


def discriminative_score(
    real: np.ndarray,
    synth: np.ndarray,
    seed: int = 0,
    scale: float | None = None,
    settings: TrainSettings | None = None,
) -> float:
    r"""Post-hoc discriminative score :math:`|\text{acc} - 0.5|` of a GRU telling real from synthetic.

    Takes :math:`n = \min(N_{real}, N_{synth}, \text{max\_windows})` windows of
    each, shuffles them, trains on 80% and reports the accuracy on the other
    20%: 0 means indistinguishable, 0.5 perfectly separable. The logit is the
    mean of the GRU's per-step outputs: pooling over time trains faster and
    far more stably across seeds than reading the last step alone.

    Parameters
    ----------
    real, synth : np.ndarray
        ``[N, L]`` log returns of the same L.
    seed : int
        Seeds the subsample, the split, the initial weights and the batch order.
    scale : float, optional
        Divides both inputs; defaults to the std of ``real``.
    """
    s = settings or TrainSettings()
    rng = np.random.default_rng(seed)
    n = min(len(real), len(synth), s.max_windows)
    if n < 5:
        raise ValueError(f"need at least 5 windows per side, got {n}")
    scale = float(np.std(real)) if scale is None else scale
    x = torch.cat(
        [_features(_subsample(real, n, rng), scale), _features(_subsample(synth, n, rng), scale)]
    )
    y = torch.cat([torch.ones(n), torch.zeros(n)])
    perm = torch.from_numpy(rng.permutation(2 * n))
    n_train = int(0.8 * 2 * n)
    tr, te = perm[:n_train], perm[n_train:]
    with torch.random.fork_rng(devices=[]), _one_thread():
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        model = _GRU(s.hidden)
        x_tr, y_tr = x[tr], y[tr]

        def loss_fn(out: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return nn.functional.binary_cross_entropy_with_logits(out.mean(1), y_tr[idx])

        _fit(model, x_tr, loss_fn, s, g)
        with torch.no_grad():
            acc = ((model(x[te]).mean(1) > 0).float() == y[te]).float().mean().item()
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
    s = settings or TrainSettings()
    rng = np.random.default_rng(seed)
    if scale is None:
        scale = float(np.std(next(iter(tests.values()))))
    x = _features(_subsample(train, s.max_windows, rng), scale)
    with torch.random.fork_rng(devices=[]), _one_thread():
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
