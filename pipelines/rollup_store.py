"""The rollups of one process's messages: built once, kept current, kept across restarts.

A :class:`RollupKeeper` holds the hourly :class:`~pipelines.rollups.Rollups` of every
message the source holds (its history read once, page by page, never whole in memory),
brings them up to date from the change feed at each refresh (reading only what changed,
and the hours an update touches), and writes them with their change-feed token to a
:class:`RollupStore` after each change: Redis when configured (shared by every process
and replica), a file beside the embedded store otherwise.  A process that starts with
stored rollups reads only the changes since their token, never the history again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from pipelines.errors import AgentdashError, SourceUnavailableError
from pipelines.quarantine import Quarantine
from pipelines.query import Query
from pipelines.reading import collector_paused, normalise_shaped
from pipelines.rollups import Rollups
from pipelines.schema import FieldMapping, empty_frame
from pipelines.shapes import Shape
from pipelines.sources.base import ChangeSet, Source

log = logging.getLogger(__name__)

FORMAT = 1
"""Version of the stored form; rollups stored in another are built again."""
CHUNK_ROWS = 250_000
"""Rows normalised before they are rolled up, while the history is read."""


@dataclass(frozen=True)
class StoredRollups:
    """Rollups as stored: the bytes, the change-feed token they are current to, and when."""

    data: bytes
    token: str
    as_of: datetime


class RollupStore(Protocol):
    """Where rollups outlive the process (key: the source, mapping and prices they roll up)."""

    def load(self, key: str) -> StoredRollups | None: ...

    def save(self, key: str, stored: StoredRollups) -> None: ...


def _pack(stored: StoredRollups) -> bytes:
    header = json.dumps(
        {"format": FORMAT, "token": stored.token, "as_of": stored.as_of.isoformat()}
    ).encode()
    return struct.pack("<I", len(header)) + header + stored.data


def _unpack(raw: bytes) -> StoredRollups | None:
    try:
        (size,) = struct.unpack_from("<I", raw)
        header = json.loads(raw[4 : 4 + size])
        if header.get("format") != FORMAT:
            return None
        return StoredRollups(
            raw[4 + size :], str(header["token"]), datetime.fromisoformat(header["as_of"])
        )
    except (struct.error, ValueError, KeyError, TypeError):
        return None


class MemoryRollupStore:
    """Kept in this process only (tests, notebooks over a source without a folder)."""

    def __init__(self) -> None:
        self._held: dict[str, bytes] = {}

    def load(self, key: str) -> StoredRollups | None:
        raw = self._held.get(key)
        return None if raw is None else _unpack(raw)

    def save(self, key: str, stored: StoredRollups) -> None:
        self._held[key] = _pack(stored)


class FileRollupStore:
    """One file per key in ``folder`` (beside the embedded store), replaced atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / f"rollups-{key[:32]}.bin"

    def load(self, key: str) -> StoredRollups | None:
        try:
            return _unpack(self._path(key).read_bytes())
        except OSError:
            return None

    def save(self, key: str, stored: StoredRollups) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".rollups-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_pack(stored))
            os.replace(temporary, self._path(key))
        except OSError as exc:
            log.warning("could not keep the rollups in %s: %s", self.folder, exc)
            with contextlib.suppress(OSError):
                os.unlink(temporary)


class RedisRollupStore:
    """In Redis, shared by every process and replica; a Redis that is down keeps nothing
    (the process keeps its rollups in memory and builds them again after a restart).

    Redis holds at most 512 MB in one value (``proto-max-bulk-len``), and the rollups of
    ten million messages are larger: they are written in parts of ``part_bytes``, then the
    key is pointed at them (``parts:`` and a JSON list of the part keys), and the parts it
    pointed at before are removed.  A reader finds the parts the key points at, or, if a
    writer removed them meanwhile, reads the key once more.
    """

    def __init__(self, client: Any, part_bytes: int = 64 * 2**20) -> None:
        self.client = client
        self.part_bytes = part_bytes

    def load(self, key: str) -> StoredRollups | None:
        name = f"agentdash:rollups:{key}"
        try:
            for _ in range(2):
                raw = self.client.get(name)
                if raw is None or not raw.startswith(_PARTS):
                    return None if raw is None else _unpack(raw)
                parts = self.client.mget(json.loads(raw[len(_PARTS) :]))
                if all(part is not None for part in parts):
                    return _unpack(b"".join(parts))
        except Exception as exc:  # redis' errors: the store is down, not the dashboard
            log.warning("could not read the rollups from Redis: %s", exc)
            return None
        log.warning("the rollups in Redis changed twice while being read: building them")
        return None

    def save(self, key: str, stored: StoredRollups) -> None:
        name = f"agentdash:rollups:{key}"
        packed = memoryview(_pack(stored))
        generation = uuid.uuid4().hex
        names = [
            f"{name}:part:{generation}:{i}"
            for i in range(max(1, -(-len(packed) // self.part_bytes)))
        ]
        pointed = False
        try:
            before = self.client.get(name)
            size = self.part_bytes
            for i, part in enumerate(names):
                self.client.set(part, bytes(packed[i * size : (i + 1) * size]))
            self.client.set(name, _PARTS + json.dumps(names).encode())
            pointed = True
            if before is not None and before.startswith(_PARTS):
                stale = [old for old in json.loads(before[len(_PARTS) :]) if old not in names]
                if stale:
                    self.client.delete(*stale)
        except Exception as exc:
            log.warning("could not keep the rollups in Redis: %s", exc)
            if not pointed:  # parts nothing points at
                with contextlib.suppress(Exception):
                    self.client.delete(*names)


_PARTS = b"parts:"


@dataclass
class RollupState:
    """What the Ops view and the benchmarks read of a keeper."""

    built_seconds: float = 0.0
    documents_built: int = 0
    loaded: bool = False
    refreshes: int = 0
    documents_read: int = 0
    last_refresh_seconds: float = 0.0
    as_of: datetime | None = None
    nbytes: int = 0
    #: Goes up each time the rollups change (built, read, or changes taken in).
    version: int = 0
    buckets: int = 0


class RollupKeeper:
    """The rollups of the messages ``query`` reads from ``source``, kept current.

    ``read_rows(start, end)`` gives the canonical rows with ``start <= timestamp < end``
    (the hours an update touches are rebuilt from them); ``priced`` adds the cost.
    """

    def __init__(
        self,
        source: Source,
        query: Query,
        mapping: FieldMapping,
        shape: Shape,
        quarantine: Quarantine,
        priced: Callable[[pd.DataFrame], pd.DataFrame],
        read_rows: Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame],
        store: RollupStore,
        key: str,
        offset_minutes: int = 0,
        *,
        changes: Callable[[Query, str | None], ChangeSet] | None = None,
    ) -> None:
        self.source, self.query, self.mapping, self.shape = source, query, mapping, shape
        #: How the change feed is read (default: of the source itself).
        self.changes = changes or source.changes
        self.quarantine, self.priced, self.read_rows = quarantine, priced, read_rows
        self.store, self.key, self.offset_minutes = store, key, offset_minutes
        self.dimensions = tuple(name for name, _ in mapping.dimensions)
        self.state = RollupState()
        self._rollups: Rollups | None = None
        self._token: str | None = None
        self._lock = threading.Lock()
        #: Why the last refresh failed, until one succeeds.
        self.error: str | None = None

    @property
    def buckets(self) -> int:
        """Buckets held (one per hour and key that has messages)."""
        return self.state.buckets

    @property
    def ready(self) -> bool:
        """True once the rollups are in memory (asking costs no read)."""
        return self._rollups is not None

    def get(self) -> Rollups:
        """The rollups: in memory, else stored (then brought up to date), else built."""
        rollups = self._rollups
        if rollups is not None:
            return rollups
        with self._lock:
            if self._rollups is None:
                self._start()
            assert self._rollups is not None
            return self._rollups

    def _start(self) -> None:
        stored = self.store.load(self.key)
        if stored is not None:
            try:
                rollups = Rollups.from_bytes(stored.data)
                self.state.loaded, self.state.as_of = True, stored.as_of
                self.state.buckets = len(rollups.table)
                self.state.version += 1
                # Last: other threads take the rollups as ready once they are set.
                self._token, self._rollups = stored.token, rollups
                log.info("rollups read from their store, current to %s", stored.as_of)
                self._catch_up()
                return
            except AgentdashError as exc:
                log.warning("stored rollups cannot be read (%s): building them again", exc)
        self._build()

    def _build(self) -> None:
        started = time.perf_counter()
        before = self.source.stats.snapshot()["documents"]
        # The token first: whatever is written during the read comes back as a change.
        token = self.source.changes(self.query, None).token
        as_of = datetime.now(UTC)
        parts: list[Rollups] = []
        pending: list[pd.DataFrame] = []
        held = 0

        def roll() -> None:
            nonlocal held
            frame = pd.concat(pending, ignore_index=True) if len(pending) > 1 else pending[0]
            frame = frame.drop_duplicates("id", keep="last")
            parts.append(Rollups.build(self.priced(frame), self.dimensions, self.offset_minutes))
            pending.clear()
            held = 0

        try:
            with collector_paused():
                for page in self.source.fetch(self.query):
                    result = normalise_shaped(page, self.mapping, self.shape, deduplicate=False)
                    self.quarantine.add(result.quarantined)
                    if len(result.frame):
                        pending.append(result.frame)
                        held += len(result.frame)
                    if held >= CHUNK_ROWS:
                        roll()
                if not pending and not parts:  # no message at all
                    pending.append(empty_frame("messages", list(self.dimensions)))
                if pending:
                    roll()
        except AgentdashError:
            raise
        except Exception as exc:
            raise SourceUnavailableError(f"building the rollups failed: {exc}") from exc
        # Merged in pairs, then pairs of pairs: each message is merged about log2(parts)
        # times (one after the other, the first part would be merged once per part).
        while len(parts) > 1:
            pairs = range(0, len(parts) - 1, 2)
            parts = [parts[i].merge(parts[i + 1]) for i in pairs] + parts[len(parts) // 2 * 2 :]
        (rollups,) = parts
        self.state.built_seconds = time.perf_counter() - started
        self.state.documents_built = int(self.source.stats.snapshot()["documents"] - before)
        self.state.as_of, self.state.nbytes = as_of, rollups.nbytes
        self.state.buckets = len(rollups.table)
        self.state.version += 1
        # Last: other threads take the rollups as ready once they are set.
        self._token, self._rollups = token, rollups
        log.info(
            "rollups built from %d documents in %.1f s",
            self.state.documents_built,
            self.state.built_seconds,
        )
        self._save(as_of)

    def refresh(self) -> int:
        """Apply the changes since the token; returns the documents read (0: not built)."""
        if self._rollups is None:
            return 0
        with self._lock:
            return self._catch_up()

    def _catch_up(self) -> int:
        assert self._rollups is not None and self._token is not None
        started = time.perf_counter()
        before = self.source.stats.snapshot()["documents"]
        as_of = datetime.now(UTC)
        changes = self.changes(self.query, self._token)
        if changes.documents:
            result = normalise_shaped(changes.documents, self.mapping, self.shape)
            self.quarantine.add(result.quarantined)
            gone: Sequence[str] = [q.id for q in result.quarantined if q.id is not None]
            self._rollups = self._rollups.apply(self.priced(result.frame), gone, self._reread)
        self._token = changes.token
        read = int(self.source.stats.snapshot()["documents"] - before)
        self.state.refreshes += 1
        self.state.documents_read += read
        self.state.last_refresh_seconds = time.perf_counter() - started
        self.state.as_of, self.state.nbytes = as_of, self._rollups.nbytes
        self.state.buckets = len(self._rollups.table) if changes.documents else self.state.buckets
        if changes.documents:
            self.state.version += 1
            self._save(as_of)
        return read

    def _reread(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        return self.priced(self.read_rows(start, end))

    def _save(self, as_of: datetime) -> None:
        assert self._rollups is not None and self._token is not None
        self.store.save(self.key, StoredRollups(self._rollups.to_bytes(), self._token, as_of))
