"""Server CPU per session-update with 20 and 50 live sessions at a 1 s refresh.

CPU seconds of the server process / (sessions x updates) while demo messages
arrive every second, the sessions showing a 30d window of ``CPU_MESSAGES`` (1M)
messages, against a bare Panel page whose per-session periodic callback streams one
row a second into a Bokeh line, measured in the same run the same way.  Goal: at most
5 ms per session-update.  ``CPU_SESSIONS`` (``20,50``) and ``CPU_SECONDS`` (20) change
the run.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import cached_store, env_number, report
from benchmarks.served import (
    BASELINES,
    DASHBOARD,
    Server,
    dashboard_env,
    live_writer,
    ratio,
    sessions,
)

SESSIONS = [int(n) for n in os.environ.get("CPU_SESSIONS", "20,50").split(",")]
SECONDS = env_number("CPU_SECONDS", 20.0)
MESSAGES = int(env_number("CPU_MESSAGES", 1_000_000))
WINDOW = os.environ.get("CPU_WINDOW", "30d")
# The sessions' first updates build rather than update, and the sessions dropped before
# (see Server) cost a full garbage collection about 6.5 s later: both fall before the count.
WARM_UP = 8.0


def cpu_per_update(server: Server, url: str, count: int) -> float:
    """Server CPU seconds per session and update over SECONDS with ``count`` open sessions."""
    with sessions(url, count):
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
    stored = cached_store(MESSAGES, days=29.5)  # all of them in the 30d window
    with tempfile.TemporaryDirectory() as tmp:
        store = stored.copy(Path(tmp))  # the live writer adds to it
        with (
            Server(DASHBOARD, dashboard_env(store, refresh_seconds=1)) as dashboard,
            Server(BASELINES / "stream.py") as bare,
            live_writer(store),
        ):
            for count in SESSIONS:
                ours = cpu_per_update(dashboard, f"{dashboard.url}?window={WINDOW}", count)
                baseline = cpu_per_update(bare, bare.url, count)
                rows += [
                    (f"{count} sessions: dashboard", f"{ours * 1000:.1f} ms per session-update"),
                    (f"{count} sessions: bare stream", f"{baseline * 1000:.1f} ms"),
                    (f"{count} sessions: ratio", f"{ratio(ours, baseline)} (goal <= 5 ms)"),
                ]
    report(f"server CPU per session-update, 1 s refresh, {WINDOW} of {stored.describe()}", rows)


if __name__ == "__main__":
    main()
