"""Applying changes read from a source to a live frame: a pure function of frames.

A live frame holds a window's rows and those of the period before it (for
comparisons); a refresh brings the documents changed since the last read.
:func:`merge` upserts them by id, drops what left both periods, and says what
changed, so that the caller knows whether the frame, its version and the
cache need anything at all.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from pipelines.arrow import MAX_CHUNKS, chunks, isin, rechunk
from pipelines.windows import Window


@dataclass(frozen=True)
class Merged:
    """A frame after a merge, and what the merge changed."""

    frame: pd.DataFrame
    """The rows after the changes; the very frame given when nothing changed."""
    changed: pd.DataFrame
    """Rows new or updated by the changes that lie in the frame's periods."""
    upserted: bool
    """Whether any row was added, updated or removed by the changes themselves."""
    moved: bool
    """Whether rows left the frame, or crossed from the window into the period before."""

    @property
    def unchanged(self) -> bool:
        """Nothing to show: no row added, updated, removed or moved between periods."""
        return not (self.upserted or self.moved)


def _inside(window: Window, times: pd.Series, as_of: datetime) -> pd.Series:
    inside = times >= window.previous_bounds(as_of)[0]
    if window.label is None and window.end is not None:
        inside &= times <= window.end
    return inside


def _crossed(window: Window, times: pd.Series, before: datetime, after: datetime) -> bool:
    """Whether a row left the window for the previous period between two as-of times."""
    if window.label is None:
        return False
    edge_before, edge_after = before - window.length, after - window.length
    return bool(((times > edge_before) & (times <= edge_after)).any())


SETTLE = 0.01
"""Share of a relative window's length it may slide, with nothing read, before its rows are
cut again: a refresh that reads nothing changes nothing (same frame, same version, no
copy, no cache write) until the window has slid this far (14 minutes of 24 hours, 7 hours
of 30 days); the periods' numbers are then at most this share of a window behind."""


def merge(
    frame: pd.DataFrame,
    changes: pd.DataFrame,
    window: Window | None,
    as_of: datetime,
    *,
    container: str,
    time_column: str,
    previous_as_of: datetime | None = None,
    gone: Collection[str] = (),
) -> Merged:
    """Upsert ``changes`` (canonical rows) into ``frame`` by id, as of ``as_of``.

    ``gone`` holds ids whose latest version can no longer be read (quarantined):
    their rows leave the frame, as an update would replace them.  With a
    ``window``, rows before its previous period (or after a fixed end) are
    dropped, and a relative window that moved on since ``previous_as_of``
    reports rows that crossed into the previous period as moved.  With nothing
    replaced, a relative window that slid less than :data:`SETTLE` of its length
    since ``previous_as_of`` (when its rows were last cut) is left as it is.  Text
    columns are combined into one chunk once merges have split them into many.
    """
    result = frame
    replaced = pd.concat(
        [changes["id"], pd.Series(list(gone), dtype=changes["id"].dtype)], ignore_index=True
    )
    if len(replaced):
        result = pd.concat([frame[~isin(frame["id"], replaced)], changes], ignore_index=True)
    moved = False
    if (
        not len(replaced)
        and window is not None
        and window.label is not None
        and previous_as_of is not None
        and as_of - previous_as_of < window.length * SETTLE
    ):
        return Merged(frame, changes, False, False)
    if window is not None:
        inside = _inside(window, result[time_column], as_of)
        if not bool(inside.all()):
            result = result.loc[inside].reset_index(drop=True)
            moved = True
        changes = changes.loc[_inside(window, changes[time_column], as_of)]
        if previous_as_of is not None:
            moved = moved or _crossed(window, result[time_column], previous_as_of, as_of)
    if result is not frame and chunks(result) > MAX_CHUNKS:
        result = rechunk(result, container)
    return Merged(result, changes, bool(len(replaced)), moved)
