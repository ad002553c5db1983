"""What a process's live frames cost and how fresh they are, as plain values.

One :class:`Status` feeds the Ops view and the health endpoint alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RefreshRecord:
    """What one read of one live frame (a cold load or a refresh) read and cost."""

    spec: str
    at: datetime
    documents: int
    rows_changed: int
    seconds: float
    request_charge: float
    throttled: int
    requests: int
    error: str | None = None
    adopted: bool = False
    """True when another process did the read and this one took its result from the cache."""


@dataclass(frozen=True)
class FrameState:
    """One live frame: its size, the time of its data and whether its last refresh failed."""

    frame: str
    rows: int
    as_of: datetime
    stale: bool
    error: str | None
    version: int
    #: Bytes its rows hold in this process.
    bytes: int = 0


@dataclass(frozen=True)
class Status:
    """Source, cache, quarantine and live frames of one process, at one moment."""

    source: str
    source_stats: dict[str, float]
    cache: str
    cache_healthy: bool
    cache_stats: dict[str, int]
    quarantined: int
    quarantine_reasons: dict[str, int]
    frames: tuple[FrameState, ...]
    refreshes: tuple[RefreshRecord, ...]
    listeners: int

    @property
    def oldest(self) -> datetime | None:
        """The time of the oldest data held, None when no frame is held."""
        return min((frame.as_of for frame in self.frames), default=None)

    @property
    def stale(self) -> bool:
        """Whether any frame shows data its last refresh failed to bring up to date."""
        return any(frame.stale for frame in self.frames)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; times in ISO 8601."""
        return {
            **{k: v for k, v in asdict(self).items() if k not in ("frames", "refreshes")},
            "frames": {
                f.frame: _jsonable({k: v for k, v in asdict(f).items() if k != "frame"})
                for f in self.frames
            },
            "refreshes": [_jsonable(asdict(r)) for r in self.refreshes],
        }


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
