"""Resumes, data records, hints and progress output, through train.py and generate.py.

Each test here failed on the code before it: a resume at an epoch boundary crashed
or differed from an uninterrupted run, runs recorded config.py's CSV_PATH instead
of the data read, the final hint named no run, and --no-progress did not exist.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import config
import generate
import train
from tests.conftest import tiny_settings
from utils import checkpoint as ckpt
from utils import settings as settings_module

pytestmark = pytest.mark.usefixtures("one_thread")

# 400 prices, TRAIN_FRAC 0.8: 319 training returns, 72 windows of 32 at stride 4, i.e.
# 9 steps of 8 windows per epoch with nothing left over: the case that crashed a resume.
PER_EPOCH = 9


def write_prices(path: Path, seed: int = 0, n: int = 400) -> Path:
    rng = np.random.default_rng(seed)
    prices = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(n)))
    pd.DataFrame({"Close": prices}).to_csv(path, index=False)
    return path


def flags(root: Path, **extra: object) -> list[str]:
    # Warmup longer than the run: the learning rate follows the step alone, so a run whose
    # EPOCHS is raised on resume can match one that had the larger EPOCHS from the start.
    # No edge margin, so that the windows are exactly the 72 counted above.
    values = {"WARMUP_STEPS": 1000, "MAX_MINUTES": None, "MIXED_PRECISION": "no",
              "EDGE_MARGIN": 0, **extra}  # fmt: skip
    return tiny_settings(root, **values)


def weights(run: Path) -> dict[str, np.ndarray]:
    step = ckpt.list_checkpoints(run)[-1]
    return {k: v.numpy() for k, v in ckpt.load_train_state(step)["model"].items()}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    for key in wa:
        np.testing.assert_allclose(wa[key], wb[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_resume_at_the_last_step_of_an_epoch_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    data = ["--data", str(write_prices(tmp_path / "p.csv")), "--run-name", "r"]
    common = {"MAX_STEPS": PER_EPOCH + 3, "EPOCHS": 100, "KEEP_CHECKPOINTS": 5}
    assert train.main([*flags(tmp_path / "a", **common), *data]) == 0
    every = flags(tmp_path / "b", CHECKPOINT_EVERY=PER_EPOCH, **common)
    assert train.main([*every, *data]) == 0
    # As if stopped right at the end of the first epoch.
    shutil.rmtree(tmp_path / "b" / "r" / f"step-{PER_EPOCH + 3:06d}")
    assert train.main([*every, "--resume", str(tmp_path / "b" / "r")]) == 0
    assert_same_weights(tmp_path / "a" / "r", tmp_path / "b" / "r")
    log = pd.read_csv(tmp_path / "b" / "r" / "train_log.csv")
    assert list(log["epoch"].iloc[PER_EPOCH : PER_EPOCH + 3]) == [1, 1, 1]


def test_resume_after_epochs_were_reached_with_epochs_raised(tmp_path: Path) -> None:
    data = ["--data", str(write_prices(tmp_path / "p.csv")), "--run-name", "r"]
    assert train.main([*flags(tmp_path / "a", EPOCHS=2), *data]) == 0
    assert train.main([*flags(tmp_path / "b", EPOCHS=1), *data]) == 0
    resumed = [*flags(tmp_path / "b"), "--resume", str(tmp_path / "b" / "r"), "--epochs", "2"]
    assert train.main(resumed) == 0
    assert ckpt.list_checkpoints(tmp_path / "b" / "r")[-1].name == f"step-{2 * PER_EPOCH:06d}"
    assert_same_weights(tmp_path / "a" / "r", tmp_path / "b" / "r")


def test_a_run_records_the_data_it_read_and_a_resume_refuses_other_data(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    # config.py's shipped CSV_PATH, missing: the run uses the built-in S&P 500 and must say
    # so in its record, or a resume would read whatever file appears at that path later.
    shipped = tmp_path / "eurusd.csv"
    monkeypatch.setattr(config, "CSV_PATH", str(shipped))
    monkeypatch.setattr(settings_module, "SHIPPED_CSV_PATH", str(shipped))
    run = tmp_path / "runs" / "r"
    assert train.main([*flags(tmp_path / "runs", MAX_STEPS=1), "--run-name", "r"]) == 0
    saved = json.loads((ckpt.list_checkpoints(run)[-1] / "settings.json").read_text())
    assert saved["CSV_PATH"] == "sp500" and len(saved["DATA_SHA256"]) == 64
    write_prices(shipped)
    assert train.main([*flags(tmp_path / "runs", MAX_STEPS=2), "--resume", str(run)]) == 0
    assert "sp500" in capsys.readouterr().out  # still the S&P 500, not the new file

    # A run on a file that changes before the resume: one line, naming the flag that allows it.
    own = write_prices(tmp_path / "mine.csv", seed=1)
    mine = ["--data", str(own), "--run-name", "m"]
    assert train.main([*flags(tmp_path / "runs", MAX_STEPS=1), *mine]) == 0
    assert json.loads(
        (ckpt.list_checkpoints(tmp_path / "runs" / "m")[-1] / "settings.json").read_text()
    )["CSV_PATH"] == str(own.resolve())
    write_prices(own, seed=2)
    resume = [*flags(tmp_path / "runs", MAX_STEPS=2), "--resume", str(tmp_path / "runs" / "m")]
    capsys.readouterr()
    assert train.main(resume) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "differ from the data the run was trained on" in err
    assert "--allow-data-change" in err
    assert train.main([*resume, "--allow-data-change"]) == 0


def test_an_explicit_missing_data_file_is_an_error(tmp_path: Path, capsys, monkeypatch) -> None:
    shipped = tmp_path / "eurusd.csv"
    monkeypatch.setattr(settings_module, "SHIPPED_CSV_PATH", str(shipped))
    argv = [*flags(tmp_path, MAX_STEPS=1), "--data", str(shipped), "--run-name", "r"]
    assert train.main(argv) == 2
    assert str(shipped) in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_the_final_hint_names_the_run_and_generate_takes_the_save_dir(
    tmp_path: Path, capsys
) -> None:
    save = tmp_path / "elsewhere"
    assert train.main([*flags(save, MAX_STEPS=1), "--data", "sp500", "--run-name", "r"]) == 0
    out = capsys.readouterr().out
    assert f"next: python generate.py --checkpoint {save / 'r'}" in out
    paths = tmp_path / "p.npy"
    argv = ["--checkpoint", str(save), "--out", str(paths), "--no-plot", "--no-progress"]
    assert generate.main([*argv, "--n", "2", "--steps", "2"]) == 0
    assert f"checkpoint {save / 'r'}" in capsys.readouterr().out


def test_no_progress_bar_without_a_terminal_or_when_asked(tmp_path: Path, capsys) -> None:
    argv = [*flags(tmp_path, MAX_STEPS=2), "--data", "sp500", "--run-name", "r"]
    assert train.main(argv) == 0
    assert "%|" not in capsys.readouterr().err  # stderr is not a terminal under pytest
    assert train.main([*flags(tmp_path, MAX_STEPS=1), "--data", "sp500", "--no-progress"]) == 0
    out = tmp_path / "p.npy"
    gen = ["--checkpoint", str(tmp_path / "r"), "--out", str(out), "--no-plot", "--no-progress"]
    assert generate.main([*gen, "--n", "2", "--steps", "2"]) == 0
    assert "step/s" not in capsys.readouterr().err


def test_two_runs_of_different_precision_in_one_process(tmp_path: Path) -> None:
    # accelerate keeps one precision per process; "auto" is bf16 on CPUs with native bf16,
    # so a later fp32 run in the same process (a benchmark, the test suite) was refused.
    for precision in ("bf16", "no"):
        argv = [*tiny_settings(tmp_path / precision, MIXED_PRECISION=precision, MAX_STEPS=1)]
        assert train.main([*argv, "--data", "sp500", "--no-progress"]) == 0
