"""evaluate.py end to end on tiny data, its error handling, its settings, and the GRU scores."""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import evaluate
import train
from evaluation import scores
from evaluation.baselines import GarchBaseline
from evaluation.report import format_table
from evaluation.suite import evaluate as evaluate_all
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
    argv = ["--real", str(price_csv), "--window", str(L), "--out", str(out), "--fast",
            "--bootstrap", "20"]  # fmt: skip
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


def test_gru_scores_appear_with_mean_and_interval(returns):
    windows = np.lib.stride_tricks.sliding_window_view(returns, L)
    train, test = returns[:1200], returns[1200:]
    synth = {"noise": np.random.default_rng(2).standard_normal((60, L)) * returns.std()}
    results, _ = evaluate_all(
        train, test, synth, L, 4, seeds=[0, 1], max_windows=60, progress=False, n_boot=20
    )
    disc = results["generators"]["noise"]["in_sample"]["discriminative"]
    assert len(disc["values"]) == 2 and 0 <= disc["mean"] <= 0.5
    lo, hi = disc["ci"]  # a t-interval over the two seeds
    assert lo <= disc["mean"] <= hi
    assert "predictive_mae" in results["generators"]["noise"]["out_of_sample"]
    assert set(results["reference"]["predictive_real_trained"]) == {"in_sample", "out_of_sample"}
    table = format_table(results, "in_sample")
    assert "[" in table and "real held-out" in table
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


# ------------------------------------------------------- where the real data comes from


def _ok_paths(tmp_path: Path) -> Path:
    f = tmp_path / "ok.npy"
    write_paths(f, np.random.default_rng(0).standard_normal((12, L)) * 0.01)
    return f


def test_real_data_must_be_named(tmp_path, capsys):
    # Without --real or --checkpoint there is no telling which data the paths imitate.
    argv = ["--synthetic", str(_ok_paths(tmp_path)), "--window", str(L), "--fast"]
    rc, _, stderr = _run([*argv, "--out", str(tmp_path / "o"), "--bootstrap", "0"], capsys)
    assert rc == 2 and "--real" in stderr and "--checkpoint" in stderr
    assert not (tmp_path / "o" / "metrics.json").exists()


@pytest.fixture
def gappy_csv(tmp_path, returns):
    """Prices with 3% empty cells: more than the default MAX_MISSING_FRAC of 1%."""
    path = tmp_path / "gappy.csv"
    prices = 100 * np.exp(np.r_[0.0, np.cumsum(returns)])
    frame = pd.DataFrame({"Date": pd.bdate_range("2001-01-01", periods=prices.size),
                          "Price": prices})  # fmt: skip
    frame.loc[frame.index[5::33], "Price"] = np.nan
    frame.to_csv(path, index=False)
    return path


def test_max_missing_frac_is_honoured(tmp_path, gappy_csv, capsys):
    argv = ["--real", str(gappy_csv), "--column", "Price", "--window", str(L), "--fast",
            "--bootstrap", "0", "--synthetic", str(_ok_paths(tmp_path))]  # fmt: skip
    rc, _, stderr = _run([*argv, "--out", str(tmp_path / "a")], capsys)
    assert rc == 2 and "MAX_MISSING_FRAC" in stderr
    rc, _, stderr = _run([*argv, "--out", str(tmp_path / "b"), "--set", "MAX_MISSING_FRAC=0.05"],
                         capsys)  # fmt: skip
    assert rc == 0, stderr


def test_checkpoint_gives_data_column_split_and_window(tmp_path, tiny, gappy_csv, capsys):
    flags = [*tiny(MAX_STEPS=1, TRAIN_FRAC=0.7, MAX_MISSING_FRAC=0.05), "--column", "Price"]
    assert train.main([*flags, "--data", str(gappy_csv), "--run-name", "r"]) == 0
    capsys.readouterr()
    out = tmp_path / "eval"
    argv = ["--checkpoint", str(tmp_path / "r"), "--synthetic", str(_ok_paths(tmp_path)),
            "--out", str(out), "--fast", "--bootstrap", "0"]  # fmt: skip
    rc, _, stderr = _run(argv, capsys)
    assert rc == 0, stderr
    results = json.loads((out / "metrics.json").read_text())
    st = results["settings"]
    assert (st["real"], st["column"], st["train_frac"], st["window"]) == (
        str(gappy_csv),
        "Price",
        0.7,
        L,
    )
    saved = np.load(next((tmp_path / "r").glob("step-*")) / "real_returns.npy")
    assert results["real"]["train"]["n_returns"] == len(saved)
    # A split other than the checkpoint's is refused, not silently compared.
    rc, _, stderr = _run([*argv, "--overwrite", "--train-frac", "0.8"], capsys)
    assert rc == 2 and "trained on other returns" in stderr


def test_existing_results_need_overwrite(tmp_path, price_csv, capsys):
    out = tmp_path / "eval"
    argv = ["--real", str(price_csv), "--window", str(L), "--fast", "--bootstrap", "0",
            "--synthetic", str(_ok_paths(tmp_path)), "--out", str(out)]  # fmt: skip
    assert _run(argv, capsys)[0] == 0
    before = (out / "metrics.json").read_text()
    rc, _, stderr = _run(argv, capsys)
    assert rc == 2 and "--overwrite" in stderr
    assert (out / "metrics.json").read_text() == before
    assert _run([*argv, "--overwrite"], capsys)[0] == 0


def test_full_disk_is_one_line(tmp_path, price_csv, capsys, monkeypatch):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full)
    argv = ["--real", str(price_csv), "--window", str(L), "--fast", "--bootstrap", "0",
            "--synthetic", str(_ok_paths(tmp_path)), "--out", str(tmp_path / "o")]  # fmt: skip
    rc, _, stderr = _run(argv, capsys)
    lines = stderr.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "out of disk space" in lines[0]
