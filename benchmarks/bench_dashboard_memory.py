"""Server memory per open dashboard session, against a bare Panel template session.

Resident memory of the server process after opening 20 sessions, less what it
held with one, per session; the dashboard with demo messages arriving every
second.  Goal: at most 2x the bare template session.
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


def bytes_per_session(server: Server) -> float:
    with sessions(server.url, 1):  # imports, caches and data loaded before counting
        time.sleep(SETTLE)
        before = server.rss()
        with sessions(server.url, SESSIONS):
            time.sleep(SETTLE)
            after = server.rss()
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
