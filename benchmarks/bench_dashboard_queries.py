"""Source queries per refresh cycle with 1, 10 and 50 open sessions.

One refresher per process reads each live frame once per cycle, however many
sessions watch it.  Counted from the server's /health (source requests and
refresh cycles) while demo messages arrive every second.  Goal: one query per
frame and cycle, the same for every number of sessions.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import demo_store, report
from benchmarks.served import DASHBOARD, Server, dashboard_env, live_writer, sessions

SESSIONS = (1, 10, 50)
CYCLES = 10


def queries_per_cycle(server: Server) -> tuple[float, int]:
    """Source requests per refresh cycle over CYCLES cycles, and the live frames refreshed."""
    before = server.health()
    while server.health()["refresher"]["cycles"] < before["refresher"]["cycles"] + CYCLES:
        time.sleep(0.5)
    after = server.health()
    requests = after["source_stats"]["requests"] - before["source_stats"]["requests"]
    cycles = after["refresher"]["cycles"] - before["refresher"]["cycles"]
    return requests / cycles, len(after["frames"])


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.db"
        demo_store(store, 50_000, days=7)
        with Server(DASHBOARD, dashboard_env(store)) as server, live_writer(store):
            for count in SESSIONS:
                with sessions(server.url, count):
                    per_cycle, frames = queries_per_cycle(server)
                rows.append(
                    (
                        f"{count} sessions",
                        f"{per_cycle:.2f} queries per cycle for {frames} live frames "
                        f"= {per_cycle / frames:.2f} per frame (goal 1)",
                    )
                )
    report("source queries per refresh cycle", rows)


if __name__ == "__main__":
    main()
