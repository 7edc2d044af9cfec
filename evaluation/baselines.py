"""Classical generators to compare ours against: iid Gaussian, block bootstrap, GARCH(1,1)-t.

Each baseline is fitted on the training part of the real log returns and
samples ``n`` independent paths of ``length`` returns. Path ``i`` depends only
on ``(seed, i)``, so a bigger ``n`` only appends paths. Their files have the
same format as ``generate.py``'s, so ``evaluate.py`` compares any generator
that writes such a file; adding one here is a class with ``fit`` and
``sample`` plus an entry in :data:`BASELINES`.

Besides these classical ones, ``diffusion1d`` (:mod:`evaluation.diffusion1d`)
is a diffusion model trained on the raw return windows for a wall-clock
budget (minutes, not seconds); :data:`TRAINED` lists it and
:func:`fit_baseline` fits either kind.

Command line (fits on the first ``--train-frac`` of the series, as training does)::

    python -m evaluation.baselines --data sp500 --name garch --n 256 --length 256 --out garch.npy
    python -m evaluation.baselines --data sp500 --name diffusion1d --minutes 9 --out d1.npy
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np

from data.readers import load_prices
from data.returns import log_returns, split_by_time
from utils.errors import EXIT_USER_ERROR, ScalodiffError
from utils.paths_io import FORMATS, write_paths


class Generator(Protocol):
    """What every baseline offers."""

    name: str

    def sample(self, n: int, length: int, seed: int = 0) -> np.ndarray:
        """Return ``[n, length]`` log returns."""
        ...


def _check_train(train_returns: np.ndarray, min_len: int = 30) -> np.ndarray:
    r = np.asarray(train_returns, dtype=np.float64).ravel()
    if r.size < min_len:
        raise ScalodiffError(
            f"training returns: {r.size} values are too few to fit a baseline; need at least {min_len}"
        )
    if not np.all(np.isfinite(r)):
        raise ScalodiffError("training returns contain NaN or inf; clean the price series first")
    return r


def _rngs(seed: int, n: int) -> list[np.random.Generator]:
    # One stream per path (SeedSequence children), so path i is the same whatever n is.
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def _check_sample_args(n: int, length: int) -> None:
    if n < 1 or length < 1:
        raise ScalodiffError(f"need n >= 1 paths of length >= 1, got n={n}, length={length}")


@dataclass
class GaussianBaseline:
    r"""iid Gaussian returns with the training mean and std: :math:`r_t \sim N(\hat\mu, \hat\sigma^2)`."""

    mean: float
    std: float
    name: ClassVar[str] = "gaussian"

    @classmethod
    def fit(cls, train_returns: np.ndarray) -> GaussianBaseline:
        r = _check_train(train_returns)
        return cls(mean=float(r.mean()), std=float(r.std(ddof=1)))

    def sample(self, n: int, length: int, seed: int = 0) -> np.ndarray:
        _check_sample_args(n, length)
        return np.stack([self.mean + self.std * g.standard_normal(length) for g in _rngs(seed, n)])


@dataclass
class BootstrapBaseline:
    r"""Stationary block bootstrap (Politis & Romano, 1994) of the training returns.

    Each path starts at a uniform random index; at every later step it jumps to
    a new uniform index with probability :math:`p = 1/b` and otherwise takes the
    next return (wrapping around the end), so block lengths are geometric with
    mean :math:`b`. Blocks keep volatility clustering up to about :math:`b` steps
    and the marginal distribution exactly; they cannot create new values.
    """

    returns: np.ndarray
    block: float
    name: ClassVar[str] = "bootstrap"

    @classmethod
    def fit(cls, train_returns: np.ndarray, block: float | None = None) -> BootstrapBaseline:
        """``block``: mean block length; ``None`` picks it from the data (see below).

        The default is the Politis-White (2004) optimal stationary-bootstrap
        block length of :math:`r^2` (``arch.bootstrap.optimal_block_length``):
        squared returns carry the long dependence we want blocks to keep,
        whereas the length for :math:`r` itself is ~1. It is clipped to [5, 100].
        """
        r = _check_train(train_returns)
        return cls(returns=r, block=_block_length(r, block))

    def sample(self, n: int, length: int, seed: int = 0) -> np.ndarray:
        _check_sample_args(n, length)
        size = self.returns.size
        out = np.empty((n, length))
        for i, g in enumerate(_rngs(seed, n)):
            out[i] = self.returns[_stationary_indices(g, size, length, self.block)]
        return out


def _block_length(returns: np.ndarray, block: float | None) -> float:
    """``block`` checked (>= 1), or for None the default of :func:`_default_block`."""
    if block is None:
        return _default_block(returns)
    if block < 1:
        raise ScalodiffError(f"bootstrap block length must be >= 1, got {block}")
    return float(block)


def _default_block(returns: np.ndarray) -> float:
    """Politis-White optimal stationary-bootstrap block length of :math:`r^2`, clipped to [5, 100].

    ``returns`` is [T] or [T, A]; with several columns the mean of their lengths is used
    (a column whose length is undefined counts as 20).
    """
    from arch.bootstrap import optimal_block_length

    lengths = np.asarray(optimal_block_length(returns**2)["stationary"], dtype=np.float64)
    b = float(np.mean(np.where(np.isfinite(lengths), lengths, 20.0)))
    return float(np.clip(b, 5.0, 100.0))


def _stationary_indices(g: np.random.Generator, size: int, length: int, block: float) -> np.ndarray:
    """[length] indices into a series of ``size`` values: geometric blocks of mean ``block``."""
    jump = g.random(length) < 1.0 / block
    jump[0] = True
    starts = g.integers(0, size, length)
    # Index = start of the current block + steps since that block began.
    block_id = np.cumsum(jump) - 1
    begin = np.flatnonzero(jump)
    offset = np.arange(length) - begin[block_id]
    return (starts[begin][block_id] + offset) % size


@dataclass
class GarchBaseline:
    r"""GARCH(1,1) with standardized Student-t innovations, fitted by ``arch``.

    .. math:: r_t = \mu + \varepsilon_t,\quad \varepsilon_t = \sigma_t z_t,\quad
              \sigma_t^2 = \omega + \alpha\,\varepsilon_{t-1}^2 + \beta\,\sigma_{t-1}^2,\quad
              z_t \sim t_\nu \sqrt{(\nu-2)/\nu}

    Parameters are stored in the units of the returns. Paths start after a
    burn-in of ``burn`` steps from the unconditional variance, so they begin in
    the stationary regime rather than at the last training volatility.
    """

    mu: float
    omega: float
    alpha: float
    beta: float
    nu: float
    burn: int = 500
    name: ClassVar[str] = "garch"

    @classmethod
    def fit(cls, train_returns: np.ndarray) -> GarchBaseline:
        from arch import arch_model

        r = _check_train(train_returns, min_len=100)
        # arch's optimizer is happiest with returns of order 1, so fit on r / std and scale back.
        scale = float(r.std())
        if scale == 0:
            raise ScalodiffError("training returns are constant; GARCH cannot be fitted")
        model = arch_model(r / scale, mean="Constant", vol="GARCH", p=1, q=1, dist="t")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; the result is checked below
            res = model.fit(disp="off", show_warning=False)
        p = res.params
        nu = float(p["nu"])
        if not np.isfinite(nu) or nu <= 2:
            raise ScalodiffError(
                f"GARCH fit gave nu={nu} (<= 2, infinite variance); data unsuitable"
            )
        return cls(
            mu=float(p["mu"]) * scale,
            omega=float(p["omega"]) * scale**2,
            alpha=float(p["alpha[1]"]),
            beta=float(p["beta[1]"]),
            nu=nu,
        )

    def sample(self, n: int, length: int, seed: int = 0) -> np.ndarray:
        _check_sample_args(n, length)
        paths = self.continue_paths(self.start_variance(), n, self.burn + length, seed)
        return paths[:, self.burn :]

    def start_variance(self) -> float:
        """Variance that sampled paths start from (before the burn-in)."""
        persistence = self.alpha + self.beta
        # Unconditional variance; an integrated fit (alpha + beta >= 1) has none, so start at omega-scale.
        return self.omega / (1 - persistence) if persistence < 1 else self.omega * 100

    def next_variances(self, returns: np.ndarray) -> np.ndarray:
        """Conditional variance of the next return after each of ``returns`` [T]: the fitted
        recursion run through the history, started at the variance of its first 75 returns."""
        eps = np.asarray(returns, dtype=np.float64) - self.mu
        var = np.empty(len(eps))
        prev = float(np.mean(eps[:75] ** 2))
        for t, e in enumerate(eps):
            prev = self.omega + self.alpha * e**2 + self.beta * prev
            var[t] = prev
        return var

    def continue_paths(
        self, next_variance: float, n: int, length: int, seed: int = 0
    ) -> np.ndarray:
        """[n, length] returns that continue a history whose next variance is ``next_variance``
        (a forecast of the fitted model by simulation)."""
        _check_sample_args(n, length)
        t_scale = np.sqrt((self.nu - 2) / self.nu)
        z = np.stack([g.standard_t(self.nu, length) * t_scale for g in _rngs(seed, n)])
        return self.returns_from_innovations(z, next_variance)

    def returns_from_innovations(self, z: np.ndarray, next_variance: float) -> np.ndarray:
        r"""[n, length] returns :math:`\mu + \sigma_t z_t` from standardized innovations ``z``
        [n, length], with :math:`\sigma_0^2` = ``next_variance`` and the fitted recursion after."""
        n, length = z.shape
        var = np.full(n, float(next_variance))
        out = np.empty((n, length))
        for t in range(length):
            out[:, t] = np.sqrt(var) * z[:, t]
            var = self.omega + self.alpha * out[:, t] ** 2 + self.beta * var
        return self.mu + out


BASELINES: dict[str, type] = {
    "gaussian": GaussianBaseline,
    "bootstrap": BootstrapBaseline,
    "garch": GarchBaseline,
}


# Baselines that train a network for a time budget; their modules (torch, diffusers) are
# imported only when one is asked for, so the classical ones stay quick to load.
TRAINED: tuple[str, ...] = ("diffusion1d",)
NAMES: tuple[str, ...] = (*BASELINES, *TRAINED)


def fit_baseline(
    name: str,
    train_returns: np.ndarray,
    *,
    window: int | None = None,
    minutes: float | None = None,
    max_steps: int | None = None,
    seed: int | None = None,
    settings: dict | None = None,
    progress: bool = False,
) -> Generator:
    """Fit baseline ``name`` (one of :data:`NAMES`) on 1-D training log returns.

    The keyword options concern the trained baselines (:data:`TRAINED`) only,
    which learn windows of ``window`` returns for ``minutes`` of wall-clock time
    (or ``max_steps``) under ``settings`` (see
    :meth:`evaluation.diffusion1d.Diffusion1DBaseline.fit`); the classical
    ones ignore them.

    Examples
    --------
    >>> r = np.random.default_rng(0).standard_normal(1000) * 0.01
    >>> fit_baseline("gaussian", r).sample(4, 16, seed=0).shape
    (4, 16)
    """
    if name in BASELINES:
        return BASELINES[name].fit(train_returns)
    if name == "diffusion1d":
        from evaluation.diffusion1d import Diffusion1DBaseline

        return Diffusion1DBaseline.fit(
            train_returns, settings, window=window, minutes=minutes, max_steps=max_steps,
            seed=seed, progress=progress,
        )  # fmt: skip
    raise ScalodiffError(f"unknown baseline {name!r}; choose one of {', '.join(NAMES)}")


# ------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m evaluation.baselines",
        description="Fit a classical baseline on the training part of a price series and "
        "write sampled paths in generate.py's format (.csv, .parquet or .npy).",
    )
    p.add_argument("--data", required=True, help="price file or built-in name (sp500, nasdaq, ...)")
    p.add_argument("--column", default="Close", help="price column of the file (default: Close)")
    p.add_argument("--name", required=True, choices=list(NAMES), help="which baseline")
    p.add_argument("--n", type=int, default=256, help="number of paths (default: 256)")
    p.add_argument("--length", type=int, default=256, help="returns per path (default: 256)")
    p.add_argument(
        "--train-frac",
        type=float,
        default=0.8,
        help="fit on the first fraction of the series by time, as training does (default: 0.8)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--minutes",
        type=float,
        help="diffusion1d: training budget in wall-clock minutes (default: the preset's "
        "MAX_MINUTES, the scalogram model's budget)",
    )
    p.add_argument(
        "--max-steps", type=int, help="diffusion1d: stop after this many optimizer steps"
    )
    p.add_argument("--no-progress", action="store_true", help="diffusion1d: no progress bar")
    p.add_argument("--start-price", type=float, default=100.0, help="first price (default: 100)")
    p.add_argument("--out", required=True, help="output file: .csv, .parquet or .npy")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    return p


def train_returns_from_source(source: str, column: str, train_frac: float) -> np.ndarray:
    """Log returns of the first ``train_frac`` of a price source (by time), via the data layer."""
    if not 0 < train_frac <= 1:
        raise ScalodiffError(f"--train-frac must be in (0, 1], got {train_frac}")
    prices = load_prices(source, column=column)
    train, _ = split_by_time(log_returns(prices.values), train_frac)
    return np.asarray(train, dtype=np.float64)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _check_out(Path(args.out), args.overwrite)  # before minutes of training, not after
        train = train_returns_from_source(args.data, args.column, args.train_frac)
        for flag, value in (("--minutes", args.minutes), ("--max-steps", args.max_steps)):
            if value is not None and value <= 0:
                raise ScalodiffError(f"{flag} must be positive, got {value}")
        gen = fit_baseline(
            args.name, train, window=args.length, minutes=args.minutes,
            max_steps=args.max_steps, seed=args.seed, progress=not args.no_progress,
        )  # fmt: skip
        paths = gen.sample(args.n, args.length, seed=args.seed)
        out = write_paths(args.out, paths, start_price=args.start_price, overwrite=args.overwrite)
    except ScalodiffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(
        f"{args.name}: fitted on {train.size} returns, wrote {args.n} paths x {args.length} to {out}"
    )
    stats = getattr(gen, "stats", None)
    if stats is not None:
        print(
            f"{args.name}: trained {stats.steps} steps ({stats.samples} windows) in "
            f"{stats.seconds / 60:.1f} min, {stats.parameters / 1e6:.2f} M parameters"
        )
    return 0


def _check_out(out: Path, overwrite: bool) -> None:
    if out.suffix.lower() not in FORMATS:
        raise ScalodiffError(f"--out {out}: use a file name ending in one of {', '.join(FORMATS)}")
    if out.exists() and not overwrite:
        raise ScalodiffError(
            f"{out} exists; pass --overwrite to replace it or choose another --out"
        )


if __name__ == "__main__":
    sys.exit(main())
