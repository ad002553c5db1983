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
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import Browser, Page, sync_playwright

from pipelines import demo
from pipelines.query import Query
from pipelines.sources.local import LocalSource
from tests.conftest import free_port, repeating, wait_until
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).parents[1]
DASHBOARD = ROOT / "app" / "main.py"
BASELINES = Path(__file__).with_name("baselines")
# A file of the Bokeh server itself: answering it runs no app code, so a server probed
# with it has built no session and read no data (a new user's page is then the first).
PROBE = "/static/js/bokeh.min.js"
# Every chart of the page drawn: no loading spinner left, `charts` figures, each painted.
DRAWN = """charts => {
  if (!window.Bokeh || !Bokeh.index) return false
  const views = []
  const walk = (view) => { views.push(view); (view.child_views ?? []).forEach(walk) }
  Object.values(Bokeh.index).forEach(walk)
  const figures = views.filter((view) => view.model.type === "Figure")
  const loading = views.some((view) => view.model.css_classes?.includes("pn-loading"))
  return !loading && figures.length >= charts && figures.every((view) => view.has_finished())
}"""
OVERVIEW_CHARTS = 3  # message volume, latency, busiest agents


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
        probe = f"http://127.0.0.1:{self.port}{'/health/live' if self.edge else PROBE}"
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

    def peak_rss(self) -> int:
        """The most resident memory the process has held since it started (VmHWM)."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    def get(self, path: str) -> tuple[int, Any, float]:
        """``GET path``: the status, the JSON answer and the seconds it took."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers=self.headers
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=3600) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        elapsed = time.perf_counter() - started
        return status, json.loads(body) if body else None, elapsed

    def health(self) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/health", headers=self.headers
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.load(response)  # type: ignore[no-any-return]


def dashboard_env(store: Path, refresh_seconds: float = 1.0, redis_url: str = "") -> dict[str, str]:
    return {
        "AGENTDASH_SOURCE": "local",
        "AGENTDASH_LOCAL_PATH": str(store),
        "AGENTDASH_REFRESH_SECONDS": str(refresh_seconds),
        "AGENTDASH_REDIS_URL": redis_url,
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


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium (Debian's), as the UI tests launch it."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def page_open(browser: Browser, url: str, charts: int) -> Iterator[tuple[Page, float]]:
    """A new user's page at ``url`` (a fresh browser context), kept open during the block;
    yields it and the seconds from navigation until its ``charts`` charts had drawn."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        started = time.perf_counter()
        page.goto(url, timeout=3_600_000)
        page.wait_for_function(DRAWN, arg=charts, timeout=3_600_000, polling=20)
        yield page, time.perf_counter() - started
    finally:
        context.close()


def load_seconds(browser: Browser, url: str, charts: int) -> float:
    """Seconds from navigation until the page's ``charts`` charts have drawn."""
    with page_open(browser, url, charts) as (_, seconds):
        return seconds


def megabytes(rss: float) -> str:
    return f"{rss / 2**20:,.0f} MB"


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "n/a"
