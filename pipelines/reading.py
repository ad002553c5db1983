"""Reading a query's documents into one canonical frame, page by page."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator, Sequence

import pandas as pd

from pipelines.quarantine import Quarantine
from pipelines.query import Query
from pipelines.schema import FieldMapping, Normalised, empty_frame, normalise
from pipelines.shapes import Shape
from pipelines.sources.base import Document, Source


def normalise_shaped(
    docs: Sequence[Document],
    mapping: FieldMapping,
    shape: Shape,
    extra: Sequence[str] = (),
    *,
    deduplicate: bool = True,
) -> Normalised:
    """Documents as the container's shape holds them, to the canonical frame (messages one
    per document or per session element, see :mod:`pipelines.shapes`)."""
    if mapping.container != "messages":
        return normalise(docs, mapping, extra, deduplicate=deduplicate)
    messages, unreadable = shape.messages(docs, mapping)
    result = normalise(messages, mapping, extra, deduplicate=deduplicate)
    return Normalised(result.frame, [*unreadable, *result.quarantined])


def read_frame(
    source: Source,
    query: Query,
    mapping: FieldMapping,
    quarantine: Quarantine,
    extra: Sequence[str] = (),
    shape: Shape | None = None,
) -> pd.DataFrame:
    """The canonical frame of what ``query`` matches; unreadable documents quarantined.

    Page by page: a column batch is read as it is, not rebuilt into documents.
    Pages are joined, then de-duplicated as a whole (an id read twice keeps its
    last version).  ``extra`` names optional columns to keep (``content``).
    """
    frames = []
    for page in source.fetch(query):
        result = normalise_shaped(page, mapping, shape or Shape(), extra, deduplicate=False)
        quarantine.add(result.quarantined)
        if len(result.frame):
            frames.append(result.frame)
    if not frames:
        dimensions = [name for name, _ in mapping.dimensions]
        return empty_frame(query.container, [*dimensions, *extra])
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return frame.drop_duplicates("id", keep="last").reset_index(drop=True)


_collector_lock = threading.Lock()
_collector_pauses = 0
_collector_was_enabled = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Hold Python's cyclic garbage collector off during a bulk read.

    A cold read decodes millions of small, acyclic objects (JSON values) and frees
    them batch by batch; every collection it would trigger walks the ones alive,
    which costs a tenth of the read.  Reference counting still frees them.  Pauses
    nest across threads: the collector resumes when the last one ends, and only if
    it ran before the first.
    """
    global _collector_pauses, _collector_was_enabled
    with _collector_lock:
        if _collector_pauses == 0:
            _collector_was_enabled = gc.isenabled()
            gc.disable()
        _collector_pauses += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_pauses -= 1
            if _collector_pauses == 0 and _collector_was_enabled:
                gc.enable()
