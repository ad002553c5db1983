"""Edits to a page saved by Panel: open it with no network, add to its head.

``save(resources=INLINE)`` inlines the JavaScript, but the page still links
Panel's stylesheets and icons at ``CDN_DIST`` (cdn.holoviz.org): in its head
and in the ``stylesheets`` of its components.  Components live in shadow DOM,
so a ``<style>`` in the page head could not reach them; each link is replaced
where it stands.  The files ship in the installed package, under ``DIST_DIR``.
"""

from __future__ import annotations

import base64
import json
import logging
import mimetypes
import re
from functools import cache
from pathlib import Path
from typing import Any

from panel.io.resources import CDN_DIST, DIST_DIR

log = logging.getLogger(__name__)

# A file under CDN_DIST, without the "?v=..." cache buster some links carry.
_CDN_FILE = re.compile(re.escape(CDN_DIST) + r"([^\"'\s()?\\]+)(\?[^\"'\s()\\]*)?")
_CSS_URL = re.compile(r"""url\(\s*(['"]?)(?!data:)([^'")]+)\1\s*\)""")
# Icon fonts are large, and no report component draws an icon with them.
_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}")
_HEAD = re.compile(r"<head\b[^>]*>")
_MIME = {".css": "text/css", ".svg": "image/svg+xml", ".ico": "image/x-icon"}


def self_contained(page: str) -> str:
    """``page`` with every link to a file of Panel's CDN replaced by that file as a data: URI.

    A link to a file the installed Panel lacks is left as it is, with a warning.
    """
    return _CDN_FILE.sub(_inlined, page)


def json_script(element_id: str, data: Any) -> str:
    """``data`` as JSON in a ``<script type="application/json">`` element, to read by id."""
    # "</" would end the script element early.
    text = json.dumps(data, indent=1).replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">\n{text}\n</script>'


def add_to_head(page: str, *elements: str) -> str:
    """``page`` with ``elements`` (HTML) at the start of its head."""
    # At the start: the inline scripts further down may hold "</head>" in their strings.
    head = _HEAD.search(page)
    if head is None:
        raise ValueError("the page has no <head> element")
    return page[: head.end()] + "".join(f"\n{e}" for e in elements) + page[head.end() :]


def _inlined(link: re.Match[str]) -> str:
    path = DIST_DIR / link[1]
    if not path.is_file():
        log.warning("%s is not in the installed Panel: the report links it", link[0])
        return link[0]
    return _data_uri(path)


@cache
def _data_uri(path: Path) -> str:
    content = path.read_bytes()
    if path.suffix == ".css":
        content = _inline_css(content.decode("utf-8"), path.parent).encode("utf-8")
    mime = _MIME.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "text/plain"
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def _inline_css(css: str, folder: Path) -> str:
    """``css`` without web fonts, and with the images it refers to inlined."""

    def inline(url: re.Match[str]) -> str:
        target = (folder / url[2]).resolve()
        if not target.is_file():
            log.warning("%s refers to the missing %s: the report drops it", folder, url[2])
            return "none"
        return f"url({_data_uri(target)})"

    return _CSS_URL.sub(inline, _FONT_FACE.sub("", css))
