"""The embedded store: JSON documents in one SQLite file (WAL mode).

Several processes may read while one writes.  Every write takes the next value
of a monotonic change sequence, which plays the role of Cosmos DB's change
feed: ``changes(token)`` is "rows with a sequence above the token".
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pipelines.errors import SourceError
from pipelines.query import Query
from pipelines.sources.base import ChangeSet, Document, SourceStats
from pipelines.sources.local_sql import compile_select, compile_where

PARTITION_KEYS = {"messages": "conversationId", "agents": "id"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    container TEXT NOT NULL,
    id TEXT NOT NULL,
    pk TEXT,
    doc TEXT NOT NULL,
    _ts INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (container, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS documents_seq ON documents (container, seq);
CREATE TABLE IF NOT EXISTS sequence (value INTEGER NOT NULL);
INSERT INTO sequence SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM sequence);
"""


def _dumps(doc: Document) -> str:
    try:
        # NaN and Infinity are not JSON: stored, they would break every read of the store.
        return json.dumps(doc, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError:
        raise SourceError(
            f"cannot store {doc!r:.80}: NaN and Infinity are not JSON; use null"
        ) from None


class LocalSource:
    """SQLite-backed source with the same contract as the Cosmos one."""

    def __init__(self, path: str | Path, page_size: int = 20_000) -> None:
        self.path = Path(path)
        self.page_size = page_size
        self.identity = f"local:{self.path.resolve()}"
        self.stats = SourceStats()
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

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

    def _pages(
        self, sql: str, params: list[Any], projection: tuple[str, ...] | None
    ) -> Iterator[list[Document]]:
        conn = self._connect()
        # Keyset pagination on the change sequence: stable while writers append.
        paged = f"{sql} AND seq > ? ORDER BY seq LIMIT ?"
        last = -1
        while True:
            rows = conn.execute(paged, [*params, last, self.page_size]).fetchall()
            self.stats.add(requests=1, documents=len(rows))
            if not rows:
                return
            last = rows[-1][0]
            if projection is None:
                yield [json.loads(row[1]) for row in rows]
            else:
                yield [dict(zip(projection, json.loads(row[1]), strict=True)) for row in rows]
            if len(rows) < self.page_size:
                return

    def fetch(self, query: Query) -> Iterator[list[Document]]:
        sql, params = compile_select(query)
        yield from self._pages(sql, params, query.projection)

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
        sql, params = compile_select(bare)
        head = self._current_seq(conn, query.container)
        docs: list[Document] = []
        pages = self._pages(
            f"{sql} AND seq > ? AND seq <= ?", [*params, since, head], query.projection
        )
        for page in pages:
            docs.extend(page)
        return ChangeSet(docs, str(max(head, since)))

    @staticmethod
    def _current_seq(conn: sqlite3.Connection, container: str) -> int:
        row = conn.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM documents WHERE container = ?", [container]
        ).fetchone()
        return int(row[0])

    def count(self, query: Query) -> int:
        where, params = compile_where(query)
        row = self._connect().execute(f"SELECT COUNT(*) FROM documents WHERE {where}", params)
        return int(row.fetchone()[0])

    def upsert(self, container: str, docs: Iterable[Document], batch: int = 50_000) -> int:
        """Insert or replace documents by ``id``; returns how many were written."""
        if container not in PARTITION_KEYS:
            raise SourceError(f"unknown container {container!r}: use messages or agents")
        pk_field = PARTITION_KEYS[container]
        conn = self._connect()
        written = 0
        pending: list[Document] = []

        def flush() -> None:
            nonlocal written
            if not pending:
                return
            now = int(time.time())
            conn.execute("BEGIN IMMEDIATE")
            try:
                (start,) = conn.execute("SELECT value FROM sequence").fetchone()
                rows = []
                for offset, doc in enumerate(pending, start=1):
                    doc = {**doc, "_ts": now}
                    pk = doc.get(pk_field)
                    rows.append(
                        (
                            container,
                            str(doc["id"]),
                            None if pk is None else str(pk),
                            _dumps(doc),
                            now,
                            start + offset,
                        )
                    )
                conn.executemany(
                    "INSERT INTO documents (container, id, pk, doc, _ts, seq) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (container, id) DO UPDATE SET "
                    "pk = excluded.pk, doc = excluded.doc, _ts = excluded._ts, seq = excluded.seq",
                    rows,
                )
                conn.execute("UPDATE sequence SET value = ?", [start + len(pending)])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            written += len(pending)
            pending.clear()

        for doc in docs:
            if not isinstance(doc, dict) or doc.get("id") in (None, ""):
                raise SourceError(f"cannot store {doc!r:.80}: a document needs an 'id'")
            pending.append(doc)
            if len(pending) >= batch:
                flush()
        flush()
        return written

    def is_empty(self, container: str) -> bool:
        row = (
            self._connect()
            .execute("SELECT 1 FROM documents WHERE container = ? LIMIT 1", [container])
            .fetchone()
        )
        return row is None
