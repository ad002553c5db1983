"""Recovery: seconds from a fault's end to the data being right again (goal <= 5 s each).

- Redis back -> the first cache hit: Redis is killed while two processes (here two
  caches on one machine) keep refreshing, then started again; measured until the
  second process finds the first one's frame in it.  Baseline: the same with the
  cache settings of before (Redis retried after 10 s).
- Cosmos DB back -> fresh data: the stand-in stops for several refresh cycles while a
  message is written, then starts again; measured until the refreshed frame holds it.
  Baseline: one refresh period, the least any recovery can take.
- A lock holder's death -> the next refresh of its window: a process holding the
  frame's lock is killed; measured until another process refreshes the window (a
  message written meanwhile is in its frame).  Baseline: the lock lifetime of before
  (30 s).

Refreshes run every second here (``AGENTDASH_REFRESH_SECONDS=1``); with the default 5 s
each figure grows by up to the difference.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import RedisServer, report
from benchmarks.served import ratio
from pipelines.cache import MemoryFrameCache, RedisFrameCache
from pipelines.live import FrameSpec, LiveFrames
from pipelines.sources.cosmos import Backoff, CosmosSource
from pipelines.sources.local import PARTITION_KEYS, LocalSource
from pipelines.windows import Window
from tests.conftest import repeating, wait_until
from tests.cosmos_standin import CosmosStandin
from tests.ui.conftest import new_message

PERIOD = 1.0
DAY = FrameSpec("messages", Window.parse("24h"))


def refreshing(frames: LiveFrames) -> AbstractContextManager[list[object]]:
    """``frames.refresh_all()`` every PERIOD on a thread, as a server's refresher does."""
    return repeating(frames.refresh_all, PERIOD)


def seconds_until(condition: Callable[[], bool], timeout: float = 120) -> float:
    started = time.monotonic()
    wait_until(condition, timeout=timeout, interval=0.02)
    return time.monotonic() - started


def store_with_messages(path: Path) -> LocalSource:
    store = LocalSource(path)
    now = datetime.now(UTC)
    store.upsert(
        "messages",
        [new_message(timestamp=(now - timedelta(minutes=i)).isoformat()) for i in range(500)],
    )
    return store


def redis_back(folder: Path, redis: RedisServer, retry_seconds: float) -> float:
    store = store_with_messages(folder / f"redis-{retry_seconds}.db")
    writer = LiveFrames(
        LocalSource(store.path), RedisFrameCache(redis.url, retry_seconds=retry_seconds)
    )
    writer.get(DAY)
    reader = RedisFrameCache(redis.url, retry_seconds=0)
    with refreshing(writer):
        redis.stop()
        time.sleep(3 * PERIOD)  # refreshes go on without the cache
        redis.start()
        return seconds_until(lambda: reader.get(writer.key(DAY)) is not None)


def cosmos_back(folder: Path) -> float:
    with CosmosStandin() as standin:
        for container in ("agents", "messages"):
            standin.create_container("db", container, pk_path="/" + PARTITION_KEYS[container])
        standin.upsert("db", "messages", [new_message() for _ in range(500)])
        source = CosmosSource(standin.url, "db", standin.key, backoff=Backoff())
        frames = LiveFrames(source, MemoryFrameCache())
        frames.get(DAY)
        frames.get(FrameSpec("agents"))
        with refreshing(frames):
            standin.stop()
            written = new_message()
            standin.upsert("db", "messages", [written])
            wait_until(lambda: frames.get(DAY).stale, timeout=60)
            time.sleep(3 * PERIOD)  # gone for several cycles
            standin.start()
            return seconds_until(lambda: written["id"] in set(frames.get(DAY).frame["id"]))


HOLD = """
import sys, time
from pipelines.cache import RedisFrameCache
with RedisFrameCache(sys.argv[1], lock_seconds=float(sys.argv[3])).lock(sys.argv[2]):
    print("held", flush=True)
    time.sleep(600)
"""


def holder_dies(folder: Path, redis: RedisServer, lock_seconds: float) -> float:
    redis.flush()
    store = store_with_messages(folder / f"lock-{lock_seconds}.db")
    frames = LiveFrames(LocalSource(store.path), RedisFrameCache(redis.url))
    frames.get(DAY)
    key = frames.key(DAY)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, redis.url, key, str(lock_seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with refreshing(frames):
            written = new_message()
            store.upsert("messages", [written])
            time.sleep(2 * PERIOD)  # refreshes find the lock taken meanwhile
            holder.kill()
            holder.wait(10)
            return seconds_until(lambda: written["id"] in set(frames.get(DAY).frame["id"]))
    finally:
        holder.kill()
        holder.wait(10)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        redis = RedisServer(folder)
        redis.start()
        try:
            redis_now, redis_before = redis_back(folder, redis, 2), redis_back(folder, redis, 10)
            lock_now, lock_before = holder_dies(folder, redis, 3), holder_dies(folder, redis, 30)
        finally:
            redis.stop()
        cosmos = cosmos_back(folder)
    report(
        f"recovery, refreshes every {PERIOD:g} s (goal <= 5 s each)",
        [
            ("Redis back -> first cache hit", f"{redis_now:.1f} s"),
            (
                "  with the settings of before",
                f"{redis_before:.1f} s ({ratio(redis_now, redis_before)})",
            ),
            ("Cosmos DB back -> fresh data", f"{cosmos:.1f} s ({ratio(cosmos, PERIOD)} a period)"),
            ("holder's death -> next refresh", f"{lock_now:.1f} s"),
            (
                "  with a 30 s lock, as before",
                f"{lock_before:.1f} s ({ratio(lock_now, lock_before)})",
            ),
        ],
    )


if __name__ == "__main__":
    main()
