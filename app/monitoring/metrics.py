"""The server's Prometheus metrics, correct across processes.

``agentdash serve`` names a fresh directory in ``PROMETHEUS_MULTIPROC_DIR``
before anything imports ``prometheus_client`` (or keeps the one given, which
must be empty when the first process starts): each process writes its values
there, and ``/metrics``, answered by any of them, sums them all.  Without it
(``panel serve`` by hand) the process reports its own.

What the data layer counts (documents read, request units, throttles, cache
hits, quarantined documents, refresh durations, alert evaluations and
notifications) is carried over into these
counters by each process every refresh period and before each scrape it
answers (:func:`sync_all`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bokeh.document import Document
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app.live import alert_stats
from pipelines.live import LiveFrames
from pipelines.status import RefreshRecord

SESSIONS = Gauge(
    "agentdash_sessions", "Open dashboard pages (live sessions).", multiprocess_mode="livesum"
)
REFRESH_SECONDS = Histogram(
    "agentdash_refresh_seconds",
    "Time of each read of a live frame (cold load or refresh).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DOCUMENTS_READ = Counter("agentdash_documents_read", "Documents read from the source.")
REQUEST_UNITS = Counter(
    "agentdash_request_units", "Request units the source charged (Cosmos DB; 0 locally)."
)
THROTTLED = Counter("agentdash_throttled", "Source requests throttled (HTTP 429).")
CACHE_HITS = Counter("agentdash_cache_hits", "Frames found in the cache.")
CACHE_MISSES = Counter("agentdash_cache_misses", "Frames not found in the cache.")
QUARANTINED = Counter("agentdash_quarantined", "Documents quarantined as unreadable.")
HTTP_SECONDS = Histogram(
    "agentdash_http_request_seconds",
    "Time to answer each HTTP request, by route and status.",
    ["route", "status"],
)
ALERT_EVALUATIONS = Counter("agentdash_alert_evaluations", "Alert rule evaluations (steps).")
ALERTS_FIRING = Gauge(
    "agentdash_alerts_firing",
    "Alert instances firing, as the shared alert state held them at the last evaluation.",
    multiprocess_mode="livemax",
)
NOTIFICATIONS_SENT = Counter("agentdash_notifications_sent", "Alert notifications delivered.")
NOTIFICATIONS_FAILED = Counter(
    "agentdash_notifications_failed", "Alert notifications not delivered after every retry."
)
DATA_AGE = Gauge(
    "agentdash_data_age_seconds",
    "Age of the oldest data a process serves, at its last refresh.",
    multiprocess_mode="livemax",
)
FRAME_BYTES = Gauge(
    "agentdash_frame_bytes",
    "Bytes of the live frames a process holds (see AGENTDASH_MEMORY_BUDGET).",
    multiprocess_mode="livesum",
)

_TOTALS: dict[Counter, Callable[[dict[str, Any]], float]] = {
    DOCUMENTS_READ: lambda s: s["source"]["documents"],
    REQUEST_UNITS: lambda s: s["source"]["request_charge"],
    THROTTLED: lambda s: s["source"]["throttled"],
    CACHE_HITS: lambda s: s["cache"]["hits"],
    CACHE_MISSES: lambda s: s["cache"]["misses"],
    QUARANTINED: lambda s: s["quarantined"],
    ALERT_EVALUATIONS: lambda s: s["alerts"]["evaluations"],
    NOTIFICATIONS_SENT: lambda s: s["alerts"]["sent"],
    NOTIFICATIONS_FAILED: lambda s: s["alerts"]["failed"],
}


class Monitor:
    """Carries one process's live-frame counters over into the metrics."""

    def __init__(self, frames: LiveFrames) -> None:
        self.frames = frames
        self._lock = threading.Lock()
        self._totals: dict[Counter, float] = dict.fromkeys(_TOTALS, 0.0)
        self._last: RefreshRecord | None = None

    def sync(self) -> None:
        """Add what was counted since the last sync."""
        status = self.frames.status()
        alerts = alert_stats(self.frames)
        counted = {
            "source": status.source_stats,
            "cache": status.cache_stats,
            "quarantined": status.quarantined,
            "alerts": alerts or dict.fromkeys(("evaluations", "sent", "failed"), 0),
        }
        with self._lock:
            for counter, total in _TOTALS.items():
                now = float(total(counted))
                if now > self._totals[counter]:
                    counter.inc(now - self._totals[counter])
                    self._totals[counter] = now
            new: list[RefreshRecord] = []
            for record in reversed(status.refreshes):
                if record is self._last:
                    break
                new.append(record)
            for record in reversed(new):
                REFRESH_SECONDS.observe(record.seconds)
            if status.refreshes:
                self._last = status.refreshes[-1]
            FRAME_BYTES.set(sum(frame.bytes for frame in status.frames))
            if alerts is not None:
                ALERTS_FIRING.set(alerts["firing"])
            if status.oldest is not None:
                DATA_AGE.set((datetime.now(UTC) - status.oldest).total_seconds())


def count_session(doc: Document) -> None:
    """Count an open page in ``agentdash_sessions`` until its session is destroyed."""
    SESSIONS.inc()
    doc.on_session_destroyed(lambda _context: SESSIONS.dec())


_monitors: dict[LiveFrames, Monitor] = {}
_guard = threading.Lock()


def _forget_after_fork() -> None:
    # A --num-procs worker has its parent's monitors but not its subscriptions' effects.
    global _guard
    _guard = threading.Lock()
    _monitors.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def watch(frames: LiveFrames) -> Monitor:
    """The monitor of ``frames`` in this process, made once."""
    with _guard:
        monitor = _monitors.get(frames)
        if monitor is None:
            monitor = _monitors[frames] = Monitor(frames)
        return monitor


def sync_all() -> None:
    """Carry over what every watched set of live frames counted (``agentdash serve`` calls it
    each refresh period, in each process: another process's scrape reads it from its files)."""
    for monitor in list(_monitors.values()):
        monitor.sync()


def process_gone() -> None:
    """Drop this process's live gauges (open sessions, data age) from the shared folder."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())


def exposition() -> tuple[bytes, str]:
    """The metrics of every process, in the Prometheus text format, and its content type."""
    sync_all()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
