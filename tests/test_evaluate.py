"""evaluate.py end to end on tiny data, its error handling, and the GRU scores."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

import evaluate
from evaluation import scores
from evaluation.baselines import GarchBaseline
from evaluation.report import format_table
from utils.paths_io import write_paths

L = 32
# Small enough that every GRU in this file trains in well under a second.
FAST_DISC = scores.TrainSettings(hidden=16, epochs=4, batch=32, max_windows=200, chunk=4)
FAST_PRED = scores.TrainSettings(hidden=16, epochs=4, max_windows=200)


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    gen = GarchBaseline(mu=0.0, omega=2e-6, alpha=0.1, beta=0.85, nu=5.0)
    return gen.sample(1, 1500, seed=0).ravel()


@pytest.fixture
def price_csv(tmp_path, returns):
    path = tmp_path / "prices.csv"
    prices = 100 * np.exp(np.r_[0.0, np.cumsum(returns)])
    dates = pd.bdate_range("2001-01-01", periods=prices.size)
    pd.DataFrame({"Date": dates, "Close": prices}).to_csv(path, index=False)
    return path


def _run(argv, capsys):
    rc = evaluate.main([*argv, "--no-progress"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_evaluate_writes_json_table_and_report(tmp_path, price_csv, returns, capsys, monkeypatch):
    rng = np.random.default_rng(1)
    files = [tmp_path / "gauss.npy", tmp_path / "copy.csv"]
    write_paths(files[0], rng.standard_normal((40, L)) * returns.std())
    train = returns[: round(len(returns) * 0.8)]
    write_paths(files[1], np.lib.stride_tricks.sliding_window_view(train, L)[::25])
    # The scalogram figure is optional: without its module the report says so and goes on.
    monkeypatch.setitem(sys.modules, "transforms.wavelet", None)
    out = tmp_path / "eval"
    argv = ["--real", str(price_csv), "--window", str(L), "--out", str(out), "--fast"]
    rc, stdout, stderr = _run([*argv, "--synthetic", *map(str, files)], capsys)
    assert rc == 0, stderr
    results = json.loads((out / "metrics.json").read_text())  # strict JSON: no NaN
    assert set(results["generators"]) == {"gauss", "copy"}
    g = results["generators"]["gauss"]
    assert g["in_sample"]["std_ratio"] == pytest.approx(1.0, abs=0.25)
    assert g["out_of_sample"] is not None and g["in_sample"]["kurtosis_real"] > 1
    assert results["generators"]["copy"]["memorization"]["ratio"] < 0.05
    assert g["memorization"]["ratio"] > 0.5
    assert "In-sample" in stdout and "Out-of-sample" in stdout and "memorization ratio" in stdout
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5
    assert "Scalograms, real vs generated" in page and "skipped" in page
    assert "skipped" in stderr


def test_gru_scores_appear_with_mean_and_std(returns):
    windows = np.lib.stride_tricks.sliding_window_view(returns, L)
    train, test = returns[:1200], returns[1200:]
    synth = {"noise": np.random.default_rng(2).standard_normal((60, L)) * returns.std()}
    results, _ = evaluate.evaluate(
        train, test, synth, L, 4, seeds=[0, 1], max_windows=60, progress=False
    )
    disc = results["generators"]["noise"]["in_sample"]["discriminative"]
    assert len(disc["values"]) == 2 and 0 <= disc["mean"] <= 0.5
    assert "predictive_mae" in results["generators"]["noise"]["out_of_sample"]
    assert set(results["reference"]["predictive_real_trained"]) == {"in_sample", "out_of_sample"}
    table = format_table(results, "in_sample")
    assert "±" in table and "real held-out" in table
    assert windows.shape[1] == L


def test_discriminative_score_tells_different_from_same():
    rng = np.random.default_rng(3)
    real = rng.standard_normal((200, L))
    same = rng.standard_normal((200, L))
    loud = 4 * rng.standard_normal((200, L))
    assert scores.discriminative_score(real, same, seed=0, settings=FAST_DISC) < 0.15
    assert scores.discriminative_score(real, loud, seed=0, settings=FAST_DISC) > 0.35
    # Seeded: the same call gives the same number.
    a = scores.discriminative_score(real, loud, seed=1, settings=FAST_DISC)
    assert a == scores.discriminative_score(real, loud, seed=1, settings=FAST_DISC)
    # Out-of-sample form: trained on one real set, tested on another.
    held = rng.standard_normal((100, L))
    assert scores.discriminative_score(real, loud, 0, settings=FAST_DISC, real_test=held) > 0.35


@pytest.mark.parametrize("n", [80, 400, 1000])
def test_purged_split_never_shares_a_return(n):
    rng = np.random.default_rng(n)
    purge = 32  # sliding windows of 32 returns, stride 1
    train, test = scores.split_rows(n, purge, rng)
    assert len(test) >= n // 6 and len(train) > 0
    assert np.abs(train[:, None] - test[None, :]).min() >= purge
    np.testing.assert_array_equal(test, np.arange(test[0], test[-1] + 1))  # one block
    # Without a purge: a plain 80/20 partition.
    tr, te = scores.split_rows(n, 0, rng)
    assert len(te) == round(0.2 * n) and sorted([*tr, *te]) == list(range(n))


def test_purged_split_of_too_few_windows_says_so():
    with pytest.raises(scores.TooFewWindows, match="share no return"):
        scores.split_rows(37, 32, np.random.default_rng(0))


def test_predictive_score_prefers_the_right_volatility_dynamics():
    gen = GarchBaseline(mu=0.0, omega=0.05, alpha=0.2, beta=0.75, nu=8.0)
    real = gen.sample(200, L, seed=4)
    like = gen.sample(200, L, seed=5)
    iid = np.random.default_rng(6).standard_normal((200, L)) * 3 * real.std()
    good = scores.predictive_score(like, {"real": real}, seed=0, settings=FAST_PRED)["real"]
    bad = scores.predictive_score(iid, {"real": real}, seed=0, settings=FAST_PRED)["real"]
    assert good < bad


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--synthetic", "missing.npy"], "no such file"),
        (["--synthetic", "{short}"], "--window 16"),
        (["--synthetic", "{ok}", "--labels", "a", "b"], "--labels"),
        (["--synthetic", "{ok}", "--windw", "8"], "did you mean --window"),
        (["--synthetic", "{ok}", "--train-frac", "1.5"], "TRAIN_FRAC"),
        (["--synthetic", "{ok}", "--real", "nowhere.csv"], "nowhere.csv"),
        (["--synthetic", "{ok}", "--out", "{ok}"], "cannot create the folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, price_csv, capsys, extra, message):
    files = {"short": tmp_path / "short.npy", "ok": tmp_path / "ok.npy"}
    write_paths(files["short"], np.zeros((8, 16)))
    write_paths(files["ok"], np.random.default_rng(0).standard_normal((8, L)) * 0.01)
    extra = [str(files[e[1:-1]]) if e.startswith("{") else e for e in extra]
    argv = ["--real", str(price_csv), "--window", str(L), "--out", str(tmp_path / "o"), "--fast"]
    # The flags are parsed in order; the later --real wins over the fixture's.
    rc, _, stderr = _run([*argv, *extra], capsys)
    lines = stderr.strip().splitlines()
    assert rc == 2
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
