"""generate.load(checkpoint).sample(n, seed=...): the notebook entry point, with the CLI's defaults."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import generate
import train
from utils.paths_io import read_paths

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_thread) -> Path:
    from tests.conftest import tiny_settings

    root = tmp_path_factory.mktemp("api")
    argv = [*tiny_settings(root, MAX_STEPS=2), "--data", "sp500", "--run-name", "r"]
    assert train.main(argv) == 0
    return root / "r"


def test_python_paths_equal_the_command_lines(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.csv"
    argv = ["--checkpoint", str(run), "--n", "5", "--seed", "2", "--steps", "3", "--out", str(out)]
    assert generate.main([*argv, "--no-plot"]) == 0
    frame = generate.load(run).sample(5, seed=2, steps=3)
    assert list(frame.columns) == ["path", "step", "log_return", "price"]
    pd.testing.assert_frame_equal(frame, pd.read_csv(out), check_exact=False, rtol=1e-8)
    # The CLI's volatility level is the checkpoint's VOL_LEVEL (fitted in the cpu preset); the
    # Python entry point used to default to the generated row ("model") instead.
    model = generate.load(run).sample(5, seed=2, steps=3, vol_level="model")
    assert not np.allclose(model["log_return"], frame["log_return"])
    np.testing.assert_allclose(frame["log_return"].to_numpy().reshape(5, -1), read_paths(out))


def test_unknown_option_is_one_line(run: Path) -> None:
    with pytest.raises(generate.ScalodiffError, match="unknown option 'sed'"):
        generate.load(run).sample(2, sed=1)


def test_readme_python_example_runs(run: Path) -> None:
    block = re.search(r"```python\n(.*?)```", README, re.S)
    assert block, "README has no python example"
    code = block.group(1).replace("checkpoints/<run>", str(run))
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 (the README's own example)
    paths = namespace["paths"]
    assert isinstance(paths, pd.DataFrame) and paths["path"].nunique() == 100
