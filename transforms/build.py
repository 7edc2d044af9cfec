"""The scalogram transform a run's settings ask for, fitted on its training windows."""

from __future__ import annotations

from typing import Any

from data.windows import model_window
from transforms.joint import JointScalogram
from transforms.volatility import VolatilityScalogram, transform_from_json
from transforms.wavelet import Scalogram
from utils.errors import ScalodiffError

# The transform's per-row scales are fitted on at most this many windows, evenly spaced
# over the training part. Stride-1 windows of a long series overlap almost entirely, so
# more add nothing to a root mean square, while fitting on all 8 M windows of 10 M minute
# bars took float64 copies of every window (16 GiB) and many minutes.
FIT_WINDOWS = 65_536


def build_transform(settings: dict[str, Any], windows: Any, saved: dict | None = None) -> Any:
    """The scalogram transform, fitted per row on the training ``windows`` (or as ``saved``).

    With VOLATILITY_ROW the wavelet rows see each window divided by its RMS (and,
    with LOCAL_VOL_WINDOW, by its moving RMS) and the volatility rows ride along.
    A joint run's windows ``[N, A, L]`` get one such transform per series, their
    images stacked along the channels (transforms/joint.py).
    """
    if saved is not None:
        return transform_from_json(saved)
    if settings["LOCAL_VOL_WINDOW"] and not settings["VOLATILITY_ROW"]:
        raise ScalodiffError(
            "setting LOCAL_VOL_WINDOW needs VOLATILITY_ROW = True: the local row is relative "
            "to the window's RMS, which the volatility row carries"
        )
    fit_windows = windows[:: -(-len(windows) // FIT_WINDOWS)]
    if settings.get("JOINT"):
        parts = [_unfitted(settings) for _ in range(fit_windows.shape[1])]
        return JointScalogram(parts).fit(fit_windows)
    return _unfitted(settings).fit(fit_windows)


def _unfitted(settings: dict[str, Any]) -> Scalogram | VolatilityScalogram:
    """The transform the settings ask for, before its row scales are fitted."""
    transform = Scalogram(
        window_size=model_window(settings),
        n_scales=settings["SCALES"],
        wavelet=settings["WAVELET"],
        mode=settings["TRANSFORM_MODE"],
        scale_min=settings["SCALE_MIN"],
        scale_max=settings["SCALE_MAX"],
        include_mean=settings["TRANSFORM_MODE"] != "magnitude",
        image_width=settings["IMAGE_SIZE"],
    )
    if not settings["VOLATILITY_ROW"]:
        return transform
    volatility = VolatilityScalogram(
        transform, settings["LOCAL_VOL_WINDOW"], settings["EDGE_MARGIN"]
    )
    # A number is used as it is; "fitted" is measured when training ends (train.py).
    if isinstance(settings.get("LOCAL_SPREAD"), float):
        volatility.local_spread = settings["LOCAL_SPREAD"]
    return volatility
