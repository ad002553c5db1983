"""Soak: 50 live dashboard sessions on one server process for 10 minutes.

The sessions speak the Bokeh protocol as browser tabs do (benchmarks/sessions.py:
``DocumentReady`` sent, every update read) while demo messages arrive every second
and the server refreshes every second.  Figures: the server's resident memory idle,
with the sessions just open, after a warm-up and at the end (growth after the warm-up,
goal < 10%); sessions served; errors (sessions the server closed or broke, and errors
in its log; goal 0); and what the sessions leave once closed: live sessions, refresh
listeners (subscribers) and threads, against the counts before they opened (goal: the
same).  ``SOAK_SESSIONS``, ``SOAK_MINUTES`` and ``SOAK_WARMUP_MINUTES`` change the run
(default 50, 10 and 2).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import demo_store, report
from benchmarks.served import DASHBOARD, ROOT, Server, dashboard_env, live_writer
from tests.conftest import wait_until

SESSIONS = int(os.environ.get("SOAK_SESSIONS", "50"))
MINUTES = float(os.environ.get("SOAK_MINUTES", "10"))
WARMUP = float(os.environ.get("SOAK_WARMUP_MINUTES", "2"))


def leftovers(server: Server) -> dict[str, int]:
    """What a session could leave behind: live sessions, listeners, server threads."""
    health = server.health()
    return {
        "sessions": int(health["sessions"]),
        "listeners": int(health["listeners"]),
        "threads": server.ps.num_threads(),
    }


def first_traceback(logged: list[str]) -> list[str]:
    start = next((i for i, line in enumerate(logged) if line.startswith("Traceback")), None)
    if start is None:
        return []
    end = next((j for j in range(start + 1, len(logged)) if not logged[j].startswith(" ")), start)
    return logged[start : end + 1]


def megabytes(rss: int) -> str:
    return f"{rss / 2**20:,.0f} MB"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store, log = Path(tmp) / "bench.db", Path(tmp) / "serve.log"
        demo_store(store, 50_000, days=7)
        with Server(DASHBOARD, dashboard_env(store), log=log) as server, live_writer(store):
            # No session is open yet: the readiness probe builds none (served.PROBE).
            wait_until(lambda: leftovers(server)["sessions"] == 0, timeout=60)
            idle_rss = server.rss()
            before = leftovers(server)
            client = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.sessions", server.url, str(SESSIONS)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert client.stdin is not None and client.stdout is not None
            ready = client.stdout.readline()
            if not ready.startswith("ready"):
                raise RuntimeError(f"the session client failed: {ready!r}")
            opened, open_rss = time.monotonic(), server.rss()
            served = leftovers(server)["sessions"]
            time.sleep(WARMUP * 60)
            warm_rss, peak = server.rss(), server.rss()
            while time.monotonic() - opened < MINUTES * 60:
                time.sleep(10)
                peak = max(peak, server.rss())
            end_rss = server.rss()
            client.stdin.close()
            done = client.stdout.readline().strip()
            client.wait(60)
            # Closed sessions are dropped within a second or two (see Server).
            wait_until(
                lambda: leftovers(server)["sessions"] == 0,
                timeout=120,
                message="the closed sessions to be dropped",
            )
            time.sleep(5)  # the threads of the last sessions' work end
            after = leftovers(server)
        logged = log.read_text(errors="replace").splitlines()
    log_errors = [line for line in logged if " ERROR " in line or "Traceback" in line]
    # What each traceback ended with: the exception, the first line not indented after it.
    raised = [
        next((later for later in logged[i + 1 :] if not later.startswith(" ")), "")
        for i, line in enumerate(logged)
        if line.startswith("Traceback")
    ]
    growth = (end_rss - warm_rss) / warm_rss
    report(
        f"soak: {SESSIONS} live sessions for {MINUTES:g} minutes on one process",
        [
            ("RSS idle", megabytes(idle_rss)),
            ("RSS sessions open", megabytes(open_rss)),
            (f"RSS after {WARMUP:g} min warm-up", megabytes(warm_rss)),
            ("RSS at the end", f"{megabytes(end_rss)} (peak {megabytes(peak)})"),
            ("growth after warm-up", f"{growth:+.1%} (goal < 10%)"),
            ("sessions served", f"{served} of {SESSIONS}"),
            ("client", done),
            ("errors in the server log", f"{len(log_errors)} (goal 0)"),
            *((f"  {line[:100]}", "") for line in [*log_errors, *raised][:10]),
            # The whole of the first, to fix it.
            *((f"  {line[:140]}", "") for line in first_traceback(logged)),
            (
                "left after closing",
                ", ".join(f"{k} {after[k]} (before {before[k]})" for k in after),
            ),
        ],
    )


if __name__ == "__main__":
    main()
