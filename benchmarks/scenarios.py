"""Scenario backtest: continue the held-out history from many dates and score the forecasts.

    python benchmarks/scenarios.py --checkpoint RUN            # every 20th held-out day, 1,000 scenarios (a GPU)
    python benchmarks/scenarios.py --checkpoint RUN --quick    # 12 dates, 64 scenarios (CPU, minutes)
    python benchmarks/scenarios.py --checkpoint RUN --shocks 3 --horizons 1 5   # right after shocks
    python benchmarks/scenarios.py --checkpoint RUN --horizons 1 --dates 200 --n 64   # one horizon, more dates

RUN is a context model (trained with CONTEXT_FRACTIONS). Its own data and
TRAIN_FRAC split the series; the forecast dates t lie in the held-out part,
spaced by the longest horizon so that no two forecasts overlap (the tests below
assume independent dates). A run of one horizon gets dates only that horizon apart:
on the S&P 500's default split up to 1,006 one-day or 201 five-day dates, where the
three horizons together get 50. With --shocks SD the dates are instead the held-out
days whose return is at least SD times the RMS of the SHOCK_LOOKBACK returns before it
(again no two within the longest horizon): the stress case, where the scenarios
must widen. At each t three forecasters draw N scenarios of the next H returns (the other
rows are controls made from ours and from GARCH-t's):

- ours: the model continuing the real history up to t (CONTEXT_KNOWN returns), its
  scenarios' mean on each day moved onto the training returns' mean (the drift) as
  generate.py does by default (SCENARIO_MEAN, --scenario-mean);
- ours, no context: the same checkpoint's unconditional windows (the level drawn
  afresh, the same scenarios at every date; centred as ours is): what the context
  must beat;
- GARCH(1,1)-t fitted by ``arch`` on the training part, its variance filtered
  through the history up to t, then simulated;
- ours, model's mean: the same scenarios with the mean the model reads from the
  history kept (with --scenario-mean model the two swap: ours keeps the model's
  mean and the control, "ours, drift mean", is centred). The difference between
  the two is what that mean (the direction, with its bias and sampling noise)
  gives or costs;
- garch-t, drift mean (when ours is centred): the GARCH-t scenarios centred on
  the drift as ours are. GARCH-t's fitted mean is far from the drift (its fit
  weighs wild days, which fell, less than calm ones, and the Student-t its
  largest falls less again), so this row asks whether ours wins by its mean
  alone.

For H in --horizons, on the cumulative log return over H days: the PIT and its KS
test, the mean CRPS (with the paired difference to GARCH-t and its 95% interval),
the 1% and 5% VaR hit rates with the Kupiec and Christoffersen p-values, and the
spread ratio: the RMS of the realized sums' distance from the scenarios' mean over
the RMS of the scenarios' standard deviation (above 1: scenarios too narrow), the
scenarios' mean H-day return (``mean`` in the JSON); each
verdict adds ours' CRPS minus the other mean's control and, when ours is
centred, minus the centred GARCH-t's, with their intervals. Each row keeps its CRPS per date
(``crps_by_date``), for paired comparisons with later runs.
Writes OUT/scenarios.json, OUT/scenarios.md and the PIT histograms OUT/pit.png;
prints the table and the verdicts of the targets: KS and Kupiec not rejected at 5%, CRPS no worse than
GARCH-t's and better than ours without context.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import evaluate  # noqa: E402  (the repository root is on the path only now)
import generate  # noqa: E402
from data.readers import load_prices  # noqa: E402
from data.returns import log_returns, split_by_time  # noqa: E402
from evaluation.baselines import GarchBaseline  # noqa: E402
from evaluation.forecast_scores import (  # noqa: E402
    christoffersen_independence,
    crps_ensemble,
    kupiec_pof,
    pit_ks,
    pit_values,
    var_hits,
)
from evaluation.intervals import normal_interval  # noqa: E402
from models.continuation import Continuer, centre_on_drift, extend  # noqa: E402
from utils.errors import ScalodiffError, run_script  # noqa: E402
from utils.settings import config_defaults, data_source  # noqa: E402

VAR_LEVELS = (0.01, 0.05)
SHOCK_LOOKBACK = 127  # returns before a day whose RMS --shocks compares the day's return with
# The control row: ours with the other SCENARIO_MEAN.
MEAN_CONTROL = {"drift": "ours, model's mean", "model": "ours, drift mean"}
# GARCH-t's fitted mean is not the drift (S&P 500: 0.062% a day against the training
# returns' 0.013%), so ours, centred on the drift, is also scored against GARCH-t centred alike.
GARCH_CENTRED = "garch-t, drift mean"


def forecast_dates(
    n_returns: int, n_train: int, history: int, step: int, m: int | None
) -> np.ndarray:
    """Indices t of the last known return: held-out, ``step`` apart, with ``step`` returns after."""
    candidates = np.arange(max(n_train - 1, history - 1), n_returns - step, step)
    if len(candidates) == 0:
        raise ScalodiffError(
            f"the held-out part ({n_returns - n_train} returns) is too short for a {step}-day "
            "horizon; lower TRAIN_FRAC in the run or pass shorter --horizons"
        )
    if m is not None and m < len(candidates):
        candidates = candidates[np.linspace(0, len(candidates) - 1, m).round().astype(int)]
    return candidates


def shock_dates(
    r: np.ndarray, n_train: int, history: int, step: int, sd: float, m: int | None
) -> np.ndarray:
    """Held-out indices t with ``|r[t]| >= sd`` times the RMS of the SHOCK_LOOKBACK returns
    before, ``step`` returns after, each at least ``step`` after the one before; at most
    ``m`` of them, evenly spaced.

    >>> r = np.full(400, 0.01); r[[250, 252, 300, 396]] = -0.05  # 252: too soon, 396: too late
    >>> shock_dates(r, 200, 40, 5, 3.0, None).tolist()
    [250, 300]
    """
    picked: list[int] = []
    for t in range(max(n_train - 1, history - 1, SHOCK_LOOKBACK), len(r) - step):
        rms = np.sqrt(np.mean(np.square(r[t - SHOCK_LOOKBACK : t])))
        if abs(r[t]) >= sd * rms and (not picked or t - picked[-1] >= step):
            picked.append(t)
    if not picked:
        raise ScalodiffError(
            f"no held-out day has a return {sd:g} times the RMS of the {SHOCK_LOOKBACK} before "
            f"it with {step} days after; pass a smaller --shocks"
        )
    dates = np.asarray(picked)
    if m is not None and m < len(dates):
        dates = dates[np.linspace(0, len(dates) - 1, m).round().astype(int)]
    return dates


def context_scenarios(
    cont: Continuer, options: Any, r: np.ndarray, dates: np.ndarray, horizon: int
) -> tuple[np.ndarray, float]:
    """[M, N, horizon] continuations of the real history up to each date, and the seconds taken."""
    o = options
    history = np.repeat(np.stack([r[t + 1 - cont.history : t + 1] for t in dates]), o.n, axis=0)
    windows = -(-horizon // cont.new_per_window) * -(-len(history) // o.batch_size)
    t0 = time.perf_counter()
    with tqdm(total=windows, unit="batch", desc="ours", disable=not o.progress) as bar:
        paths = extend(cont, history, horizon, o.seed, o.batch_size, lambda: bar.update(1))
    return paths.reshape(len(dates), o.n, horizon), time.perf_counter() - t0


def garch_scenarios(
    fit: GarchBaseline, r: np.ndarray, dates: np.ndarray, n: int, horizon: int, seed: int
) -> np.ndarray:
    """[M, N, horizon] GARCH-t simulations from the variance filtered up to each date."""
    next_var = fit.next_variances(r)
    return np.stack(
        [fit.continue_paths(next_var[t], n, horizon, seed=seed + i) for i, t in enumerate(dates)]
    )


def score(scenarios: np.ndarray, realized: np.ndarray, seed: int) -> dict[str, Any]:
    """PIT/KS, CRPS and VaR tests of [M, N] ensembles of one horizon's sums against [M]."""
    pit = pit_values(scenarios, realized, seed)
    ks, ks_p = pit_ks(pit)
    row: dict[str, Any] = {"ks": ks, "ks_p": ks_p, "crps": crps_ensemble(scenarios, realized)}
    row["mean"] = float(scenarios.mean())
    miss = np.sqrt(np.mean(np.square(realized - scenarios.mean(axis=1))))
    row["spread_ratio"] = float(miss / np.sqrt(np.mean(scenarios.var(axis=1))))
    row["pit"] = [round(float(u), 4) for u in pit]
    for alpha in VAR_LEVELS:
        hits = var_hits(scenarios, realized, alpha)
        row[f"var{alpha:g}"] = {
            "hits": int(hits.sum()),
            "rate": float(hits.mean()),
            "kupiec_p": kupiec_pof(hits, alpha)[1],
            "christoffersen_p": christoffersen_independence(hits)[1],
        }
    return row


def paired_difference(diff: np.ndarray) -> list[float]:
    """The mean of paired differences and its 95% normal interval (dates are non-overlapping)."""
    return [float(diff.mean()), *normal_interval(diff)]


def backtest(args: argparse.Namespace) -> dict[str, Any]:
    """Draw every forecaster's scenarios and score them per horizon."""
    gen = generate.load(args.checkpoint, device=args.device)
    run = gen.loaded["settings"]
    source, _ = data_source(run)
    prices = load_prices(source, run["COLUMN"])
    r = log_returns(prices.values)
    n_train = len(split_by_time(r, run["TRAIN_FRAC"])[0])
    evaluate.check_same_training_data(gen.step_dir, r[:n_train], source)
    options = generate.SampleOptions(
        n=args.n, seed=args.seed, batch_size=args.batch_size, progress=not args.no_progress
    )
    plan = gen.plan(options)
    longest = max(args.horizons)
    cont = gen.continuer(plan, args.known, args.overlap)
    if args.shocks is None:
        dates = forecast_dates(len(r), n_train, cont.history, longest, args.dates)
    else:
        dates = shock_dates(r, n_train, cont.history, longest, args.shocks, args.dates)
    print(
        f"{source}: {n_train} training returns, {len(r) - n_train} held out; {len(dates)} dates "
        f"{longest} or more days apart{_after_shocks(args.shocks)}, {args.n} scenarios each; "
        f"horizons {args.horizons}"
    )
    ours, seconds = context_scenarios(cont, options, r, dates, longest)
    unconditional = gen.generate(plan).returns[:, :longest]
    garch = garch_scenarios(GarchBaseline.fit(r[:n_train]), r, dates, args.n, longest, args.seed)
    centred = centre_on_drift(ours, plan.drift)
    own, other = (centred, ours) if args.scenario_mean == "drift" else (ours, centred)
    if args.scenario_mean == "drift":  # both of our rows centred: the context is what differs
        unconditional = centre_on_drift(unconditional, plan.drift)
    control = MEAN_CONTROL[args.scenario_mean]
    paths = {
        "ours": own,
        "ours, no context": np.broadcast_to(unconditional, ours.shape),
        "garch-t": garch,
        control: other,
    }
    if args.scenario_mean == "drift":  # GARCH-t given the same mean as ours, for fairness
        paths[GARCH_CENTRED] = centre_on_drift(garch, plan.drift)
    result: dict[str, Any] = {
        "source": source, "dates": len(dates), "n": args.n, "seconds_ours": seconds,
        "known": args.known, "overlap": args.overlap, "shocks": args.shocks,
        "scenario_mean": args.scenario_mean,
        "first": _label(prices, dates[0]), "last": _label(prices, dates[-1]), "horizons": {},
    }  # fmt: skip
    for h in args.horizons:
        realized = np.stack([r[t + 1 : t + 1 + h].sum() for t in dates])
        rows = {
            name: score(x[:, :, :h].sum(axis=2), realized, args.seed) for name, x in paths.items()
        }
        for row in rows.values():
            diff = row["crps"] - rows["garch-t"]["crps"]
            row["crps_minus_garch"] = paired_difference(diff)
            diff = row["crps"] - rows["ours, no context"]["crps"]
            row["crps_minus_no_context"] = paired_difference(diff)
        diff = rows["ours"]["crps"] - rows[control]["crps"]
        rows["ours"]["crps_minus_mean_control"] = paired_difference(diff)
        if GARCH_CENTRED in rows:
            diff = rows["ours"]["crps"] - rows[GARCH_CENTRED]["crps"]
            rows["ours"]["crps_minus_garch_centred"] = paired_difference(diff)
        for row in rows.values():
            row["crps_by_date"] = [round(float(c), 8) for c in row["crps"]]
            row["crps"] = float(row["crps"].mean())
        result["horizons"][str(h)] = rows
    return result


def _after_shocks(sd: float | None) -> str:
    """How the dates were chosen when --shocks chose them."""
    if sd is None:
        return ""
    return f" after shocks (|r| >= {sd:g} x the RMS of the {SHOCK_LOOKBACK} returns before)"


def _label(prices: Any, t: int) -> str:
    """The date of return t (the price after it), or its index when the data have no dates."""
    stamps = prices.timestamps
    return str(stamps[t + 1].date()) if stamps is not None else f"return {t}"


def plot_pit(path: Path, result: dict[str, Any]) -> None:
    """PIT histograms, a row per horizon and a column per forecaster (flat = calibrated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    horizons = list(result["horizons"])
    names = list(result["horizons"][horizons[0]])
    fig, axes = plt.subplots(
        len(horizons), len(names), figsize=(3.2 * len(names), 2.4 * len(horizons)),
        squeeze=False, sharex=True,
    )  # fmt: skip
    for i, h in enumerate(horizons):
        for j, name in enumerate(names):
            row, ax = result["horizons"][h][name], axes[i, j]
            ax.hist(row["pit"], bins=10, range=(0, 1), color="tab:blue", alpha=0.8)
            ax.axhline(result["dates"] / 10, color="k", lw=1, ls="--")
            ax.set_title(f"{name}, H={h}: KS p {row['ks_p']:.2f}", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("PIT of the realized H-day return")
    fig.suptitle(
        f"{result['source']}: {result['dates']} held-out dates, {result['n']} scenarios "
        f"(SCENARIO_MEAN {result['scenario_mean']})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(result: dict[str, Any]) -> str:
    """Markdown: one row per horizon and forecaster."""
    lines = [
        "| H | forecaster | PIT KS (p) | CRPS x 100 | CRPS - GARCH-t [95%] x 100 | "
        "CRPS - no context [95%] x 100 | "
        "1% VaR hits (Kupiec p, Christoffersen p) | 5% VaR hits (Kupiec p, Christoffersen p) | "
        "spread ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for h, rows in result["horizons"].items():
        for name, row in rows.items():
            diffs = [_interval(row["crps_minus_garch"]), _interval(row["crps_minus_no_context"])]
            var = [
                f"{row[f'var{a:g}']['hits']} ({row[f'var{a:g}']['kupiec_p']:.2f}, "
                f"{row[f'var{a:g}']['christoffersen_p']:.2f})"
                for a in VAR_LEVELS
            ]
            lines.append(
                f"| {h} | {name} | {row['ks']:.3f} ({row['ks_p']:.2f}) | {100 * row['crps']:.4f} | "
                f"{diffs[0]} | {diffs[1]} | {var[0]} | {var[1]} | {row['spread_ratio']:.2f} |"
            )
    return "\n".join(lines)


def _interval(d: list[float]) -> str:
    """A CRPS difference and its interval, x 100."""
    return f"{100 * d[0]:+.4f} [{100 * d[1]:+.4f}, {100 * d[2]:+.4f}]"


def verdicts(result: dict[str, Any]) -> list[str]:
    """The targets, per horizon, for ours.

    GARCH-t also uses the history, so whether it beats the no-context forecast is
    the positive control of the context target: where it does not either, the
    dates are too few to show a benefit of context at that horizon.
    """
    out = []
    for h, rows in result["horizons"].items():
        ours, garch_gain = rows["ours"], rows["garch-t"]["crps_minus_no_context"]
        rejected = [f"{a:.0%}" for a in VAR_LEVELS if ours[f"var{a:g}"]["kupiec_p"] < 0.05]
        vs_garch, vs_plain = ours["crps_minus_garch"], ours["crps_minus_no_context"]
        out.append(
            f"- H={h}: PIT KS p {ours['ks_p']:.2f} ({'not rejected' if ours['ks_p'] >= 0.05 else 'REJECTED'}); "
            f"Kupiec {'REJECTED at ' + ' and '.join(rejected) if rejected else 'not rejected at 1% and 5%'} VaR; "
            f"CRPS vs GARCH-t {100 * vs_garch[0]:+.4f} x 1e-2 "
            f"({'no worse' if vs_garch[1] <= 0 else 'WORSE'}: interval [{100 * vs_garch[1]:+.4f}, {100 * vs_garch[2]:+.4f}]); "
            f"vs ours without context {100 * vs_plain[0]:+.4f} x 1e-2 "
            f"({'better' if vs_plain[2] < 0 else 'NOT better'}: [{100 * vs_plain[1]:+.4f}, {100 * vs_plain[2]:+.4f}]; "
            f"GARCH-t {'better' if garch_gain[2] < 0 else 'not better either'}: {_interval(garch_gain)})"
            + _versus_centred_garch(ours.get("crps_minus_garch_centred"))
            + _direction(ours.get("crps_minus_mean_control"), result.get("scenario_mean"))
        )  # fmt: skip
    return out


def _versus_centred_garch(diff: list[float] | None) -> str:
    """Ours against GARCH-t given the same mean (the drift), when that row was scored."""
    if diff is None:
        return ""
    said = "no worse" if diff[1] <= 0 else "WORSE"
    return f"; vs GARCH-t centred on the drift too {100 * diff[0]:+.4f} x 1e-2 ({said}: {_interval(diff)})"


def _direction(diff: list[float] | None, mean: str | None) -> str:
    """What ours' scenario mean did to its CRPS, against the control with the other mean."""
    if diff is None or mean not in MEAN_CONTROL:
        return ""
    said = "cost" if diff[1] > 0 else "helped" if diff[2] < 0 else "neither helped nor cost"
    if mean == "drift":
        return f"; centring on the drift {said}: ours - model's mean {_interval(diff)}"
    return f"; the scenarios' own mean {said}: ours - drift mean {_interval(diff)}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", required=True, help="a context model's run or step folder")
    p.add_argument("--n", type=int, default=1000, help="scenarios per date [%(default)s]")
    p.add_argument("--dates", type=int, help="at most this many dates (default: all, H apart)")
    p.add_argument("--horizons", type=int, nargs="+", default=[1, 5, 20], help="[1 5 20]")
    p.add_argument(
        "--known", type=int, help="CONTEXT_KNOWN (default: the checkpoint's nearest L/2)"
    )
    p.add_argument(
        "--overlap",
        type=int,
        default=config_defaults()["JOIN_OVERLAP"],
        help="JOIN_OVERLAP: damped returns replaced by real ones (0: the start gains) "
        "[config.py: %(default)s]",
    )
    p.add_argument(
        "--scenario-mean",
        choices=tuple(MEAN_CONTROL),
        default=config_defaults()["SCENARIO_MEAN"],
        help="SCENARIO_MEAN of ours; the control row gets the other [config.py: %(default)s]",
    )
    p.add_argument(
        "--shocks",
        type=float,
        metavar="SD",
        help="only dates whose return is at least SD times the RMS of the "
        f"{SHOCK_LOOKBACK} before it (scenarios right after a shock)",
    )
    p.add_argument("--seed", type=int, default=0, help="[%(default)s]")
    p.add_argument("--batch-size", type=int, default=256, help="windows per batch [%(default)s]")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="[auto]")
    p.add_argument("--out", type=Path, default=Path("outputs/scenarios"), help="output folder")
    p.add_argument("--quick", action="store_true", help="12 dates, 64 scenarios (CPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def scenarios(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.n, args.dates = min(args.n, 64), min(args.dates or 12, 12)
    if args.n < 20 or min(args.horizons) < 1:
        raise ScalodiffError("--n must be at least 20 (for the 5% VaR) and --horizons at least 1")
    if args.shocks is not None and args.shocks <= 0:
        raise ScalodiffError(f"--shocks must be a positive number of RMS, not {args.shocks:g}")
    args.out.mkdir(parents=True, exist_ok=True)
    result = backtest(args)
    text = table(result)
    notes = verdicts(result)
    header = (
        f"{result['source']}: {result['dates']} dates{_after_shocks(result['shocks'])} from "
        f"{result['first']} to {result['last']}, "
        f"{result['n']} scenarios each (JOIN_OVERLAP {result['overlap']}, SCENARIO_MEAN "
        f"{result['scenario_mean']}); ours took "
        f"{result['seconds_ours']:.1f} s"
    )
    (args.out / "scenarios.json").write_text(json.dumps(result, indent=1))
    plot_pit(args.out / "pit.png", result)
    (args.out / "scenarios.md").write_text("\n\n".join([header, text, "\n".join(notes)]) + "\n")
    print(f"\n{header}\n\n{text}\n\n" + "\n".join(notes) + f"\n\nwrote {args.out}/scenarios.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_script(scenarios, argv, "check --checkpoint (a context model) and its data")


if __name__ == "__main__":
    sys.exit(main())
