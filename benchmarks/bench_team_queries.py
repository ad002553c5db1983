"""Source queries per refresh cycle with users of 3 different teams open, against an admin.

Each team's pages cut the shared live frames in memory: the team scope must not
cost a query of its own.  ``agentdash serve`` with JWT sign-in; one session
per team (a signed-in page and its websocket, as a browser opens them) while
demo messages arrive every second, against the same with one admin session
(no scope), in the same run.  Goal: 1 query per live frame and cycle.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import jwt

from benchmarks.bench_dashboard_queries import queries_per_cycle
from benchmarks.common import demo_store, report
from benchmarks.served import DASHBOARD, Server, dashboard_env, live_writer, sessions
from pipelines import AgentsPipeline, LiveFrames
from pipelines.cache import MemoryFrameCache
from pipelines.sources.local import LocalSource

KEY = "the-signing-key-of-the-benchmark-0123456789"


def cookie(sub: str, role: str, teams: list[str]) -> str:
    claims = {"sub": sub, "roles": [role], "teams": teams, "exp": time.time() + 3600}
    return f"agentdash_token={jwt.encode(claims, KEY, algorithm='HS256')}"


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.db"
        demo_store(store, 50_000, days=7)
        frames = LiveFrames(LocalSource(store), MemoryFrameCache())
        teams = sorted(set(AgentsPipeline(frames=frames).frame["team"]))[:3]
        env = {
            **dashboard_env(store),
            "AGENTDASH_AUTH": "jwt",
            "AGENTDASH_JWT_SECRET": KEY,
            "AGENTDASH_COOKIE_SECRET": KEY,
            "AGENTDASH_RATE_LIMIT": "100000/minute",
        }
        admin = cookie("admin", "admin", [])
        headers = {"Cookie": admin}
        with Server(DASHBOARD, env, edge=True, headers=headers) as server, live_writer(store):
            for label, users in (
                ("1 admin (no scope)", [admin]),
                (f"3 teams ({', '.join(teams)})", [cookie(t, "viewer", [t]) for t in teams]),
            ):
                with ExitStack() as opened:
                    for user in users:
                        opened.enter_context(sessions(server.url, 1, user))
                    per_cycle, count = queries_per_cycle(server)
                rows.append(
                    (
                        label,
                        f"{per_cycle:.2f} queries per cycle for {count} live frames "
                        f"= {per_cycle / count:.2f} per frame (goal 1)",
                    )
                )
    report("source queries per refresh cycle, by team scope", rows)


if __name__ == "__main__":
    main()
