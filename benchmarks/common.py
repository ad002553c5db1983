"""What the benchmarks share: timing, a private Redis, a demo store.

Run the benchmarks from the repository root: ``python -m benchmarks.bench_cache``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from pipelines import demo
from pipelines.sources.local import LocalSource
from tests.conftest import RedisServer

__all__ = ["RedisServer", "demo_store", "median_seconds", "report"]


def median_seconds(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of ``repeat`` calls (one unmeasured warm-up call first)."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def demo_store(path: Path, messages: int, days: float, agents: int = 20) -> LocalSource:
    """A local store holding ``messages`` demo messages over the last ``days``."""
    store = LocalSource(path)
    agent_docs, message_docs = demo.generate(agents, messages, days, seed=1)
    store.upsert("agents", agent_docs)
    store.upsert("messages", message_docs)
    return store


def report(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"\n== {title}")
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
