"""Server CPU per session-update with 20 and 50 live sessions at a 1 s refresh.

CPU seconds of the server process / (sessions x updates) while demo messages
arrive every second, against a bare Panel page whose per-session periodic
callback streams one row a second into a Bokeh line, measured in the same run
the same way.  Goal: at most 5 ms per session-update.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import demo_store, report
from benchmarks.served import (
    BASELINES,
    DASHBOARD,
    Server,
    dashboard_env,
    live_writer,
    ratio,
    sessions,
)

SESSIONS = (20, 50)
SECONDS = 20.0
# The sessions' first updates build rather than update, and the sessions dropped before
# (see Server) cost a full garbage collection about 6.5 s later: both fall before the count.
WARM_UP = 8.0


def cpu_per_update(server: Server, count: int) -> float:
    """Server CPU seconds per session and update over SECONDS with ``count`` open sessions."""
    with sessions(server.url, count):
        time.sleep(WARM_UP)
        cycles = server.health()["refresher"]["cycles"] if server.dashboard else 0
        cpu, started = server.cpu_seconds(), time.monotonic()
        time.sleep(SECONDS)
        cpu, elapsed = server.cpu_seconds() - cpu, time.monotonic() - started
        # The baseline updates once a second; the dashboard once per refresh cycle.
        updates = server.health()["refresher"]["cycles"] - cycles if server.dashboard else elapsed
    return cpu / (count * updates)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.db"
        demo_store(store, 50_000, days=7)
        with (
            Server(DASHBOARD, dashboard_env(store, refresh_seconds=1)) as dashboard,
            Server(BASELINES / "stream.py") as bare,
            live_writer(store),
        ):
            for count in SESSIONS:
                ours, baseline = cpu_per_update(dashboard, count), cpu_per_update(bare, count)
                rows += [
                    (f"{count} sessions: dashboard", f"{ours * 1000:.1f} ms per session-update"),
                    (f"{count} sessions: bare stream", f"{baseline * 1000:.1f} ms"),
                    (f"{count} sessions: ratio", f"{ratio(ours, baseline)} (goal <= 5 ms)"),
                ]
    report("server CPU per session-update, 1 s refresh", rows)


if __name__ == "__main__":
    main()
