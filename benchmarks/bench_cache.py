"""A cache hit of the 30d frame of 1M messages through Redis, the whole read path, versus pickle.

A process that finds a frame in the shared cache reads it as ``LiveFrames.get`` does: the
real ``RedisFrameCache.get`` (frame and metadata fetched together, the Arrow IPC + zstd
bytes decoded) and the frame's columns made canonical, timed as a new ``LiveFrames`` over
the same cache asking for the window.  The baseline is what ``pn.cache``-style caches do
with the same frame in the same Redis: ``GET`` + ``pickle.loads``.  Medians of 5 rounds
timing each in turn.  Goal: the whole read path at least 3x faster than pickle.
``CACHE_MESSAGES`` (1M) messages over 29.5 days, all in the 30d window.
"""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path

import redis

from benchmarks.common import RedisServer, cached_store, env_number, interleaved_medians, report
from pipelines import FrameSpec, LiveFrames
from pipelines.cache import KEY_PREFIX, RedisFrameCache
from pipelines.sources.local import LocalSource
from pipelines.windows import Window

MESSAGES = int(env_number("CACHE_MESSAGES", 1_000_000))
SPEC = FrameSpec("messages", Window.parse("30d"))


def main() -> None:
    store = LocalSource(cached_store(MESSAGES, days=29.5).path)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            cache = RedisFrameCache(server.url)
            writer = LiveFrames(store, cache)
            frame = writer.get(SPEC).frame  # read from the store, written to Redis
            key = writer.key(SPEC)
            client = redis.Redis.from_url(server.url)
            pickled = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
            client.set("bench:pickle", pickled)
            arrow = client.get(f"{KEY_PREFIX}:frame:{key}")
            assert arrow is not None, "the frame is not in Redis under the key LiveFrames gives"

            def read_path() -> object:
                # A process that holds no live frame of the window: the cache hit, coerced.
                return LiveFrames(store, cache).get(SPEC).frame

            def cache_get() -> object:
                return cache.get(key)

            def pickle_hit() -> object:
                return pickle.loads(client.get("bench:pickle"))  # type: ignore[arg-type]

            hits = cache.stats.hits
            assert LiveFrames(store, cache).get(SPEC).frame.equals(frame)
            assert cache.stats.hits == hits + 1, "the read path did not hit the cache"
            timed = interleaved_medians({"read": read_path, "get": cache_get, "pickle": pickle_hit})
            t_read, t_get, t_pickle = timed["read"], timed["get"], timed["pickle"]
        finally:
            server.stop()
    report(
        f"cache hit of the 30d frame, {len(frame):,} messages through Redis (medians of 5 rounds)",
        [
            ("LiveFrames.get, cache hit", f"{t_read * 1000:.0f} ms, {len(arrow) / 1e6:.1f} MB"),
            ("  of which RedisFrameCache.get", f"{t_get * 1000:.0f} ms"),
            (
                "GET + pickle.loads (baseline)",
                f"{t_pickle * 1000:.0f} ms, {len(pickled) / 1e6:.1f} MB",
            ),
            ("ratio pickle / read path", f"{t_pickle / t_read:.1f}x (goal >= 3x)"),
            ("ratio pickle / RedisFrameCache.get", f"{t_pickle / t_get:.1f}x"),
        ],
    )


if __name__ == "__main__":
    main()
