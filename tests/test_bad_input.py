"""Bad input: every user mistake is one ``error:`` line and exit status 2, never a traceback.

Each kind of user mistake has its own test, which checks what the user reads: the file,
column or setting, the bad value, and what to do. Four cases run the real scripts
(``python train.py ...`` from the repository root): a missing file, a wrong column,
a misspelled flag and a diverging (NaN) loss. They start together in one module
fixture so that they share the ~5 s of imports per process. The other cases call
``train.main`` / ``generate.main`` in-process, which is what ``python train.py``
runs after its imports (see the scripts' ``if __name__ == "__main__"``).
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import config
import generate
import train
from tests.conftest import tiny_settings
from utils import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[1]
EXIT_USER_ERROR = 2
SCRIPT_TIMEOUT_S = 600  # generous: the CI machine is shared


# ------------------------------------------------------------------ helpers


def error_line(stderr: str) -> str:
    """The one ``error:`` line of a failed run; it must be the last line, with no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert lines[-1] == errors[0], stderr
    return errors[0]


def fails(main: Callable[[list[str]], int], argv: list[str], capsys) -> str:
    """Run a script's ``main`` in-process; assert exit status 2; return its error line."""
    capsys.readouterr()  # drop what earlier steps printed
    assert main(argv) == EXIT_USER_ERROR
    return error_line(capsys.readouterr().err)


def price_csv(path: Path, n: int = 300, seed: int = 0) -> tuple[Path, list[str], np.ndarray]:
    """A clean ``Date,Close`` file of ``n`` daily prices; returns (path, dates, prices)."""
    rng = np.random.default_rng(seed)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    dates = list(pd.date_range("2001-01-01", periods=n, freq="D").strftime("%Y-%m-%d"))
    rows = [f"{d},{p:.4f}" for d, p in zip(dates, prices, strict=True)]
    path.write_text("Date,Close\n" + "\n".join(rows) + "\n")
    return path, dates, prices


def with_cells(path: Path, cells: dict[int, str]) -> Path:
    """Rewrite the price cell of data row ``i`` (0-based; file line ``i + 2``) for each entry."""
    lines = path.read_text().splitlines()
    for i, cell in cells.items():
        date = lines[i + 1].split(",")[0]
        lines[i + 1] = f"{date},{cell}"
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------- real scripts, run together


@pytest.fixture(scope="module")
def script_runs(tmp_path_factory) -> dict[str, tuple[int, str, Path]]:
    """Run four failing ``python train.py`` commands at once; map case -> (status, stderr, dir)."""
    base = tmp_path_factory.mktemp("scripts")
    ohlc = base / "ohlc.csv"
    ohlc.write_text("Date,Open,Close\n2020-01-01,1,2\n2020-01-02,2,3\n")
    cases = {
        "missing_file": ["--data", str(base / "no_such_prices.csv")],
        "bad_column": ["--data", str(ohlc), "--column", "Adj Close"],
        "misspelled_flag": ["--max-step", "3"],
        # A learning rate of 1e30 blows the weights up after one step: the next loss is NaN.
        "nan_loss": [
            "--data",
            "sp500",
            "--run-name",
            "nan",
            "--set",
            "LR=1e30",
            "--set",
            "CHECKPOINT_EVERY=1",
            "--set",
            "MAX_STEPS=6",
        ],
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    running = {}
    for name, extra in cases.items():
        save_dir = base / name
        save_dir.mkdir()
        log = open(save_dir / "stderr.txt", "w")  # noqa: SIM115 (closed below)
        argv = [sys.executable, "train.py", *tiny_settings(save_dir), *extra]
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
        running[name] = (proc, log, save_dir)
    results = {}
    try:
        for name, (proc, log, save_dir) in running.items():
            status = proc.wait(timeout=SCRIPT_TIMEOUT_S)
            log.close()
            results[name] = (status, (save_dir / "stderr.txt").read_text(), save_dir)
    finally:
        for proc, log, _ in running.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    return results


def script_error(script_runs: dict, case: str) -> str:
    status, stderr, _ = script_runs[case]
    assert status == EXIT_USER_ERROR, stderr
    return error_line(stderr)


def test_script_missing_file(script_runs) -> None:
    line = script_error(script_runs, "missing_file")
    assert "price file not found" in line and "no_such_prices.csv" in line
    assert "CSV_PATH" in line and "sp500" in line  # the setting to fix, or a built-in to use


def test_script_unknown_column_lists_the_columns(script_runs) -> None:
    line = script_error(script_runs, "bad_column")
    assert "ohlc.csv" in line and "no column 'Adj Close'" in line
    assert "'Date', 'Open', 'Close'" in line and "COLUMN" in line


def test_script_misspelled_flag_suggests_the_closest(script_runs) -> None:
    line = script_error(script_runs, "misspelled_flag")
    assert "unknown argument --max-step" in line and "did you mean --max-steps?" in line


def test_script_nan_loss_stops_and_keeps_the_last_good_checkpoint(script_runs) -> None:
    line = script_error(script_runs, "nan_loss")
    found = re.search(
        r"loss became (nan|inf|-inf) at step (\d+): training stopped; "
        r"the last good checkpoint is (\S+)\.",
        line,
    )
    assert found, line
    assert "Lower LR (--lr)" in line
    step, kept = int(found.group(2)), Path(found.group(3))
    run = script_runs["nan_loss"][2] / "nan"
    # The named checkpoint is the newest on disk: nothing was saved after the bad step.
    assert ckpt.list_checkpoints(run)[-1] == kept
    assert kept.name == ckpt.step_dir_name(step)
    loaded = ckpt.load_for_sampling(kept)
    assert loaded["step"] == step
    assert all(torch.isfinite(p).all() for p in loaded["unet"].parameters())


# ------------------------------------------------------------ data files


@pytest.fixture
def flags(tmp_path: Path) -> list[str]:
    return tiny_settings(tmp_path / "runs", MAX_STEPS=1)


def test_empty_file(tmp_path: Path, flags, capsys) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    line = fails(train.main, [*flags, "--data", str(empty)], capsys)
    assert "empty.csv is empty" in line and "CSV_PATH" in line
    header_only = tmp_path / "header.csv"
    header_only.write_text("Date,Close\n")
    line = fails(train.main, [*flags, "--data", str(header_only)], capsys)
    assert "header.csv has a header but no data rows" in line


def test_non_numeric_price_names_the_line_and_value(tmp_path: Path, flags, capsys) -> None:
    path, dates, _ = price_csv(tmp_path / "p.csv")
    with_cells(path, {10: "$101.50"})
    line = fails(train.main, [*flags, "--data", str(path)], capsys)
    assert "p.csv" in line and "column 'Close'" in line
    assert f"non-numeric value '$101.50' at line 12 (time '{dates[10]}')" in line
    assert "plain numbers" in line


def test_too_many_missing_values_is_an_error(tmp_path: Path, flags, capsys) -> None:
    path, _, _ = price_csv(tmp_path / "gappy.csv")
    with_cells(path, {10: ".", 11: "", 40: "NA", 41: "."})  # 4 of 300 = 1.3% > 1%
    line = fails(train.main, [*flags, "--data", str(path)], capsys)
    assert "gappy.csv" in line and "4 of 300 rows (1.3%) have no price" in line
    assert "line 12" in line and "max_missing_frac=0.01" in line and "MAX_MISSING_FRAC" in line
    # The same file trains once the user raises the threshold as told (checked up to the data).
    line = fails(
        train.main,
        [*flags, "--data", str(path), "--set", "MAX_MISSING_FRAC=0.02", *INDIVISIBLE],
        capsys,
    )
    assert "cannot pass a UNet" in line  # got past the data: stopped by the next check


def test_non_positive_price_says_where(tmp_path: Path, flags, capsys) -> None:
    path, dates, _ = price_csv(tmp_path / "neg.csv")
    with_cells(path, {20: "-3.5", 30: "0"})
    line = fails(train.main, [*flags, "--data", str(path)], capsys)
    assert "neg.csv" in line and f"non-positive price -3.5 at line 22 (time '{dates[20]}')" in line
    assert "and 1 more" in line and "above zero" in line


def test_constant_series(tmp_path: Path, flags, capsys) -> None:
    path = tmp_path / "flat.csv"
    path.write_text("Close\n" + "5.0\n" * 300)
    line = fails(train.main, [*flags, "--data", str(path)], capsys)
    assert (
        "flat.csv" in line and "all 300 prices equal 5.0" in line and "every return is zero" in line
    )


def test_fewer_rows_than_one_window_says_how_many_are_needed(tmp_path: Path, flags, capsys) -> None:
    # WINDOW_SIZE=32 and TRAIN_FRAC=0.8: 41 prices give 40 returns, of which 32 train.
    short, _, _ = price_csv(tmp_path / "short.csv", n=40)
    line = fails(train.main, [*flags, "--data", str(short)], capsys)
    assert "short.csv" in line and "40 prices" in line and "WINDOW_SIZE=32" in line
    assert "at least 41 prices are needed" in line
    # The number is right: 41 prices pass this check, and stop at the next one (one window is
    # fewer than a batch of 8), which names the file and the settings to change too.
    enough, _, _ = price_csv(tmp_path / "enough.csv", n=41)
    line = fails(train.main, [*flags, "--data", str(enough)], capsys)
    assert "enough.csv" in line and "1 training windows are fewer than one step's 8" in line
    assert "BATCH_SIZE" in line


@pytest.mark.parametrize("token", ["NaN", "inf", "-Infinity"])
def test_nan_or_inf_price_is_an_error(tmp_path: Path, flags, capsys, token: str) -> None:
    path, _, _ = price_csv(tmp_path / "x.csv")
    with_cells(path, {30: token})
    line = fails(train.main, [*flags, "--data", str(path)], capsys)
    assert (
        "x.csv" in line and f"value '{token}' at line 32" in line and "not a finite number" in line
    )


def test_histdata_malformed_line_gives_its_number(tmp_path: Path, flags, capsys) -> None:
    good = [f"20120201 00{m:02d}00;1.30;1.40;1.20;1.3{m % 10};0" for m in range(50)]
    good[6] = "20120201 000600;1.30;1.40;1.20"  # two fields short
    path = tmp_path / "DAT_ASCII_EURUSD_M1_2012.csv"
    path.write_text("\n".join(good) + "\n")
    line = fails(train.main, [*flags, "--data", str(path)], capsys)
    assert "DAT_ASCII_EURUSD_M1_2012.csv: line 7 is malformed" in line
    assert "'20120201 000600;1.30;1.40;1.20'" in line and "Fix or delete that line" in line


# ----------------------------------- messy but usable data: warnings, then training


@pytest.fixture(scope="module")
def messy_run(tmp_path_factory) -> dict:
    """Train one step on a file with 2 missing prices, two rows out of order and a repeated date.

    Returns the exit status, the warnings, stderr and the run folder. The run's checkpoint
    is also the good checkpoint that the loading tests below damage (on copies).
    """
    base = tmp_path_factory.mktemp("messy")
    path, dates, _ = price_csv(base / "messy.csv")
    with_cells(path, {50: ".", 60: ""})
    lines = path.read_text().splitlines()
    lines[101], lines[102] = lines[102], lines[101]  # rows 100 and 101 swapped
    lines.append(f"{dates[150]},123.4567")  # a second row for an existing date, at the end
    path.write_text("\n".join(lines) + "\n")
    argv = [*tiny_settings(base / "runs", MAX_STEPS=1), "--data", str(path), "--run-name", "r"]
    stderr = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(stderr):
        warnings.simplefilter("always")
        status = train.main(argv)
    return {
        "status": status,
        "warnings": [str(w.message) for w in caught if issubclass(w.category, UserWarning)],
        "stderr": stderr.getvalue(),
        "run": base / "runs" / "r",
        "dates": dates,
    }


def test_missing_values_are_dropped_with_a_warning_that_counts_them(messy_run) -> None:
    assert messy_run["status"] == 0, messy_run["stderr"]
    dropped = [w for w in messy_run["warnings"] if "dropped" in w]
    assert len(dropped) == 1, messy_run["warnings"]
    assert "messy.csv" in dropped[0] and "dropped 2 of 301 rows with a missing price" in dropped[0]
    assert f"line 52 (time '{messy_run['dates'][50]}')" in dropped[0]


def test_unsorted_timestamps_are_sorted_with_a_warning(messy_run) -> None:
    assert messy_run["status"] == 0, messy_run["stderr"]
    assert any(
        "messy.csv: rows are not in time order; sorted them" in w for w in messy_run["warnings"]
    )


def test_duplicate_timestamps_are_deduplicated_with_a_warning(messy_run) -> None:
    assert messy_run["status"] == 0, messy_run["stderr"]
    dup = [w for w in messy_run["warnings"] if "share their time" in w]
    assert len(dup) == 1 and "1 rows share their time with a later row" in dup[0]
    assert messy_run["dates"][150] in dup[0] and "kept the last row" in dup[0]
    # The kept series is the cleaned one: 301 rows - 2 missing - 1 duplicate = 298 prices.
    step = ckpt.list_checkpoints(messy_run["run"])[-1]
    settings = json.loads((step / "settings.json").read_text())
    real = np.load(step / "real_returns.npy")
    assert len(real) == round(297 * settings["TRAIN_FRAC"])


# ------------------------------------------------------------ configuration


def test_misspelled_setting_suggests_the_closest(flags, capsys) -> None:
    line = fails(train.main, [*flags, "--set", "WINDOW_SZE=32"], capsys)
    assert line == "error: unknown setting WINDOW_SZE; did you mean WINDOW_SIZE?"
    line = fails(generate.main, ["--sampler", "dmp"], capsys)
    assert "setting SAMPLER: 'dmp' is not one of" in line and "did you mean dpm?" in line


def test_misspelled_setting_in_config_py(flags, capsys, monkeypatch) -> None:
    monkeypatch.setattr(config, "CHECKPOINT_EVRY", 100, raising=False)
    line = fails(train.main, flags, capsys)
    assert (
        line == "error: config.py: unknown setting CHECKPOINT_EVRY; did you mean CHECKPOINT_EVERY?"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--set", "WINDOW_SIZE=abc"], "setting WINDOW_SIZE: expected int, got 'abc'"),
        (["--window", "3.5"], "argument --window: invalid int value: '3.5'"),
        (["--set", "COMPILE=maybe"], "setting COMPILE: expected true or false, got 'maybe'"),
        (["--set", "BLOCK_OUT_CHANNELS=64"], "setting BLOCK_OUT_CHANNELS: expected tuple, got 64"),
        (["--set", "LR=-1e-3"], "setting LR must be positive, got -0.001"),
        (["--set", "LR"], "--set 'LR': write NAME=VALUE"),
    ],
)
def test_wrong_type_names_setting_value_and_type(flags, capsys, argv, expected) -> None:
    line = fails(train.main, [*flags, *argv], capsys)
    assert expected in line


def test_wrong_type_in_config_py(flags, capsys, monkeypatch) -> None:
    monkeypatch.setattr(config, "LR", "fast")
    line = fails(train.main, flags, capsys)
    assert line == "error: setting LR: expected float, got 'fast'"


@pytest.mark.parametrize(
    ("main", "argv", "setting"),
    [
        (train.main, ["--data", "sp500", "--lr", "nan"], "LR"),
        (generate.main, ["--start-price", "nan"], "START_PRICE"),
    ],
)
def test_nan_setting_is_an_error(tmp_path: Path, capsys, main, argv, setting) -> None:
    status = main([*tiny_settings(tmp_path, MAX_STEPS=1), *argv])
    assert status == EXIT_USER_ERROR
    line = error_line(capsys.readouterr().err)
    assert setting in line and "nan" in line


# Three UNet levels need sides divisible by 4. SCALES=8 gives 9 or 10 rows (8 scales, the mean
# row and, depending on the preset, a volatility row): neither divides.
INDIVISIBLE = ["--set", "SCALES=8", "--set", "BLOCK_OUT_CHANNELS=(8,16,16)"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            INDIVISIBLE,
            r"image of (9|10) x 32 cannot pass a UNet with 3 levels: both sides must be "
            r"multiples of 4\. Use an image height of 8 or 12 rows",
        ),
        (
            [*INDIVISIBLE[2:], "--set", "SCALES=7", "--set", "IMAGE_SIZE=30"],
            r"image of \d+ x 30 cannot pass a UNet with 3 levels.* a width of 28 or 32 ",
        ),
    ],
)
def test_image_size_the_unet_cannot_divide(flags, capsys, extra, expected) -> None:
    line = fails(train.main, [*flags, "--data", "sp500", *extra], capsys)
    assert re.search(expected, line), line
    assert "SCALES" in line and "IMAGE_SIZE" in line and "BLOCK_OUT_CHANNELS" in line


# --------------------------------------------------------------- loading


@pytest.fixture
def checkpoint_copy(messy_run, tmp_path: Path) -> Path:
    """A private copy of a good checkpoint (run folder / step folder), free to damage."""
    assert messy_run["status"] == 0, messy_run["stderr"]
    step = ckpt.list_checkpoints(messy_run["run"])[-1]
    copy = tmp_path / "run" / step.name
    shutil.copytree(step, copy)
    return copy


def generate_from(step: Path, tmp_path: Path) -> list[str]:
    return ["--checkpoint", str(step), "--out", str(tmp_path / "paths.npy"), "--no-plot"]


def test_checkpoint_missing_a_file_is_named(checkpoint_copy: Path, tmp_path: Path, capsys) -> None:
    (checkpoint_copy / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    line = fails(generate.main, generate_from(checkpoint_copy, tmp_path), capsys)
    assert str(checkpoint_copy) in line
    assert "checkpoint is missing unet/diffusion_pytorch_model.safetensors" in line
    assert not (tmp_path / "paths.npy").exists()


def test_checkpoint_of_another_format_version(
    checkpoint_copy: Path, tmp_path: Path, capsys
) -> None:
    marker = checkpoint_copy / ckpt.MARKER
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "format_version": 999}))
    line = fails(generate.main, generate_from(checkpoint_copy, tmp_path), capsys)
    assert str(checkpoint_copy) in line
    assert (
        f"checkpoint format 999, this code reads {ckpt.FORMAT_VERSION}" in line
        and "retrain" in line
    )


def test_pickled_weights_are_refused_unread(
    checkpoint_copy: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """A checkpoint with ``.bin`` (pickle) weights instead of safetensors is refused, not unpickled."""
    unet = checkpoint_copy / "unet"
    state = ckpt.load_for_sampling(checkpoint_copy)["unet"].state_dict()
    torch.save(state, unet / "diffusion_pytorch_model.bin")
    (unet / "diffusion_pytorch_model.safetensors").unlink()

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load was called on a checkpoint")

    monkeypatch.setattr(torch, "load", no_pickle)
    line = fails(generate.main, generate_from(checkpoint_copy, tmp_path), capsys)
    assert "missing unet/diffusion_pytorch_model.safetensors" in line


class _TouchOnUnpickle:
    """Unpickling this (without weights_only) creates a file: stands in for a malicious pickle."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_untrusted_optimizer_pickle_is_not_executed(
    checkpoint_copy: Path, tmp_path: Path, capsys
) -> None:
    pwned = tmp_path / "pwned"
    torch.save(
        {"optimizer": _TouchOnUnpickle(pwned), "lr_scheduler": {}},
        checkpoint_copy / "train_state" / "optimizer.pt",
    )
    line = fails(train.main, ["--resume", str(checkpoint_copy.parent)], capsys)
    assert str(checkpoint_copy) in line and "cannot read the training state" in line
    assert not pwned.exists()


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("truncated_weights", "cannot read the model files"),
        ("marker_not_json", "cannot read checkpoint.json"),
        ("marker_a_list", "cannot read checkpoint.json (ValueError: expected a JSON object"),
        ("settings_not_json", "cannot read settings.json"),
    ],
)
def test_damaged_checkpoint_is_a_clear_error(
    checkpoint_copy: Path, tmp_path: Path, capsys, damage, expected
) -> None:
    if damage == "truncated_weights":
        weights = checkpoint_copy / "unet" / "diffusion_pytorch_model.safetensors"
        weights.write_bytes(weights.read_bytes()[:300])
    elif damage == "marker_not_json":
        (checkpoint_copy / ckpt.MARKER).write_text('{"format_version": 1, "st')
    elif damage == "marker_a_list":
        (checkpoint_copy / ckpt.MARKER).write_text("[1]")
    else:
        (checkpoint_copy / "settings.json").write_text("")
    line = fails(generate.main, generate_from(checkpoint_copy, tmp_path), capsys)
    assert str(checkpoint_copy) in line and expected in line and "damaged" in line


def test_resume_with_missing_training_state(checkpoint_copy: Path, capsys) -> None:
    (checkpoint_copy / "train_state" / "model.safetensors").unlink()
    line = fails(train.main, ["--resume", str(checkpoint_copy.parent)], capsys)
    assert str(checkpoint_copy) in line and "missing train_state/model.safetensors" in line
    assert "generate.py" in line  # the EMA weights can still be sampled


def _unsafe_loads(tree: ast.AST) -> list[str]:
    """Calls that could unpickle a file: torch.load without weights_only=True, pickle.load, ..."""
    picklers = {"pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
    readers = {"load", "loads", "Unpickler", "open"}

    def keyword(call: ast.Call, name: str):
        found = [k.value for k in call.keywords if k.arg == name]
        return found[0].value if found and isinstance(found[0], ast.Constant) else None

    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in picklers | {"torch"}:
            for alias in node.names:
                if alias.name in readers:
                    problems.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        attr, owner = node.func.attr, node.func.value
        owner_name = owner.id if isinstance(owner, ast.Name) else None
        if attr == "load" and owner_name == "torch" and keyword(node, "weights_only") is not True:
            problems.append(f"line {node.lineno}: torch.load without weights_only=True")
        if attr in readers and owner_name in picklers:
            problems.append(f"line {node.lineno}: {owner_name}.{attr}")
        if attr == "load" and owner_name in {"np", "numpy"} and keyword(node, "allow_pickle"):
            problems.append(f"line {node.lineno}: np.load(allow_pickle=True)")
        if attr == "read_pickle":
            problems.append(f"line {node.lineno}: read_pickle")
        if attr == "from_pretrained" and keyword(node, "use_safetensors") is not True:
            problems.append(f"line {node.lineno}: from_pretrained without use_safetensors=True")
    return problems


def test_the_scanner_finds_unsafe_loads() -> None:
    source = (
        "import pickle\nimport torch\nimport numpy as np\n"
        "torch.load('a')\ntorch.load('a', weights_only=False)\n"
        "np.load('a', allow_pickle=True)\nUNet2DModel.from_pretrained('d')\n"
        "pickle.loads(b'')\nfrom torch import load\npd.read_pickle('a')\n"
        "torch.load('a', weights_only=True)\nnp.load('a')\nM.from_pretrained('d', use_safetensors=True)\n"
        "pickle.dumps(1)\nexcept_type = pickle.UnpicklingError\n"
    )
    lines = sorted(int(p.split(":")[0].split()[1]) for p in _unsafe_loads(ast.parse(source)))
    assert lines == [4, 5, 6, 7, 8, 9, 10]


def test_no_code_path_unpickles_untrusted_files() -> None:
    """Every torch.load passes weights_only=True; no pickle module; from_pretrained reads safetensors."""
    skip = {".git", "checkpoints", "outputs", "__pycache__", ".venv", "venv", "node_modules"}
    files = [
        p
        for p in ROOT.rglob("*.py")
        if not skip & set(p.relative_to(ROOT).parts)
        and not any(s.startswith(".") for s in p.relative_to(ROOT).parts)
    ]
    assert ROOT / "utils" / "checkpoint.py" in files and len(files) > 20
    problems = []
    for path in files:
        try:
            tree = ast.parse(path.read_text(), filename=str(path))
        except SyntaxError:  # a file another engineer is saving right now
            continue
        problems += [f"{path.relative_to(ROOT)} {p}" for p in _unsafe_loads(tree)]
    assert problems == []


# -------------------------------------------------------------- overwriting


def test_generate_never_overwrites_without_the_flag(messy_run, tmp_path: Path, capsys) -> None:
    step = ckpt.list_checkpoints(messy_run["run"])[-1]
    out = tmp_path / "paths.csv"
    out.write_text("precious\n")
    line = fails(generate.main, ["--checkpoint", str(step), "--out", str(out)], capsys)
    assert str(out) in line and "--overwrite" in line
    assert out.read_text() == "precious\n"
    # A figure in the way is protected too, and nothing is written before the refusal.
    new_out, plot = tmp_path / "new.csv", tmp_path / "fig.png"
    plot.write_bytes(b"png")
    line = fails(
        generate.main,
        ["--checkpoint", str(step), "--out", str(new_out), "--plot", str(plot)],
        capsys,
    )
    assert str(plot) in line and "--overwrite" in line
    assert plot.read_bytes() == b"png" and not new_out.exists()


def test_train_never_writes_into_a_used_folder(tmp_path: Path, flags, capsys) -> None:
    used = tmp_path / "runs" / "r"
    used.mkdir(parents=True)
    (used / "notes.txt").write_text("mine")
    line = fails(train.main, [*flags, "--data", "sp500", "--run-name", "r"], capsys)
    assert str(used) in line and "--resume" in line and "--run-name" in line
    assert [p.name for p in used.iterdir()] == ["notes.txt"]


def test_resume_refuses_to_change_a_run_setting(messy_run, capsys) -> None:
    run = messy_run["run"]
    before = sorted(p.name for p in run.iterdir())
    line = fails(train.main, ["--resume", str(run), "--set", "WINDOW_SIZE=64"], capsys)
    assert str(run) in line and "WINDOW_SIZE=64 differs from the run's 32" in line
    assert "Start a new run" in line
    assert sorted(p.name for p in run.iterdir()) == before
