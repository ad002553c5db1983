"""Server memory per open dashboard session, against a bare Panel template session.

Resident memory of the server process with 20 sessions open, less what it held
with one, per session, both read once the memory has stopped growing (live
sessions keep allocating for a while after they open); the dashboard's sessions
show a 30d window of ``MEMORY_MESSAGES`` (1M) messages while demo messages arrive
every second.  The baseline is what the issue calls a bare Panel template session:
the template class the dashboard's page is (``BootstrapTemplate``) with a sidebar and
one HoloViews chart (benchmarks/baselines/template.py), served the same way.  Goal: at
most 2x the bare template session.
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

SESSIONS = int(env_number("MEMORY_SESSIONS", 20))
MESSAGES = int(env_number("MEMORY_MESSAGES", 1_000_000))
WINDOW = os.environ.get("MEMORY_WINDOW", "30d")
SETTLE = 5.0
STEADY = 0.005  # growth over one SETTLE period below which the memory is taken as steady
MOST = 60.0  # seconds to wait for that at most


def steady_rss(server: Server) -> int:
    """The server's resident memory once one ``SETTLE`` period adds less than ``STEADY``."""
    deadline = time.monotonic() + MOST
    time.sleep(SETTLE)
    rss = server.rss()
    while time.monotonic() < deadline:
        time.sleep(SETTLE)
        rss, last = server.rss(), rss
        if rss - last < STEADY * last:
            break
    return rss


def bytes_per_session(server: Server, url: str) -> float:
    with sessions(url, 1):  # imports, caches and data loaded before counting
        before = steady_rss(server)
        with sessions(url, SESSIONS):
            after = steady_rss(server)
    return (after - before) / SESSIONS


def main() -> None:
    stored = cached_store(MESSAGES, days=29.5)  # all of them in the 30d window
    with tempfile.TemporaryDirectory() as tmp:
        store = stored.copy(Path(tmp))  # the live writer adds to it
        with (
            Server(DASHBOARD, dashboard_env(store)) as dashboard,
            Server(BASELINES / "template.py") as bare,
            live_writer(store),
        ):
            ours = bytes_per_session(dashboard, f"{dashboard.url}?window={WINDOW}")
            baseline = bytes_per_session(bare, bare.url)
    report(
        f"server memory per open session ({SESSIONS} sessions; dashboard: {WINDOW} window "
        f"of {stored.describe()})",
        [
            ("dashboard", f"{ours / 2**20:.1f} MB"),
            ("bare template", f"{baseline / 2**20:.1f} MB"),
            ("ratio", f"{ratio(ours, baseline)} (goal <= 2x)"),
        ],
    )


if __name__ == "__main__":
    main()
