"""Quarantined documents as users inspect them: the API, the command line from another
process, the Ops tab, and Redis as the place several processes keep them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from pipelines.cache import RedisFrameCache
from pipelines.live import FrameSpec, LiveFrames
from pipelines.quarantine import Quarantine, RedisStore
from pipelines.sources.local import LocalSource
from pipelines.windows import Window
from tests.conftest import RedisServer, wait_until
from tests.integration.test_locks import hung
from tests.ui import conftest as ui
from tests.ui.conftest import ServedApp, new_message, serving

browser_type_launch_args = ui.browser_type_launch_args
guarded_page = ui.guarded_page

# One of each kind of reason, written while the server runs: its refreshes read them.
BAD = [
    new_message(id="bad-role", role="wizard"),
    new_message(id="bad-latency", latencyMs="250"),
    new_message(id="bad-agent", agentId=None),
]
REASONS = {"bad role": 1, "wrong type": 1, "missing field": 1}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    with serving(tmp_path_factory.mktemp("quarantine"), messages=500, days=1) as served:
        served.get_json("/api/v1/metrics/summary")  # the 24h window is live from now on
        LocalSource(served.store).upsert("messages", BAD)
        wait_until(
            lambda: served.get_json("/api/v1/quarantine")[1]["count"] == len(BAD),
            timeout=30,
            message="the server to quarantine the bad documents",
        )
        yield served


def test_the_api_counts_each_document_once_and_lists_the_latest(app: ServedApp) -> None:
    cycles = app.get_json("/health")[1]["refresher"]["cycles"]
    wait_until(lambda: app.get_json("/health")[1]["refresher"]["cycles"] >= cycles + 3)
    status, body = app.get_json("/api/v1/quarantine")
    assert status == 200
    assert set(body) == {"count", "reasons", "documents"}
    assert body["count"] == 3 and body["reasons"] == REASONS  # however many refreshes
    assert {d["id"] for d in body["documents"]} == {"bad-role", "bad-latency", "bad-agent"}
    assert all(set(d) == {"id", "container", "reason", "seen_at"} for d in body["documents"])
    status, raw = app.get_json("/api/v1/quarantine?raw=1&limit=2")
    assert len(raw["documents"]) == 2
    documents = {d["id"]: d["document"] for d in raw["documents"]}
    assert all(document["id"] == key for key, document in documents.items())
    status, refused = app.get_json("/api/v1/quarantine?raw=yes")
    assert (status, refused["error"]) == (400, "invalid parameter")


def test_the_command_line_reads_what_the_server_quarantined(app: ServedApp, tmp_path: Path) -> None:
    listed = app.command("quarantine", "list").stdout
    assert "3 documents quarantined" in listed
    assert re.search(r"1\s+wrong type", listed)
    assert "'bad-latency'  wrong type: 'latencyMs' holds text" in listed
    out = tmp_path / "quarantine.json"
    app.command("quarantine", "export", str(out))
    exported = json.loads(out.read_text())
    assert exported == app.get_json("/api/v1/quarantine?raw=1&limit=1000")[1]
    refused = app.command(
        "quarantine", "export", str(tmp_path / "no" / "such" / "dir.json"), check=False
    )
    assert refused.returncode == 2 and "cannot write" in refused.stderr


def test_the_ops_tab_lists_them(app: ServedApp, guarded_page: Any) -> None:
    page, _guard = guarded_page
    page.set_viewport_size({"width": 1500, "height": 1600})
    page.goto(f"{app.url}/?tab=ops")
    expect(page.get_by_role("heading", name="Quarantined documents")).to_be_visible()
    for id_ in ("bad-role", "bad-latency", "bad-agent"):
        expect(page.get_by_text(id_, exact=True)).to_be_visible()
    expect(page.get_by_text("wrong type: 'latencyMs' holds text", exact=False)).to_be_visible()


def test_processes_sharing_redis_count_once_and_keep_counting_through_an_outage(
    redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    store = LocalSource(tmp_path / "store.db")
    store.upsert("messages", BAD[:2])
    day = FrameSpec("messages", Window.parse("24h"))

    def process() -> LiveFrames:
        source = LocalSource(store.path)
        quarantine = Quarantine(RedisStore(redis_url, source.identity))
        return LiveFrames(
            source, RedisFrameCache(redis_url, retry_seconds=0), quarantine=quarantine
        )

    first, second = process(), process()
    first.get(day)
    second.conversation(BAD[0]["conversationId"])  # another read of one of them
    assert first.quarantine.count == second.quarantine.count == 2
    with hung(redis_server):
        store.upsert("messages", [BAD[2]])
        first.refresh(day)  # read while Redis does not answer: kept in memory meanwhile
        assert not first.quarantine.healthy
        assert first.quarantine.count == 2  # the last count known
    wait_until(redis_server.ping, message="redis-server to answer again")
    assert first.quarantine.summary().reasons == REASONS
    assert second.quarantine.count == 3
    assert second.quarantine.entries()[0].id == "bad-agent"
