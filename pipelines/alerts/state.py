"""Where alert instances, schedules' last runs and silences are kept, shared by processes.

Redis when configured (every process and replica), else a SQLite file beside the
embedded store (every process of the machine, and each run of ``agentdash alerts run
--once`` from cron).  Each rule's state (and each schedule's last run) is one JSON
document, changed only under the store's lock (a Redis lock, or SQLite's write lock),
which each evaluation step takes once for the rules due: whoever holds it evaluates the
step, records it, and so alone sends its notifications; a process that finds the step
recorded sends nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pipelines.errors import StoreUnavailableError

KEY_PREFIX = "agentdash:v1:alerts"
Docs = dict[str, dict[str, Any] | None]
Change = Callable[[Docs], dict[str, dict[str, Any]]]
"""Given the stored documents by key (None: none yet), those to write."""


class AlertStore(Protocol):
    where: str

    def read(self, keys: Sequence[str]) -> Docs: ...

    def transition(self, keys: Sequence[str], change: Change, blocking: bool) -> bool:
        """Write what ``change`` makes of the documents of ``keys``, under the store's lock;
        not ``blocking``, False at once (nothing changed) when another process holds it."""
        ...

    def silence(self, rule: str, until: datetime) -> None: ...

    def silenced_until(self, rule: str) -> datetime | None: ...


class RedisAlertStore:
    """Documents under ``agentdash:v1:alerts:state:KEY``, a lock per key beside them."""

    def __init__(self, url: str, lock_seconds: float = 30) -> None:
        import redis

        self.where = url
        self.lock_seconds = lock_seconds
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._errors: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)

    @contextlib.contextmanager
    def _answering(self) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise StoreUnavailableError(
                f"the alert state in Redis at {self.where} cannot be used ({exc}): "
                "check AGENTDASH_REDIS_URL"
            ) from None

    def read(self, keys: Sequence[str]) -> Docs:
        if not keys:
            return {}
        with self._answering():
            raw = self._redis.mget([f"{KEY_PREFIX}:state:{key}" for key in keys])
        docs = zip(keys, raw, strict=True)
        return {key: None if doc is None else json.loads(doc) for key, doc in docs}

    def transition(self, keys: Sequence[str], change: Change, blocking: bool) -> bool:
        with self._answering():
            lock = self._redis.lock(
                f"{KEY_PREFIX}:lock",
                timeout=self.lock_seconds,
                blocking_timeout=self.lock_seconds if blocking else None,
            )
            if not lock.acquire(blocking=blocking):
                return False
            try:
                new = change(self.read(keys))
                if new:
                    self._redis.mset(
                        {
                            f"{KEY_PREFIX}:state:{k}": json.dumps(v, sort_keys=True)
                            for k, v in new.items()
                        }
                    )
                return True
            finally:
                with contextlib.suppress(Exception):  # expired meanwhile: the write stands
                    lock.release()

    def silence(self, rule: str, until: datetime) -> None:
        seconds = max(1, int((until - datetime.now(UTC)).total_seconds()))
        with self._answering():
            self._redis.set(f"{KEY_PREFIX}:silence:{rule}", until.isoformat(), ex=seconds)

    def silenced_until(self, rule: str) -> datetime | None:
        with self._answering():
            raw = self._redis.get(f"{KEY_PREFIX}:silence:{rule}")
        return None if raw is None else datetime.fromisoformat(raw.decode())


class SqliteAlertStore:
    """A SQLite file (WAL, safe for several processes); a connection per call, so that it
    crosses neither threads nor forks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        self._local = threading.local()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")  # a property of the file: once is enough
            db.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, doc TEXT NOT NULL)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS silences (rule TEXT PRIMARY KEY, until TEXT NOT NULL)"
            )

    @contextlib.contextmanager
    def _connect(self, timeout: float = 30) -> Iterator[sqlite3.Connection]:
        """This thread's connection (a new one in a forked process), waiting ``timeout``
        seconds at most for another process's write lock."""
        held: tuple[int, sqlite3.Connection] | None = getattr(self._local, "db", None)
        if held is None or held[0] != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                # With WAL, a commit is atomic without waiting for the disk; a power cut may
                # lose the last steps recorded, which are then evaluated again.
                db.execute("PRAGMA synchronous=NORMAL")
            except (OSError, sqlite3.Error) as exc:
                raise StoreUnavailableError(
                    f"the alert state file {self.path} cannot be used: {exc}"
                ) from None
            held = self._local.db = (os.getpid(), db)
        db = held[1]
        db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        yield db

    def read(self, keys: Sequence[str]) -> Docs:
        with self._connect() as db:
            return self._read(db, keys)

    @staticmethod
    def _read(db: sqlite3.Connection, keys: Sequence[str]) -> Docs:
        marks = ", ".join("?" * len(keys))
        rows = db.execute(f"SELECT key, doc FROM state WHERE key IN ({marks})", list(keys))
        found = {key: json.loads(doc) for key, doc in rows}
        return {key: found.get(key) for key in keys}

    def transition(self, keys: Sequence[str], change: Change, blocking: bool) -> bool:
        with self._connect(30 if blocking else 0) as db:
            try:
                db.execute("BEGIN IMMEDIATE")  # the write lock, until COMMIT
            except sqlite3.OperationalError:  # locked by another process
                if blocking:
                    raise
                return False
            try:
                new = change(self._read(db, keys))
                db.executemany(
                    "INSERT OR REPLACE INTO state (key, doc) VALUES (?, ?)",
                    [(key, json.dumps(doc, sort_keys=True)) for key, doc in new.items()],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return True

    def silence(self, rule: str, until: datetime) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO silences (rule, until) VALUES (?, ?)",
                (rule, until.isoformat()),
            )

    def silenced_until(self, rule: str) -> datetime | None:
        with self._connect() as db:
            row = db.execute("SELECT until FROM silences WHERE rule = ?", (rule,)).fetchone()
        if row is None:
            return None
        until = datetime.fromisoformat(row[0])
        return until if until > datetime.now(UTC) else None


def state_path(local_path: Path) -> Path:
    """The alert state file beside the embedded store: ``agentdash-alerts.db`` beside
    ``agentdash.db``."""
    return local_path.with_name(f"{local_path.stem}-alerts.db")


def open_store(redis_url: str | None, local_path: Path) -> AlertStore:
    """Redis when configured, else the SQLite file beside the embedded store."""
    if redis_url:
        return RedisAlertStore(redis_url)
    return SqliteAlertStore(state_path(local_path))
