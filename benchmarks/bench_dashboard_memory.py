"""Server memory per open dashboard session, against a bare Panel template session.

Resident memory of the server process with 20 sessions open, less what it held
with one, per session, both read once the memory has stopped growing (live
sessions keep allocating for a while after they open); the dashboard with demo
messages arriving every second.  The baseline is what the issue calls a bare
Panel template session: a BootstrapTemplate with a sidebar and one HoloViews
chart (benchmarks/baselines/template.py).  Goal: at most 2x the bare template session.
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

SESSIONS = 20
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


def bytes_per_session(server: Server) -> float:
    with sessions(server.url, 1):  # imports, caches and data loaded before counting
        before = steady_rss(server)
        with sessions(server.url, SESSIONS):
            after = steady_rss(server)
    return (after - before) / SESSIONS


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.db"
        demo_store(store, 50_000, days=7)
        with (
            Server(DASHBOARD, dashboard_env(store)) as dashboard,
            Server(BASELINES / "template.py") as bare,
            live_writer(store),
        ):
            ours, baseline = bytes_per_session(dashboard), bytes_per_session(bare)
    report(
        f"server memory per open session ({SESSIONS} sessions)",
        [
            ("dashboard", f"{ours / 2**20:.1f} MB"),
            ("bare template", f"{baseline / 2**20:.1f} MB"),
            ("ratio", f"{ratio(ours, baseline)} (goal <= 2x)"),
        ],
    )


if __name__ == "__main__":
    main()
