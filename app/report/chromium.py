"""PDF and PNG of a report page, drawn by a headless Chromium when one is installed.

Chromium runs as a plain subprocess (no Python package needed): the page is a
self-contained file, so it renders with no network.  It runs the page's scripts
in *virtual time* for up to ``RENDER_BUDGET_MS`` before it prints, which lets
BokehJS draw every chart without a fixed wait in real time.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

from PIL import Image, ImageChops

from app.report.errors import RendererMissingError, RenderFailedError
from app.report.page import add_to_head

Format = Literal["pdf", "png"]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = (
    "--headless",
    # Containers run as root, and Chromium's sandbox refuses root; the page is our own file.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
RENDER_BUDGET_MS = 20_000
TIMEOUT_SECONDS = 180
WIDTH = 1280
"""Width of the window, in CSS pixels, that the page is laid out and its charts drawn in."""
PAPERS = {"a4": (210.0, 297.0), "letter": (215.9, 279.4)}
"""Paper sizes of PDFs, width and height in millimetres."""
MARGIN_MM = 10.0
_PX_PER_MM = 96 / 25.4  # CSS pixels


def page_style(paper: str) -> str:
    """The ``@page`` rule of ``paper``, and the zoom that fits the window's width on it.

    Charts are drawn once, for the screen: zoomed, the printed page keeps the layout of
    a window ``WIDTH`` pixels wide, on paper of the size asked for.
    """
    width, height = PAPERS[paper]
    zoom = (width - 2 * MARGIN_MM) * _PX_PER_MM / WIDTH
    return (
        f"<style>@page {{ size: {width}mm {height}mm; margin: {MARGIN_MM}mm }}"
        f" @media print {{ html {{ zoom: {zoom:.4f} }} }}</style>"
    )


# Chromium screenshots the window, not the page: a window taller than the page,
# cropped to the content afterwards. Taller ones are tried if the page fills it.
PNG_HEIGHTS = (4000, 8000, 16000)


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium executable: ``explicit`` (a path or a name on PATH), else a usual name."""
    names = (explicit,) if explicit else CANDIDATES
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    if explicit:
        raise RendererMissingError(f"--chromium {explicit!r} is not an executable")
    raise RendererMissingError(
        f"PDF and PNG need Chromium and none was found on PATH (looked for {', '.join(names)}): "
        "install it (Debian: apt-get install chromium), pass --chromium PATH, "
        "or write HTML with --format html"
    )


def render(
    page: str, out: Path, fmt: Format, chromium: str | None = None, paper: str = "a4"
) -> None:
    """Write ``page`` (self-contained HTML) to ``out`` as a PDF on ``paper`` (see
    :data:`PAPERS`) or a full-page PNG."""
    binary = find_chromium(chromium)
    with tempfile.TemporaryDirectory(prefix="agentdash-report-") as tmp:
        source = Path(tmp) / "report.html"
        source.write_text(add_to_head(page, page_style(paper)), encoding="utf-8")
        profile = Path(tmp) / "profile"
        if fmt == "pdf":
            flags = [
                f"--window-size={WIDTH},1000",
                "--no-pdf-header-footer",
                f"--print-to-pdf={out}",
            ]
            _run(binary, profile, source, out, flags)
        else:
            _screenshot(binary, profile, source, out)


def _screenshot(binary: str, profile: Path, source: Path, out: Path) -> None:
    for height in PNG_HEIGHTS:
        flags = [f"--window-size={WIDTH},{height}", f"--screenshot={out}"]
        _run(binary, profile, source, out, flags)
        with Image.open(out) as shot:
            image = shot.convert("RGB")
        content = _content_box(image)
        if content is None:
            raise RenderFailedError(f"Chromium drew a blank page for {source.name}")
        if content[3] < height or height == PNG_HEIGHTS[-1]:
            image.crop((0, 0, WIDTH, min(height, content[3] + 16))).save(out, optimize=True)
            return


def _content_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """The box around what differs from the page's background (its bottom-right pixel)."""
    background = Image.new("RGB", image.size, image.getpixel((image.width - 1, image.height - 1)))
    return ImageChops.difference(image, background).getbbox()


def _run(binary: str, profile: Path, source: Path, out: Path, flags: list[str]) -> None:
    out.unlink(missing_ok=True)
    command = [
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={RENDER_BUDGET_MS}",
        *flags,
        source.as_uri(),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise RenderFailedError(
            f"Chromium ({binary}) did not finish within {TIMEOUT_SECONDS} s"
        ) from None
    except OSError as exc:
        raise RenderFailedError(f"Chromium ({binary}) could not start: {exc}") from None
    if result.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        detail = result.stderr.strip().splitlines()[-3:]
        raise RenderFailedError(
            f"Chromium ({binary}) exited with {result.returncode} and wrote no {out.suffix} file: "
            + " | ".join(detail)
        )
