"""Two ``agentdash serve`` processes behind nginx, sharing one Redis and one store.

The topology of nginx/agentdash.conf.template with real processes on loopback:
pages and their websockets stick to one process, the API answers through the
proxy, new data is read from the source once for both processes, and
``/metrics``, whichever process answers it, counts the work of both (one
``PROMETHEUS_MULTIPROC_DIR``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipelines.sources.local import LocalSource
from tests.conftest import RedisServer, free_port, wait_until
from tests.ui import conftest as ui
from tests.ui.conftest import ServedApp, get_json, make_served_app, new_message

# The browser fixtures of the UI tests, for the pages these tests open.
browser_type_launch_args = ui.browser_type_launch_args
guarded_page = ui.guarded_page

NGINX = "/usr/sbin/nginx"
NGINX_DIR = Path(__file__).parents[2] / "nginx"
MESSAGES_SPEC = "messages[24h]"


class Nginx:
    """Debian's nginx with the project's configuration, under a private prefix."""

    def __init__(self, prefix: Path, upstreams: list[int]) -> None:
        if not Path(NGINX).exists():
            raise RuntimeError(f"{NGINX} is missing: run `make system-deps`")
        self.prefix = prefix
        self.port = free_port()
        for folder in ("logs", "tmp"):
            (prefix / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(NGINX_DIR / "nginx.conf", prefix / "nginx.conf")
        template = Template((NGINX_DIR / "agentdash.conf.template").read_text())
        (prefix / "agentdash.conf").write_text(
            template.safe_substitute(
                AGENTDASH_LISTEN=f"127.0.0.1:{self.port}",
                AGENTDASH_UPSTREAMS=" ".join(f"server 127.0.0.1:{p};" for p in upstreams),
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [NGINX, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf")]
        command += ["-e", str(self.prefix / "logs" / "error.log"), "-g", "daemon off;"]
        subprocess.run([*command, "-t"], check=True, capture_output=True)
        self.process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        wait_until(self.answers, message="nginx to proxy /health")

    def answers(self) -> bool:
        try:
            return get_json(f"{self.url}/health")[0] == 200
        except OSError:  # not listening yet
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def routes(self, path: str) -> set[tuple[str, str]]:
        """(upstream address, route) of each logged request for ``path``."""
        log = (self.prefix / "logs" / "access.log").read_text()
        pattern = re.compile(rf'"GET {re.escape(path)}[ ?][^"]*" \d+ upstream=(\S+) route=(\S+)')
        return set(pattern.findall(log))


@dataclass
class Cluster:
    apps: list[ServedApp]
    nginx: Nginx

    @property
    def store(self) -> LocalSource:
        return LocalSource(self.apps[0].store)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[Cluster]:
    if redis_server.process is None:  # a test stopped it to simulate an outage
        redis_server.start()
    redis_server.flush()
    first = make_served_app(
        tmp_path_factory.mktemp("first"),
        AGENTDASH_REDIS_URL=redis_server.url,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path_factory.mktemp("metrics")),
    )
    second = ServedApp(tmp_path_factory.mktemp("second"), env=dict(first.env))
    nginx = Nginx(tmp_path_factory.mktemp("nginx"), [first.port, second.port])
    try:
        for app in (first, second):
            app.start("--allow-websocket-origin", f"127.0.0.1:{nginx.port}")
        nginx.start()
        yield Cluster([first, second], nginx)
    finally:
        nginx.stop()
        for app in (first, second):
            app.stop()


def test_a_page_and_its_websocket_reach_the_same_process(
    cluster: Cluster, guarded_page: Any
) -> None:
    page, _guard = guarded_page
    page.goto(cluster.nginx.url + "/")
    page.wait_for_function(
        "() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents.every(d => d.is_idle)"
    )
    page.goto("about:blank")  # nginx logs a websocket when it closes
    wait_until(lambda: cluster.nginx.routes("/ws"), message="the websocket to be logged")
    page_routes = cluster.nginx.routes("/")
    assert len(page_routes) == 1
    # The page's answer set the route cookie; the websocket carried it to the same process.
    assert cluster.nginx.routes("/ws") == page_routes


def test_the_api_answers_through_the_proxy(cluster: Cluster) -> None:
    status, summary = get_json(f"{cluster.nginx.url}/api/v1/metrics/summary?window=7d")
    assert status == 200
    assert summary["window"] == "7d"
    assert summary["messages"] > 0
    status, health = get_json(f"{cluster.nginx.url}/health")
    assert status == 200
    assert health["status"] == "ok"


def test_new_messages_are_read_from_the_source_once_for_both_processes(
    cluster: Cluster,
) -> None:
    def health(app: ServedApp) -> dict[str, Any]:
        status, body = app.get_json("/health")
        assert status == 200
        return body  # type: ignore[no-any-return]

    def newest(app: ServedApp) -> str:
        return str(app.get_json("/api/v1/messages?limit=1")[1]["items"][0]["id"])

    # Both processes hold the 24h frame and refresh it.
    wait_until(lambda: all(health(app)["refresher"]["cycles"] >= 2 for app in cluster.apps))
    written = datetime.now(UTC)
    message = new_message()
    cluster.store.upsert("messages", [message])
    wait_until(
        lambda: all(newest(app) == message["id"] for app in cluster.apps),
        timeout=10,
        message="both processes to serve the new message",
    )

    def since_written(app: ServedApp) -> list[dict[str, Any]]:
        return [
            record
            for record in health(app)["refreshes"]
            if record["spec"] == MESSAGES_SPEC and datetime.fromisoformat(record["at"]) >= written
        ]

    records = [since_written(app) for app in cluster.apps]
    readers = [i for i, rs in enumerate(records) for r in rs if r["documents"] and not r["adopted"]]
    assert len(readers) == 1, records
    other = records[1 - readers[0]]
    assert any(r["adopted"] and r["rows_changed"] >= 1 for r in other), records


def scrape(cluster: Cluster) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics`` through the proxy, by name and labels."""
    with urllib.request.urlopen(f"{cluster.nginx.url}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_the_work_of_both_processes(cluster: Cluster) -> None:
    answered = (
        "agentdash_http_request_seconds_count",
        (("route", "/api/v1/metrics/summary"), ("status", "200")),
    )
    refreshes = ("agentdash_refresh_seconds_count", ())
    before = scrape(cluster)
    for _ in range(20):
        assert get_json(f"{cluster.nginx.url}/api/v1/metrics/summary")[0] == 200
    # nginx spread them over both processes; the count holds all, whichever one answers.
    assert {upstream for upstream, _ in cluster.nginx.routes("/api/v1/metrics/summary")} == {
        f"127.0.0.1:{app.port}" for app in cluster.apps
    }
    after = scrape(cluster)
    assert after[answered] - before.get(answered, 0) == 20
    assert after[("agentdash_documents_read_total", ())] > 0
    assert after[("agentdash_cache_misses_total", ())] > 0
    assert ("agentdash_data_age_seconds", ()) in after
    assert ("agentdash_sessions", ()) in after
    wait_until(
        lambda: scrape(cluster)[refreshes] > after[refreshes],
        message="refreshes to be counted",
    )
