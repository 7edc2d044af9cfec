"""benchmarks/compare_generators.py end to end on tiny settings, and the ranking it reports."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from benchmarks import compare_generators as cg
from benchmarks.screenshot_report import find_chromium
from evaluation import leaderboard
from evaluation.baselines import GarchBaseline
from utils.paths_io import read_paths

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = ["scalodiff", "gaussian", "bootstrap", "garch", "diffusion1d"]
CONTROLS = ["untrained", "levels-only", "shuffled"]
L = 32  # the tiny fixture's WINDOW_SIZE


@pytest.fixture
def price_csv(tmp_path):
    r = GarchBaseline(mu=0.0, omega=2e-6, alpha=0.1, beta=0.85, nu=5.0).sample(1, 1500, seed=0)
    prices = 100 * np.exp(np.r_[0.0, np.cumsum(r.ravel())])
    path = tmp_path / "prices.csv"
    dates = pd.bdate_range("2001-01-01", periods=prices.size)
    pd.DataFrame({"Date": dates, "Close": prices}).to_csv(path, index=False)
    return path


def test_compare_trains_fits_evaluates_and_tabulates(tmp_path, tiny, price_csv, capsys):
    out = tmp_path / "cmp"
    # fp32: bf16 autocast on two contended cores can take seconds per tiny step.
    argv = [*tiny(MAX_STEPS=3), "--data", str(price_csv), "--out", str(out), "--n", "40",
            "--seeds", "0", "1", "--max-windows", "40", "--bootstrap", "20", "--no-progress"]  # fmt: skip
    assert cg.main(argv) == 0
    printed = capsys.readouterr().out
    assert all(f"[{k}/6]" in printed for k in range(1, 7))  # every stage announced
    comp = json.loads((out / "comparison.json").read_text())  # strict JSON
    assert list(comp["generators"]) == NAMES and comp["ours"] == "scalodiff"
    assert comp["controls"] == CONTROLS
    # The same stopping rule for both trained models, the same paths for all.
    trained = comp["generators"]
    assert trained["scalodiff"]["train_steps"] == 3 == trained["diffusion1d"]["train_steps"]
    for name in NAMES:
        assert read_paths(comp["files"][name]).shape == (40, L), name
    assert set(comp["splits"]) == {"in_sample", "out_of_sample"}
    part = comp["splits"]["in_sample"]
    rows = part["rows"]
    assert list(rows) == ["real", "real held-out", *NAMES, *CONTROLS]
    for n in NAMES + CONTROLS:
        assert rows[n]["discriminative"] is not None and rows[n]["ratio"] is not None, n
        assert 0 <= rows[n]["features_acc"] <= 1 and rows[n]["cnn_acc"] is not None, n
        lo, hi = part["intervals"][n]["acf_abs20_dist"]  # every value with its interval
        assert lo <= hi, n
    assert set(part["separates"]) >= {"features_acc", "acf_abs20_dist", "kurtosis"}
    assert set(part["ranked_on"]) | set(part["not_separating"]) <= set(part["separates"])
    assert not set(CONTROLS) & set(part["mean_rank"])  # controls are never ranked
    # The table agrees with evaluate.py's metrics.json.
    metrics = json.loads((out / "metrics.json").read_text())
    ins = {n: metrics["generators"][n]["in_sample"] for n in NAMES}
    real_k = ins["gaussian"]["kurtosis_real"]
    for n in NAMES:
        assert part["errors"][n]["kurtosis"] == pytest.approx(
            abs(ins[n]["kurtosis_synth"] - real_k)
        )
    assert rows["garch"]["acf_abs_dist"] == pytest.approx(ins["garch"]["acf_abs_dist"])
    assert metrics["generators"]["shuffled"]["control"] is True
    md = (out / "comparison.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| metric |"))
    assert all(n in header for n in NAMES) and "shuffled (control)" in header
    assert header.endswith("| separates |") and "| paths | " in md
    assert "ranked on" in md and "features classifier accuracy" in md
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 6


def test_rerun_reuses_the_model_and_checks_the_split(tmp_path, tiny, price_csv, capsys):
    out = tmp_path / "cmp"
    argv = [*tiny(MAX_STEPS=2), "--data", str(price_csv), "--out", str(out), "--n", "20",
            "--fast", "--no-progress", "--bootstrap", "0", "--baselines", "gaussian"]  # fmt: skip
    assert cg.main(argv) == 0
    capsys.readouterr()
    # The same --out again would train into the kept run: refused, pointing at --checkpoint.
    assert cg.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--checkpoint" in err[0]
    reuse = [*argv, "--checkpoint", str(out / "checkpoints" / "scalodiff")]
    shoot = find_chromium() is not None  # the screenshot stage runs where a browser is installed
    assert cg.main([*reuse, "--screenshot"] if shoot else reuse) == 0
    assert "using the trained model" in capsys.readouterr().out
    if shoot:
        shot = json.loads((out / "comparison.json").read_text())["settings"]["screenshot"]
        assert shot["rendered"] == shot["embedded"] == 6 and (out / "report.png").is_file()
    # A model trained on another split is not compared with baselines fitted on this one.
    assert cg.main([*reuse, "--set", "TRAIN_FRAC=0.7"]) == 2
    assert "trained on other returns" in capsys.readouterr().err


def test_unknown_baseline_is_refused(capsys):
    assert cg.main(["--baselines", "garch", "gan"]) == 2
    assert "--baselines gan" in capsys.readouterr().err


def _facts(k: float, ratio: float, dist: float) -> dict:
    return {"kurtosis_real": 5.0, "kurtosis_synth": k, "std_ratio": ratio, "acf_abs_dist": dist}


def test_ranking_directions():
    results = {
        "generators": {
            "ours": {"in_sample": _facts(4.0, 0.5, 0.3), "memorization": {"ratio": 0.1}},
            "a": {"in_sample": _facts(7.0, 1.9, 0.1), "memorization": {"ratio": 1.0}},
            "b": {"in_sample": _facts(5.5, 1.1, math.nan), "memorization": {"ratio": 1.0}},
        }
    }
    table = leaderboard.build(results, "ours")
    part = table["splits"]["in_sample"]
    assert part["best"] == {"std_ratio": "b", "kurtosis": "b", "acf_abs_dist": "a"}
    # Closest statistic wins; |log ratio|: 1.9 (0.64) is nearer 1 than 0.5 (0.69); NaN ranks last.
    assert part["ranks"]["kurtosis"] == {"b": 1, "ours": 2, "a": 3}
    assert part["ranks"]["std_ratio"] == {"b": 1, "a": 2, "ours": 3}
    assert part["ranks"]["acf_abs_dist"] == {"a": 1, "ours": 2, "b": 3}
    assert "ratio" not in part["ranks"]  # memorization is shown, not ranked
    assert part["ours"]["wins"] == [] and part["ours"]["losses"] == ["std_ratio"]
    assert part["mean_rank"]["b"] == pytest.approx(5 / 3)
    assert part["separates"]["kurtosis"] is None  # no controls: nothing to check against
    md = leaderboard.to_markdown(table)
    assert "| metric | real | ours | a | b | separates |" in md and "last on: std ratio" in md
    assert "**" not in md  # without intervals no best is clear
    assert "no controls in this comparison" in md
    # "ACF |r|, L2" keeps its pipes escaped: every row has as many cells as the header.
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    cells = {len(re.findall(r"(?<!\\)\|", line)) for line in rows}
    assert len(rows) == 6 and len(cells) == 1 and "ACF \\|r\\|, L2" in md  # with the paths row
