"""Metric tables (terminal and HTML) and the self-contained ``report.html``.

Both tables are built from the ``metrics.json`` dict that ``evaluate.py``
writes, so what the terminal shows, what the report shows and what the file
holds cannot disagree. Figures come from :mod:`evaluation.figures` as base64
PNGs embedded in the page: the report is one file that opens anywhere.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (label, key, kind). kind "stat": each side's statistic (key_real / key_synth);
# "dist": a distance, 0 is a perfect match; "score": mean over seeds, 0 is best;
# "acc": a classifier's accuracy, 0.5 is best; "mem": a field of the memorization result.
ROWS: list[tuple[str, str, str]] = [
    ("std of r", "std", "stat"),
    ("std ratio synth/real (1)", "std_ratio", "dist"),
    ("skewness", "skew", "stat"),
    ("excess kurtosis", "kurtosis", "stat"),
    ("excess kurtosis of r / window RMS", "kurtosis_std", "stat"),
    ("Hill tail index, top 5%", "hill", "stat"),
    ("lag-1 ACF of |r|", "abs_acf1", "stat"),
    ("Hurst (DFA) of |r|, mean", "hurst", "stat"),
    ("W1 1-step / std", "w1_h1", "dist"),
    ("W1 5-step / std", "w1_h5", "dist"),
    ("W1 20-step / std", "w1_h20", "dist"),
    ("W1 window sum / std", "w1_window", "dist"),
    ("ACF r, L2 lags 1-20", "acf_r_dist", "dist"),
    ("ACF |r|, L2", "acf_abs_dist", "dist"),
    ("ACF |r| in windows, L2 lags 1-20", "acf_abs20_dist", "dist"),
    ("ACF r^2, L2", "acf_sq_dist", "dist"),
    ("leverage, L2 lags 1-20", "leverage_dist", "dist"),
    ("Hurst of |r|, W1", "hurst_dist", "dist"),
    ("log-periodogram r, RMS", "spectral_r_dist", "dist"),
    ("log-periodogram |r|, RMS", "spectral_abs_dist", "dist"),
    ("agg. kurtosis curve, L2", "agg_kurtosis_dist", "dist"),
    ("features classifier accuracy (0.5)", "features_acc", "acc"),
    ("CNN classifier accuracy (0.5)", "cnn_acc", "acc"),
    ("GRU discriminative |acc-0.5|", "discriminative", "score"),
    ("predictive MAE |r| (TSTR)", "predictive_mae", "score"),
    ("memorization ratio (<1 copies)", "ratio", "mem"),
    ("memorization copy fraction", "copy_frac", "mem"),
]

SPLITS = {
    "in_sample": "In-sample: against the real training windows",
    "out_of_sample": "Out-of-sample: against the held-out real windows",
}


def _num(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dict):
        v = v["mean"]
    v = float(v)
    if v != v:  # NaN
        return "nan"
    if v == 0 or 1e-3 <= abs(v) < 1e4:
        return f"{v:.4g}"
    return f"{v:.3e}"


def _short(v: float) -> str:
    """A bound of an interval: three significant digits are plenty."""
    return "nan" if v != v else f"{v:.3g}"


def with_interval(v: Any, ci: list[float] | None) -> str:
    """``0.1234 [0.11, 0.14]``: a value and its 95% interval (the value alone without one)."""
    text = _num(v)
    if not text or not ci or any(c is None or c != c for c in ci):
        return text
    return f"{text} [{_short(ci[0])}, {_short(ci[1])}]"


def metric_interval(metrics: dict | None, key: str, kind: str) -> list[float] | None:
    """The 95% interval of the number shown for ``key`` (a statistic's synthetic side)."""
    if not metrics:
        return None
    v = metrics.get(key)
    if isinstance(v, dict):
        return v.get("ci")
    return (metrics.get("ci") or {}).get(f"{key}_synth" if kind == "stat" else key)


def table_rows(results: dict, split: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows (all strings) of the metric table for ``split``.

    Columns: the metric, the real value (training windows in-sample, held-out
    windows out-of-sample), in-sample also the held-out real windows treated
    as a generator (how far new real data is from the training data: a floor
    for every distance), then one column per generator (controls marked), each
    value with its 95% interval; the first row gives the number of paths.
    """
    gens: dict[str, dict] = results["generators"]
    ref = results.get("reference") or {}
    held = ref.get("heldout_vs_train") if split == "in_sample" else None
    trtr = (ref.get("predictive_real_trained") or {}).get(split)
    cols: list[tuple[str, dict | None, dict | None]] = []
    n_paths = []
    if held is not None:
        cols.append(("real held-out", held, None))
        n_paths.append("")
    for name, g in gens.items():
        cols.append((f"{name} (control)" if g.get("control") else name, g.get(split),
                     g.get("memorization")))  # fmt: skip
        n_paths.append(str(g.get("n_paths", "")))
    header = ["metric", "real", *[c[0] for c in cols]]
    first = next((c[1] for c in cols if c[1]), None) or {}
    rows = [["paths", "", *n_paths]]
    for label, key, kind in ROWS:
        if kind == "mem":
            if split != "in_sample":
                continue
            cells = [_num(mem.get(key)) if mem else "" for _, _, mem in cols]
            rows.append([label, "", *cells])
            continue
        if kind == "stat":
            real = _num(first.get(f"{key}_real"))
            cells = [
                with_interval(m.get(f"{key}_synth"), metric_interval(m, key, kind)) if m else ""
                for _, m, _ in cols
            ]
        else:
            real = with_interval(trtr, (trtr or {}).get("ci")) if key == "predictive_mae" else ""
            cells = [
                with_interval(m.get(key), metric_interval(m, key, kind)) if m else ""
                for _, m, _ in cols
            ]
        if any(cells):
            rows.append([label, real, *cells])
    return header, rows


def format_table(results: dict, split: str) -> str:
    """The metric table for ``split`` as aligned plain text."""
    header, rows = table_rows(results, split)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [SPLITS[split]]
    for r in [header, *rows]:
        lines.append(
            "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))
        )
    return "\n".join(lines)


def html_table(results: dict, split: str) -> str:
    header, rows = table_rows(results, split)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<h3>{html.escape(SPLITS[split])}</h3><table><tr>{head}</tr>{body}</table>"


_CSS = """
body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin-bottom:1em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
th{background:#f0f0f0} img{max-width:100%} .note{color:#a33}
dt{font-weight:bold} dd{margin-bottom:.4em}
"""

_LEGEND = """
<dl>
<dt>Statistics</dt><dd>std, skewness and excess kurtosis pool every return; the
Hill index is the tail exponent of |r| from its top 5% (smaller = heavier tail);
lag-1 ACF of |r| and the Hurst exponent (DFA) of |r| are computed inside each
window and averaged.</dd>
<dt>Distances (0 = identical)</dt><dd>W1: Wasserstein-1 distance of returns summed
over 1, 5, 20 steps and the whole window, in units of the real std. ACF / leverage /
aggregational kurtosis: L2 distance between mean curves. Periodograms: RMS distance of
mean log periodograms of returns scaled by their own std (shape, not level).</dd>
<dt>Intervals</dt><dd>Each value of a generator comes with a 95% interval: a
percentile bootstrap over its paths for statistics and distances (the real data held
fixed), a t-interval over time-blocked folds for the features classifier, over seeds for
the CNN and the GRU scores. Controls (untrained model, the level draw alone, shuffled real
windows) are the floor a trained model must clear.</dd>
<dt>Classifiers</dt><dd>Features: gradient-boosted trees on per-window stylized facts
(ACF of r and |r|, skewness and kurtosis, Hill index, leverage, realized volatility,
drawdown, share beyond 3 RMS, Ljung-Box of |r|), balanced accuracy on time-blocked folds.
CNN: a small 1-D convolutional network on windows divided by their own RMS (the level
cannot decide it). 0.5: indistinguishable from real windows.</dd>
<dt>Scores</dt><dd>Discriminative: a small GRU classifier tells real from generated
windows (80/20 split), |accuracy - 0.5|, mean ± std over seeds; 0 is ideal. In-sample,
the real windows are split in time blocks with a purge, so that no test window shares a
return with a training window (a random split of overlapping windows lets the classifier
recognise real windows it has nearly seen). Out-of-sample, it is trained on training-period
windows and tested on held-out windows.
Predictive: a GRU trained on generated windows forecasts |r| one step ahead on real
windows (MAE in real std units; the real column is the same model trained on real
training windows). Memorization: median distance of generated windows to their nearest
training window over the same for held-out real windows; well below 1 means copying
(a generator with much lower volatility also scores low). Copy fraction: share of
generated windows nearer to a training window than 99% of held-out windows are
(about 0.01 without copying).</dd>
</dl>
"""


def write_report(
    path: str | Path,
    results: dict,
    figures: list[tuple[str, Callable[[], str]]],
    title: str = "scalodiff evaluation",
) -> tuple[Path, list[str]]:
    """Write a self-contained HTML report: settings, both metric tables, then each figure.

    Parameters
    ----------
    path : str or Path
        Output ``.html`` file.
    results : dict
        What ``evaluate.py`` writes to ``metrics.json``.
    figures : list of (caption, function)
        Each function returns a base64 PNG. One that raises is replaced by a
        note naming the error, so an optional figure never costs the report.

    Returns
    -------
    path, notes
        The file written and one line per skipped figure.
    """
    notes: list[str] = []
    parts = [f"<h1>{html.escape(title)}</h1>"]
    settings = results.get("settings", {})
    items = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in settings.items()
    )
    parts.append(f"<h2>Setup</h2><table>{items}</table>")
    for note in results.get("notes", []):
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    parts.append("<h2>Metrics</h2>")
    for split in SPLITS:
        if any(g.get(split) for g in results["generators"].values()):
            parts.append(html_table(results, split))
    parts.append(_LEGEND)
    parts.append("<h2>Figures</h2>")
    for caption, make in figures:
        parts.append(f"<h3>{html.escape(caption)}</h3>")
        try:
            png = make()
        except Exception as exc:  # optional figure: say why it is missing, keep the report
            msg = f"figure {caption!r} skipped: {type(exc).__name__}: {exc}"
            notes.append(msg)
            parts.append(f'<p class="note">{html.escape(msg)}</p>')
            continue
        parts.append(f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{png}">')
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>"
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out, notes
