"""Shared fixtures: tiny settings so that a train -> generate run takes seconds on a CPU."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from utils.threads import single_thread

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Two cores are shared by everything on a CI machine; more threads only contend.
torch.set_num_threads(min(2, os.cpu_count() or 1))


def tiny_settings(save_dir: Path, **extra: object) -> list[str]:
    """Command-line flags for a model of a few thousand parameters on 32-step windows."""
    values = {
        "WINDOW_SIZE": 32,
        "SCALES": 6,
        "BLOCK_OUT_CHANNELS": "(8,16)",
        "LAYERS_PER_BLOCK": 1,
        "NUM_TIMESTEPS": 50,
        "BATCH_SIZE": 8,
        "WARMUP_STEPS": 2,
        "STRIDE": 4,
        "N_SAMPLES": 6,
        "SAMPLE_BATCH": 4,
        "SAMPLING_STEPS": 3,
        "PRESET": "cpu",
        "SAVE_DIR": str(save_dir),
        "OUTPUT_DIR": str(save_dir / "outputs"),
    }
    values.update(extra)
    flags: list[str] = []
    for name, value in values.items():
        flags += ["--set", f"{name}={value}"]
    return flags


@pytest.fixture
def tiny(tmp_path: Path):
    """A function returning tiny flags under this test's temporary folder."""
    return lambda **extra: tiny_settings(tmp_path, **extra)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from a second thread, and on shared cores its spinning costs seconds."""
    with single_thread():
        yield
