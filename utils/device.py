"""The training or sampling device and its precision, from the DEVICE and MIXED_PRECISION settings."""

from __future__ import annotations

import torch

from utils.errors import ScalodiffError


def resolve_device(setting: str) -> torch.device:
    """``cuda`` when DEVICE allows it and a GPU is visible, else ``cpu``.

    DEVICE = "cuda" without a visible GPU is an error rather than a silent fall back
    to the CPU (a run meant for minutes on a GPU would take hours).

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if setting == "cuda" and not torch.cuda.is_available():
        raise ScalodiffError("setting DEVICE is 'cuda' but no CUDA GPU is visible; use auto or cpu")
    return torch.device("cuda" if setting != "cpu" and torch.cuda.is_available() else "cpu")


def resolve_mixed_precision(setting: str, use_cpu: bool) -> str:
    """``auto`` means bf16 autocast where the hardware has native bf16, else fp32 (``no``).

    On a CPU that means AVX512-BF16 or AMX (oneDNN reports it); there bf16
    autocast roughly doubled training throughput of the cpu preset in our runs.
    Elsewhere bf16 is emulated and slower, so auto stays in fp32.
    """
    if setting != "auto":
        return setting
    if use_cpu:
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "no"
