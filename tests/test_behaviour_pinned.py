"""The same seed gives the same trained weights and the same paths as the recorded reference.

A guard for refactoring: a tiny seeded train -> generate run through the scripts
(unconditional with both volatility rows, and a vol-regime conditional run asked
for a class), and a tiny fit of the 1-D diffusion baseline, are compared with
values recorded from the code before a restructuring. Any change of the random
draws, the data order, the loss, the optimizer, the EMA, the transform or the
sampler moves them by far more than the tolerance.

Record the reference again (only for a deliberate change of behaviour, said so in
the commit) with ``python -m tests.test_behaviour_pinned --record``.
"""

from __future__ import annotations

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

REFERENCE = Path(__file__).parent / "data" / "pinned_reference.safetensors"
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


def test_same_seed_gives_the_recorded_weights_and_paths(tmp_path: Path) -> None:
    assert REFERENCE.is_file(), f"{REFERENCE} is missing; record it (see the module docstring)"
    want = load_file(REFERENCE)
    got = run_pipeline(tmp_path)
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=RTOL, atol=ATOL, err_msg=key)


def _record() -> None:
    import tempfile

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        arrays = run_pipeline(Path(tmp))
    REFERENCE.parent.mkdir(exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, REFERENCE)
    print(f"wrote {REFERENCE} ({len(arrays)} arrays)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python -m tests.test_behaviour_pinned --record")
    _record()
