"""The one contract every source keeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipelines.query import Query

Document = dict[str, Any]


@dataclass
class ChangeSet:
    """Documents changed since a token, each in its latest version, and the next token."""

    documents: list[Document]
    token: str


@dataclass
class SourceStats:
    """What reading the source cost: requests, documents, request units, throttles."""

    requests: int = 0
    documents: int = 0
    request_charge: float = 0.0
    throttled: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(
        self, requests: int = 0, documents: int = 0, request_charge: float = 0.0, throttled: int = 0
    ) -> None:
        with self._lock:
            self.requests += requests
            self.documents += documents
            self.request_charge += request_charge
            self.throttled += throttled

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {
                "requests": self.requests,
                "documents": self.documents,
                "request_charge": round(self.request_charge, 3),
                "throttled": self.throttled,
            }


class Source(Protocol):
    """Reads documents; never aggregates, never knows about views."""

    #: Stable name of the data behind the source, part of every cache key.
    identity: str
    stats: SourceStats

    def fetch(self, query: Query) -> Iterator[list[Document]]:
        """Yield pages of raw documents matching ``query``."""
        ...

    def changes(self, query: Query, token: str | None) -> ChangeSet:
        """Documents of ``query.container`` changed since ``token``.

        ``token=None`` returns no documents and the token for "now"; take it
        *before* a full read so that nothing written meanwhile is missed.
        Only the container and the projection of ``query`` are used.
        """
        ...
