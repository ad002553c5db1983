"""Quarantined documents, kept where every process of a deployment can read them.

Normalisation sets aside each document that breaks a rule of its columns
(:mod:`pipelines.schema`).  A :class:`Quarantine` counts each of them once, however
often and by however many processes it is read, and keeps the latest ``keep`` with
their raw text, so that the API, the Ops view of every process and ``agentdash
quarantine list`` in a shell all see the same:

- :class:`SqliteStore`: a SQLite file beside the embedded store
  (``agentdash.db`` -> ``agentdash.quarantine.db``), the default;
- :class:`RedisStore`: Redis, when ``AGENTDASH_REDIS_URL`` is set (shared by replicas).

Bounded in memory, exact in count: a process holds only what waits to be written
(at most ``pending`` records, while the store cannot be reached); the store holds one
row (or set member) per distinct document, and raw text for the latest ``keep``, each
cut to ``RAW_LIMIT`` characters of JSON.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from pipelines.errors import StoreUnavailableError
from pipelines.schema import QuarantinedDocument
from pipelines.settings import Settings

log = logging.getLogger(__name__)

KEEP = 1000
"""Quarantined documents whose raw text is kept (the latest)."""
RAW_LIMIT = 65_536
"""Characters of a document's JSON kept; a longer one is kept as the text of its start."""


@dataclass(frozen=True)
class Entry:
    """One quarantined document as the API, the Ops view and the command line show it."""

    id: str | None
    container: str
    reason: str
    seen_at: datetime
    """When a process of this deployment first read it."""
    document: Any = None
    """The document as read (JSON values), None once older than the latest ``keep``."""

    def to_json(self, raw: bool = False) -> dict[str, Any]:
        shown = {
            "id": self.id,
            "container": self.container,
            "reason": self.reason,
            "seen_at": self.seen_at.isoformat(),
        }
        return {**shown, "document": self.document} if raw else shown


@dataclass(frozen=True)
class Summary:
    """How many documents are quarantined, in all and by kind of reason."""

    count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class Row(NamedTuple):
    """A quarantined document as stored: ``identity`` is what is counted once."""

    container: str
    identity: str
    id: str | None
    kind: str
    reason: str
    seen_at: str
    document: str


def reason_kind(reason: str) -> str:
    """The kind of a reason, what counts are kept by: ``"wrong type: 'x' holds..."`` ->
    ``"wrong type"``."""
    return reason.split(":", 1)[0]


def _raw(document: Any) -> str:
    """The document as JSON text, at most ``RAW_LIMIT`` characters (else a JSON string of
    its start); a value JSON cannot hold (nesting past Python's limit, NaN) as its repr."""
    try:
        text = json.dumps(document, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        text = json.dumps(repr(document)[:RAW_LIMIT])
    if len(text) > RAW_LIMIT:
        text = json.dumps(text[:RAW_LIMIT] + "…")
    return text


def _row(record: QuarantinedDocument, seen_at: str) -> Row:
    return Row(
        record.container,
        record.identity,
        record.id,
        reason_kind(record.reason),
        record.reason,
        seen_at,
        _raw(record.document),
    )


class QuarantineStore(Protocol):
    """Where quarantined documents are kept; StoreUnavailableError when it cannot answer."""

    #: The file or server, for people.
    where: str

    def add(self, rows: Sequence[Row]) -> None:
        """Keep the rows whose identity is new; the others were counted already."""
        ...

    def summary(self) -> Summary: ...

    def entries(self, limit: int) -> list[Entry]:
        """The latest ``limit`` documents, newest first."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantined (
    seq INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    container TEXT NOT NULL,
    identity TEXT NOT NULL,
    id TEXT,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    document TEXT,
    UNIQUE (source, container, identity)
);
CREATE INDEX IF NOT EXISTS quarantined_latest ON quarantined (source, seq);
CREATE TABLE IF NOT EXISTS quarantine_counts (
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (source, kind)
);
-- Counted by the insert itself: a row ignored as known counts nothing.
CREATE TRIGGER IF NOT EXISTS quarantined_counted AFTER INSERT ON quarantined BEGIN
    INSERT INTO quarantine_counts VALUES (NEW.source, NEW.kind, 1)
    ON CONFLICT (source, kind) DO UPDATE SET count = count + 1;
END;
"""


class SqliteStore:
    """Quarantined documents of one source in a SQLite file (WAL: several processes)."""

    def __init__(self, path: str | Path, source: str, keep: int = KEEP) -> None:
        self.path = path if path == ":memory:" else Path(path)
        self.where = str(self.path)
        self.source = source
        self.keep = keep
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        # One connection per store, made on first use: after a fork, in the process using it.
        if self._conn is None:
            if isinstance(self.path, Path):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=10, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def _run(self, work: Any) -> Any:
        with self._lock:
            try:
                return work(self._connect())
            except sqlite3.Error as exc:
                raise StoreUnavailableError(
                    f"the quarantine file {self.path} cannot be used ({exc}): check that "
                    "the folder of AGENTDASH_LOCAL_PATH is writable"
                ) from exc

    def add(self, rows: Sequence[Row]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT OR IGNORE INTO quarantined (source, container, identity, id, kind,"
                    " reason, seen_at, document) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(self.source, *row) for row in rows],
                )
                # Raw text for the latest `keep` only: the rest stay counted and listed.
                conn.execute(
                    "UPDATE quarantined SET document = NULL WHERE source = ?"
                    " AND document IS NOT NULL AND seq <= (SELECT seq FROM quarantined"
                    " WHERE source = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    [self.source, self.source, self.keep],
                )

        self._run(write)

    def summary(self) -> Summary:
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT kind, count FROM quarantine_counts WHERE source = ?", [self.source]
            ).fetchall()
        )
        reasons = dict(rows)
        return Summary(sum(reasons.values()), reasons)

    def entries(self, limit: int) -> list[Entry]:
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT id, container, reason, seen_at, document FROM quarantined"
                " WHERE source = ? ORDER BY seq DESC LIMIT ?",
                [self.source, limit],
            ).fetchall()
        )
        return [
            Entry(i, c, r, datetime.fromisoformat(t), None if d is None else json.loads(d))
            for i, c, r, t, d in rows
        ]


# KEYS: seen (set), reasons (hash), documents (list, newest first).
# ARGV: keep, then identity, kind, entry JSON for each row.
_ADD = """
local added = 0
for i = 2, #ARGV, 3 do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    redis.call('HINCRBY', KEYS[2], ARGV[i + 1], 1)
    redis.call('LPUSH', KEYS[3], ARGV[i + 2])
    added = added + 1
  end
end
if added > 0 then redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[1]) - 1) end
return added
"""


class RedisStore:
    """Quarantined documents of one source in Redis: a set of the identities counted,
    the counts by kind and the latest ``keep`` documents."""

    #: Rows per script call: each call holds Redis while it runs.
    BATCH = 500

    def __init__(self, url: str, source: str, keep: int = KEEP) -> None:
        import hashlib

        import redis

        from pipelines.cache import KEY_PREFIX

        self.url = self.where = url
        self.keep = keep
        namespace = hashlib.sha256(source.encode()).hexdigest()[:16]
        prefix = f"{KEY_PREFIX}:quarantine:{namespace}"
        self._keys = [f"{prefix}:seen", f"{prefix}:reasons", f"{prefix}:documents"]
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._add = self._redis.register_script(_ADD)
        self._errors: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)

    def _run(self, work: Any) -> Any:
        try:
            return work()
        except self._errors as exc:
            raise StoreUnavailableError(
                f"Redis at {self.url} does not answer ({exc}): quarantined documents wait "
                "in memory until it does; check AGENTDASH_REDIS_URL"
            ) from exc

    def add(self, rows: Sequence[Row]) -> None:
        for start in range(0, len(rows), self.BATCH):
            args: list[Any] = [self.keep]
            for row in rows[start : start + self.BATCH]:
                entry = json.dumps(
                    {
                        "id": row.id,
                        "container": row.container,
                        "reason": row.reason,
                        "seen_at": row.seen_at,
                    }
                )
                # The raw text is JSON already: spliced in rather than decoded and encoded.
                entry = entry[:-1] + ', "document": ' + row.document + "}"
                args += [f"{row.container}:{row.identity}", row.kind, entry]
            self._run(lambda args=args: self._add(keys=self._keys, args=args))

    def summary(self) -> Summary:
        counts = self._run(lambda: self._redis.hgetall(self._keys[1]))
        reasons = {kind.decode(): int(count) for kind, count in counts.items()}
        return Summary(sum(reasons.values()), reasons)

    def entries(self, limit: int) -> list[Entry]:
        items = self._run(lambda: self._redis.lrange(self._keys[2], 0, limit - 1))
        entries = []
        for item in items:
            value = json.loads(item)
            entries.append(
                Entry(
                    value["id"],
                    value["container"],
                    value["reason"],
                    datetime.fromisoformat(value["seen_at"]),
                    value["document"],
                )
            )
        return entries


class Quarantine:
    """The quarantined documents of one source: counted once, the latest kept.

    While the store cannot be reached, records wait in memory (the oldest dropped past
    ``pending``, with a warning) and the last summary read is what ``summary`` gives.
    """

    def __init__(self, store: QuarantineStore | None = None, pending: int = 10_000) -> None:
        #: Where documents are kept; without one, a SQLite database in memory (this process).
        self.store: QuarantineStore = store or SqliteStore(":memory:", "memory")
        self.healthy = True
        #: Quarantined documents in this process's reads, each read counted: for one that
        #: reads each document once (a report), the documents its figures leave out.
        self.read = 0
        self._pending: deque[Row] = deque(maxlen=pending)
        self._lock = threading.Lock()
        self._last = Summary()
        self._warned = False

    def add(self, records: Iterable[QuarantinedDocument]) -> None:
        seen_at = datetime.now(UTC).isoformat()
        rows = [_row(record, seen_at) for record in records]
        with self._lock:
            self.read += len(rows)
            if not rows and not self._pending:
                return
            if len(self._pending) + len(rows) > (self._pending.maxlen or 0):
                log.warning("too many quarantined documents wait for the store: dropping some")
            self._pending.extend(rows)
            self._flush()

    def _flush(self) -> bool:
        if not self._pending:
            return True
        try:
            self.store.add(list(self._pending))
        except StoreUnavailableError as exc:
            self.healthy = False
            if not self._warned:
                self._warned = True
                log.warning("%s", exc)
            return False
        self._pending.clear()
        self.healthy, self._warned = True, False
        return True

    def summary(self) -> Summary:
        """Documents quarantined, in all and by kind of reason (the last known while the
        store does not answer)."""
        with self._lock:
            if self._flush():
                try:
                    self._last = self.store.summary()
                except StoreUnavailableError:
                    self.healthy = False
            return self._last

    @property
    def count(self) -> int:
        return self.summary().count

    def reasons(self) -> dict[str, int]:
        return self.summary().reasons

    def entries(self, limit: int = 100) -> list[Entry]:
        """The latest ``limit`` quarantined documents, newest first; StoreUnavailableError
        while the store does not answer."""
        with self._lock:
            self._flush()
        return self.store.entries(limit)

    def listing(self, limit: int = 100, raw: bool = False) -> dict[str, Any]:
        """``{"count", "reasons", "documents"}``: the summary and the latest ``limit``
        documents (``{"id", "container", "reason", "seen_at"}``, and ``"document"`` as
        read when ``raw``), JSON-ready: what ``GET /api/v1/quarantine`` answers."""
        summary = self.summary()
        latest = self.entries(limit)
        return {
            "count": summary.count,
            "reasons": summary.reasons,
            "documents": [entry.to_json(raw) for entry in latest],
        }


def quarantine_path(settings: Settings) -> Path:
    """The SQLite file of the quarantine: beside the embedded store's."""
    store = settings.local_path
    return store.with_name(f"{store.stem}.quarantine.db")


def open_quarantine(settings: Settings, source: str) -> Quarantine:
    """The quarantine of the source named ``source`` (its identity), where the settings
    keep it: Redis when ``AGENTDASH_REDIS_URL`` is set, else beside the embedded store."""
    if settings.redis_url:
        return Quarantine(RedisStore(settings.redis_url, source))
    return Quarantine(SqliteStore(quarantine_path(settings), source))
