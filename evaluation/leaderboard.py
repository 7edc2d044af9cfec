"""One comparison table of several generators, a row each, built from evaluate.py's ``metrics.json``.

``evaluate.py`` prints one column per generator and one row per metric; a
comparison of generators reads better the other way round, with each metric
ranked. For every metric and split this module says how far each generator
is from the real data (its *error*), ranks the generators by it, and marks
the best. The error is:

- for a statistic (std, skewness, kurtosis, Hill index, lag-1 ACF of |r|,
  Hurst): ``|synthetic - real|``;
- for the std ratio: ``|log ratio|`` (half and double the volatility are
  equally wrong);
- for a distance or a score (discriminative, predictive MAE): the value
  itself, 0 being best.

Memorization is shown but not ranked: it is a check for copying (a ratio well
below 1), not a scale on which further from copying is better. Nor is the std
of r, which would count the std ratio's ranking twice.
"""

from __future__ import annotations

import math
from typing import Any

from evaluation.report import ROWS, SPLITS
from evaluation.report import _num as fmt  # the report's number format, so the two agree

REAL, HELD_OUT = "real", "real held-out"


def _value(metrics: dict | None, key: str, kind: str, side: str = "synth") -> float | None:
    """The number shown for ``key``: a statistic's ``side``, a distance, or a score's mean."""
    if not metrics:
        return None
    v = metrics.get(f"{key}_{side}") if kind == "stat" else metrics.get(key)
    if isinstance(v, dict):  # a score over seeds: mean and std
        v = v.get("mean")
    return None if v is None else float(v)


def _error(value: float | None, real: float | None, key: str, kind: str) -> float:
    """Distance from the real data on this metric (smaller is better); NaN when unknown."""
    if value is None or not math.isfinite(value):
        return math.nan
    if kind == "stat":
        return abs(value - real) if real is not None and math.isfinite(real) else math.nan
    if key == "std_ratio":
        return abs(math.log(value)) if value > 0 else math.inf
    return value


def build(results: dict[str, Any], ours: str) -> dict[str, Any]:
    """Rows, errors, ranks and the best generator per metric, for each split of ``results``.

    Parameters
    ----------
    results : dict
        What ``evaluate.py`` writes to ``metrics.json``.
    ours : str
        The generator whose wins and losses are summarized.

    Returns
    -------
    dict
        ``{"ours", "generators", "metrics": [{key, label, kind, ranked}],
        "splits": {split: {"rows", "errors", "ranks", "best", "mean_rank", "ours"}}}``;
        ``rows`` has one entry per generator plus the real references.
    """
    gens: dict[str, dict] = results["generators"]
    if ours not in gens:
        raise ValueError(f"{ours!r} is not among the generators {list(gens)}")
    ref = results.get("reference") or {}
    metrics = [
        {"key": key, "label": label, "kind": kind, "ranked": kind != "mem" and key != "std"}
        for label, key, kind in ROWS
    ]
    out: dict[str, Any] = {"ours": ours, "generators": list(gens), "metrics": metrics, "splits": {}}
    for split in SPLITS:
        if not any(g.get(split) for g in gens.values()):
            continue
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
        held = ref.get("heldout_vs_train") if split == "in_sample" else None
        if held:
            rows[HELD_OUT] = {m["key"]: _value(held, m["key"], m["kind"]) for m in metrics}
        errors: dict[str, dict[str, float]] = {}
        for name, g in gens.items():
            row = {}
            for m in metrics:
                source = g.get("memorization") if m["kind"] == "mem" else g.get(split)
                if m["kind"] == "mem" and split != "in_sample":
                    source = None  # one number for both splits: shown once
                row[m["key"]] = _value(source, m["key"], m["kind"])
            rows[name] = row
            errors[name] = {
                m["key"]: _error(row[m["key"]], real_row.get(m["key"]), m["key"], m["kind"])
                for m in metrics
                if m["ranked"]
            }
        ranks, best = _rank(errors)
        mean_rank = {
            n: sum(r[n] for r in ranks.values()) / len(ranks) if ranks else math.nan for n in gens
        }
        out["splits"][split] = {
            "rows": rows,
            "errors": errors,
            "ranks": ranks,
            "best": best,
            "mean_rank": mean_rank,
            "ours": _wins_and_losses(ours, ranks, best, len(gens)),
        }
    return out


def _rank(errors: dict[str, dict[str, float]]) -> tuple[dict, dict]:
    """Rank 1 = smallest error per metric; unknown errors rank last; metrics nobody has are dropped."""
    names = list(errors)
    keys = list(next(iter(errors.values()))) if errors else []
    ranks: dict[str, dict[str, int]] = {}
    best: dict[str, str] = {}
    for key in keys:
        known = [n for n in names if math.isfinite(errors[n][key])]
        if not known:
            continue
        order = sorted(known, key=lambda n: errors[n][key]) + [n for n in names if n not in known]
        ranks[key] = {n: i + 1 for i, n in enumerate(order)}
        best[key] = order[0]
    return ranks, best


def _wins_and_losses(ours: str, ranks: dict, best: dict, n: int) -> dict[str, Any]:
    """Metrics where ``ours`` ranks first, and where it ranks last (with who is best there)."""
    return {
        "wins": [k for k in ranks if ranks[k][ours] == 1],
        "losses": [k for k in ranks if ranks[k][ours] == n and n > 1],
        "ranks": {k: ranks[k][ours] for k in ranks},
        "behind": {k: best[k] for k in ranks if ranks[k][ours] > 1},
    }


def _cell(text: str) -> str:
    """Escape the pipes of labels such as "ACF |r|", which would split a markdown cell."""
    return text.replace("|", "\\|")


def to_markdown(table: dict[str, Any], header: str = "") -> str:
    """The comparison as markdown: per split a table, a row per generator, best values in bold."""
    labels = {m["key"]: m["label"] for m in table["metrics"]}
    ours, n = table["ours"], len(table["generators"])
    lines = [header] if header else []
    for split, part in table["splits"].items():
        rows, best = part["rows"], part["best"]
        keys = [
            m["key"]
            for m in table["metrics"]
            if any(r.get(m["key"]) is not None for r in rows.values())
        ]
        lines += [f"## {SPLITS[split]}", ""]
        lines.append(
            "| generator | " + " | ".join(_cell(labels[k]) for k in keys) + " | mean rank |"
        )
        lines.append("|---" * (len(keys) + 2) + "|")
        for name, row in rows.items():
            cells = []
            for k in keys:
                text = fmt(row.get(k))
                cells.append(f"**{text}**" if best.get(k) == name and text else text)
            rank = part["mean_rank"].get(name)
            cells.append(f"{rank:.2f}" if rank is not None and math.isfinite(rank) else "")
            lines.append(f"| {_cell(name)} | " + " | ".join(cells) + " |")
        summary = part["ours"]
        lines += [
            "",
            f"{ours}, {split.replace('_', '-')}: mean rank {fmt(part['mean_rank'][ours])} of {n}.",
        ]
        wins = ", ".join(labels[k] for k in summary["wins"]) or "none"
        losses = ", ".join(labels[k] for k in summary["losses"]) or "none"
        lines += [f"- best of all on: {wins}", f"- last on: {losses}"]
        behind = "; ".join(f"{labels[k]} ({g})" for k, g in summary["behind"].items())
        lines += [f"- behind (best there): {behind or 'none'}", ""]
    lines.append(
        "Bold: the best generator on that metric (closest statistic to the real one, "
        "|log std ratio| nearest 0, smallest distance or score). Memorization is not ranked. "
        "The real rows are references, not ranked."
    )
    return "\n".join(lines) + "\n"
