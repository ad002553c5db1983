"""The REST API without HTTP: parameters read from their declarations, answers from pipelines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.api import answers
from app.api.parameters import FILTERS, PAGE, ApiError, messages_pipeline, read_arguments
from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline, demo, metrics
from tests.conftest import stored_frames

AGENTS, MESSAGES = demo.generate(4, 600, 1, seed=5)


@pytest.fixture
def frames(tmp_path: Path) -> Iterator[LiveFrames]:
    with stored_frames(tmp_path, AGENTS, MESSAGES) as frames:
        yield frames


def read(**query: Any) -> dict[str, Any]:
    arguments = {
        name: [v.encode() for v in (value if isinstance(value, list) else [value])]
        for name, value in query.items()
    }
    return read_arguments((*FILTERS, *PAGE), arguments)


def test_parameters_are_the_pipelines_question_under_their_query_names() -> None:
    assert [p.name for p in FILTERS] == [
        "window", "start", "end", "agent", "status", "role", "model", "q"
    ]  # fmt: skip
    values = read(window="7d", agent=["a", "b"], status="error", q="c-1", limit="5")
    assert values == {
        "window": "7d",
        "agents": ["a", "b"],
        "statuses": ["error"],
        "search": "c-1",
        "limit": 5,
    }


@pytest.mark.parametrize(
    ("query", "mentions"),
    [
        ({"window": "2h"}, "15m, 1h, 24h, 7d, 30d"),
        ({"status": "broken"}, "ok, error, timeout, other"),
        ({"limit": "0"}, "1..1000"),
        ({"start": "yesterday"}, "ISO 8601"),
        ({"tz": "UTC"}, "not a parameter"),
        ({"q": ["a", "b"]}, "give q once"),
    ],
)
def test_a_value_the_declaration_refuses_is_a_400(query: dict[str, Any], mentions: str) -> None:
    with pytest.raises(ApiError) as refused:
        read(**query)
    assert refused.value.status == 400 and mentions in refused.value.detail


def test_documented_enums_and_defaults_come_from_the_declarations() -> None:
    documented = {p.name: p.openapi() for p in (*FILTERS, *PAGE)}
    assert documented["window"]["schema"]["enum"] == list(MessagesPipeline.param.window.objects)
    assert documented["window"]["schema"]["default"] == "24h"
    assert documented["status"]["schema"]["items"]["enum"] == ["ok", "error", "timeout", "other"]
    assert documented["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "default": 100,
    }
    assert documented["q"]["description"] == MessagesPipeline.param.search.doc


def test_a_window_given_twice_is_refused() -> None:
    with pytest.raises(ApiError, match="either window or start and end"):
        messages_pipeline(read(window="24h", start="2026-01-01", end="2026-01-02"))
    with pytest.raises(ApiError, match="needs both start and end"):
        messages_pipeline(read(window="custom"))


def test_summary_and_agents_are_the_metrics_of_the_pipeline(frames: LiveFrames) -> None:
    messages = MessagesPipeline(frames=frames, statuses=["ok"])
    summary = answers.summary(messages)
    assert summary == {"window": "24h", **metrics.kpis(messages.frame).to_dict()}
    table = answers.agents(messages, AgentsPipeline().follow(messages))
    assert [row["agent_id"] for row in table["items"]] == list(
        metrics.per_agent(messages.frame, AgentsPipeline(frames=frames).frame)["agent_id"]
    )


def test_pages_hold_every_message_once_newest_first(frames: LiveFrames) -> None:
    messages = MessagesPipeline(frames=frames)
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        page = answers.messages(messages, 77, cursor)
        seen += [(item["timestamp"], item["id"]) for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(messages.frame)
    assert seen == sorted(seen, reverse=True)
    with pytest.raises(ApiError, match="cursor"):
        answers.messages(messages, 10, "not-a-cursor")


def test_an_unknown_conversation_is_a_404(frames: LiveFrames) -> None:
    with pytest.raises(ApiError) as missing:
        answers.conversation("nope", frames.conversation("nope"))
    assert missing.value.status == 404


def test_health_says_no_data_before_any_frame_and_ok_after(frames: LiveFrames) -> None:
    status, body = answers.health(frames.status(), error=None, refresher={}, extra={})
    assert (status, body["status"]) == (503, "no data")
    frames.get(MessagesPipeline().spec())
    status, body = answers.health(frames.status(), error=None, refresher={}, extra={})
    assert (status, body["status"]) == (200, "ok") and body["age_seconds"] < 60
