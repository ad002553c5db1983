"""Incremental refresh after 1k new messages on top of 1M cached, versus a cold load.

Measured with the in-process cache and with Redis (where each refresh also
writes the whole frame back for the other processes).  Goals: the refresh reads
at most 1.1k documents from the source and takes at most 5% of the cold load.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import RedisServer, demo_store, report
from pipelines import FrameSpec, LiveFrames, demo
from pipelines.cache import FrameCache, MemoryFrameCache, RedisFrameCache
from pipelines.query import Query
from pipelines.sources.local import LocalSource
from pipelines.windows import Window

MESSAGES = 1_000_000
NEW = 1_000
SPEC = FrameSpec("messages", Window.parse("24h"))


def measure(store: LocalSource, cache: FrameCache, label: str) -> list[tuple[str, str]]:
    backend = LiveFrames(store, cache)
    before = store.stats.documents
    started = time.perf_counter()
    cold = backend.get(SPEC)
    t_cold = time.perf_counter() - started
    docs_cold = store.stats.documents - before
    agents = [doc for page in store.fetch(Query.build("agents")) for doc in page]
    timings, reads = [], []
    for _ in range(3):
        store.upsert("messages", demo.live_messages(agents, NEW))
        before = store.stats.documents
        started = time.perf_counter()
        backend.refresh(SPEC)
        timings.append(time.perf_counter() - started)
        reads.append(store.stats.documents - before)
    t_refresh = sorted(timings)[1]
    return [
        (
            f"{label}: cold load",
            f"{t_cold:.2f} s, {docs_cold:,} documents, {len(cold.frame):,} rows",
        ),
        (f"{label}: refresh (median of 3)", f"{t_refresh * 1000:.0f} ms, {max(reads):,} documents"),
        (f"{label}: ratio refresh / cold", f"{t_refresh / t_cold:.1%} (goal <= 5%)"),
    ]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # 1.9 days: every message lies inside the 24h window or the period before it.
        store = demo_store(Path(tmp) / "bench.db", MESSAGES, days=1.9)
        rows = measure(store, MemoryFrameCache(), "in-process cache")
        server = RedisServer(Path(tmp))
        server.start()
        try:
            rows += measure(store, RedisFrameCache(server.url), "redis cache")
        finally:
            server.stop()
    report(f"refresh after {NEW:,} new messages on {MESSAGES:,} cached", rows)


if __name__ == "__main__":
    main()
