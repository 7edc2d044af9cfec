"""Classical generators of joint paths for several assets: block bootstrap and copula-GARCH.

They are the multi-asset counterparts of :mod:`evaluation.baselines`. Each is
fitted on aligned training log returns of shape ``[T, A]`` (``T`` common dates,
``A >= 2`` assets, one column per asset) and samples ``[n, A, length]`` returns:
path ``i`` is a set of ``A`` series that belong together, and it depends only
on ``(seed, i)``, so a bigger ``n`` only appends paths.

- ``bootstrap``: the stationary block bootstrap with the same row indices for
  all assets, so same-day co-movement and cross-asset volatility spillover are
  kept exactly within blocks.
- ``copula-garch``: GARCH(1,1)-t per asset, tied together by a Gaussian or
  Student-t copula on the standardized residuals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import stats

from evaluation.baselines import (
    GarchBaseline,
    _block_length,
    _check_sample_args,
    _check_train,
    _rngs,
    _stationary_indices,
)
from utils.errors import ScalodiffError

COPULAS: tuple[str, ...] = ("gaussian", "t")
# Candidate t-copula degrees of freedom, denser where the likelihood changes fastest;
# 100 stands for "no joint tail dependence to speak of".
DOF_GRID: tuple[int, ...] = (3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 50, 100)
# Uniforms are kept this far from 0 and 1 so their normal or t scores stay finite.
_U_EPS = 1e-10


def _check_joint(train_returns: np.ndarray, min_len: int) -> np.ndarray:
    """Aligned returns as float64 [T, A]; each column checked like a single series."""
    r = np.asarray(train_returns, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] < 2:
        raise ScalodiffError(
            "joint baselines need aligned returns of shape [T, A] with A >= 2; "
            f"got shape {r.shape}; pass one column per asset on their common dates"
        )
    for a in range(r.shape[1]):
        try:
            _check_train(r[:, a], min_len=min_len)
        except ScalodiffError as exc:
            raise ScalodiffError(f"asset column {a}: {exc}") from None
    return r


@dataclass
class JointBootstrapBaseline:
    r"""Multivariate stationary block bootstrap (Politis & Romano, 1994) of aligned returns.

    As :class:`evaluation.baselines.BootstrapBaseline`, with whole rows (dates)
    resampled: every asset takes the same row indices, so path ``i`` at step ``t``
    is :math:`r_{k_t,\cdot}` for one training date :math:`k_t`. Blocks have
    geometric lengths of mean :math:`b`.

    Examples
    --------
    >>> r = np.random.default_rng(0).standard_normal((500, 2)) * 0.01
    >>> JointBootstrapBaseline.fit(r, block=10).sample(4, 16, seed=0).shape
    (4, 2, 16)
    """

    returns: np.ndarray
    block: float
    name: ClassVar[str] = "bootstrap"

    @classmethod
    def fit(cls, train_returns: np.ndarray, block: float | None = None) -> JointBootstrapBaseline:
        """``train_returns``: [T, A] aligned log returns. ``block``: mean block length;
        ``None`` takes the mean over assets of each one's Politis-White optimal
        length for :math:`r^2` (as the single-asset bootstrap), clipped to [5, 100]."""
        r = _check_joint(train_returns, min_len=30)
        return cls(returns=r, block=_block_length(r, block))

    def sample(self, n: int, length: int, seed: int = 0) -> np.ndarray:
        """``[n, A, length]`` log returns; path ``i`` depends only on ``(seed, i)``."""
        _check_sample_args(n, length)
        size, assets = self.returns.shape
        out = np.empty((n, assets, length))
        for i, g in enumerate(_rngs(seed, n)):
            out[i] = self.returns[_stationary_indices(g, size, length, self.block)].T
        return out


@dataclass
class CopulaGarchBaseline:
    r"""GARCH(1,1)-t per asset joined by a Gaussian or Student-t copula.

    Asset :math:`a` follows :class:`evaluation.baselines.GarchBaseline`,
    :math:`r_{t,a} = \mu_a + \sigma_{t,a} z_{t,a}`, whose innovations
    :math:`z_{t,\cdot}` are iid over time but dependent across assets:
    :math:`u_{t,a} = F_{\nu_a}(z_{t,a})` (the standardized-t CDF) has the joint
    law of the copula,

    .. math:: u_{t,\cdot} = \Phi(x_t),\ x_t \sim N(0, R) \quad\text{(gaussian)},\qquad
              u_{t,\cdot} = T_{\eta}(x_t),\ x_t \sim t_\eta(0, R) \quad\text{(t)}.

    ``correlation`` is :math:`R` [A, A]; ``copula_dof`` is :math:`\eta`
    (``None`` for the Gaussian copula). A small :math:`\eta` means assets
    crash together more often than correlation alone implies.
    """

    margins: list[GarchBaseline]
    correlation: np.ndarray
    copula: str
    copula_dof: float | None
    name: ClassVar[str] = "copula-garch"

    @classmethod
    def fit(cls, train_returns: np.ndarray, copula: str = "t") -> CopulaGarchBaseline:
        r"""Fit on [T, A] aligned log returns, in two steps (inference for margins).

        1. GARCH(1,1)-t per asset (:meth:`GarchBaseline.fit`), then its
           standardized residuals :math:`z_{t,a}` mapped to uniforms by its
           fitted standardized-t CDF.
        2. The copula on those uniforms. Gaussian: :math:`R` is the correlation
           of the normal scores :math:`\Phi^{-1}(u)`. t: :math:`R_{ab} =
           \sin(\tfrac{\pi}{2}\tau_{ab})` from Kendall's :math:`\tau` (exact for
           any elliptical copula), and :math:`\eta` maximizes the copula
           likelihood over :data:`DOF_GRID`.
        """
        if copula not in COPULAS:
            raise ScalodiffError(
                f"copula={copula!r} is unknown; choose one of {', '.join(COPULAS)}"
            )
        r = _check_joint(train_returns, min_len=100)
        margins = [GarchBaseline.fit(r[:, a]) for a in range(r.shape[1])]
        u = np.column_stack([_residual_uniforms(m, r[:, a]) for a, m in enumerate(margins)])
        if copula == "gaussian":
            corr = np.corrcoef(stats.norm.ppf(u), rowvar=False)
            dof = None
        else:
            corr = _kendall_correlation(u)
            dof = float(max(DOF_GRID, key=lambda eta: _t_copula_loglik(u, corr, eta)))
        return cls(margins=margins, correlation=corr, copula=copula, copula_dof=dof)

    def sample(self, n: int, length: int, seed: int = 0) -> np.ndarray:
        """``[n, A, length]`` log returns in the units of the training returns.

        Each asset's recursion starts from its unconditional variance and runs a
        burn-in (:attr:`GarchBaseline.burn` steps) that is dropped, as the
        single-asset GARCH baseline does; path ``i`` depends only on ``(seed, i)``.
        """
        _check_sample_args(n, length)
        burn = max(m.burn for m in self.margins)
        steps = burn + length
        scores = np.stack([self._copula_scores(g, steps) for g in _rngs(seed, n)])
        # Map through the lower tail and restore the sign: F^-1(F(-|x|)) keeps full precision
        # for large |x|, where F(x) itself would round to 1 and give an infinite innovation.
        if self.copula_dof is None:
            tail = stats.norm.cdf(-np.abs(scores))
        else:
            tail = stats.t.cdf(-np.abs(scores), self.copula_dof)
        tail = np.maximum(tail, np.finfo(np.float64).tiny)
        out = np.empty((n, len(self.margins), length))
        for a, m in enumerate(self.margins):
            z = -np.sign(scores[..., a]) * stats.t.ppf(tail[..., a], m.nu)
            z *= np.sqrt((m.nu - 2) / m.nu)
            out[:, a] = m.returns_from_innovations(z, m.start_variance())[:, burn:]
        return out

    def _copula_scores(self, g: np.random.Generator, steps: int) -> np.ndarray:
        """[steps, A] draws x of the copula's elliptical law (u = its marginal CDF of x)."""
        chol = np.linalg.cholesky(self.correlation)
        x = g.standard_normal((steps, len(self.margins))) @ chol.T
        if self.copula_dof is not None:
            x /= np.sqrt(g.chisquare(self.copula_dof, (steps, 1)) / self.copula_dof)
        return x


def _residual_uniforms(margin: GarchBaseline, returns: np.ndarray) -> np.ndarray:
    r"""[T - 1] uniforms :math:`F_\nu(z_t)` of the standardized residuals of one asset.

    ``next_variances(returns)[t]`` is the variance of return ``t + 1`` given
    returns up to ``t``, so return ``t`` is standardized by entry ``t - 1``:
    :math:`z_t = (r_t - \mu) / \sqrt{v_{t-1}}`. The first return has no such
    forecast and is dropped (for every asset, so rows stay aligned by date).
    """
    var = margin.next_variances(returns)
    z = (returns[1:] - margin.mu) / np.sqrt(var[:-1])
    u = stats.t.cdf(z, margin.nu, scale=np.sqrt((margin.nu - 2) / margin.nu))
    return np.clip(u, _U_EPS, 1 - _U_EPS)


def _kendall_correlation(u: np.ndarray) -> np.ndarray:
    r"""[A, A] correlation :math:`\sin(\tfrac{\pi}{2}\tau)` from pairwise Kendall's tau,
    moved to the nearest positive definite correlation matrix if it is not one."""
    assets = u.shape[1]
    corr = np.eye(assets)
    for a in range(assets):
        for b in range(a + 1, assets):
            tau = stats.kendalltau(u[:, a], u[:, b]).statistic
            corr[a, b] = corr[b, a] = np.sin(np.pi / 2 * tau)
    # Pairwise estimates need not form a valid matrix for A >= 3; clip eigenvalues, rescale.
    w, v = np.linalg.eigh(corr)
    if w.min() < 1e-6:
        corr = (v * np.maximum(w, 1e-6)) @ v.T
        d = np.sqrt(np.diag(corr))
        corr = corr / np.outer(d, d)
    return corr


def _t_copula_loglik(u: np.ndarray, corr: np.ndarray, dof: float) -> float:
    """Log-likelihood of the t copula with correlation ``corr`` and ``dof`` at uniforms [T, A]."""
    x = stats.t.ppf(u, dof)
    joint = stats.multivariate_t.logpdf(x, shape=corr, df=dof)
    return float(np.sum(joint) - np.sum(stats.t.logpdf(x, dof)))


JOINT_BASELINES: dict[str, type] = {
    JointBootstrapBaseline.name: JointBootstrapBaseline,
    CopulaGarchBaseline.name: CopulaGarchBaseline,
}
