"""The embedded store: JSON documents in one SQLite file (WAL mode).

Several processes may read while one writes.  Every write takes the next value
of a monotonic change sequence, which plays the role of Cosmos DB's change
feed: ``changes(token)`` is "rows with a sequence above the token".

Each document's time is kept beside it in epoch nanoseconds (``time_ns``, NULL
when absent or unreadable), computed when it is written from the container's
time field, so that a window is found through an index (see ``local_sql``).  The
store records which field that was; a query windowed on another field (a changed
field mapping) has the column computed again once.  One field mapping per store:
processes reading one store with different time fields would recompute it in turn.
"""

from __future__ import annotations

import contextlib
import json
import logging
import reprlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import SourceError
from pipelines.query import Query
from pipelines.schema import (
    CANONICAL_FIELDS,
    TIME_FIELD,
    FieldMapping,
    epoch_ns,
    lookup,
)
from pipelines.sources.base import ChangeSet, Document, SourceStats
from pipelines.sources.local_sql import (
    PARTITION_KEYS,
    Cursor,
    compile_page,
    window_start,
    windowed,
)

if TYPE_CHECKING:
    from pipelines.settings import Settings

__all__ = ["MAX_DEPTH", "PARTITION_KEYS", "LocalSource", "Refused", "encode"]

log = logging.getLogger(__name__)

# As Cosmos DB allows.  A deeper document would be refused by Python's JSON reader in
# some processes (its depth counts against the recursion limit) and fail every read of it.
MAX_DEPTH = 128

_TABLES = """
CREATE TABLE IF NOT EXISTS documents (
    container TEXT NOT NULL,
    id TEXT NOT NULL,
    pk TEXT,
    doc TEXT NOT NULL,
    _ts INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    time_ns INTEGER,
    PRIMARY KEY (container, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS documents_seq ON documents (container, seq);
CREATE TABLE IF NOT EXISTS sequence (value INTEGER NOT NULL);
INSERT INTO sequence SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM sequence);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# After the migration: a store written before time_ns existed gets the column first.
_INDEXES = """
CREATE INDEX IF NOT EXISTS documents_time ON documents (container, time_ns, seq);
CREATE INDEX IF NOT EXISTS documents_pk ON documents (container, pk, seq);
"""
_WRITTEN = "written"
_CONTAINERS = (dict, list)
_CONTAINER_TYPES = frozenset(_CONTAINERS)
_JSON_TYPES = (str, int, float, bool, type(None), list, dict)


def _time_field_key(container: str) -> str:
    return f"time_field:{container}"


def _too_deep(doc: Document) -> bool:
    if _CONTAINER_TYPES.isdisjoint(map(type, doc.values())):
        return False  # the common, flat document
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:  # a loop, not a recursion: the depth is what is in question
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, _CONTAINERS))
    return False


class Refused(SourceError):
    """A document the store cannot hold; ``reason`` says why."""

    def __init__(self, doc: Any, reason: str) -> None:
        super().__init__(f"cannot store {reprlib.repr(doc)}: {reason}")
        self.reason = reason


def _unicode_throughout(doc: Document) -> bool:
    try:
        json.dumps(doc, ensure_ascii=False, default=str).encode()
    except UnicodeEncodeError:
        return False
    return True


def encode(doc: Any) -> str:
    """The JSON text the store keeps for ``doc``; :class:`Refused` when it cannot hold it."""
    if not isinstance(doc, dict):
        raise Refused(doc, "not a JSON object")
    if doc.get("id") is None or doc.get("id") == "":
        raise Refused(doc, "no 'id'")
    if _too_deep(doc):
        raise Refused(doc, f"nested deeper than {MAX_DEPTH} levels")
    try:
        text = json.dumps(doc, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError as exc:
        # NaN and Infinity stored would break every read of the store.
        reason = "NaN and Infinity are not JSON; use null" if "float" in str(exc) else str(exc)
        raise Refused(doc, reason) from None
    # Text is kept as JSON escapes: only a lone surrogate's escape starts "\ud" without
    # a pair (and most documents hold no such escape at all).
    if "\\ud" in text and not _unicode_throughout(doc):
        raise Refused(doc, "holds text that is not Unicode (a lone surrogate)")
    return text


def _as_stored(value: Any) -> Any:
    """``value`` as it reads back from the stored JSON (:func:`encode` writes others as text)."""
    if isinstance(value, tuple):
        return list(value)
    return value if isinstance(value, _JSON_TYPES) else str(value)


def _key_text(value: Any) -> str | None:
    """The text of a partition key for the ``pk`` column."""
    return None if value is None else str(value)


class LocalSource:
    """SQLite-backed source with the same contract as the Cosmos one.

    ``time_fields`` names the time field of each container (default: ``timestamp`` for
    messages, ``lastSeen`` for agents); it is used until the store has recorded one.
    """

    def __init__(
        self,
        path: str | Path,
        page_size: int = 20_000,
        time_fields: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.page_size = page_size
        self.time_fields = {
            container: CANONICAL_FIELDS[container][TIME_FIELD[container]]
            for container in PARTITION_KEYS
        } | dict(time_fields or {})
        self.identity = f"local:{self.path.resolve()}"
        self.stats = SourceStats()
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        conn.executescript(_TABLES)
        self._migrate(conn)
        conn.executescript(_INDEXES)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalSource:
        """The store at ``AGENTDASH_LOCAL_PATH``, with the time fields of the field mapping
        (for session documents, their ``_ts``: see :mod:`pipelines.shapes`)."""
        from pipelines.shapes import Shape

        shape = Shape.from_section(settings.containers.get("messages"), "messages")
        time_fields = {
            container: FieldMapping.for_container(container, settings.fields).source_field(
                TIME_FIELD[container]
            )
            for container in PARTITION_KEYS
        }
        time_fields["messages"] = shape.time_field(
            FieldMapping.for_container("messages", settings.fields)
        )
        return cls(settings.local_path, time_fields=time_fields)

    def _connect(self) -> sqlite3.Connection:
        # One connection per thread: sqlite3 connections must not cross threads.
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise SourceError(
                    f"cannot open the local store {self.path}: {exc}; check AGENTDASH_LOCAL_PATH"
                ) from exc
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextlib.contextmanager
    def _writing(self, conn: sqlite3.Connection) -> Iterator[None]:
        """One write transaction; another process's waits for it (and this one for theirs)."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # still locked after the connection's timeout
            raise SourceError(
                f"the local store {self.path} stayed busy ({exc}): another process is "
                "writing to it, or adding its time column; try again when it is done"
            ) from exc
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- the time column ----------------------------------------------------------------
    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Give a store written before the time column existed the column, filled."""

        def has_column() -> bool:
            return any(row[1] == "time_ns" for row in conn.execute("PRAGMA table_info(documents)"))

        if has_column():
            return
        with self._writing(conn):
            if has_column():  # another process migrated it meanwhile
                return
            log.info("adding the time column to the local store %s", self.path)
            conn.execute("ALTER TABLE documents ADD COLUMN time_ns INTEGER")
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) SELECT ?, '1' "
                "WHERE EXISTS (SELECT 1 FROM documents)",
                [_WRITTEN],
            )
            for container, field in self.time_fields.items():
                self._compute_times(conn, container, field)

    @staticmethod
    def _recorded_time_field(conn: sqlite3.Connection, container: str) -> str | None:
        row = conn.execute(
            "SELECT value FROM meta WHERE key = ?", [_time_field_key(container)]
        ).fetchone()
        return None if row is None else str(row[0])

    def _compute_times(
        self, conn: sqlite3.Connection, container: str, field: str, batch: int = 50_000
    ) -> None:
        """Fill ``time_ns`` of every document of ``container`` from ``field`` (in a write)."""
        started = time.perf_counter()
        last, count = -1, 0
        while True:
            rows = conn.execute(
                "SELECT rowid, doc -> ? FROM documents WHERE container = ? AND rowid > ? "
                "ORDER BY rowid LIMIT ?",
                ["$." + field, container, last, batch],
            ).fetchall()
            if not rows:
                break
            times = epoch_ns([None if value is None else json.loads(value) for _, value in rows])
            conn.executemany(
                "UPDATE documents SET time_ns = ? WHERE rowid = ?",
                zip(times, (rowid for rowid, _ in rows), strict=True),
            )
            last, count = rows[-1][0], count + len(rows)
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [_time_field_key(container), field],
        )
        log.info(
            "times of %d %s computed from %r in %.1f s",
            count,
            container,
            field,
            time.perf_counter() - started,
        )

    def _use_time_field(self, container: str, field: str) -> None:
        conn = self._connect()
        if self._recorded_time_field(conn, container) == field:
            return
        with self._writing(conn):
            if self._recorded_time_field(conn, container) != field:
                self._compute_times(conn, container, field)

    # -- reading ------------------------------------------------------------------------
    def _pages(
        self, query: Query, after: int = -1, until: int | None = None
    ) -> Iterator[list[Document]]:
        """Pages of ``query``; a window's documents whose time is NULL first, then the
        window in time order (see :func:`compile_page`)."""
        cursors: list[Cursor] = [after]
        if windowed(query):
            cursors.append(window_start(query))
        for cursor in cursors:
            yield from self._pages_from(query, cursor, until)

    def _pages_from(
        self, query: Query, after: Cursor, until: int | None
    ) -> Iterator[list[Document]]:
        conn = self._connect()
        projection = query.projection
        by_time = isinstance(after, tuple)
        # Keyset pagination: stable while writers append.
        while True:
            sql, params = compile_page(query, after, self.page_size, until)
            rows = conn.execute(sql, params).fetchall()
            self.stats.add(requests=1, documents=len(rows))
            if not rows:
                return
            after = (rows[-1][1], rows[-1][0]) if by_time else rows[-1][0]
            if projection is None:
                yield [json.loads(row[2]) for row in rows]
            else:
                yield [dict(zip(projection, json.loads(row[2]), strict=True)) for row in rows]
            if len(rows) < self.page_size:
                return

    def fetch(self, query: Query) -> Iterator[list[Document]]:
        if query.time_field is not None and (query.start is not None or query.end is not None):
            self._use_time_field(query.container, query.time_field)
        yield from self._pages(query)

    def changes(self, query: Query, token: str | None) -> ChangeSet:
        conn = self._connect()
        if token is None:
            self.stats.add(requests=1)
            return ChangeSet([], str(self._current_seq(conn, query.container)))
        try:
            since = int(token)
        except ValueError:
            raise SourceError(
                f"change token {token!r} does not belong to the local store"
            ) from None
        bare = Query(query.container, projection=query.projection)
        head = self._current_seq(conn, query.container)
        docs = [doc for page in self._pages(bare, after=since, until=head) for doc in page]
        return ChangeSet(docs, str(max(head, since)))

    @staticmethod
    def _current_seq(conn: sqlite3.Connection, container: str) -> int:
        row = conn.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM documents WHERE container = ?", [container]
        ).fetchone()
        return int(row[0])

    # -- writing ------------------------------------------------------------------------
    def upsert(self, container: str, docs: Iterable[Document], batch: int = 50_000) -> int:
        """Insert or replace documents by ``id``; returns how many were written.

        A document the store cannot hold (see :func:`encode`) raises :class:`Refused`
        naming it; the batches before it are written.  Any
        upsert, even of no documents, marks the store as written (see :meth:`is_new`).
        """
        if container not in PARTITION_KEYS:
            raise SourceError(f"unknown container {container!r}: use messages or agents")
        pk_field = PARTITION_KEYS[container]
        conn = self._connect()
        written = 0
        pending: list[Document] = []

        def flush() -> None:
            nonlocal written
            now = int(time.time())
            rows = []
            for doc in pending:
                text = encode({**doc, "_ts": now} if isinstance(doc, dict) else doc)
                rows.append((container, str(doc["id"]), _key_text(doc.get(pk_field)), text))
            with self._writing(conn):
                field = self._recorded_time_field(conn, container)
                if field is None:
                    field = self.time_fields[container]
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?)",
                        [_time_field_key(container), field],
                    )
                times = epoch_ns([_as_stored(lookup(doc, field)) for doc in pending])
                (start,) = conn.execute("SELECT value FROM sequence").fetchone()
                conn.executemany(
                    "INSERT INTO documents (container, id, pk, doc, _ts, seq, time_ns) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (container, id) DO UPDATE SET "
                    "pk = excluded.pk, doc = excluded.doc, _ts = excluded._ts, "
                    "seq = excluded.seq, time_ns = excluded.time_ns",
                    (
                        (*row, now, start + offset, time_ns)
                        for offset, (row, time_ns) in enumerate(zip(rows, times, strict=True), 1)
                    ),
                )
                conn.execute("UPDATE sequence SET value = ?", [start + len(pending)])
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, '1')", [_WRITTEN])
            written += len(pending)
            pending.clear()

        for doc in docs:
            pending.append(doc)
            if len(pending) >= batch:
                flush()
        if pending or not written:
            flush()
        return written

    def is_new(self) -> bool:
        """Whether nothing was ever written to the store (an import of nothing counts as a
        write): the one state in which it may be given demo data."""
        row = self._connect().execute("SELECT 1 FROM meta WHERE key = ?", [_WRITTEN]).fetchone()
        return row is None

    def is_empty(self, container: str) -> bool:
        row = (
            self._connect()
            .execute("SELECT 1 FROM documents WHERE container = ? LIMIT 1", [container])
            .fetchone()
        )
        return row is None
