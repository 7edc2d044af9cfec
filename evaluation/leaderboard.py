"""One comparison table of several generators, built from evaluate.py's ``metrics.json``.

For every metric and split this module says how far each generator is from
the real data (its *error*, :func:`evaluation.intervals.metric_error`), with
the 95% interval of that error, and whether the metric *separates*: whether
the trained model's error interval lies below that of every negative control
(:func:`evaluation.intervals.separates`). A metric on which an untrained
model, the level draw alone or shuffled real windows do as well as the
trained model cannot rank generators, so the ranking uses separating metrics
only and lists the others as not separating at this sample size. Controls are
shown, never ranked. The best generator of a metric is marked only where its
error interval lies below that of the second best: overlapping intervals are
no win.

Memorization is shown but not ranked: it is a check for copying (a ratio well
below 1), not a scale on which further from copying is better. Nor is the std
of r, which would count the std ratio's ranking twice.
"""

from __future__ import annotations

import math
from typing import Any

from evaluation.intervals import metric_error, separates
from evaluation.report import ROWS, SPLITS, metric_interval, with_interval
from evaluation.report import _num as fmt  # the report's number format, so the two agree

REAL, HELD_OUT = "real", "real held-out"
NOT_SEPARATING = "does not separate at this sample size"


def _value(metrics: dict | None, key: str, kind: str, side: str = "synth") -> float | None:
    """The number shown for ``key``: a statistic's ``side``, a distance, or a score's mean."""
    if not metrics:
        return None
    v = metrics.get(f"{key}_{side}") if kind == "stat" else metrics.get(key)
    if isinstance(v, dict):  # a score over seeds or folds: mean and interval
        v = v.get("mean")
    return None if v is None else float(v)


def _error_interval(metrics: dict | None, key: str) -> list[float] | None:
    if not metrics:
        return None
    v = metrics.get(key)
    if isinstance(v, dict):
        return v.get("error_ci")
    return (metrics.get("error_ci") or {}).get(key)


def build(results: dict[str, Any], ours: str) -> dict[str, Any]:
    """Rows, intervals, errors, separation, ranks and the clear best per metric, for each split.

    Parameters
    ----------
    results : dict
        What ``evaluate.py`` writes to ``metrics.json``.
    ours : str
        The trained model whose separation from the controls decides which
        metrics rank, and whose wins and losses are summarized.

    Returns
    -------
    dict
        ``{"ours", "generators", "controls", "metrics": [{key, label, kind, ranked}],
        "splits": {split: {"rows", "intervals", "errors", "error_intervals", "separates",
        "ranked_on", "not_separating", "ranks", "best", "clear_best", "mean_rank", "ours"}}}``.
    """
    gens: dict[str, dict] = results["generators"]
    if ours not in gens:
        raise ValueError(f"{ours!r} is not among the generators {list(gens)}")
    controls = [n for n, g in gens.items() if g.get("control")]
    ranked_gens = [n for n in gens if n not in controls]
    ref = results.get("reference") or {}
    metrics = [
        {"key": key, "label": label, "kind": kind, "ranked": kind != "mem" and key != "std"}
        for label, key, kind in ROWS
    ]
    out: dict[str, Any] = {"ours": ours, "generators": list(gens), "controls": controls,
                           "n_paths": {n: g.get("n_paths") for n, g in gens.items()},
                           "metrics": metrics, "splits": {}}  # fmt: skip
    for split in SPLITS:
        if any(g.get(split) for g in gens.values()):
            out["splits"][split] = _split(gens, ref, split, metrics, ours, controls, ranked_gens)
    return out


def _split(gens, ref, split, metrics, ours, controls, ranked_gens) -> dict[str, Any]:
    first = next(g[split] for g in gens.values() if g.get(split))
    real_trained = (ref.get("predictive_real_trained") or {}).get(split)
    real_row: dict[str, float | None] = {}
    for m in metrics:
        key, kind = m["key"], m["kind"]
        if kind == "stat":
            real_row[key] = _value(first, key, kind, side="real")
        elif key == "predictive_mae" and real_trained:
            real_row[key] = float(real_trained["mean"])
    rows: dict[str, dict[str, float | None]] = {REAL: real_row}
    intervals: dict[str, dict[str, list[float] | None]] = {}
    held = ref.get("heldout_vs_train") if split == "in_sample" else None
    if held:
        rows[HELD_OUT] = {m["key"]: _value(held, m["key"], m["kind"]) for m in metrics}
        intervals[HELD_OUT] = {
            m["key"]: metric_interval(held, m["key"], m["kind"]) for m in metrics
        }
    errors: dict[str, dict[str, float]] = {}
    error_cis: dict[str, dict[str, list[float] | None]] = {}
    for name, g in gens.items():
        row, iv = {}, {}
        for m in metrics:
            source = g.get("memorization") if m["kind"] == "mem" else g.get(split)
            if m["kind"] == "mem" and split != "in_sample":
                source = None  # one number for both splits: shown once
            row[m["key"]] = _value(source, m["key"], m["kind"])
            iv[m["key"]] = (
                None if m["kind"] == "mem" else metric_interval(source, m["key"], m["kind"])
            )
        rows[name], intervals[name] = row, iv
        ranked = [m for m in metrics if m["ranked"]]
        errors[name] = {m["key"]: metric_error(m["key"], m["kind"], row[m["key"]],
                                               real_row.get(m["key"])) for m in ranked}  # fmt: skip
        error_cis[name] = {m["key"]: _error_interval(g.get(split), m["key"]) for m in ranked}
    keys = [m["key"] for m in metrics if m["ranked"]]
    sep = {
        k: separates(error_cis[ours][k], [error_cis[c][k] for c in controls]) if controls else None
        for k in keys
    }
    if controls:
        ranked_on = [k for k in keys if sep[k]]
        not_separating = [k for k in keys if not sep[k] and math.isfinite(errors[ours][k])]
    else:  # nothing to check against: every metric ranks, and the table says so
        ranked_on, not_separating = keys, []
    ranks, best, clear = _rank({n: errors[n] for n in ranked_gens}, error_cis, ranked_on)
    mean_rank = {
        n: sum(r[n] for r in ranks.values()) / len(ranks) if ranks else math.nan
        for n in ranked_gens
    }
    return {
        "rows": rows, "intervals": intervals, "errors": errors, "error_intervals": error_cis,
        "separates": sep, "ranked_on": ranked_on, "not_separating": not_separating,
        "ranks": ranks, "best": best, "clear_best": clear, "mean_rank": mean_rank,
        "ours": _wins_and_losses(ours, ranks, best, clear, len(ranked_gens)),
    }  # fmt: skip


def _rank(errors: dict[str, dict[str, float]], error_cis: dict, keys: list[str]):
    """Rank 1 = smallest error per metric; unknown errors rank last; metrics nobody has are dropped.

    ``clear[key]`` is True when the best one's error interval lies below the second's.
    """
    names = list(errors)
    ranks: dict[str, dict[str, int]] = {}
    best: dict[str, str] = {}
    clear: dict[str, bool] = {}
    for key in keys:
        known = [n for n in names if math.isfinite(errors[n][key])]
        if not known:
            continue
        order = sorted(known, key=lambda n: errors[n][key]) + [n for n in names if n not in known]
        ranks[key] = {n: i + 1 for i, n in enumerate(order)}
        best[key] = order[0]
        if len(known) == 1:
            clear[key] = len(names) > 1
        else:
            a, b = error_cis[order[0]].get(key), error_cis[order[1]].get(key)
            clear[key] = bool(separates(a, [b]))
    return ranks, best, clear


def _wins_and_losses(ours: str, ranks: dict, best: dict, clear: dict, n: int) -> dict[str, Any]:
    """Metrics where ``ours`` is clearly best, where it ranks last, and who is best where it is not."""
    return {
        "wins": [k for k in ranks if best[k] == ours and clear.get(k)],
        "losses": [k for k in ranks if ranks[k][ours] == n and n > 1],
        "ranks": {k: ranks[k][ours] for k in ranks},
        "behind": {k: best[k] for k in ranks if ranks[k][ours] > 1},
    }


def _cell(text: str) -> str:
    """Escape the pipes of labels such as "ACF |r|", which would split a markdown cell."""
    return text.replace("|", "\\|")


def _sep_text(v: bool | None) -> str:
    return "yes" if v else "no" if v is False else "?"


def to_markdown(table: dict[str, Any], header: str = "") -> str:
    """The comparison as markdown: per split, a row per metric and a column per generator.

    Each cell is the value and its 95% interval; controls' columns are marked;
    the clear best of a ranked metric is bold; the last column says whether
    the metric separates the trained model from every control.
    """
    labels = {m["key"]: m["label"] for m in table["metrics"]}
    ours, controls = table["ours"], set(table["controls"])
    lines = [header] if header else []
    for split, part in table["splits"].items():
        rows, ivs = part["rows"], part["intervals"]
        keys = [m["key"] for m in table["metrics"]
                if any(r.get(m["key"]) is not None for r in rows.values())]  # fmt: skip
        names = list(rows)
        head = [f"{n} (control)" if n in controls else n for n in names]
        lines += [f"## {SPLITS[split]}", ""]
        lines.append("| metric | " + " | ".join(map(_cell, head)) + " | separates |")
        lines.append("|---" * (len(names) + 2) + "|")
        paths = [str(table["n_paths"].get(n) or "") for n in names]
        lines.append("| paths | " + " | ".join(paths) + " | |")
        for k in keys:
            cells = []
            for n in names:
                text = with_interval(rows[n].get(k), (ivs.get(n) or {}).get(k))
                win = part["best"].get(k) == n and part["clear_best"].get(k) and text
                cells.append(f"**{text}**" if win else text)
            sep = _sep_text(part["separates"].get(k)) if k in part["separates"] else ""
            lines.append(f"| {_cell(labels[k])} | " + " | ".join(cells) + f" | {sep} |")
        lines += ["", *_summary_lines(part, labels, ours, controls)]
    lines.append(
        "Each value with its 95% interval (bootstrap over paths; over folds or seeds for "
        "classifiers). Separates: the trained model's error interval lies below every control's. "
        "Bold: the best generator on a separating metric, where its error interval lies below the "
        "second best's. Controls and the real rows are references, not ranked; memorization is "
        "not ranked."
    )
    return "\n".join(lines) + "\n"


def _summary_lines(part: dict, labels: dict, ours: str, controls: set) -> list[str]:
    ranked = ", ".join(labels[k] for k in part["ranked_on"]) or "none"
    lines = [f"- ranked on (metrics that separate {ours} from every control): {ranked}"
             if controls else f"- no controls in this comparison: ranked on every metric: {ranked}"]  # fmt: skip
    if part["not_separating"]:
        rest = ", ".join(labels[k] for k in part["not_separating"])
        lines.append(f"- {NOT_SEPARATING}: {rest}")
    order = sorted(part["mean_rank"], key=lambda n: part["mean_rank"][n])
    means = ", ".join(f"{n} {fmt(part['mean_rank'][n])}" for n in order)
    lines.append(
        f"- mean rank: {means}" if part["ranks"] else "- mean rank: none (no metric ranks)"
    )
    summary = part["ours"]
    wins = ", ".join(labels[k] for k in summary["wins"]) or "none"
    losses = ", ".join(labels[k] for k in summary["losses"]) or "none"
    behind = "; ".join(f"{labels[k]} ({g})" for k, g in summary["behind"].items()) or "none"
    return [*lines, f"- {ours} clearly best on: {wins}", f"- {ours} last on: {losses}",
            f"- {ours} behind (best there): {behind}", ""]  # fmt: skip
