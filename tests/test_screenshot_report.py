"""The headless-Chromium check of report.html: passes on a good report, fails on a broken figure."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.screenshot_report import (
    ReportCheckError,
    blank,
    check_report,
    find_chromium,
    probe,
)
from evaluation.figures import to_base64
from evaluation.report import write_report

needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="no Chromium installed (apt-get install chromium)"
)
RESULTS = {"settings": {"real": "test"}, "generators": {}, "notes": []}


def _plot(seed: int) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.random.default_rng(seed).standard_normal(100).cumsum())
    return to_base64(fig)


def _png(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _report(tmp_path: Path, figures: dict[str, str]) -> Path:
    page, _ = write_report(
        tmp_path / "report.html", RESULTS, [(k, lambda v=v: v) for k, v in figures.items()]
    )
    return page


def test_blank_tells_flat_from_drawn():
    assert blank(Image.new("RGB", (50, 40), "white"))
    drawn = Image.new("RGB", (50, 40), "white")
    drawn.paste((0, 0, 0), (10, 10, 30, 20))
    assert not blank(drawn)


def test_missing_browser_is_a_clear_error(tmp_path):
    page = _report(tmp_path, {"a": _plot(0)})
    with pytest.raises(ReportCheckError, match="no Chromium found"):
        check_report(page, chromium="no-such-browser-here")


@needs_chromium
def test_every_figure_of_a_good_report_renders(tmp_path):
    page = _report(tmp_path, {"first": _plot(0), "second": _plot(1)})
    result = check_report(page, tmp_path / "shot.png", width=900)
    assert result["embedded"] == 2 and result["rendered"] == 2
    shot = Image.open(tmp_path / "shot.png")
    assert shot.width == 900 and shot.height == result["height"] and not blank(shot)


@needs_chromium
@pytest.mark.parametrize(
    ("figure", "message"),
    [
        (base64.b64encode(b"not a png at all").decode(), "does not decode"),
        (_png(Image.new("RGB", (300, 200), "white")), "blank"),
    ],
    ids=["corrupt", "blank"],
)
def test_a_broken_or_blank_figure_fails(tmp_path, figure, message):
    page = _report(tmp_path, {"good": _plot(0), "bad": figure})
    with pytest.raises(ReportCheckError, match=message):
        check_report(page, tmp_path / "shot.png")


@needs_chromium
def test_the_browser_reports_an_image_it_cannot_load(tmp_path):
    # The browser-side check on its own (check_report stops earlier, at the decode check).
    page = _report(tmp_path, {"good": _plot(0), "bad": base64.b64encode(b"garbage").decode()})
    images = probe(find_chromium(), page, 800, str(tmp_path / "profile"), timeout=120)["images"]
    assert [im["ok"] for im in images] == [True, False]
