"""Locks and writes of the Redis cache when a holder dies or Redis hangs, on a real redis-server.

A hang is the real thing: redis-server stopped with SIGSTOP and resumed with SIGCONT,
so that commands sent meanwhile sit in its socket and run when it resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.cache import CachedFrame, MemoryFrameCache, RedisFrameCache
from pipelines.live import FrameSpec, LiveFrames
from pipelines.schema import empty_frame
from pipelines.sources.local import LocalSource
from pipelines.windows import Window
from tests.conftest import RedisServer, wait_until
from tests.integration.test_cache import message

pytestmark = pytest.mark.redis

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = FrameSpec("messages", Window.parse("24h"))


def entry(token: str, as_of: datetime) -> CachedFrame:
    return CachedFrame(empty_frame("messages"), token, as_of)


@contextmanager
def hung(redis_server: RedisServer) -> Iterator[None]:
    """redis-server stopped (SIGSTOP) for the block: connections open, nothing answered."""
    assert redis_server.process is not None
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)


def test_an_older_write_never_replaces_newer_data(redis_url: str) -> None:
    first, second = RedisFrameCache(redis_url), RedisFrameCache(redis_url)
    first.put("k", entry("new", T0 + timedelta(seconds=30)))
    second.put("k", entry("old", T0))  # a process that fell behind
    second.restamp("k", "old", "older", T0 + timedelta(seconds=10))  # not its frame there
    stored = first.get("k")
    assert stored is not None
    assert (stored.token, stored.as_of) == ("new", T0 + timedelta(seconds=30))
    # The holder of the frame moves it on; an equal time of data is no rollback.
    first.restamp("k", "new", "newer", T0 + timedelta(seconds=40))
    first.put("k", entry("same time", T0 + timedelta(seconds=40)))
    assert second.stamp("k") == ("same time", T0 + timedelta(seconds=40))


def test_the_memory_cache_keeps_the_newer_data_too() -> None:
    cache = MemoryFrameCache()
    cache.put("k", entry("new", T0 + timedelta(seconds=30)))
    cache.put("k", entry("old", T0))
    cache.restamp("k", "old", "older", T0 + timedelta(seconds=50))
    assert cache.stamp("k") == ("new", T0 + timedelta(seconds=30))


def test_a_write_sent_while_redis_hung_runs_late_and_changes_nothing_newer(
    redis_server: RedisServer, redis_url: str
) -> None:
    RedisFrameCache(redis_url).put("k", entry("t2", T0 + timedelta(seconds=60)))
    late = RedisFrameCache(redis_url)  # a process whose frame is older
    assert late.stamp("k") is not None  # connected: what it sends next reaches the socket
    with hung(redis_server):
        # Sent into the stopped server's socket; the client gives up after its timeout...
        late.put("k", entry("t1", T0 + timedelta(seconds=30)))
        assert not late.healthy
    # ...and the server runs it when it resumes, before anything sent since.
    wait_until(redis_server.ping, message="redis-server to answer again")
    assert RedisFrameCache(redis_url).stamp("k") == ("t2", T0 + timedelta(seconds=60))


HOLD = """
import sys, time
from pipelines.cache import RedisFrameCache
with RedisFrameCache(sys.argv[1]).lock("k") as acquired:
    print("held" if acquired else "refused", flush=True)
    time.sleep(600)
"""


def test_a_dead_holders_lock_is_taken_over_within_seconds(redis_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, redis_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        other = RedisFrameCache(redis_url)
        with other.lock("k", blocking=False) as acquired:
            assert not acquired  # alive, its holder renews it past its few seconds
        holder.kill()
        holder.wait(10)
        got = threading.Event()

        def wait_for_it() -> None:
            with other.lock("k") as acquired:
                if acquired:
                    got.set()

        threading.Thread(target=wait_for_it, daemon=True).start()
        # The lock lives lock_seconds (3 s) after its last renewal; well before 30 s.
        wait_until(got.is_set, timeout=10, message="the lock of a dead holder to be free")
    finally:
        holder.kill()
        holder.wait(10)


def test_after_a_hang_the_frame_moves_on_and_never_back(
    redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    store = LocalSource(tmp_path / "store.db")
    store.upsert("messages", [message(i, now - timedelta(hours=i)) for i in range(10)])
    first, second = (LiveFrames(LocalSource(store.path), RedisFrameCache(redis_url)) for _ in "ab")
    assert len(first.get(DAY).frame) == len(second.get(DAY).frame) == 10
    with hung(redis_server):
        store.upsert("messages", [message(100, now)])
        first.refresh(DAY)  # reads the source itself: Redis does not answer
    store.upsert("messages", [message(101, now)])
    # Whichever refreshes next, with Redis back, neither frame ever loses a message.
    wait_until(
        lambda: all(
            {"m100", "m101"} <= set(frames.refresh(DAY).live.frame["id"])
            for frames in (first, second)
        ),
        timeout=20,
        message="both processes to hold every message",
    )
    assert len(first.get(DAY).frame) == len(second.get(DAY).frame) == 12
    cached = RedisFrameCache(redis_url).get(first.key(DAY))
    assert cached is not None and set(cached.frame["id"]) == set(first.get(DAY).frame["id"])
