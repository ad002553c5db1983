"""``/api/v1/metrics/summary`` requests per second with sign-in and rate limits, against none.

The same store and handlers served three ways in one run: ``panel serve`` by
hand (no sign-in, no rate limits: the baseline), and ``agentdash serve`` with
``AGENTDASH_AUTH=jwt`` (a bearer token on every request) and rate limits kept
in memory, then in Redis.  One keep-alive client asks each server in turn,
rounds interleaved and each round in another order; medians of the rounds,
with the server's CPU time per request beside them (steadier than the rate on
a shared machine).  Goal: at most 10% fewer requests per second than the
baseline.
"""

from __future__ import annotations

import http.client
import statistics
import tempfile
import time
from pathlib import Path

import jwt

from benchmarks.common import RedisServer, demo_store, report
from benchmarks.served import DASHBOARD, Server, dashboard_env

KEY = "the-signing-key-of-the-benchmark-0123456789"
REQUESTS, ROUNDS = 300, 9
PATH = "/api/v1/metrics/summary?window=24h"


def measure(server: Server, headers: dict[str, str]) -> tuple[float, float]:
    """Requests per second over REQUESTS sequential requests on one connection, and the
    server's CPU seconds per request."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        cpu, started = server.cpu_seconds(), time.perf_counter()
        for _ in range(REQUESTS):
            connection.request("GET", PATH, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{PATH} answered {response.status}")
        elapsed = time.perf_counter() - started
        return REQUESTS / elapsed, (server.cpu_seconds() - cpu) / REQUESTS
    finally:
        connection.close()


def main() -> None:
    token = jwt.encode(
        {"sub": "bench", "roles": ["viewer"], "teams": [], "exp": time.time() + 3600},
        KEY,
        algorithm="HS256",
    )
    signed = {"Authorization": f"Bearer {token}"}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.db"
        demo_store(store, 50_000, days=7)
        redis = RedisServer(Path(tmp))
        redis.start()
        edge = {
            **dashboard_env(store),
            "AGENTDASH_AUTH": "jwt",
            "AGENTDASH_JWT_SECRET": KEY,
            "AGENTDASH_COOKIE_SECRET": KEY,
            # High enough never to refuse: each request is still counted.
            "AGENTDASH_RATE_LIMIT": "1000000/minute",
        }
        servers = {
            "no sign-in, no limits (panel serve)": (Server(DASHBOARD, dashboard_env(store)), {}),
            "JWT, limits in memory": (Server(DASHBOARD, edge, edge=True), signed),
            "JWT, limits in Redis": (
                Server(DASHBOARD, {**edge, "AGENTDASH_REDIS_URL": redis.url}, edge=True),
                signed,
            ),
        }
        try:
            for server, _ in servers.values():
                server.__enter__()
            rates: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
            for server, headers in servers.values():
                measure(server, headers)  # warm-up: frames loaded, token verified once
            names = list(servers)
            for round_ in range(ROUNDS):
                for name in names[round_ % 3 :] + names[: round_ % 3]:
                    server, headers = servers[name]
                    rates[name].append(measure(server, headers))
        finally:
            for server, _ in servers.values():
                server.__exit__()
            redis.stop()
    first = rates[next(iter(rates))]
    baseline = statistics.median(rate for rate, _ in first)
    baseline_cpu = statistics.median(cpu for _, cpu in first)
    rows = []
    for name, measured in rates.items():
        rate = statistics.median(r for r, _ in measured)
        cpu = statistics.median(c for _, c in measured)
        rows.append(
            (
                name,
                f"{rate:,.0f} requests/s ({rate / baseline - 1:+.1%} vs baseline; goal >= -10%), "
                f"server CPU {cpu * 1000:.2f} ms per request ({cpu / baseline_cpu - 1:+.1%})",
            )
        )
    report("/api/v1/metrics/summary throughput, sign-in and rate limits", rows)


if __name__ == "__main__":
    main()
