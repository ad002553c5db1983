"""What the dashboard benchmarks share: served apps, their sessions, CPU and memory.

The dashboard and each baseline are served the same way, by ``panel serve``
in a process of their own (the dashboard with the API plugin, for /health), so
the figures of one run compare like with like.  Run from the repository root:
``python -m benchmarks.bench_dashboard_load``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from pipelines import demo
from pipelines.query import Query
from pipelines.sources.local import LocalSource
from tests.conftest import free_port, repeating, wait_until

ROOT = Path(__file__).parents[1]
DASHBOARD = ROOT / "app" / "main.py"
BASELINES = Path(__file__).with_name("baselines")


@dataclass(eq=False)
class Server:
    """``panel serve app`` on a free loopback port, with the environment given.

    ``edge``: the dashboard through ``agentdash serve`` instead, with the sign-in, rate
    limits and other checks its settings ask for; ``headers`` are then sent with /health.
    """

    app: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    #: Where the server's output goes (none kept by default).
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    edge: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.app.stem}"

    @property
    def dashboard(self) -> bool:
        return self.app == DASHBOARD

    def __enter__(self) -> Server:
        command = [sys.executable, "-m", "panel", "serve", str(self.app), "--port", str(self.port)]
        command += ["--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{self.port}"]
        if self.edge:
            command = [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port), "--"]
        # Closed sessions (the readiness probe's, a finished measurement's) are dropped within
        # about a second, not 15-30 s later in the middle of the next measurement: dropping
        # one makes Panel run a full garbage collection 5 s later (GC_DEBOUNCE).
        command += ["--unused-session-lifetime", "1000", "--check-unused-sessions", "500"]
        if self.dashboard and not self.edge:
            command += ["--plugins", "app.api"]
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        probe = self.url if not self.edge else f"http://127.0.0.1:{self.port}/health/live"
        wait_until(lambda: self._answers(probe), timeout=600, message=f"{probe} to answer")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def _answers(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=600) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    @property
    def ps(self) -> psutil.Process:
        assert self.process is not None
        return psutil.Process(self.process.pid)

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def health(self) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/health", headers=self.headers
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.load(response)  # type: ignore[no-any-return]


def dashboard_env(store: Path, refresh_seconds: float = 1.0) -> dict[str, str]:
    return {
        "AGENTDASH_SOURCE": "local",
        "AGENTDASH_LOCAL_PATH": str(store),
        "AGENTDASH_REFRESH_SECONDS": str(refresh_seconds),
        "AGENTDASH_REDIS_URL": "",
    }


@contextmanager
def sessions(url: str, count: int, cookie: str | None = None) -> Iterator[None]:
    """``count`` live sessions on ``url``, signed in with ``cookie`` if given (see
    benchmarks/sessions.py)."""
    client = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.sessions",
            url,
            str(count),
            *([cookie] if cookie else []),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdout is not None and client.stdin is not None
    try:
        line = client.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"the session client failed: {line!r}")
        yield
    finally:
        client.stdin.close()
        client.wait(timeout=60)


@contextmanager
def live_writer(store: Path, per_second: int = 5) -> Iterator[None]:
    """Append ``per_second`` demo messages a second to ``store`` (``agentdash demo --live``)."""
    source = LocalSource(store)
    agents = [doc for page in source.fetch(Query.build("agents")) for doc in page]
    with repeating(lambda: source.upsert("messages", demo.live_messages(agents, per_second)), 1.0):
        yield


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "n/a"
