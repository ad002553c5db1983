"""A served dashboard on Cosmos DB (the stand-in, over real HTTP) while the source misbehaves.

Throttling, 503s, dropped connections, slowness and the whole service gone for several
refresh cycles: pages and the API keep answering with the last data, /health and the
page's banner say what is wrong, and once the source recovers the data equals a clean
load (nothing lost, nothing doubled) and was never older than before meanwhile.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from pipelines import demo
from pipelines.cache import MemoryFrameCache
from pipelines.live import LiveFrames
from pipelines.pipeline import MessagesPipeline
from pipelines.sources.cosmos import CosmosSource
from pipelines.sources.local import PARTITION_KEYS
from tests.conftest import repeating, wait_until
from tests.cosmos_standin import (
    CosmosStandin,
    Drop,
    Fault,
    Hold,
    Slow,
    Throttle,
    Unavailable,
)
from tests.integration.test_api import query
from tests.ui import conftest as ui
from tests.ui.conftest import UNLIMITED, ServedApp, get_json, new_message

browser_type_launch_args = ui.browser_type_launch_args
guarded_page = ui.guarded_page

DATABASE = "agentdash"
# Twelve hours of messages: the 24h window holds them all, whatever the seconds between reads.
AGENTS, MESSAGES = demo.generate(6, 1500, days=0.5, seed=3)


@pytest.fixture(scope="module")
def standin() -> Iterator[CosmosStandin]:
    with CosmosStandin() as server:
        for container, docs in (("agents", AGENTS), ("messages", MESSAGES)):
            server.create_container(DATABASE, container, pk_path="/" + PARTITION_KEYS[container])
            server.upsert(DATABASE, container, docs)
        yield server


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, standin: CosmosStandin) -> Iterator[ServedApp]:
    workdir = tmp_path_factory.mktemp("cosmos-app")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTDASH_")}
    env |= {
        "AGENTDASH_SOURCE": "cosmos",
        "AGENTDASH_COSMOS_ENDPOINT": standin.url,
        "AGENTDASH_COSMOS_KEY": standin.key,
        "AGENTDASH_COSMOS_DATABASE": DATABASE,
        "AGENTDASH_LOCAL_PATH": str(workdir / "agentdash.db"),  # where the quarantine is kept
        "AGENTDASH_REFRESH_SECONDS": "1",
        **UNLIMITED,
    }
    served = ServedApp(workdir, env=env)
    served.start()
    yield served
    served.stop()


def served_ids(app: ServedApp) -> list[str]:
    """Every message id the server's 24h window holds, page by page, as served."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        status, body = app.get_json(f"/api/v1/messages{query(**params)}")
        assert status == 200, body
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


def clean_ids(standin: CosmosStandin) -> list[str]:
    """The same window read from scratch: a new process's first load."""
    frames = LiveFrames(CosmosSource(standin.url, DATABASE, standin.key), MemoryFrameCache())
    return sorted(MessagesPipeline(frames=frames).frame["id"])


def health(app: ServedApp) -> dict[str, Any]:
    status, body = app.get_json("/health")
    assert status == 200, body  # data is held: the process is healthy enough to serve it
    return body  # type: ignore[no-any-return]


def summary(app: ServedApp) -> int:
    """The count of messages served: the API answers, whatever the source does."""
    status, body = app.get_json("/api/v1/metrics/summary")
    assert status == 200, body
    return int(body["messages"])


def never_back(counts: list[int]) -> None:
    assert counts and counts == sorted(counts), "the data went back"


def new_messages(n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [new_message(timestamp=(now - timedelta(seconds=i)).isoformat()) for i in range(n)]


def recovered(app: ServedApp, standin: CosmosStandin, written: list[dict[str, Any]]) -> None:
    """Wait until the server holds what was written, then compare it with a clean load."""
    wanted = {doc["id"] for doc in written}
    wait_until(
        lambda: wanted <= set(served_ids(app)) and health(app)["status"] == "ok",
        timeout=30,
        message="the server to read what was written during the fault",
    )
    ids = served_ids(app)
    assert len(ids) == len(set(ids))  # nothing doubled
    assert sorted(ids) == clean_ids(standin)  # nothing lost


FAULTS: dict[str, tuple[Fault, str]] = {
    "throttling": (Throttle(5), "throttling"),
    "503s": (Unavailable(), "(503)"),
    "dropped connections": (Drop(), "cannot reach"),
}


def failing(app: ServedApp, says: str) -> None:
    """Wait for /health to say the data is stale, and why; the page and the API answer."""
    wait_until(lambda: health(app)["status"] == "stale", timeout=30, message="stale data")
    body = health(app)
    assert any(says in (frame["error"] or "") for frame in body["frames"].values()), body
    with urllib.request.urlopen(app.url + "/", timeout=30) as page:
        assert page.status == 200
    assert get_json(app.url + "/api/v1/metrics/summary")[0] == 200


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_source_leaves_the_last_data_served_and_then_catches_up(
    app: ServedApp, standin: CosmosStandin, fault: str
) -> None:
    injected, says = FAULTS[fault]
    wait_until(lambda: health(app)["status"] == "ok", timeout=30)
    with repeating(lambda: summary(app)) as counts:
        standin.inject(injected, 10**6, kind="changefeed")
        written = new_messages(3)
        try:
            standin.upsert(DATABASE, "messages", written)  # no HTTP: the stand-in's own store
            failing(app, says)
            assert not {doc["id"] for doc in written} & set(served_ids(app))
        finally:
            standin.clear_faults()
        recovered(app, standin, written)
    never_back(counts)


def test_a_source_gone_for_several_cycles_shows_a_banner_until_it_is_back(
    app: ServedApp, standin: CosmosStandin, guarded_page: Any
) -> None:
    page, _guard = guarded_page
    page.goto(app.url + "/")
    banner = page.locator(".agentdash-banner")
    expect(page.get_by_text("updated", exact=False)).to_be_visible()
    wait_until(lambda: health(app)["status"] == "ok", timeout=30)
    with repeating(lambda: summary(app)) as counts:
        cycles = health(app)["refresher"]["cycles"]
        standin.stop()
        written = new_messages(3)
        try:
            standin.upsert(DATABASE, "messages", written)
            failing(app, "cannot reach Cosmos DB")
            expect(banner).to_contain_text("The data source is failing")
            expect(banner).to_contain_text("cannot reach Cosmos DB")
            wait_until(lambda: health(app)["refresher"]["cycles"] >= cycles + 3, timeout=60)
            expect(page.locator(".bk-tab.bk-active")).to_be_visible()  # the last data stays
        finally:
            standin.start()
        expect(banner).to_be_hidden()
        recovered(app, standin, written)
    never_back(counts)


def test_a_slow_source_delays_new_data_and_blocks_nothing(
    app: ServedApp, standin: CosmosStandin
) -> None:
    wait_until(lambda: health(app)["status"] == "ok", timeout=30)
    # Two cold reads of windows no live frame holds, each slow: both API workers busy.
    standin.inject(Slow(4), 50, kind="query")
    now = datetime.now(UTC).replace(microsecond=0)
    # Older than any relative window and the period before it reach (90d: 180 days).
    windows = [(now - timedelta(days=d + 401), now - timedelta(days=d + 400)) for d in range(2)]
    answers: list[int] = []

    def ask(start: datetime, end: datetime) -> None:
        path = f"/api/v1/metrics/summary{query(start=start.isoformat(), end=end.isoformat())}"
        answers.append(app.get_json(path)[0])

    threads = [threading.Thread(target=ask, args=window) for window in windows]
    standin.reset_counters()
    for thread in threads:
        thread.start()
    wait_until(lambda: standin.counters().requests.get("query", 0) >= 2, timeout=30)
    try:
        assert health(app)["status"] in ("ok", "stale")  # answered while both reads wait
        assert answers == []
        written = new_messages(1)
        standin.upsert(DATABASE, "messages", written)
    finally:
        standin.clear_faults()
    for thread in threads:
        thread.join(60)
    assert answers == [200, 200]
    recovered(app, standin, written)


def test_a_cold_page_shows_its_layout_at_once_and_fills_in_when_the_data_arrives(
    app: ServedApp, standin: CosmosStandin, guarded_page: Any
) -> None:
    page, _guard = guarded_page
    gate = threading.Event()
    # Every query waits: the page's window (read by no test before) cannot be read yet.
    standin.inject(Hold(gate), 10**6, kind="query")
    try:
        page.goto(app.url + "/?window=90d")
        reading = page.get_by_text("Reading the messages of the last 90d from the source")
        expect(reading).to_be_visible()
        expect(page.get_by_role("button", name="Reset filters")).to_be_visible()
        expect(page.locator(".bk-tab.bk-active")).to_have_text("Overview")
        # The server answers meanwhile: the read waits off its event loop.
        assert get_json(app.url + "/health/live")[0] == 200
    finally:
        gate.set()
        standin.clear_faults()
    expect(reading).to_be_hidden()
    held = app.get_json("/api/v1/metrics/summary?window=90d")[1]["messages"]
    expect(page.locator("div:text-is('Messages') + div[style*='20pt']")).to_have_text(f"{held:,}")
    assert "Traceback" not in app.log()
