"""The REST API served by ``agentdash serve``, checked against the pipelines and metrics.

The store holds demo messages of the last 12 hours only, so the 24h window of
the server and the one computed here hold the same messages, whatever the
seconds between their reads.
"""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pandas as pd
import pytest

from pipelines import metrics
from pipelines.cache import MemoryFrameCache
from pipelines.live import LiveFrames
from pipelines.pipeline import AgentsPipeline, MessagesPipeline
from pipelines.sources.local import LocalSource
from tests.ui import conftest as ui
from tests.ui.conftest import ServedApp, make_served_app

# The browser fixtures of the UI tests, for the pages these tests open.
browser_type_launch_args = ui.browser_type_launch_args
guarded_page = ui.guarded_page

API = "/api/v1"


@pytest.fixture(scope="module")
def api_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    app = make_served_app(tmp_path_factory.mktemp("api"), messages=3000, days=0.5)
    app.start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def backend(api_app: ServedApp) -> LiveFrames:
    """A backend of this test process on the server's store."""
    return LiveFrames(LocalSource(api_app.store), MemoryFrameCache())


@pytest.fixture(scope="module")
def openapi(api_app: ServedApp) -> dict[str, Any]:
    status, document = api_app.get_json(f"{API}/openapi.json")
    assert status == 200
    return document  # type: ignore[no-any-return]


def query(**params: Any) -> str:
    return "?" + urllib.parse.urlencode(params, doseq=True)


def explicit_window() -> dict[str, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    return {"start": now - timedelta(hours=6), "end": now - timedelta(hours=1)}


def summary_of(pipeline: MessagesPipeline) -> dict[str, Any]:
    return {"window": pipeline.window_spec.describe(), **metrics.kpis(pipeline.frame).to_dict()}


def conforms(document: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    """Validate ``value`` against an OpenAPI 3.0 ``schema`` of ``document``."""

    def json_schema(node: Any) -> Any:
        if isinstance(node, list):
            return [json_schema(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return json_schema(document["components"]["schemas"][node["$ref"].split("/")[-1]])
        converted = {k: json_schema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable"):
            converted["type"] = [node["type"], "null"]
        return converted

    jsonschema.validate(value, json_schema(schema))


def response_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    return document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"][  # type: ignore[no-any-return]
        "schema"
    ]


def test_summary_equals_the_kpis_of_the_same_frame(
    api_app: ServedApp, backend: LiveFrames, openapi: dict[str, Any]
) -> None:
    status, body = api_app.get_json(f"{API}/metrics/summary{query(window='24h')}")
    assert status == 200
    assert body == summary_of(MessagesPipeline(frames=backend, window="24h"))
    assert list(body) == [
        "window",
        "messages",
        "conversations",
        "active_agents",
        "error_rate",
        "latency_ms",
        "tokens",
        "cost",
    ]
    assert body["messages"] == 3000
    conforms(openapi, response_schema(openapi, f"{API}/metrics/summary"), body)


def test_summary_of_an_explicit_window_and_agents(api_app: ServedApp, backend: LiveFrames) -> None:
    window = explicit_window()
    agent_ids = AgentsPipeline(frames=backend).frame["id"].tolist()[:3]
    params = {name: moment.isoformat() for name, moment in window.items()}
    status, body = api_app.get_json(f"{API}/metrics/summary{query(**params, agent=agent_ids)}")
    assert status == 200
    expected = summary_of(MessagesPipeline(frames=backend, **window, agents=agent_ids))
    assert body == expected
    assert 0 < body["messages"] < 3000


def test_agents_equal_per_agent_metrics(
    api_app: ServedApp, backend: LiveFrames, openapi: dict[str, Any]
) -> None:
    status, body = api_app.get_json(f"{API}/agents")
    assert status == 200
    table = metrics.per_agent(
        MessagesPipeline(frames=backend).frame, AgentsPipeline(frames=backend).frame
    )
    served = pd.DataFrame(body["items"])
    assert served["agent_id"].tolist() == table["agent_id"].tolist()
    for column in ("messages", "conversations", "tokens_in", "tokens_out"):
        assert served[column].tolist() == table[column].tolist(), column
    # An agent without replies has no error rate: null, as NaN in the table.
    assert served["error_rate"].tolist() == pytest.approx(table["error_rate"].tolist(), nan_ok=True)
    assert (
        pd.to_datetime(served["last_seen"]).tolist() == table["last_seen"].dt.floor("ms").tolist()
    )
    conforms(openapi, response_schema(openapi, f"{API}/agents"), body)


def test_cursor_pagination_returns_every_message_once_newest_first(
    api_app: ServedApp, backend: LiveFrames, openapi: dict[str, Any]
) -> None:
    filters = {"role": ["agent", "user"], "status": ["ok", "error"]}
    expected = MessagesPipeline(frames=backend, roles=filters["role"], statuses=filters["status"])
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {**filters, "limit": 97, **({"cursor": cursor} if cursor else {})}
        status, body = api_app.get_json(f"{API}/messages{query(**params)}")
        assert status == 200
        assert len(body["items"]) <= 97
        conforms(openapi, response_schema(openapi, f"{API}/messages"), body)
        seen += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)) == len(expected.frame)
    assert set(ids) == set(expected.frame["id"])
    order = [(item["timestamp"], item["id"]) for item in seen]
    assert order == sorted(order, reverse=True)


def test_messages_filters_match_the_pipeline(api_app: ServedApp, backend: LiveFrames) -> None:
    frame = MessagesPipeline(frames=backend).frame
    conversation = frame["conversation_id"].iloc[0]
    params = {"q": conversation[-6:].upper(), "limit": 1000}
    status, body = api_app.get_json(f"{API}/messages{query(**params)}")
    assert status == 200
    expected = MessagesPipeline(frames=backend, search=params["q"]).frame
    assert {item["id"] for item in body["items"]} == set(expected["id"])
    assert body["next_cursor"] is None


def test_conversation_has_every_message_with_text(api_app: ServedApp, backend: LiveFrames) -> None:
    frame = MessagesPipeline(frames=backend).frame
    conversation = frame["conversation_id"].value_counts().index[0]
    status, body = api_app.get_json(f"{API}/conversations/{urllib.parse.quote(conversation)}")
    assert status == 200
    messages = body["messages"]
    assert [m["id"] for m in messages] == (
        frame[frame["conversation_id"] == conversation]
        .sort_values(["timestamp", "id"])["id"]
        .tolist()
    )
    assert all(m["content"] for m in messages)

    status, body = api_app.get_json(f"{API}/conversations/no-such-conversation")
    assert status == 404
    assert "no-such-conversation" in body["detail"]


@pytest.mark.parametrize(
    ("params", "status", "mentions"),
    [
        ({"window": "2h"}, 400, "24h"),
        ({"bogus": "1"}, 400, "bogus"),
        ({"limit": "0"}, 400, "limit"),
        ({"limit": "many"}, 400, "limit"),
        ({"limit": "1001"}, 400, "1000"),
        ({"status": "broken"}, 400, "timeout"),
        ({"role": "robot"}, 400, "agent"),
        ({"cursor": "not-a-cursor"}, 422, "cursor"),
        ({"window": ["24h", "7d"]}, 400, "once"),
        ({"start": "2026-01-01T00:00:00Z"}, 422, "end"),
        ({"start": "yesterday", "end": "today"}, 400, "ISO 8601"),
        ({"window": "24h", "start": "2026-01-01", "end": "2026-01-02"}, 422, "either"),
        ({"start": "2026-01-02", "end": "2026-01-01"}, 422, "before"),
    ],
)
def test_bad_parameters_are_refused_with_a_message(
    api_app: ServedApp, params: dict[str, Any], status: int, mentions: str
) -> None:
    answered, body = api_app.get_json(f"{API}/messages{query(**params)}")
    assert answered == status
    assert set(body) == {"error", "detail"}
    assert mentions in body["detail"]


def test_unknown_api_paths_answer_json_404(api_app: ServedApp) -> None:
    status, body = api_app.get_json(f"{API}/nothing-here")
    assert status == 404
    assert body["error"] == "not found"


def test_openapi_document_lists_every_route(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.")
    assert set(openapi["paths"]) == {
        f"{API}/metrics/summary",
        f"{API}/agents",
        f"{API}/messages",
        f"{API}/conversations/{{id}}",
        f"{API}/quarantine",
        "/health/ready",
        "/health",
    }
    for path, operations in openapi["paths"].items():
        operation = operations["get"]
        assert operation["summary"], path
        assert {"200", "400"} <= set(operation["responses"]), path
        assert operation["security"] == [], path  # served without sign-in: none asked
    names = [p["name"] for p in openapi["paths"][f"{API}/messages"]["get"]["parameters"]]
    assert names == [
        "window", "start", "end", "agent", "status", "role", "model", "q", "limit", "cursor"
    ]  # fmt: skip


def test_docs_page_renders_the_document_without_leaving_the_server(
    api_app: ServedApp, guarded_page: Any
) -> None:
    with urllib.request.urlopen(f"{api_app.url}{API}/docs") as response:
        html = response.read().decode()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"https?://", html)

    page, _guard = guarded_page
    page.goto(f"{api_app.url}{API}/docs")
    page.get_by_text(f"{API}/metrics/summary", exact=True).wait_for()
    section = page.locator("section", has_text=f"{API}/metrics/summary")
    section.locator("input[name=window]").fill("24h")
    section.get_by_role("button", name="Try it").click()
    section.get_by_text('"active_agents"').wait_for()


def test_health_reports_fresh_data(api_app: ServedApp, openapi: dict[str, Any]) -> None:
    status, body = api_app.get_json("/health")
    assert status == 200
    assert body["status"] == "ok"
    assert body["frames"]["messages[24h]"]["rows"] >= 3000
    assert body["refresher"]["running"]
    assert body["age_seconds"] < 60
