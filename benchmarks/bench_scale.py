"""Long windows at scale: the Overview's numbers for 24h to 90d over 1M and 10M messages.

Per demo store (90 days of 1M, then 10M messages; kept between runs, see
``benchmarks.common.cached_store``), each figure next to its goal:

- the first long window a fresh server is asked for over an empty cache: its time and the
  documents it read (with rollups, their initial build over the whole store: once), then
  the documents the other long windows read after it;
- cold and warm time to the Overview's numbers for 24h, 7d, 30d and 90d, median of
  ``SCALE_REPEAT`` (3): cold is a fresh server process asked for that window first,
  after its frame was removed from the cache (the rollups, wherever they are kept, stay);
  warm is the same question asked again of that process.  Goals: every cold view <= 5 s,
  the 90d warm <= 2x the 24h warm;
- the peak resident memory of a served process after a new user's page of every window was
  opened in Chromium (goal <= 1.5 GB);
- a refresh after ``SCALE_NEW`` (10k) new messages, with those pages open: documents read
  (goal <= 11k) and the seconds each live frame's refresh took (goal <= 1 s);
- across stores, the 24h cold of 1M against 10M (goal within 1.5x).  Over the same 90
  days the 24h window of 10M holds ten times the messages, so the same comparison is also
  made against 1M messages over 9 days, whose 24h window holds as many as 10M's.

The Overview's numbers are timed as ``GET /api/v1/metrics/summary?window=W`` of a served
process: it answers from the same live frames, pipeline and ``metrics.kpis`` as the
Overview's KPI cards, without the page's drawing (bench_dashboard_load times that), so a
cold figure is what the data layer makes the first user of a window wait for.  A window
the code does not take yet (``90d`` before it is added) is reported as not supported.

The servers share a private Redis (``SCALE_REDIS=0``: each its in-process cache), as a
deployment of several processes does: it is where a fresh process finds what others
computed.  Sizes: ``SCALE_SIZES`` (``1000000,10000000``), ``SCALE_DAYS`` (90),
``SCALE_REPEAT``, ``SCALE_NEW``.  Writing the 10M store takes several minutes and 4.4 GB
of disk; write it ahead of time with ``python -m benchmarks.bench_scale --build-only``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from benchmarks.common import RedisServer, StoredDemo, cached_store, env_number, report
from benchmarks.served import (
    DASHBOARD,
    OVERVIEW_CHARTS,
    Server,
    chromium,
    dashboard_env,
    megabytes,
    page_open,
    ratio,
)
from pipelines import FrameSpec, LiveFrames, QueryError, demo, load_settings
from pipelines.cache import KEY_PREFIX
from pipelines.query import Query
from pipelines.sources.local import LocalSource
from pipelines.windows import Window

SIZES = [int(size) for size in os.environ.get("SCALE_SIZES", "1000000,10000000").split(",")]
DAYS = env_number("SCALE_DAYS", 90)
REPEAT = int(env_number("SCALE_REPEAT", 3))
NEW = int(env_number("SCALE_NEW", 10_000))
WINDOWS = ("24h", "7d", "30d", "90d")
LONG = WINDOWS[1:]  # at or above AGENTDASH_ROLLUP_FROM's default (7d)
REFRESH = 2.0  # seconds between refreshes in the refresh phase
GIB = 2**30


def summary(window: str) -> str:
    return f"/api/v1/metrics/summary?window={window}"


@dataclass
class Asked:
    """What one window's summary cost, over the fresh processes that answered it."""

    window: str
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    peak: list[int] = field(default_factory=list)
    messages: int | None = None
    refused: str | None = None

    @property
    def supported(self) -> bool:
        return self.refused is None


class Bench:
    """The servers of one store: its environment, the shared cache, a folder for logs."""

    def __init__(self, store: StoredDemo, folder: Path, redis_url: str) -> None:
        self.store, self.folder, self.redis_url = store, folder, redis_url

    def server(self, refresh_seconds: float = 3600) -> Server:
        env = dashboard_env(self.store.path, refresh_seconds, self.redis_url)
        return Server(DASHBOARD, env, log=self.folder / "serve.log")

    def forget(self, window: str) -> bool:
        """Remove the window's frame from the shared cache; False when it held none."""
        if not self.redis_url:
            return True
        try:
            spec = FrameSpec("messages", Window.parse(window))
        except QueryError:
            return True  # a window the code does not take has no frame
        env = {**os.environ, **dashboard_env(self.store.path, redis_url=self.redis_url)}
        key = LiveFrames.from_settings(load_settings(env)).key(spec)
        keys = [f"{KEY_PREFIX}:frame:{key}", f"{KEY_PREFIX}:meta:{key}"]
        return bool(redis.Redis.from_url(self.redis_url).delete(*keys))

    def documents(self, server: Server) -> int:
        """Documents the process has read so far (/health also loads the 24h frame)."""
        return int(server.health()["source_stats"]["documents"])


def first_build(bench: Bench, asked: dict[str, Asked]) -> list[tuple[str, str]]:
    """A fresh server over an empty cache: the 24h window, then each long window."""
    if bench.redis_url:
        redis.Redis.from_url(bench.redis_url).flushall()
    rows = []
    with bench.server() as server:
        status, body, seconds = server.get(summary("24h"))
        read = bench.documents(server)
        rows.append(("first 24h, empty cache", f"{seconds:.2f} s; {read:,} documents read"))
        for window in LONG:
            status, body, seconds = server.get(summary(window))
            if status != 200:
                asked[window].refused = f"{status}: {body.get('detail') if body else ''}"
                continue
            now_read = bench.documents(server)
            first = len(rows) == 1
            rows.append(
                (
                    f"then {window}",
                    f"{seconds:.2f} s; {now_read - read:,} documents read"
                    + (
                        " (with rollups: their initial build, the store read once)"
                        if first
                        else " (with rollups: ~0)"
                    ),
                )
            )
            read = now_read
        rows.append(("  its peak RSS", megabytes(server.peak_rss())))
    return rows


def cold_and_warm(bench: Bench, asked: Asked, cached: bool = True) -> None:
    """REPEAT fresh servers asked for the window first (cold), then thrice more (warm);
    ``cached``: an earlier server asked for it, so the cache should hold its frame."""
    for _ in range(REPEAT):
        if not bench.forget(asked.window) and cached:
            print(f"  note: the cache held no frame of {asked.window} to remove", flush=True)
        with bench.server() as server:
            status, body, seconds = server.get(summary(asked.window))
            if status != 200:
                asked.refused = f"{status}: {body.get('detail') if body else ''}"
                return
            asked.cold.append(seconds)
            asked.messages = int(body["messages"])
            asked.warm += [server.get(summary(asked.window))[2] for _ in range(3)]
            asked.peak.append(server.peak_rss())


def every_window(bench: Bench, windows: list[str]) -> list[tuple[str, str]]:
    """Every window's page opened in one fresh server, then 10k new messages refreshed."""
    for window in windows:
        bench.forget(window)
    rows = []
    with (
        bench.server(refresh_seconds=REFRESH) as server,
        chromium() as browser,
        ExitStack() as pages,
    ):
        for window in windows:
            _, seconds = pages.enter_context(
                page_open(browser, f"{server.url}?window={window}", OVERVIEW_CHARTS)
            )
            rows.append((f"page of {window} drawn, new user", f"{seconds:.2f} s"))
        peak = server.peak_rss()
        rows.append(
            (
                "peak RSS, every window open",
                f"{megabytes(peak)} (now {megabytes(server.rss())}; goal <= 1.5 GB: "
                f"{'met' if peak <= 1.5 * GIB else 'missed'})",
            )
        )
        rows += refresh_after_new(bench, server)
    return rows


def refresh_after_new(bench: Bench, server: Server) -> list[tuple[str, str]]:
    """Write NEW messages into the store; what the next refresh cycles read and took."""
    health = server.health()
    cycles = health["refresher"]["cycles"]
    while server.health()["refresher"]["cycles"] < cycles + 1:  # frames loaded, in step
        time.sleep(0.2)
    before, since = server.health(), datetime.now(UTC)
    source = LocalSource(bench.store.path)
    agents = [doc for page in source.fetch(Query.build("agents")) for doc in page]
    source.upsert("messages", demo.live_messages(agents, NEW))
    source.close()
    bench.store.appending(NEW)
    cycles = server.health()["refresher"]["cycles"]
    while server.health()["refresher"]["cycles"] < cycles + 2:  # one whole cycle after
        time.sleep(0.2)
    after = server.health()
    read = after["source_stats"]["documents"] - before["source_stats"]["documents"]
    records = [r for r in after["refreshes"] if datetime.fromisoformat(r["at"]) > since]
    by_spec: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_spec.setdefault(record["spec"], []).append(record)
    rows = [
        (
            f"refresh after {NEW:,} new messages",
            f"{read:,} documents read (goal <= {NEW * 1.1:,.0f})",
        )
    ]
    for spec, done in by_spec.items():
        busy = [r for r in done if r["documents"]]
        seconds = max((r["seconds"] for r in busy), default=0.0)
        rows.append(
            (
                f"  {spec}",
                f"{sum(r['documents'] for r in done):,} documents, {seconds:.2f} s"
                + (" (goal <= 1 s)" if any(w in spec for w in LONG) else ""),
            )
        )
    return rows


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure(
    store: StoredDemo, folder: Path, redis_url: str
) -> tuple[dict[str, Asked], list[tuple[str, str]]]:
    bench = Bench(store, folder, redis_url)
    asked = {window: Asked(window) for window in WINDOWS}
    rows = first_build(bench, asked)
    for window in WINDOWS:
        if asked[window].supported:
            cold_and_warm(bench, asked[window])
    for window, done in asked.items():
        if not done.supported:
            rows.append((window, f"not supported ({done.refused})"))
            continue
        rows.append(
            (
                f"{window} cold / warm",
                f"{median(done.cold):.2f} s / {median(done.warm) * 1000:.0f} ms, "
                f"{done.messages:,} messages, peak RSS {megabytes(max(done.peak))}",
            )
        )
    colds = [median(done.cold) for done in asked.values() if done.supported]
    rows.append(("slowest cold view", f"{max(colds):.2f} s (goal <= 5 s)"))
    day, long = asked["24h"], asked["90d"]
    if long.supported:
        rows.append(
            ("90d warm / 24h warm", f"{ratio(median(long.warm), median(day.warm))} (goal <= 2x)")
        )
    else:
        rows.append(("90d warm / 24h warm", "n/a: 90d not supported (goal <= 2x)"))
    supported = [window for window in WINDOWS if asked[window].supported]
    rows += every_window(bench, supported)
    return asked, rows


def main() -> None:
    stores = [cached_store(size, DAYS) for size in SIZES]
    # As many messages a day as the largest store: its 24h window holds as many.
    dense = cached_store(min(SIZES), DAYS * min(SIZES) / max(SIZES)) if len(SIZES) > 1 else None
    if "--build-only" in sys.argv:
        return
    settings = [
        f"{name}={os.environ[name]}" for name in os.environ if name.startswith("AGENTDASH_")
    ]
    print("settings:", ", ".join(settings) or "defaults", flush=True)
    day_colds: list[tuple[StoredDemo, float]] = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        url = ""
        if os.environ.get("SCALE_REDIS", "1") != "0":
            cache = RedisServer(folder)
            cache.start()
            stack.callback(cache.stop)
            url = cache.url
        for store in stores:
            print(f"\nmeasuring {store.describe()} ...", flush=True)
            asked, rows = measure(store, folder, url)
            day_colds.append((store, median(asked["24h"].cold)))
            report(f"{store.describe()} ({'Redis' if url else 'in-process'} cache)", rows)
        if dense is not None:
            day = Asked("24h")
            cold_and_warm(Bench(dense, folder, url), day, cached=False)
            day_colds.append((dense, median(day.cold)))
    if len(day_colds) > 1:
        largest, slowest = max(day_colds, key=lambda pair: pair[0].messages)
        others = [(store, seconds) for store, seconds in day_colds if store is not largest]
        report(
            "24h cold against the store's size (goal: within 1.5x)",
            [(store.describe(), f"{seconds:.2f} s") for store, seconds in day_colds]
            + [
                (
                    f"{largest.messages:,} / {store.messages:,} over {store.days:g} days",
                    ratio(slowest, seconds),
                )
                for store, seconds in others
            ],
        )


if __name__ == "__main__":
    main()
