"""Open an evaluation report in headless Chromium, screenshot it, and check every figure rendered.

    python benchmarks/screenshot_report.py outputs/compare/report.html          # -> report.png beside it
    python benchmarks/screenshot_report.py report.html --out shot.png --width 1400

``report.html`` embeds its figures as base64 PNGs. Three checks, each of which
fails the command (exit 1) with a line saying what is wrong:

1. every embedded PNG decodes and is not a blank image;
2. in the browser, every ``<img>`` loaded (``complete`` with a natural width):
   a copy of the page with a small script that records, on load, each image's
   state and position is read back with ``chromium --dump-dom``;
3. the screenshot, taken with a window as tall as the page, is not blank, and
   neither is the region of the screenshot where each figure was laid out.

Install the browser with ``apt-get install chromium`` (Debian); ``--chromium``
names another binary (chromium-browser, google-chrome).
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
MAX_HEIGHT = 16_000  # px; taller windows fail to allocate in software rendering
EMBEDDED = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
# Recorded by the page on load and read back from the DOM dump.
_PROBE = """<script>window.addEventListener('load', () => {
  const out = [...document.images].map(i => {const r = i.getBoundingClientRect();
    return {ok: i.complete && i.naturalWidth > 0, top: r.top + scrollY, left: r.left,
            width: r.width, height: r.height};});
  const pre = document.createElement('pre'); pre.id = 'scalodiff-probe';
  pre.textContent = JSON.stringify({images: out, height: document.documentElement.scrollHeight});
  document.body.appendChild(pre);});</script>"""


class ReportCheckError(Exception):
    """The report did not render as it should; the message says what is missing."""


def find_chromium(name: str | None = None) -> str | None:
    """Path of a headless-capable Chromium, or None when none is installed."""
    for candidate in [name] if name else BROWSERS:
        path = shutil.which(candidate)
        if path:
            return path
    return None


def blank(image: Image.Image, min_std: float = 2.0) -> bool:
    """True when an image is (nearly) one flat colour: grey-level std below ``min_std``."""
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    return grey.size == 0 or float(grey.std()) < min_std


def embedded_pngs(page: str) -> list[Image.Image]:
    """Decode every base64 PNG embedded in ``page``; a corrupt one raises ReportCheckError."""
    images = []
    for i, data in enumerate(EMBEDDED.findall(page)):
        try:
            img = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
            img.load()
        except Exception as exc:  # binascii.Error, PIL's UnidentifiedImageError, truncation
            raise ReportCheckError(f"embedded image {i + 1} does not decode: {exc}") from exc
        images.append(img)
    return images


def _run(chromium: str, args: list[str], profile: str, timeout: float) -> str:
    # --no-sandbox: Chromium refuses to run as root otherwise (CI containers run as root).
    base = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
    ]
    try:
        done = subprocess.run(
            base + args, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ReportCheckError(f"{chromium} did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-1:] or ["no message"]
        raise ReportCheckError(f"{chromium} exited with {done.returncode}: {tail[0]}")
    return done.stdout


def probe(chromium: str, page: Path, width: int, profile: str, timeout: float) -> dict[str, Any]:
    """Load a copy of ``page`` with the probe script; return each image's state and the page height."""
    text = page.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "probe.html"
        copy.write_text(text.replace("</body>", _PROBE + "</body>", 1), encoding="utf-8")
        dom = _run(
            chromium,
            [
                f"--window-size={width},1000",
                "--virtual-time-budget=10000",
                "--dump-dom",
                copy.as_uri(),
            ],
            profile,
            timeout,
        )
    found = re.search(r'<pre id="scalodiff-probe">(.*?)</pre>', dom, flags=re.S)
    if not found:
        raise ReportCheckError("the page's load event never fired in the browser (no probe output)")
    return json.loads(html.unescape(found.group(1)))


def check_report(
    page: str | Path,
    out: str | Path | None = None,
    width: int = 1280,
    chromium: str | None = None,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Screenshot ``page`` to ``out`` (default: beside it, ``.png``) and check every figure rendered.

    Returns
    -------
    dict
        ``embedded`` (images in the HTML), ``rendered`` (loaded in the browser and
        not blank in the screenshot), ``height`` (page height in px), ``screenshot``.

    Raises
    ------
    ReportCheckError
        When Chromium is missing or fails, or any figure is broken, blank or missing.
    """
    page = Path(page).resolve()
    shot = Path(out) if out else page.with_suffix(".png")
    browser = find_chromium(chromium)
    if browser is None:
        raise ReportCheckError(
            "no Chromium found; install it (apt-get install chromium) or pass --chromium PATH"
        )
    if not page.is_file():
        raise ReportCheckError(f"{page}: no such report")
    embedded = embedded_pngs(page.read_text(encoding="utf-8"))
    flat = [i + 1 for i, img in enumerate(embedded) if blank(img)]
    if flat:
        raise ReportCheckError(f"embedded image(s) {flat} are blank")
    with tempfile.TemporaryDirectory() as profile:
        info = probe(browser, page, width, profile, timeout)
        images = info["images"]
        if len(images) != len(embedded):
            raise ReportCheckError(f"the browser laid out {len(images)} images of {len(embedded)}")
        broken = [i + 1 for i, im in enumerate(images) if not im["ok"]]
        if broken:
            raise ReportCheckError(
                f"image(s) {broken} of {len(images)} did not load in the browser"
            )
        height = min(int(info["height"]) + 20, MAX_HEIGHT)
        shot.parent.mkdir(parents=True, exist_ok=True)
        _run(
            browser,
            [f"--window-size={width},{height}", f"--screenshot={shot.resolve()}", page.as_uri()],
            profile,
            timeout,
        )
    if not shot.is_file():
        raise ReportCheckError(f"{browser} wrote no screenshot to {shot}")
    picture = Image.open(shot)
    picture.load()
    if blank(picture):
        raise ReportCheckError(f"the screenshot {shot} is blank")
    rendered = 0
    for i, im in enumerate(images):
        box = (
            int(im["left"]),
            int(im["top"]),
            int(im["left"] + im["width"]),
            int(im["top"] + im["height"]),
        )
        if box[3] > picture.height:
            raise ReportCheckError(
                f"figure {i + 1} lies below the screenshot ({box[3]} > {picture.height} px); "
                f"the page is taller than {MAX_HEIGHT} px"
            )
        if box[2] - box[0] < 10 or box[3] - box[1] < 10 or blank(picture.crop(box)):
            raise ReportCheckError(f"figure {i + 1} is blank or collapsed in the screenshot")
        rendered += 1
    return {
        "embedded": len(embedded),
        "rendered": rendered,
        "height": height,
        "screenshot": str(shot),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="screenshot_report.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("report", help="report.html written by evaluate.py")
    p.add_argument("--out", metavar="PNG", help="screenshot file (default: beside the report)")
    p.add_argument("--width", type=int, default=1280, help="window width in px (default: 1280)")
    p.add_argument("--chromium", metavar="PATH", help="browser binary (default: found on PATH)")
    args = p.parse_args(argv)
    try:
        result = check_report(args.report, args.out, args.width, args.chromium)
    except ReportCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{result['rendered']} of {result['embedded']} figures rendered; "
        f"screenshot {result['screenshot']} ({args.width} x {result['height']} px)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
