"""Generate synthetic price paths from a trained checkpoint.

    python generate.py                               # newest checkpoint, 256 paths, DPM-Solver++ 20 steps
    python generate.py --n 1000 --seed 7 --out paths.parquet --plot paths.png
    python generate.py --sampler ddpm                # all 1000 DDPM steps (slow)
    python generate.py --condition high --guidance 3     # a conditional checkpoint (see README)
    python generate.py --length 2520                 # 10 years a path: windows rolled, each continuing the last
    python generate.py --context sp500 --context-end 2015-06-30 --horizon 20 --n 1000   # scenarios + fan chart

Scalograms are sampled from seeded noise (one generator per path: path i is the
same whatever --batch-size), projected back to returns by the transform's exact
least-squares inverse, and mapped to real units by the saved normalizer. It
writes the paths (CSV/Parquet long form, or NPY of log returns), a PNG, and
prints how the generated returns compare with the training data.

From Python (a notebook), with the same defaults as the command line::

    import generate
    paths = generate.load("checkpoints/<run>").sample(100, seed=1)   # a pandas DataFrame
    prices = paths.pivot(index="step", columns="path", values="price")
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from data.context import load_context
from data.joint import JointInfo, JointNormalizer
from data.labels import Conditioning, inside, matching_windows, path_measure, summary
from data.returns import ReturnNormalizer
from data.windows import windows_view
from evaluation.edges import format_edges
from evaluation.fan_chart import plot_fan_chart
from evaluation.joint_report import format_joint, plot_joint, real_joint_windows
from evaluation.paths_figure import plot_generation
from evaluation.summary import format_realism, realism_summary
from models.conditioning import Request, label_tensors, resolve_request
from models.continuation import (
    MIN_CENTRED_SCENARIOS,
    Continuer,
    centre_on_drift,
    default_known,
    extend,
    fitted_level,
    known_lengths,
)
from models.decode import checkpoint_normalizers, decode
from models.diffusion import default_steps, make_sampler, sample
from transforms.joint import JointScalogram
from transforms.volatility import VolatilityScalogram, transform_from_json
from utils import checkpoint as ckpt
from utils.device import resolve_device
from utils.errors import ScalodiffError, run_script
from utils.joint_paths_io import joint_paths_frame, write_joint_paths
from utils.memory import keep_freed_memory
from utils.paths_io import check_output_format, paths_frame, write_paths
from utils.seeding import derive_seed
from utils.settings import SettingsParser, config_defaults

# Figure formats matplotlib writes without extra packages.
PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def build_parser() -> SettingsParser:
    """The command line: each flag overrides one config.py setting."""
    p = SettingsParser(prog="generate.py", description=__doc__)
    p.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="a checkpoint (step-*) folder, a run folder (its newest checkpoint) or a folder "
        "holding one run (default: the newest checkpoint under SAVE_DIR)",
    )
    p.add_setting("--save-dir", "SAVE_DIR", "where to look for the newest checkpoint")
    p.add_setting("--n", "N_SAMPLES", "number of paths", type=int)
    p.add_setting(
        "--sampler",
        "SAMPLER",
        "dpm (DPM-Solver++), unipc, ddim or ddpm (None: the checkpoint's)",
    )
    p.add_setting(
        "--steps",
        "SAMPLING_STEPS",
        "solver steps (None: dpm 20, unipc 20, ddim 50, ddpm all)",
        type=int,
    )
    p.add_setting("--seed", "SEED", "seed; path i uses a seed derived from (seed, i)", type=int)
    p.add_setting(
        "--batch-size",
        "SAMPLE_BATCH",
        "paths per denoising batch (does not change the paths)",
        type=int,
    )
    p.add_setting(
        "--start-price",
        "START_PRICE",
        "first price of every path (None: the last training price)",
        type=float,
    )
    p.add_setting("--device", "DEVICE", "auto, cpu or cuda")
    p.add_argument(
        "--condition",
        metavar="NAME",
        help="conditional checkpoints: the class to generate, e.g. low/mid/high (vol-regime), "
        "down/flat/up (trend); default: unconditional",
    )
    p.add_argument(
        "--realized-vol",
        type=float,
        metavar="X",
        help="realized-vol checkpoints: the target realized volatility, annualized for daily "
        "data (0.25 = 25%% a year), in the units generate.py prints",
    )
    p.add_argument(
        "--asset", metavar="NAME", help="multi-asset checkpoints: the series to generate"
    )
    p.add_setting(
        "--guidance",
        "GUIDANCE",
        "classifier-free guidance scale: 1 conditional model alone, >1 stronger",
        type=float,
    )
    p.add_setting(
        "--vol-level",
        "VOL_LEVEL",
        "fitted: each path's volatility level is drawn from the training windows' levels; "
        "model: taken from the generated image (None: the checkpoint's VOL_LEVEL; "
        "a conditional model asked for a label always uses model)",
    )
    p.add_setting(
        "--length",
        "LENGTH",
        "returns per path; beyond one window, windows are rolled, each continuing the last "
        "--known returns of the path (None: one window of WINDOW_SIZE)",
        type=int,
    )
    p.add_setting(
        "--known",
        "CONTEXT_KNOWN",
        "known returns each rolled or scenario window continues (None: of the checkpoint's "
        "trained lengths, the shortest for --length, the one nearest WINDOW_SIZE / 2 for "
        "--context)",
        type=int,
    )
    p.add_setting(
        "--overlap",
        "JOIN_OVERLAP",
        "rolled and scenario windows: generated returns right after the history (damped by the "
        "UNet) replaced by this many more real ones (0: none; the fitted start gains undamp them)",
        type=int,
    )
    p.add_setting(
        "--scenario-mean",
        "SCENARIO_MEAN",
        "scenarios: drift (the mean of the scenarios on each day moved onto the training "
        f"drift, their spread and shapes kept; needs --n {MIN_CENTRED_SCENARIOS} or more) or "
        "model (the model's own)",
    )
    p.add_argument(
        "--context",
        metavar="DATA",
        help="scenarios: a price file or built-in name whose history the paths continue "
        "(needs --horizon; the price column is COLUMN, --column)",
    )
    p.add_setting("--column", "COLUMN", "price column of --context")
    p.add_argument(
        "--context-end",
        metavar="DATE",
        help="scenarios start after the last price at or before DATE (default: the last price)",
    )
    p.add_argument("--horizon", type=int, metavar="H", help="scenarios: returns per path")
    p.add_argument(
        "--out",
        metavar="FILE",
        help="paths file: .csv, .parquet or .npy (default: OUTPUT_DIR/<run>-<step>-seed<S>.csv)",
    )
    p.add_argument("--plot", metavar="FILE.png", help="figure file (default: next to --out, .png)")
    p.add_argument("--no-plot", action="store_true", help="skip the figure")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: one-line errors with exit status 2 for problems the user can fix."""
    return run_script(generate, argv, "free space or choose --out on a disk with room")


def generate(argv: list[str] | None = None) -> int:
    """Parse settings, sample, write files, print the comparison; return the exit status."""
    keep_freed_memory()
    parser = build_parser()
    args, settings = parser.parse(argv)
    gen = load(args.checkpoint, save_dir=settings["SAVE_DIR"], device=settings["DEVICE"])
    options = SampleOptions.from_settings(
        settings,
        condition=args.condition,
        realized_vol=args.realized_vol,
        asset=args.asset,
        progress=not args.no_progress,
    )
    if gen.loaded.get("joint") is not None:
        return joint_paths(gen, args, settings, options)
    if args.context is not None or args.horizon is not None or args.context_end is not None:
        return scenarios(gen, args, settings, options)
    if settings["LENGTH"] is not None:
        return long_paths(gen, args, settings, options)
    plan = gen.plan(options)
    out, plot = output_targets(args, settings, plan.name)
    print(
        f"checkpoint {gen.step_dir} (step {gen.loaded['step']}); {options.n} paths with "
        f"{plan.sampler}, {plan.steps} steps on {gen.device}"
    )
    if plan.describe():
        print(plan.describe())
    unfitted = unfitted_calibration(gen.loaded)
    if unfitted:
        print(
            f"note: this checkpoint was saved before training ended, so {' and '.join(unfitted)} "
            "= fitted was not fitted: its tails come out thinner; sample the run's last checkpoint"
        )
    t0 = time.perf_counter()
    paths = gen.generate(plan)
    seconds = time.perf_counter() - t0
    write_paths(out, paths.returns, start_price=plan.start_price, overwrite=args.overwrite)
    n, length = paths.returns.shape
    print(
        f"wrote {out} ({n} paths x {length} steps) in {seconds:.1f} s "
        f"({seconds / n * 1000:.0f} ms/path)"
    )
    real_windows = plan.real_windows(length)
    # Every stride-1 window gives the real position profile: from the 59 windows of the
    # S&P 500 at stride L/4 its noise alone reached 0.1 at single positions.
    edge_windows = plan.real_windows(length, stride=1)
    spec, request = gen.spec, plan.request
    if spec is not None and request.label is not None and spec.kind != "asset":
        real_windows = compare_with_class(spec, request, real_windows, paths.returns)
        edge_windows = real_windows
    print(
        format_realism(
            realism_summary(real_windows, paths.returns, gen.loaded["untrained_reference"])
        )
    )
    print(format_edges(edge_windows, paths.returns))
    if plot is not None:
        real_images = gen.scalograms(plan.real_returns, plan.normalizer_json)
        title = f"{gen.step_dir.parent.name} / {gen.step_dir.name}: {plan.sampler}-{plan.steps}{plan.asked}"
        plot_generation(
            plot,
            real_windows,
            paths.returns,
            real_images,
            paths.images,
            start_price=plan.start_price,
            title=title,
        )
        print(f"wrote {plot}")
    return 0


@dataclass
class SampleOptions:
    """What to sample; None means: as the checkpoint says (sampler, steps, vol level, start price).

    ``start_price`` None is the last training price; ``condition``, ``realized_vol``
    and ``asset`` ask a conditional checkpoint for a class, a target or a series
    (all None: unconditional).
    """

    n: int = 256
    seed: int = 0
    sampler: str | None = None
    steps: int | None = None
    batch_size: int = 64
    guidance: float = 1.0
    vol_level: str | None = None
    start_price: float | None = None
    condition: str | None = None
    realized_vol: float | None = None
    asset: str | None = None
    progress: bool = True

    @classmethod
    def from_settings(cls, settings: dict[str, Any], **asked: Any) -> SampleOptions:
        """Options from config.py-style settings (N_SAMPLES, SEED, ...) and what was asked."""
        return cls(
            n=settings["N_SAMPLES"],
            seed=settings["SEED"],
            sampler=settings["SAMPLER"],
            steps=settings["SAMPLING_STEPS"],
            batch_size=settings["SAMPLE_BATCH"],
            guidance=settings["GUIDANCE"],
            vol_level=settings["VOL_LEVEL"],
            start_price=settings["START_PRICE"],
            **asked,
        )


@dataclass
class Plan:
    """One request to a checkpoint, resolved: the sampler, labels, levels, scale and start price."""

    options: SampleOptions
    sampler: str
    steps: int
    request: Request | None
    spec: Conditioning | None
    vol_level: str
    normalizer_json: dict[str, Any]
    start_price: float
    real_returns: np.ndarray
    run_name: str

    @property
    def asked(self) -> str:
        """Conditional requests name the files: ``-high-g2``; unconditional ones add nothing."""
        if self.request is None:
            return ""
        guided = f"-g{self.options.guidance:g}" if self.request.label is not None else ""
        return f"-{self.request.name}{guided}"

    @property
    def drift(self) -> float:
        """The mean training log return, the one scenarios are centred on (SCENARIO_MEAN)."""
        return float(np.mean(self.real_returns))

    @property
    def name(self) -> str:
        """The default output name: ``<run>-<step>-<sampler><steps>-seed<S>[-<class>-g<G>]``."""
        return f"{self.run_name}-{self.sampler}{self.steps}-seed{self.options.seed}{self.asked}"

    def describe(self) -> str:
        """What the request asks of a conditional model, and where levels come from."""
        lines = []
        if self.spec is not None:
            asking = (
                f"conditioned on {self.spec.kind} = {self.request.name}, guidance {self.options.guidance:g}"
                if self.request.label is not None
                else f"unconditional (the null label) from a {self.spec.kind} model"
            )
            lines += [
                f"{asking}; the training windows' {self.spec.measure_name} ({self.spec.unit}):"
            ]
            lines += self.spec.describe()
        if self.vol_level == "fitted":
            lines.append("volatility levels: drawn from the training windows' (VOL_LEVEL = fitted)")
        return "\n".join(lines)

    def real_windows(self, length: int, stride: int | None = None) -> np.ndarray:
        """Real training windows of the paths' length (by default overlapping by 3/4)."""
        real = self.real_returns
        if len(real) < length:
            return real[None, :]
        return windows_view(real, length, stride or max(1, length // 4))


@dataclass
class Paths:
    """Generated log returns in real units ``[n, L]``, their scalograms, and the request."""

    returns: np.ndarray
    images: torch.Tensor
    plan: Plan

    def frame(self) -> pd.DataFrame:
        """Long form: one row per path and step, columns ``path, step, log_return, price``."""
        return paths_frame(self.returns, self.plan.start_price)


class Generator:
    """A trained checkpoint, ready to sample price paths. Build it with :func:`load`."""

    def __init__(self, step_dir: Path, device: str = "auto") -> None:
        self.device = resolve_device(device)
        self.step_dir = step_dir
        self.loaded = ckpt.load_for_sampling(step_dir)
        self.spec = checkpoint_conditioning(self.loaded)

    def sample(self, n: int | None = None, **options: Any) -> pd.DataFrame:
        """``n`` price paths in long form (``path, step, log_return, price``; a joint model's
        with an ``asset`` column), as generate.py makes them.

        Every option of :class:`SampleOptions` (``seed``, ``sampler``, ``steps``,
        ``condition``, ...) may be given; the rest take generate.py's defaults:
        config.py's settings, then the checkpoint's (VOL_LEVEL, the sampler, the
        last training price).
        """
        settings = config_defaults()
        if n is not None:
            settings["N_SAMPLES"] = n
        defaults = SampleOptions.from_settings(settings)
        unknown = sorted(set(options) - {f.name for f in fields(SampleOptions)})
        if unknown:
            raise ScalodiffError(f"sample(): unknown option {unknown[0]!r}; see SampleOptions")
        asked = SampleOptions(**{**vars(defaults), **options})
        paths = self.generate(self.plan(asked))
        if self.loaded.get("joint") is not None:  # one row per path, series and step
            info = JointInfo.from_json(self.loaded["joint"])
            return joint_paths_frame(paths.returns, info.names, info.last_prices)
        return paths.frame()

    def plan(self, options: SampleOptions) -> Plan:
        """Resolve ``options`` against the checkpoint; errors for requests it cannot serve."""
        run = self.loaded["settings"]
        sampler = options.sampler or run.get("SAMPLER") or "dpm"
        train_steps = self.loaded["scheduler_config"]["num_train_timesteps"]
        steps = options.steps or default_steps(sampler, train_steps)
        request = resolve_request(self.spec, options.condition, options.realized_vol, options.asset)
        real, last_price = self.loaded["real_returns"], run.get("LAST_TRAIN_PRICE")
        normalizer_json = self.loaded["normalizer"]
        asset = request.asset if request is not None else None
        if asset is not None:  # a multi-asset model: this series' returns, price and normalizer
            real = real[asset["real_start"] : asset["real_stop"]]
            last_price, normalizer_json = asset["last_train_price"], asset["normalizer"]
        check_vol_level(options.vol_level, run)
        vol_level = level_source(options.vol_level or run.get("VOL_LEVEL"), request)
        if not run.get("VOLATILITY_ROW"):
            vol_level = "model"  # no level row: the paths' levels come from the image alone
        return Plan(
            options,
            sampler,
            steps,
            request,
            self.spec,
            vol_level,
            normalizer_json,
            options.start_price or float(last_price or 100.0),
            real,
            f"{self.step_dir.parent.name}-{self.step_dir.name}",
        )

    def generate(self, plan: Plan) -> Paths:
        """Sample the paths ``plan`` describes."""
        o = plan.options
        labels, null_labels = label_tensors(plan.spec, plan.request, o.n)
        returns, images = sample_returns(
            self.loaded,
            o.n,
            sampler_name=plan.sampler,
            steps=plan.steps,
            seed=o.seed,
            batch=o.batch_size,
            device=self.device,
            labels=labels,
            null_labels=null_labels,
            guidance=o.guidance,
            normalizer_json=plan.normalizer_json,
            vol_level=plan.vol_level,
            progress=o.progress,
        )
        return Paths(returns, images, plan)

    def continuer(
        self, plan: Plan, known: int | None, overlap: int = 0, rolling: bool = False
    ) -> Continuer:
        """The checkpoint ready to continue histories, ``known`` returns each window (None:
        the default for a real history, or for rolled long paths with ``rolling``); errors
        for checkpoints trained without context and for lengths it was not trained on."""
        config = self.loaded["unet"].config
        transform = transform_from_json(self.loaded["transform"])
        parts = transform.parts if isinstance(transform, JointScalogram) else [transform]
        if config.in_channels == config.out_channels or not all(
            isinstance(p, VolatilityScalogram) for p in parts
        ):
            raise ScalodiffError(
                f"checkpoint {self.step_dir} was trained without context (CONTEXT_FRACTIONS = ()), "
                "so it generates single windows only and cannot continue a history (--length "
                "beyond one window, --context); train with --set CONTEXT_FRACTIONS=(0.25,0.5,0.75)"
            )
        window = transform.output_size
        fractions = self.loaded["settings"].get("CONTEXT_FRACTIONS")
        trained = known_lengths(fractions, window)
        k = known if known is not None else default_known(fractions, window, rolling)
        if k not in trained or k + transform.margin > window:
            usable = [v for v in trained if v + transform.margin <= window]
            raise ScalodiffError(
                f"CONTEXT_KNOWN (--known) {k}: this checkpoint continues histories of "
                f"{', '.join(map(str, usable))} known returns (CONTEXT_FRACTIONS of WINDOW_SIZE "
                f"{window}); choose one of them"
            )
        if k + overlap >= window:
            raise ScalodiffError(
                f"JOIN_OVERLAP (--overlap) {overlap} with {k} known returns leaves no new return "
                f"in a window of {window}; choose an overlap below {window - k}, e.g. 4"
            )
        fitted = sorted(
            {int(f["known"]) - transform.margin for p in parts for f in p.continuation_level or []}
        )
        if not fitted and self.loaded["settings"].get("CONTINUATION_LEVEL") == "fitted":
            warnings.warn(
                "this checkpoint was saved before training ended, so its continued windows' "
                "level correction (CONTINUATION_LEVEL = fitted) was not fitted: rolled paths "
                "drift calm; continue from the run's last checkpoint",
                UserWarning,
                stacklevel=2,
            )
        elif (
            overlap == 0
            and k in fitted
            and not all(
                (fitted_level(p, k + transform.margin) or {}).get("start_gains") for p in parts
            )
        ):
            raise ScalodiffError(
                "this checkpoint's continuation fit has no start gains (saved by an older "
                "version), so with JOIN_OVERLAP 0 the first returns after each history would "
                "come out damped; continue with JOIN_OVERLAP = 4 (--overlap 4) or retrain"
            )
        elif fitted and k not in fitted:
            warnings.warn(
                f"the continued windows' level correction (CONTINUATION_LEVEL = fitted) was "
                f"fitted for {', '.join(map(str, fitted))} known returns; "
                f"{k} (--known) continue without it",
                UserWarning,
                stacklevel=2,
            )
        labels, null_labels = label_tensors(plan.spec, plan.request, plan.options.n)
        normalizers = checkpoint_normalizers(self.loaded, plan.normalizer_json)
        return Continuer(
            self.loaded["unet"].to(self.device),
            make_sampler(plan.sampler, self.loaded["scheduler_config"]),
            plan.steps,
            transform,
            JointNormalizer(normalizers) if len(normalizers) > 1 else normalizers[0],
            k,
            self.device,
            labels,
            null_labels,
            plan.options.guidance,
            overlap,
        )

    def long_paths(
        self, plan: Plan, length: int, known: int | None = None, overlap: int = 0
    ) -> np.ndarray:
        """Paths of ``length`` returns [n, length] (a joint model: [n, A, length]): window 0
        as :meth:`generate` makes it, then rolled windows, each continuing the path so far."""
        first = self.generate(plan).returns
        have = first.shape[-1]
        if length <= have:
            return first[..., :length]
        cont = self.continuer(plan, known, overlap, rolling=True)
        o = plan.options
        rolled = -(-(length - have) // cont.new_per_window) * -(-o.n // o.batch_size)
        with tqdm(total=rolled, unit="window", desc="rolling", disable=not o.progress) as bar:
            rest = extend(cont, first, length - have, o.seed, o.batch_size, lambda: bar.update(1))
        return np.concatenate([first, rest], axis=-1)

    def scalograms(self, real: np.ndarray, normalizer_json: dict[str, Any]) -> torch.Tensor:
        """The standardized scalograms of the first four real windows (for the figure), cut
        at the transform's own length (edge margins included)."""
        transform = transform_from_json(self.loaded["transform"])
        normalizer = ReturnNormalizer.from_json(normalizer_json)
        shown = windows_view(real, transform.window_size, transform.window_size)[:4]
        z = np.ascontiguousarray(normalizer.transform(shown), dtype=np.float64)
        return transform.forward(torch.from_numpy(z)).float()


def load(
    checkpoint: str | Path | None = None, *, save_dir: str | None = None, device: str | None = None
) -> Generator:
    """A checkpoint ready to sample: a step folder, a run folder (its newest step), or None
    for the newest checkpoint under SAVE_DIR; ``device`` None is config.py's DEVICE."""
    settings = config_defaults()
    step_dir = ckpt.resolve_checkpoint(checkpoint, save_dir or settings["SAVE_DIR"])
    return Generator(step_dir, device or settings["DEVICE"])


def sample_returns(
    loaded: dict[str, Any],
    n: int,
    *,
    sampler_name: str,
    steps: int,
    seed: int,
    batch: int,
    device: torch.device,
    labels: torch.Tensor | None = None,
    null_labels: torch.Tensor | None = None,
    guidance: float = 1.0,
    normalizer_json: dict[str, Any] | None = None,
    vol_level: str = "model",
    progress: bool = True,
) -> tuple[np.ndarray, torch.Tensor]:
    """Sample ``n`` scalograms in batches; return log returns in real units [n, L] and the scalograms.

    Conditional checkpoints take per-path ``labels`` (and ``null_labels`` for
    guidance, see models.conditioning.label_tensors); ``normalizer_json``
    replaces the checkpoint's normalizer (a multi-asset model's per-asset one).
    ``vol_level="fitted"`` draws each path's volatility level from the training
    windows' levels (transforms.volatility) with a seed derived from the path's.
    """
    transform = transform_from_json(loaded["transform"])
    normalizers = checkpoint_normalizers(loaded, normalizer_json)
    unet = loaded["unet"].to(device)
    sampler = make_sampler(sampler_name, loaded["scheduler_config"])
    seeds = [derive_seed(seed, i) for i in range(n)]
    images, returns = [], []
    total = -(-n // batch) * steps
    with tqdm(
        total=total, unit="step", desc=f"{sampler_name}-{steps}", disable=not progress
    ) as bar:
        for lo in range(0, n, batch):
            part = slice(lo, lo + batch)
            s = sample(
                unet,
                sampler,
                seeds[part],
                steps,
                device,
                on_step=lambda: bar.update(1),
                class_labels=None if labels is None else labels[part],
                null_labels=None if null_labels is None else null_labels[part],
                guidance=guidance,
            )
            returns.append(decode(transform, s, seeds[part], vol_level, normalizers))
            images.append(s.cpu())
    return np.concatenate(returns), torch.cat(images)


def long_paths(gen: Generator, args: Any, settings: dict[str, Any], options: SampleOptions) -> int:
    """``--length``: write paths of any length, rolled window by window."""
    length = settings["LENGTH"]
    plan = gen.plan(options)
    out = (
        Path(args.out)
        if args.out
        else Path(settings["OUTPUT_DIR"]) / f"{plan.name}-len{length}.csv"
    )
    check_new_file(out, args.overwrite)
    print(
        f"checkpoint {gen.step_dir} (step {gen.loaded['step']}); {options.n} paths of {length} "
        f"returns with {plan.sampler}, {plan.steps} steps on {gen.device}"
    )
    t0 = time.perf_counter()
    returns = gen.long_paths(plan, length, settings["CONTEXT_KNOWN"], settings["JOIN_OVERLAP"])
    seconds = time.perf_counter() - t0
    write_paths(out, returns, start_price=plan.start_price, overwrite=args.overwrite)
    print(
        f"wrote {out} ({options.n} paths x {length} steps) in {seconds:.1f} s "
        f"({seconds / returns.size * 1000:.2f} ms per generated day); evaluate with "
        f"python evaluate.py --synthetic {out}"
    )
    return 0


def scenarios(gen: Generator, args: Any, settings: dict[str, Any], options: SampleOptions) -> int:
    """``--context DATA --horizon H``: paths that continue a real history, and a fan chart."""
    if args.context is None or args.horizon is None:
        raise ScalodiffError(
            "scenarios need both --context DATA (the history to continue) and --horizon H "
            "(returns per path), e.g. --context sp500 --horizon 20"
        )
    if args.horizon < 1:
        raise ScalodiffError(f"--horizon {args.horizon}: give a number of returns, 1 or more")
    plan = gen.plan(options)
    centred = check_scenario_mean(settings["SCENARIO_MEAN"], plan)
    cont = gen.continuer(plan, settings["CONTEXT_KNOWN"], settings["JOIN_OVERLAP"])
    ctx = load_context(
        args.context,
        settings["COLUMN"],
        args.context_end,
        cont.history,
        settings["DATE_FORMAT"],
        settings["MAX_MISSING_FRAC"],
    )
    end = ctx.end_label.replace(" ", "_").replace(":", "")
    own_mean = "" if centred else "-modelmean"
    name = f"{plan.name}-{ctx.name}-{end}-h{args.horizon}{own_mean}"
    out, plot = output_targets(args, settings, name)
    print(
        f"checkpoint {gen.step_dir}; {options.n} scenarios of {args.horizon} returns after "
        f"{ctx.name} {ctx.end_label} (price {ctx.last_price:g}), each window continuing "
        f"{cont.known} known returns"
    )
    history = np.tile(ctx.returns[-cont.history :], (options.n, 1))
    windows = -(-args.horizon // cont.new_per_window) * -(-options.n // options.batch_size)
    t0 = time.perf_counter()
    with tqdm(total=windows, unit="window", desc="scenarios", disable=args.no_progress) as bar:
        paths = extend(
            cont, history, args.horizon, options.seed, options.batch_size, lambda: bar.update(1)
        )
    seconds = time.perf_counter() - t0
    if centred:
        paths = centred_scenarios(paths, plan)
    dates = ctx.future_dates(args.horizon)
    write_paths(out, paths, ctx.last_price, args.overwrite, dates=dates)
    print(
        f"wrote {out} in {seconds:.1f} s ({seconds / paths.size * 1000:.2f} ms per generated day)"
    )
    print(describe_scenarios(paths, ctx.realized, ctx.last_price))
    if plot is not None:
        plot_fan_chart(
            plot,
            ctx.history,
            paths,
            history_dates=ctx.dates,
            future_dates=dates,
            realized=ctx.realized,
            title=f"{ctx.name} after {ctx.end_label}: {options.n} scenarios ({gen.step_dir.parent.name})",
        )
        print(f"wrote {plot}")
    return 0


def check_scenario_mean(mean: str, plan: Plan) -> bool:
    """Whether scenarios are centred on the drift (SCENARIO_MEAN); errors, before any
    sampling, for requests that centring would defeat."""
    if mean != "drift":
        return False
    if plan.options.n < MIN_CENTRED_SCENARIOS:
        raise ScalodiffError(
            f"SCENARIO_MEAN = 'drift' moves the mean of the scenarios on each day onto the "
            f"training drift, which needs {MIN_CENTRED_SCENARIOS} or more scenarios, not --n "
            f"{plan.options.n}; ask for more, or keep the model's own mean with "
            "--scenario-mean model"
        )
    if plan.spec is not None and plan.spec.kind == "trend" and plan.request.label is not None:
        raise ScalodiffError(
            f"--condition {plan.request.label} asks a trend model for a direction, which "
            "SCENARIO_MEAN = 'drift' would remove; add --scenario-mean model"
        )
    return True


def centred_scenarios(paths: np.ndarray, plan: Plan) -> np.ndarray:
    """``paths`` [N, H] moved onto the training drift (:func:`centre_on_drift`), said in one line."""
    h = paths.shape[1]
    print(
        f"scenario mean: the model's {h}-step mean log return {paths.sum(axis=1).mean():+.4f} "
        f"moved onto the training drift's {h * plan.drift:+.4f} (SCENARIO_MEAN = drift; "
        "--scenario-mean model keeps it)"
    )
    return centre_on_drift(paths, plan.drift)


def describe_scenarios(paths: np.ndarray, realized: np.ndarray, last_price: float) -> str:
    """The scenarios' cumulative return quantiles, and where the realized one falls."""
    total = paths.sum(axis=1)
    q = np.percentile(total, [5, 25, 50, 75, 95])
    line = (
        f"{paths.shape[1]}-step log return: 5% {q[0]:+.4f}, 25% {q[1]:+.4f}, median "
        f"{q[2]:+.4f}, 75% {q[3]:+.4f}, 95% {q[4]:+.4f}"
    )
    if len(realized) >= paths.shape[1]:
        real = float(np.log(realized[paths.shape[1] - 1] / last_price))
        line += f"; realized {real:+.4f}, above {100 * np.mean(total < real):.0f}% of the scenarios"
    return line


def output_targets(args: Any, settings: dict[str, Any], name: str) -> tuple[Path, Path | None]:
    """The paths file and the figure (None with --no-plot), checked before any sampling."""
    out = Path(args.out) if args.out else Path(settings["OUTPUT_DIR"]) / f"{name}.csv"
    plot = None if args.no_plot else Path(args.plot) if args.plot else out.with_suffix(".png")
    check_outputs(out, plot)
    for target in (out, plot):
        if target is not None:
            check_new_file(target, args.overwrite)
    return out, plot


def joint_paths(gen: Generator, args: Any, settings: dict[str, Any], options: SampleOptions) -> int:
    """A joint checkpoint's paths: every series together, written with an ``asset`` column."""
    asked = [flag for flag, value in unsupported_by_joint(args, settings, options) if value]
    if asked:
        raise ScalodiffError(
            f"{', '.join(asked)}: not available for a joint checkpoint ({gen.step_dir}), which "
            "generates paths of all its series together, each from its last training price"
        )
    info = JointInfo.from_json(gen.loaded["joint"])
    plan = gen.plan(options)
    length = settings["LENGTH"]
    out, plot = output_targets(args, settings, plan.name + (f"-len{length}" if length else ""))
    print(
        f"checkpoint {gen.step_dir} (step {gen.loaded['step']}); {options.n} joint paths of "
        f"{', '.join(info.names)} with {plan.sampler}, {plan.steps} steps on {gen.device}"
    )
    t0 = time.perf_counter()
    if length is None:
        returns = gen.generate(plan).returns
    else:
        known, overlap = settings["CONTEXT_KNOWN"], settings["JOIN_OVERLAP"]
        returns = gen.long_paths(plan, length, known, overlap)
    seconds = time.perf_counter() - t0
    write_joint_paths(out, returns, info.names, info.last_prices, overwrite=args.overwrite)
    n, _, length = returns.shape
    print(f"wrote {out} ({n} paths x {len(info.names)} series x {length} steps) in {seconds:.1f} s")
    real = real_joint_windows(gen.loaded["real_returns"], length)
    print(format_joint(real, returns, info.names))
    if plot is not None:
        title = f"{gen.step_dir.parent.name} / {gen.step_dir.name}: {plan.sampler}-{plan.steps}"
        plot_joint(plot, real, returns, info.names, info.last_prices, title)
        print(f"wrote {plot}")
    return 0


def unsupported_by_joint(args: Any, settings: dict[str, Any], options: SampleOptions) -> list:
    """The requests a joint checkpoint cannot serve yet, with whether each was made."""
    return [
        ("--context/--context-end/--horizon", args.context or args.context_end or args.horizon),
        ("--condition/--realized-vol", options.condition or options.realized_vol is not None),
        ("--asset", options.asset),
        ("--start-price (one price for several series)", options.start_price is not None),
    ]


def check_new_file(target: Path, overwrite: bool) -> None:
    """An existing output file is replaced only when asked."""
    if target.exists() and not overwrite:
        raise ScalodiffError(
            f"{target} exists; pass --overwrite to replace it or choose another --out/--plot"
        )


def unfitted_calibration(loaded: dict[str, Any]) -> list[str]:
    """The settings the run asked to fit when training ended (LOCAL_SPREAD, TAIL_STRETCH)
    that this checkpoint does not hold: it was saved before the end."""
    run, missing = loaded["settings"], []
    if run.get("LOCAL_SPREAD") == "fitted" and loaded["transform"].get("local_spread", 1.0) == 1.0:
        missing.append("LOCAL_SPREAD")
    if run.get("TAIL_STRETCH") == "fitted" and not all(
        n.tail_start is not None for n in checkpoint_normalizers(loaded)
    ):
        missing.append("TAIL_STRETCH")
    return missing


def level_source(vol_level: str | None, request: Request | None) -> str:
    """Where paths get their volatility level: the generated row when a label asks for
    something (the label decides the level), else VOL_LEVEL, as for an unconditional model."""
    if request is not None and request.label is not None:
        return "model"
    return vol_level or "model"


def check_outputs(out: Path, plot: Path | None) -> None:
    """Refuse output names that cannot be written, before any sampling time is spent."""
    check_output_format(out)
    if plot is not None and plot.suffix.lower() not in PLOT_FORMATS:
        raise ScalodiffError(
            f"--plot {plot}: unknown figure format {plot.suffix or '(no suffix)'!r}; use a file "
            f"name ending in one of {', '.join(PLOT_FORMATS)}, or --no-plot"
        )


def check_vol_level(asked: str | None, run: dict[str, Any]) -> None:
    """A fitted volatility level needs the level row; without it the request would be ignored."""
    if asked == "fitted" and not run.get("VOLATILITY_ROW"):
        raise ScalodiffError(
            "VOL_LEVEL (--vol-level) 'fitted': this checkpoint was trained without the volatility "
            "level row (VOLATILITY_ROW False), so there is no level to draw; drop --vol-level, "
            "or train with --set VOLATILITY_ROW=True"
        )


def checkpoint_conditioning(loaded: dict[str, Any]) -> Conditioning | None:
    """The checkpoint's conditioning record; None for an unconditional model."""
    saved = loaded.get("conditioning")
    spec = Conditioning.from_json(saved) if saved is not None else None
    config = loaded["unet"].config
    if spec is None and (config.num_class_embeds or config.class_embed_type):
        raise ScalodiffError(
            "the checkpoint's UNet is conditional but its conditioning.json is missing; the "
            "checkpoint is damaged: use another step-* folder of the run or retrain"
        )
    return spec


def compare_with_class(
    spec: Conditioning, request: Request, real_windows: np.ndarray, returns: np.ndarray
) -> np.ndarray:
    """Print how the paths' measure sits in the real class; return the class's real windows."""
    mask = matching_windows(spec, real_windows, request.label)
    if not mask.any():
        print(f"no real window of the paths' length matches {request.name}; comparing with all")
        return real_windows
    real_m = summary(path_measure(spec.kind, real_windows[mask], spec.periods_per_year))
    synth_m = path_measure(spec.kind, returns, spec.periods_per_year)
    print(
        f"{spec.measure_name}: real windows of {request.name} median {real_m['median']:.4f}, IQR "
        f"{real_m['q25']:.4f}-{real_m['q75']:.4f}; generated median {np.median(synth_m):.4f}, "
        f"{100 * inside(synth_m, real_m):.0f}% inside the real IQR"
    )
    return real_windows[mask]


if __name__ == "__main__":
    sys.exit(main())
