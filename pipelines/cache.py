"""Frame caches: Redis (shared by processes) or in-process memory, one interface.

Frames travel as Arrow IPC streams compressed with zstd; the entry's metadata
(change token, time of the data, schema version) sits beside it under a second
key.  A lock per key gives single flight: one process computes a missing or
stale entry, the others wait for it or keep reading the old one.

A lock cannot outlive its holder's intent: it lives a few seconds and its holder
renews it while it works, so a dead holder's lock is free again within seconds.
And a write never replaces newer data: the entry's version is the time of its
data, compared inside Redis when the write runs, so a write sent before Redis hung
and carried out after it recovered (when another process may have written since)
changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from pipelines.arrow import frame_from_bytes, frame_to_bytes
from pipelines.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)

KEY_PREFIX = "agentdash:v1"


def cache_key(parts: Mapping[str, Any], schema_version: int = SCHEMA_VERSION) -> str:
    """Content address of a frame: sha256 of the canonical JSON of what it is made of
    (source, container, window, field mapping...) and the schema version, equal in
    every process."""
    payload = json.dumps({**parts, "schema": schema_version}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class CachedFrame:
    """A frame and what is needed to bring it up to date."""

    frame: pd.DataFrame
    token: str | None
    as_of: datetime
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    writes: int = 0
    errors: int = 0

    def snapshot(self) -> dict[str, int]:
        return dict(vars(self))


def version(as_of: datetime) -> int:
    """The version of an entry: the time of its data in epoch milliseconds (later is newer)."""
    return int(as_of.timestamp() * 1000)


def _meta_json(entry: CachedFrame) -> str:
    return json.dumps(
        {
            "token": entry.token,
            "as_of": entry.as_of.isoformat(),
            "meta": entry.meta,
            "schema": SCHEMA_VERSION,
            "version": version(entry.as_of),
        },
        sort_keys=True,
    )


# Both run inside Redis, so that the check and the write are one step whenever they run.
# KEYS: frame, meta.  ARGV: frame bytes, meta JSON, version, ttl.
_PUT = """
local current = redis.call('GET', KEYS[2])
if current then
  local ok, meta = pcall(cjson.decode, current)
  if ok and type(meta) == 'table' and type(meta['version']) == 'number'
      and meta['version'] > tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[4])
return 1
"""
# KEYS: frame, meta.  ARGV: the token the entry must hold ('' for none), new token, as_of,
# version, ttl.
_RESTAMP = """
local current = redis.call('GET', KEYS[2])
if not current then return 0 end
local ok, meta = pcall(cjson.decode, current)
if not ok or type(meta) ~= 'table' then return 0 end
local held = meta['token']
if held == cjson.null then held = '' end
if held ~= ARGV[1] then return 0 end
if type(meta['version']) == 'number' and meta['version'] > tonumber(ARGV[4]) then return 0 end
meta['token'] = ARGV[2]
meta['as_of'] = ARGV[3]
meta['version'] = tonumber(ARGV[4])
redis.call('SET', KEYS[2], cjson.encode(meta), 'EX', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


def _entry(frame: pd.DataFrame, meta_json: str | bytes) -> CachedFrame:
    meta = json.loads(meta_json)
    return CachedFrame(frame, meta["token"], datetime.fromisoformat(meta["as_of"]), meta["meta"])


class FrameCache(Protocol):
    stats: CacheStats
    #: False while a configured backend (Redis) is unreachable.
    healthy: bool

    def get(self, key: str) -> CachedFrame | None: ...

    def stamp(self, key: str) -> tuple[str | None, datetime] | None:
        """(change token, as-of time) of the entry, without reading its frame."""
        ...

    def restamp(self, key: str, previous: str | None, token: str, as_of: datetime) -> None:
        """Record that the entry's frame is still right at ``as_of`` (nothing changed), with
        the change token ``token``; only while the entry is the one of token ``previous``."""
        ...

    def put(self, key: str, entry: CachedFrame) -> None:
        """Store ``entry``, unless the key holds newer data (a later ``as_of``)."""
        ...

    def lock(self, key: str, blocking: bool = True) -> contextlib.AbstractContextManager[bool]:
        """Hold the key's compute lock; yields False when not blocking and it is taken."""
        ...


class MemoryFrameCache:
    """In-process cache, bounded by entry count (least recently used goes first)."""

    def __init__(self, ttl_seconds: float = 3600, max_entries: int = 32) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.stats = CacheStats()
        self.healthy = True
        self._entries: OrderedDict[str, tuple[float, CachedFrame]] = OrderedDict()
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> CachedFrame | None:
        with self._guard:
            item = self._entries.get(key)
            if item is None or item[0] < time.monotonic():
                self._entries.pop(key, None)
                self.stats.misses += 1
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return item[1]

    def stamp(self, key: str) -> tuple[str | None, datetime] | None:
        with self._guard:
            item = self._entries.get(key)
            if item is None or item[0] < time.monotonic():
                return None
            return item[1].token, item[1].as_of

    def restamp(self, key: str, previous: str | None, token: str, as_of: datetime) -> None:
        with self._guard:
            item = self._entries.get(key)
            if item is not None and item[1].token == previous and item[1].as_of <= as_of:
                entry = CachedFrame(item[1].frame, token, as_of, item[1].meta)
                self._entries[key] = (time.monotonic() + self.ttl_seconds, entry)

    def put(self, key: str, entry: CachedFrame) -> None:
        with self._guard:
            item = self._entries.get(key)
            if item is not None and item[0] >= time.monotonic() and item[1].as_of > entry.as_of:
                return
            self._entries[key] = (time.monotonic() + self.ttl_seconds, entry)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            self.stats.writes += 1

    @contextlib.contextmanager
    def lock(self, key: str, blocking: bool = True) -> Iterator[bool]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        acquired = lock.acquire(blocking=blocking)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()


class RedisFrameCache:
    """Redis-backed cache shared by every process and replica.

    When Redis cannot be reached it logs one warning, behaves as an empty cache
    with process-local locks, and tries Redis again after ``retry_seconds``.
    """

    def __init__(
        self,
        url: str,
        ttl_seconds: float = 3600,
        lock_seconds: float = 3,
        retry_seconds: float = 2,
    ) -> None:
        import redis

        self.url = url
        self.ttl_seconds = ttl_seconds
        self.lock_seconds = lock_seconds
        self.retry_seconds = retry_seconds
        self.stats = CacheStats()
        self.healthy = True
        # A hung Redis costs a caller two seconds, then the cache is skipped for retry_seconds.
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._put = self._redis.register_script(_PUT)
        self._restamp = self._redis.register_script(_RESTAMP)
        self._errors: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)
        self._down_until = 0.0
        self._warned = False
        self._local = MemoryFrameCache(ttl_seconds)

    @property
    def client(self) -> Any:
        return self._redis

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: BaseException) -> None:
        self.stats.errors += 1
        self.healthy = False
        self._down_until = time.monotonic() + self.retry_seconds
        if not self._warned:
            self._warned = True
            log.warning(
                "Redis at %s is unreachable (%s): working without the shared cache, "
                "retrying every %.0f s; check AGENTDASH_REDIS_URL",
                self.url,
                exc,
                self.retry_seconds,
            )

    def _recovered(self) -> None:
        if not self.healthy:
            log.info("Redis at %s is reachable again", self.url)
        self.healthy = True
        self._warned = False

    @staticmethod
    def _keys(key: str) -> tuple[str, str, str]:
        return f"{KEY_PREFIX}:frame:{key}", f"{KEY_PREFIX}:meta:{key}", f"{KEY_PREFIX}:lock:{key}"

    def get(self, key: str) -> CachedFrame | None:
        if not self._available():
            self.stats.misses += 1
            return None
        frame_key, meta_key, _ = self._keys(key)
        try:
            data, meta = self._redis.mget([frame_key, meta_key])
        except self._errors as exc:
            self._failed(exc)
            self.stats.misses += 1
            return None
        self._recovered()
        if data is None or meta is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return _entry(frame_from_bytes(data), meta)

    def stamp(self, key: str) -> tuple[str | None, datetime] | None:
        if not self._available():
            return None
        try:
            meta = self._redis.get(self._keys(key)[1])
        except self._errors as exc:
            self._failed(exc)
            return None
        self._recovered()
        if not meta:
            return None
        parsed = json.loads(meta)
        return parsed["token"], datetime.fromisoformat(parsed["as_of"])

    def restamp(self, key: str, previous: str | None, token: str, as_of: datetime) -> None:
        if not self._available():
            return
        frame_key, meta_key, _ = self._keys(key)
        ttl = max(1, int(self.ttl_seconds))
        try:
            self._restamp(
                keys=[frame_key, meta_key],
                args=[previous or "", token, as_of.isoformat(), version(as_of), ttl],
            )
        except self._errors as exc:
            self._failed(exc)
            return
        self._recovered()

    def put(self, key: str, entry: CachedFrame) -> None:
        if not self._available():
            return
        frame_key, meta_key, _ = self._keys(key)
        ttl = max(1, int(self.ttl_seconds))
        data = frame_to_bytes(entry.frame)
        try:
            self._put(
                keys=[frame_key, meta_key],
                args=[data, _meta_json(entry), version(entry.as_of), ttl],
            )
        except self._errors as exc:
            self._failed(exc)
            return
        self._recovered()
        self.stats.writes += 1

    @contextlib.contextmanager
    def lock(self, key: str, blocking: bool = True) -> Iterator[bool]:
        if not self._available():
            with self._local.lock(key, blocking) as acquired:
                yield acquired
            return
        # The holder keeps the lock alive while it works (see _renew), so a waiter waits for
        # the work to end, or for the lock to expire if the holder died.  Not thread-local:
        # the renewing thread extends it.
        lock = self._redis.lock(self._keys(key)[2], timeout=self.lock_seconds, thread_local=False)
        try:
            acquired = bool(lock.acquire(blocking=blocking))
        except self._errors as exc:
            self._failed(exc)
            with self._local.lock(key, blocking) as acquired:
                yield acquired
            return
        done = threading.Event()
        if acquired:
            threading.Thread(
                target=self._renew, args=(lock, done), name="agentdash-lock", daemon=True
            ).start()
        try:
            yield acquired
        finally:
            done.set()
            if acquired:
                with contextlib.suppress(Exception):
                    lock.release()

    def _renew(self, lock: Any, done: threading.Event) -> None:
        """Keep a held lock alive however long the work takes (a cold read of many millions
        of documents can outlast ``lock_seconds``); if the holder dies, it expires."""
        while not done.wait(self.lock_seconds / 3):
            try:
                lock.reacquire()
            except Exception:  # released meanwhile, or Redis gone: nothing left to keep
                return


def make_cache(redis_url: str | None, ttl_seconds: float) -> FrameCache:
    if redis_url:
        return RedisFrameCache(redis_url, ttl_seconds)
    return MemoryFrameCache(ttl_seconds)
