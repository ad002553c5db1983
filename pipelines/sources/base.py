"""The one contract every source keeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

from pipelines.query import Query

Document = dict[str, Any]


class ColumnBatch(Sequence[Document]):
    """Documents held column by column: one sequence of values per field path.

    A source whose reads come back as rows of values (a projected query) hands
    them over like this, so that normalisation takes each column as it is
    instead of rebuilding it from one dict per document.  Read as a sequence,
    it gives the documents as dicts keyed by field path, built on demand.
    """

    def __init__(self, columns: dict[str, Sequence[Any]], length: int) -> None:
        self.columns = columns
        self._length = length

    @classmethod
    def from_rows(cls, fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> ColumnBatch:
        """Rows of values, each in the order of ``fields`` (ValueError when one is not)."""
        values = list(zip(*rows, strict=True)) if rows else [() for _ in fields]
        return cls(dict(zip(fields, values, strict=True)), len(rows))

    def column(self, path: str) -> Sequence[Any]:
        """The values of ``path``, None where the batch does not hold the field."""
        values = self.columns.get(path)
        return values if values is not None else [None] * self._length

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Document: ...

    @overload
    def __getitem__(self, index: slice) -> list[Document]: ...

    def __getitem__(self, index: int | slice) -> Document | list[Document]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        return {path: values[index] for path, values in self.columns.items()}

    def __iter__(self) -> Iterator[Document]:
        paths = list(self.columns)
        for row in zip(*self.columns.values(), strict=True):
            yield dict(zip(paths, row, strict=True))


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

    def fetch(self, query: Query) -> Iterator[Sequence[Document]]:
        """Yield pages of raw documents matching ``query`` (lists, or column batches)."""
        ...

    def changes(self, query: Query, token: str | None) -> ChangeSet:
        """Documents of ``query.container`` changed since ``token``.

        ``token=None`` returns no documents and the token for "now"; take it
        *before* a full read so that nothing written meanwhile is missed.
        Only the container and the projection of ``query`` are used.
        """
        ...
