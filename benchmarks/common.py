"""What the benchmarks share: timing, sizes, a private Redis, demo stores.

Run the benchmarks from the repository root: ``python -m benchmarks.bench_cache``.

Large stores take minutes to write, so :func:`cached_store` keeps them between runs in
``AGENTDASH_BENCH_CACHE`` (default ``~/.cache/agentdash-bench``), keyed by their size.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines import demo
from pipelines.sources.local import LocalSource
from tests.conftest import RedisServer

__all__ = [
    "RedisServer",
    "StoredDemo",
    "cached_store",
    "demo_store",
    "env_number",
    "interleaved_medians",
    "median_seconds",
    "report",
]

CACHE = Path(os.environ.get("AGENTDASH_BENCH_CACHE", "~/.cache/agentdash-bench")).expanduser()
# Windows end now: a store written hours ago has its newest messages that much further back.
MAX_AGE_HOURS = float(os.environ.get("AGENTDASH_BENCH_STORE_HOURS", "6"))
# demo.generate holds every document of a call in memory (about 1.4 GB a million).
CHUNK = 1_000_000


def env_number(name: str, default: float) -> float:
    """A size or duration from the environment, ``default`` (the issue's) when unset."""
    value = os.environ.get(name)
    return float(value) if value else default


def median_seconds(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of ``repeat`` calls (one unmeasured warm-up call first)."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int = 5) -> dict[str, float]:
    """Median wall time of each of ``fns`` over ``repeat`` rounds that call each in turn
    (one unmeasured warm-up round first): on a shared machine, a busy spell then slows
    every contender alike rather than one of them."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(repeat + 1):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            if round_:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def demo_store(path: Path, messages: int, days: float, agents: int = 20) -> LocalSource:
    """A local store holding ``messages`` demo messages over the last ``days``."""
    store = LocalSource(path)
    agent_docs, message_docs = demo.generate(agents, messages, days, seed=1)
    store.upsert("agents", agent_docs)
    store.upsert("messages", message_docs)
    return store


@dataclass(frozen=True)
class StoredDemo:
    """A demo store kept between runs: what it holds and when its data end."""

    path: Path
    messages: int
    days: float
    agents: int
    built_at: datetime
    #: Messages written into it after it was built (refresh benchmarks add some).
    appended: int = 0

    @property
    def age(self) -> timedelta:
        return datetime.now(UTC) - self.built_at

    def describe(self) -> str:
        extra = f" + {self.appended:,} appended" if self.appended else ""
        hours = self.age.total_seconds() / 3600
        return (
            f"{self.messages:,} messages{extra} over {self.days:g} days, written {hours:.1f} h ago"
        )

    def appending(self, count: int) -> None:
        """Record ``count`` messages written into the store after it was built."""
        meta = _meta_path(self.path)
        values = json.loads(meta.read_text())
        values["appended"] = values.get("appended", 0) + count
        meta.write_text(json.dumps(values))

    def copy(self, folder: Path) -> Path:
        """A copy of the store in ``folder``, for a benchmark that writes into it."""
        target = folder / self.path.name
        shutil.copyfile(self.path, target)
        return target


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def cached_store(messages: int, days: float, agents: int = 20) -> StoredDemo:
    """A demo store of ``messages`` messages over the last ``days``, from the cache folder
    when one of this size was written less than ``AGENTDASH_BENCH_STORE_HOURS`` ago.

    The same data as ``agentdash demo --agents A --messages M --days D --seed 1`` up to
    a million messages; above that, written a million at a time (one call of
    ``demo.generate`` per slice of days, the agents of the newest slice throughout),
    since one call would hold every document in memory at once.  Build one ahead of
    time with ``python -m benchmarks.common MESSAGES DAYS``.
    """
    path = CACHE / f"demo-{messages}-{days:g}d-{agents}a.db"
    meta = _meta_path(path)
    if path.exists() and meta.exists():
        values = json.loads(meta.read_text())
        stored = StoredDemo(
            path,
            messages,
            days,
            agents,
            datetime.fromisoformat(values["built_at"]),
            values.get("appended", 0),
        )
        if stored.age < timedelta(hours=MAX_AGE_HOURS):
            return stored
        print(f"{path.name}: {stored.describe()}, older than {MAX_AGE_HOURS:g} h: writing again")
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for stale in (path, meta, partial, *partial.parent.glob(partial.name + "-*")):
        stale.unlink(missing_ok=True)
    print(f"writing {messages:,} demo messages over {days:g} days into {path} ...", flush=True)
    started = time.perf_counter()
    now = datetime.now(UTC)
    _write_demo(LocalSource(partial), messages, days, agents, now)
    partial.rename(path)
    meta.write_text(json.dumps({"built_at": now.isoformat(), "appended": 0}))
    print(f"  written in {time.perf_counter() - started:.0f} s", flush=True)
    return StoredDemo(path, messages, days, agents, now)


def _write_demo(store: LocalSource, messages: int, days: float, agents: int, now: datetime) -> None:
    chunks = max(1, -(-messages // CHUNK))
    span = days / chunks
    roster: list[str] = []
    for k in range(chunks):
        count = messages // chunks + (1 if k < messages % chunks else 0)
        agent_docs, message_docs = demo.generate(
            agents, count, span, seed=1 + k, now=now - timedelta(days=span * k)
        )
        if k == 0:  # the newest slice: its agents' statuses are those of now
            store.upsert("agents", agent_docs)
            roster = [doc["id"] for doc in agent_docs]
        else:  # the same agents, by their place in the roster
            same = dict(zip([doc["id"] for doc in agent_docs], roster, strict=True))
            for doc in message_docs:
                doc["agentId"] = same[doc["agentId"]]
        store.upsert("messages", message_docs)
        del message_docs
        if chunks > 1:
            print(f"  slice {k + 1} of {chunks} written", flush=True)
    store.close()


def report(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"\n== {title}")
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")


if __name__ == "__main__":
    import sys

    count, span = int(sys.argv[1]), float(sys.argv[2])
    print(cached_store(count, span).describe())
