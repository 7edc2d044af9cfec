"""The same seed gives the same trained weights and the same paths as the recorded reference.

A guard for refactoring: a tiny seeded train -> generate run through the scripts
(unconditional with both volatility rows, and a vol-regime conditional run asked
for a class), and a tiny fit of the 1-D diffusion baseline, are compared with
values recorded from the code before a restructuring. Any change of the random
draws, the data order, the loss, the optimizer, the EMA, the transform or the
sampler moves them by far more than the tolerance.

The pipeline runs in a child process whose PyTorch and oneDNN kernels are held to
AVX2 (PINNED_KERNELS): fp32 convolutions sum in another order with AVX-512, which
moved the conditional run's weights by up to 2.5% after 4 steps on an AVX-512
machine, so without the cap the reference would pin the CPU, not the code.

Record the reference again (only for a deliberate change of behaviour, said so in
the commit) with ``python -m tests.test_behaviour_pinned --record``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

import generate
import train
from tests.conftest import tiny_settings
from utils import checkpoint as ckpt
from utils.paths_io import read_paths
from utils.threads import single_thread

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).parent / "data" / "pinned_reference.safetensors"
# Read when torch loads, so they are set for a child process: the kernels the reference was recorded with.
PINNED_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
ATOL = 1e-6
RTOL = 1e-6
# fp32 everywhere: bf16 autocast would make the weights depend on the CPU's instruction set.
# The pinned runs are models without context channels (CONTEXT_FRACTIONS off) and without
# the tail stretch (TAIL_STRETCH off), which must train and sample exactly as such models
# always did.
COMMON = {"MIXED_PRECISION": "no", "SEED": 3, "CONTEXT_FRACTIONS": "()", "TAIL_STRETCH": 1.0}
RUNS = {
    "uncond": (
        {
            "MAX_STEPS": 5,
            "CHECKPOINT_EVERY": 3,
            "SCALES": 5,
            "LOCAL_VOL_WINDOW": 5,
            "VOLATILITY_ROW": True,
            "VOL_LEVEL": "fitted",
        },
        [],
    ),
    "cond": ({"MAX_STEPS": 4, "SCALES": 6}, ["--condition", "vol-regime"]),
}
GENERATE_ASKS = {"uncond": [], "cond": ["--condition", "high", "--guidance", "2"]}


def run_pipeline(root: Path) -> dict[str, np.ndarray]:
    """Train and generate every pinned run under ``root``; return the arrays to compare."""
    out: dict[str, np.ndarray] = {}
    with single_thread():
        for name, (extra, flags) in RUNS.items():
            save = root / name
            settings = tiny_settings(save, **COMMON, **extra)
            argv = [*settings, "--data", "sp500", "--run-name", "r", *flags]
            assert train.main(argv) == 0
            step = ckpt.list_checkpoints(save / "r")[-1]
            state = ckpt.load_train_state(step)
            for key, value in state["model"].items():
                out[f"{name}/model/{key}"] = _digest(value)
            for i, value in enumerate(state["ema"]):
                out[f"{name}/ema/{i}"] = _digest(value)
            paths = save / "paths.csv"
            argv = [*tiny_settings(save, **COMMON), "--out", str(paths), "--no-plot"]
            assert generate.main([*argv, *GENERATE_ASKS[name]]) == 0
            out[f"{name}/paths"] = read_paths(paths)
        out["diffusion1d/paths"] = _diffusion1d_paths()
    return out


def _digest(tensor: torch.Tensor) -> np.ndarray:
    """A tensor's first 8 values, sum and sum of absolute values: any change of it moves them."""
    flat = tensor.double().flatten().numpy()
    return np.concatenate([flat[:8], [flat.sum(), np.abs(flat).sum()]])


def _diffusion1d_paths() -> np.ndarray:
    from data.builtin import load_builtin
    from data.returns import log_returns
    from evaluation.diffusion1d import Diffusion1DBaseline
    from tests.test_diffusion1d import tiny_settings as tiny_1d_settings

    s = tiny_1d_settings(MAX_STEPS=4, SEED=1)
    r = log_returns(load_builtin("sp500").values)[:1500]
    model = Diffusion1DBaseline.fit(r, s, channels=(8, 16), layers=1)
    return model.sample(5, 32, seed=2)


def run_pinned(out: Path) -> None:
    """Run :func:`run_pipeline` in a child process with PINNED_KERNELS, saving its arrays to ``out``."""
    env = {**os.environ, **PINNED_KERNELS}
    command = [sys.executable, "-m", "tests.test_behaviour_pinned", "--write", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_same_seed_gives_the_recorded_weights_and_paths(tmp_path: Path) -> None:
    assert REFERENCE.is_file(), f"{REFERENCE} is missing; record it (see the module docstring)"
    want = load_file(REFERENCE)
    run_pinned(tmp_path / "got.safetensors")
    got = load_file(tmp_path / "got.safetensors")
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=RTOL, atol=ATOL, err_msg=key)


def _write(out: Path) -> None:
    """Run the pipeline (in this process, as the child of :func:`run_pinned`) and save its arrays."""
    import tempfile

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        arrays = run_pipeline(Path(tmp))
    out.parent.mkdir(exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
        _write(Path(sys.argv[2]))
    elif sys.argv[1:] == ["--record"]:
        run_pinned(REFERENCE)
        print(f"wrote {REFERENCE}")
    else:
        sys.exit("usage: python -m tests.test_behaviour_pinned --record")
