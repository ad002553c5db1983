"""Frame caches against a real redis-server: round trips, TTL, single flight, outages."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from pipelines.arrow import frame_from_bytes, frame_to_bytes
from pipelines.cache import CachedFrame, MemoryFrameCache, RedisFrameCache, cache_key, make_cache
from pipelines.live import FrameSpec, LiveFrames
from pipelines.pipeline import MessagesPipeline
from pipelines.query import Query
from pipelines.schema import SCHEMA_VERSION, FieldMapping, empty_frame, normalise
from pipelines.sources.base import ChangeSet, Document, SourceStats
from pipelines.sources.local import LocalSource
from pipelines.windows import Window
from tests.conftest import RedisServer, free_port, wait_until

pytestmark = pytest.mark.redis

AS_OF = datetime(2024, 1, 1, 12, tzinfo=UTC)
DAY = FrameSpec("messages", Window.parse("24h"))


def canonical_messages() -> pd.DataFrame:
    """A canonical frame with a missing value in every column that may have one."""
    docs = [
        {
            "id": "m1",
            "conversationId": "c1",
            "agentId": "a1",
            "role": "agent",
            "timestamp": "2024-01-01T10:00:00.123456Z",
            "latencyMs": 250.5,
            "tokensIn": 12,
            "tokensOut": 30,
            "status": "ok",
            "userId": "u1",
            "content": "héllo ✓",
        },
        {"id": "m2", "conversationId": "c1", "role": "user", "timestamp": 1704103200},
        {"id": "m3", "conversationId": "c2", "role": "tool", "timestamp": 1704103200999},
    ]
    return normalise(docs, FieldMapping.for_container("messages"), extra=("content",)).frame


def canonical_agents() -> pd.DataFrame:
    docs = [
        {"id": "a1", "name": "Planner", "createdAt": "2023-06-01T00:00:00+02:00"},
        {"id": "a2", "lastSeen": 1704103200000},
    ]
    return normalise(docs, FieldMapping.for_container("agents")).frame


def message(i: int, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"m{i:03d}",
        "conversationId": f"c{i % 5}",
        "agentId": f"a{i % 3}",
        "role": "agent" if i % 2 else "user",
        "timestamp": at.isoformat(),
        "latencyMs": 10.0 * i,
        "status": "ok",
        **fields,
    }


@pytest.fixture
def store(tmp_path: Path) -> LocalSource:
    now = datetime.now(UTC)
    source = LocalSource(tmp_path / "store.db")
    source.upsert("messages", [message(i, now - timedelta(hours=i)) for i in range(40)])
    return source


def expected_ids(source: LocalSource, hours: float) -> list[str]:
    """Ids of the messages of the last ``hours``, read straight from the store."""
    since = datetime.now(UTC) - timedelta(hours=hours)
    docs = [d for page in source.fetch(Query.build("messages")) for d in page]
    return sorted(d["id"] for d in docs if datetime.fromisoformat(d["timestamp"]) >= since)


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("id", ignore_index=True)


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame", [canonical_messages(), canonical_agents()], ids=["msgs", "agents"]
)
def test_redis_round_trip_keeps_dtypes_and_time_zone(redis_url: str, frame: pd.DataFrame) -> None:
    cache = RedisFrameCache(redis_url)
    cache.put("k", CachedFrame(frame, "17", AS_OF, {"schema": 1, "note": "é"}))
    entry = cache.get("k")
    assert entry is not None
    assert_frame_equal(entry.frame, frame)  # values, dtypes, and the UTC zone
    assert (entry.token, entry.as_of, entry.meta) == ("17", AS_OF, {"schema": 1, "note": "é"})
    assert cache.stamp("k") is not None and cache.stamp("k")[0] == "17"
    assert cache.stats.snapshot() == {"hits": 1, "misses": 0, "writes": 1, "errors": 0}


def test_redis_round_trip_of_an_empty_frame(redis_url: str) -> None:
    cache = RedisFrameCache(redis_url)
    cache.put("empty", CachedFrame(empty_frame("messages"), None, AS_OF))
    entry = cache.get("empty")
    assert entry is not None and entry.token is None
    assert_frame_equal(entry.frame, empty_frame("messages"))


def test_a_frame_grown_by_many_concats_stays_compact() -> None:
    frame = pd.concat([canonical_messages()] * 2000, ignore_index=True)
    data = frame_to_bytes(frame)
    assert_frame_equal(frame_from_bytes(data), frame)
    assert len(data) < frame.memory_usage(deep=True).sum() / 10


def test_memory_round_trip_is_the_same_frame() -> None:
    cache = MemoryFrameCache()
    frame = canonical_messages()
    cache.put("k", CachedFrame(frame, "1", AS_OF))
    entry = cache.get("k")
    assert entry is not None and entry.frame is frame


def test_a_missing_key_is_a_miss(redis_url: str) -> None:
    cache = RedisFrameCache(redis_url)
    assert cache.get("nothing") is None
    assert cache.stamp("nothing") is None
    assert cache.stats.misses == 1


def test_cache_keys_are_content_addresses_equal_in_every_process(tmp_path: Path) -> None:
    frames = LiveFrames(LocalSource(tmp_path / "a.db"), MemoryFrameCache())
    day = FrameSpec("messages", Window.parse("24h"))
    key = frames.key(day)
    assert len(key) == 64
    assert key == frames.key(FrameSpec("messages", Window.parse("24h")))
    assert key != frames.key(FrameSpec("messages", Window.parse("7d")))
    assert key != LiveFrames(LocalSource(tmp_path / "b.db"), MemoryFrameCache()).key(day)
    renamed = {"messages": {"timestamp": "createdAt"}}
    assert key != LiveFrames(LocalSource(tmp_path / "a.db"), MemoryFrameCache(), renamed).key(day)
    parts = {"source": "local:/data/a.db", "window": "24h"}
    assert cache_key(parts) != cache_key(parts, schema_version=SCHEMA_VERSION + 1)
    code = (
        "from pipelines import FrameSpec, LiveFrames; from pipelines.cache import MemoryFrameCache;"
        " from pipelines.sources.local import LocalSource; from pipelines.windows import Window;"
        f" print(LiveFrames(LocalSource({str(tmp_path / 'a.db')!r}), MemoryFrameCache())"
        ".key(FrameSpec('messages', Window.parse('24h'))))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == key


def test_make_cache() -> None:
    assert isinstance(make_cache(None, 60), MemoryFrameCache)
    assert isinstance(make_cache(f"redis://127.0.0.1:{free_port()}/0", 60), RedisFrameCache)


# --- TTL --------------------------------------------------------------------------------------


def test_redis_entries_expire_after_the_ttl(redis_url: str) -> None:
    cache = RedisFrameCache(redis_url, ttl_seconds=1)
    cache.put("k", CachedFrame(canonical_messages(), "5", AS_OF))
    frame_key, meta_key, _ = cache._keys("k")
    assert 0 < cache.client.pttl(frame_key) <= 1000
    assert 0 < cache.client.pttl(meta_key) <= 1000
    assert cache.get("k") is not None
    wait_until(lambda: cache.get("k") is None, timeout=5, message="the entry to expire")
    assert cache.stamp("k") is None
    assert cache.client.exists(frame_key, meta_key) == 0


def test_memory_entries_expire_after_the_ttl() -> None:
    cache = MemoryFrameCache(ttl_seconds=0.2)
    cache.put("k", CachedFrame(canonical_messages(), "5", AS_OF))
    assert cache.get("k") is not None and cache.stamp("k") is not None
    wait_until(lambda: cache.stamp("k") is None, timeout=5, message="the entry to expire")
    assert cache.get("k") is None


def test_memory_cache_drops_the_least_recently_used_entry() -> None:
    cache = MemoryFrameCache(max_entries=2)
    for key in ("a", "b"):
        cache.put(key, CachedFrame(empty_frame("messages"), key, AS_OF))
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("c", CachedFrame(empty_frame("messages"), "c", AS_OF))
    assert [k for k in "abc" if cache.get(k) is not None] == ["a", "c"]
    for i in range(10):
        cache.put(f"k{i}", CachedFrame(empty_frame("messages"), None, AS_OF))
    assert len(cache._entries) == 2


# --- single flight ---------------------------------------------------------------------------


class CountingSource:
    """A source that counts the calls made to it, shared by every 'process'."""

    def __init__(self, inner: LocalSource, calls: Counter[str], guard: threading.Lock) -> None:
        self.inner = inner
        self.identity = inner.identity
        self.stats: SourceStats = inner.stats
        self.calls = calls
        self.guard = guard

    def fetch(self, query: Query) -> Iterator[list[Document]]:
        with self.guard:
            self.calls["fetch"] += 1
        yield from self.inner.fetch(query)

    def changes(self, query: Query, token: str | None) -> ChangeSet:
        with self.guard:
            self.calls["changes" if token else "token"] += 1
        return self.inner.changes(query, token)


class GatedRedisCache(RedisFrameCache):
    """Lets no one take the compute lock until every thread has missed the cache."""

    def __init__(self, url: str, gate: threading.Barrier) -> None:
        super().__init__(url)
        self.gate = gate

    def lock(self, key: str, blocking: bool = True) -> Any:
        self.gate.wait()
        return super().lock(key, blocking)


def test_concurrent_misses_cause_one_source_fetch(redis_url: str, store: LocalSource) -> None:
    workers = 8
    gate = threading.Barrier(workers, timeout=30)
    calls: Counter[str] = Counter()
    guard = threading.Lock()

    def one_process(_: int) -> tuple[pd.DataFrame, RedisFrameCache]:
        # Own source connection, own cache client, own backend: as a separate process has.
        cache = GatedRedisCache(redis_url, gate)
        backend = LiveFrames(CountingSource(LocalSource(store.path), calls, guard), cache)
        return backend.get(DAY).frame, cache

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one_process, range(workers)))

    assert calls["fetch"] == 1
    frames = [frame for frame, _ in results]
    for frame in frames[1:]:
        assert_frame_equal(frame, frames[0])
    assert sorted(frames[0]["id"]) == expected_ids(store, hours=48)
    assert sum(cache.stats.writes for _, cache in results) == 1
    assert sum(cache.stats.hits for _, cache in results) == workers - 1


def test_a_refresh_in_one_process_is_adopted_by_the_others(
    redis_url: str, store: LocalSource
) -> None:
    calls: Counter[str] = Counter()
    guard = threading.Lock()
    first, second = (
        LiveFrames(
            CountingSource(LocalSource(store.path), calls, guard), RedisFrameCache(redis_url)
        )
        for _ in range(2)
    )
    assert_frame_equal(first.get(DAY).frame, second.get(DAY).frame)
    assert calls["fetch"] == 1
    store.upsert("messages", [message(100, datetime.now(UTC) - timedelta(minutes=5))])

    first.refresh(DAY)
    second.refresh(DAY)

    assert calls["changes"] == 1  # the second process read the cache, not the source
    assert second.refreshes[-1].adopted
    assert_frame_equal(sorted_frame(second.get(DAY).frame), sorted_frame(first.get(DAY).frame))
    assert "m100" in set(second.get(DAY).frame["id"])


def test_a_held_lock_outlives_its_expiry_and_its_waiter_waits(redis_url: str) -> None:
    # Two processes' caches; the lock would expire every 0.3 s if its holder did not renew it.
    holder, other = (RedisFrameCache(redis_url, lock_seconds=0.3) for _ in range(2))
    release, waiting, got = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with holder.lock("k") as acquired:
            assert acquired
            release.wait(30)

    def wait_for_it() -> None:
        waiting.set()
        with other.lock("k") as acquired:
            if acquired:
                got.set()

    threading.Thread(target=hold, daemon=True).start()
    wait_until(lambda: holder._redis.exists(holder._keys("k")[2]), message="the lock taken")
    waiter = threading.Thread(target=wait_for_it, daemon=True)
    waiter.start()
    waiting.wait(5)
    # The lock lives 0.3 s; through nine renewals (three lifetimes and more) it stays held.
    key = holder._keys("k")[2]
    renewals, last = 0, holder._redis.pttl(key)
    while renewals < 9:
        ttl = holder._redis.pttl(key)
        assert ttl > 0, "the lock expired while its holder worked"
        renewals, last = renewals + (ttl > last), ttl
        with other.lock("k", blocking=False) as acquired:
            assert not acquired
        assert not got.is_set()
    release.set()
    wait_until(got.is_set, message="the waiter to get the lock once released")
    waiter.join(5)


# --- Redis down --------------------------------------------------------------------------------


def cache_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_unreachable_redis_still_serves_correct_frames(
    store: LocalSource, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    cache = RedisFrameCache(f"redis://127.0.0.1:{free_port()}/0", retry_seconds=0)
    backend = LiveFrames(store, cache)
    pipeline = MessagesPipeline(frames=backend, window="24h")

    assert sorted(pipeline.frame["id"]) == expected_ids(store, hours=24)
    store.upsert("messages", [message(200, datetime.now(UTC) - timedelta(minutes=1))])
    assert pipeline.refresh() == 1
    assert "m200" in set(pipeline.frame["id"])
    reference = LiveFrames(LocalSource(store.path), MemoryFrameCache())
    assert_frame_equal(
        sorted_frame(pipeline.frame), sorted_frame(MessagesPipeline(frames=reference).frame)
    )

    assert not cache.healthy
    assert backend.status().to_json()["cache_healthy"] is False
    assert cache.stats.errors >= 2
    [warning] = cache_warnings(caplog)
    assert "unreachable" in warning.getMessage()
    assert "AGENTDASH_REDIS_URL" in warning.getMessage()


def test_redis_stopping_and_coming_back(
    redis_server: RedisServer,
    redis_url: str,
    store: LocalSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pipelines.cache")
    cache = RedisFrameCache(redis_url, retry_seconds=0.1)
    pipeline = MessagesPipeline(frames=LiveFrames(store, cache), window="24h")
    assert sorted(pipeline.frame["id"]) == expected_ids(store, hours=24)
    assert cache.healthy and cache.stats.writes == 1

    redis_server.stop()
    try:
        for i in range(3):  # several refreshes during the outage: still one warning
            store.upsert("messages", [message(300 + i, datetime.now(UTC) - timedelta(minutes=1))])
            assert pipeline.refresh() == 1
        assert {"m300", "m301", "m302"} <= set(pipeline.frame["id"])
        assert not cache.healthy
        assert len(cache_warnings(caplog)) == 1
    finally:
        redis_server.start()

    store.upsert("messages", [message(310, datetime.now(UTC) - timedelta(minutes=1))])
    wait_until(
        lambda: pipeline.refresh() >= 0 and cache.healthy, timeout=10, message="Redis to be used"
    )
    assert "m310" in set(pipeline.frame["id"])
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    entry = cache.get(pipeline.data.key(pipeline.spec()))
    assert entry is not None
    assert_frame_equal(sorted_frame(entry.frame), sorted_frame(pipeline.data.get(DAY).frame))
    assert len(cache_warnings(caplog)) == 1
