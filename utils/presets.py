"""Model and transform sizes for the hardware at hand.

A preset fills every setting that config.py leaves as None. ``cpu`` is sized to
learn something useful in about ten minutes on two cores; ``gpu`` is larger;
``seed`` is the reference implementation's configuration, kept for comparison.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # 16 x 256 signed scalograms (13 scales, the mean row, the local volatility row, the
    # volatility row). The two volatility rows carry the heteroscedasticity (benchmarks/README.md);
    # the power transform's strength is fitted to the training returns' tails (data/tails.py)
    # and the generated local row's spread to the training rows' at the end (models/calibration.py). Few channels at full
    # resolution, where convolutions cost the most, and more below; attention at
    # the lowest level (2 x 32 positions) sees the whole window at once.
    "cpu": {
        "TRANSFORM_MODE": "signed",
        "WAVELET": "morl",
        "SCALES": 13,
        "RETURN_POWER": "fitted",
        "LOCAL_SPREAD": "fitted",
        "TAIL_STRETCH": "fitted",
        "CONTINUATION_LEVEL": "fitted",
        "VOLATILITY_ROW": True,
        "LOCAL_VOL_WINDOW": 21,
        "EDGE_MARGIN": 16,
        # Measured on the S&P 500 at 1,000 steps: the unconditional windows of a context model
        # are as good as those of a model without (kurtosis 6.98 vs 7.32, real 7.73; ACF |r|
        # distance 0.085 vs 0.091), at 4% fewer samples/s.
        "CONTEXT_FRACTIONS": (0.25, 0.5, 0.75),
        "VOL_LEVEL": "fitted",
        "BLOCK_OUT_CHANNELS": (16, 32, 64, 128),
        "LAYERS_PER_BLOCK": 1,
        "ATTENTION_LEVELS": 1,
        "PREDICTION_TYPE": "v_prediction",
        "NUM_TIMESTEPS": 1000,
        "BETA_SCHEDULE": "squaredcos_cap_v2",
        "BATCH_SIZE": 32,
        "EPOCHS": 1000,
        "MAX_MINUTES": 9.0,
        "LR": 1e-3,
        "SAMPLER": "dpm",
    },
    # 64 x 256 signed scalograms, 4 levels with attention at the lowest.
    "gpu": {
        "TRANSFORM_MODE": "signed",
        "WAVELET": "morl",
        "SCALES": 62,
        "RETURN_POWER": 1.5,
        "LOCAL_SPREAD": 1.0,
        "TAIL_STRETCH": "fitted",
        "CONTINUATION_LEVEL": "fitted",
        "VOLATILITY_ROW": True,
        "LOCAL_VOL_WINDOW": 0,
        "EDGE_MARGIN": 16,
        "CONTEXT_FRACTIONS": (),
        "VOL_LEVEL": "fitted",
        "BLOCK_OUT_CHANNELS": (64, 128, 192, 256),
        "LAYERS_PER_BLOCK": 2,
        "ATTENTION_LEVELS": 1,
        "PREDICTION_TYPE": "v_prediction",
        "NUM_TIMESTEPS": 1000,
        "BETA_SCHEDULE": "squaredcos_cap_v2",
        "BATCH_SIZE": 128,
        "EPOCHS": 200,
        "MAX_MINUTES": 60.0,
        "LR": 3e-4,
        "SAMPLER": "dpm",
    },
    # The reference implementation: |CWT| with 'morl' over 128 scales resized to
    # 128 x 128, UNet (64, 128, 256, 256) with attention in the two lowest blocks,
    # epsilon prediction, linear DDPM schedule sampled with all 1000 steps.
    "seed": {
        "TRANSFORM_MODE": "magnitude",
        "WAVELET": "morl",
        "SCALES": 128,
        "RETURN_POWER": 1.5,
        "TAIL_STRETCH": 1.0,
        "CONTINUATION_LEVEL": "off",
        "VOLATILITY_ROW": False,
        "LOCAL_VOL_WINDOW": 0,
        "EDGE_MARGIN": 0,
        "CONTEXT_FRACTIONS": (),
        "VOL_LEVEL": "model",
        "IMAGE_SIZE": 128,
        "BLOCK_OUT_CHANNELS": (64, 128, 256, 256),
        "LAYERS_PER_BLOCK": 2,
        "ATTENTION_LEVELS": 2,
        "PREDICTION_TYPE": "epsilon",
        "NUM_TIMESTEPS": 1000,
        "BETA_SCHEDULE": "linear",
        "BATCH_SIZE": 16,
        "EPOCHS": 10,
        "MAX_MINUTES": None,
        "LR": 1e-4,
        "SAMPLER": "ddpm",
    },
}

# From benchmarks/sampling.py: DPM-Solver++ and UniPC match their 50-step results from 20
# steps on (benchmarks/README.md), and 20 steps are 50x fewer UNet calls than DDPM-1000.
DEFAULT_STEPS = {"dpm": 20, "unipc": 20, "ddim": 50}


def resolve_preset(name: str, cuda_available: bool) -> str:
    """Turn ``auto`` into ``gpu`` or ``cpu``; other names pass through."""
    if name == "auto":
        return "gpu" if cuda_available else "cpu"
    return name
