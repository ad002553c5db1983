"""Session documents to messages: what an element takes from its document, and documents
that hold no readable messages."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from pipelines.errors import ConfigError
from pipelines.reading import normalise_shaped
from pipelines.schema import FieldMapping, parse_timestamps
from pipelines.settings import load_settings
from pipelines.shapes import Shape

MAPPING = FieldMapping.for_container("messages")
SESSION = Shape(layout="session", messages_path="turns", default_agent="support")
NOW = datetime.now(UTC)


def at(minutes: int) -> str:
    return (NOW - timedelta(minutes=minutes)).isoformat()


def test_elements_take_what_they_lack_from_their_document() -> None:
    doc = {
        "id": "s1",
        "userId": "alice",
        "_ts": int(time.time()) - 60,
        "turns": [
            {"role": "user", "content": "hi", "timestamp": at(5)},
            {"role": "assistant", "id": "own-id", "agentId": "billing", "content": "hello"},
            {"role": "user", "userId": "bob", "conversationId": "s1-b", "timestamp": at(3)},
        ],
    }
    frame = normalise_shaped([doc], MAPPING, SESSION, extra=("content",)).frame
    assert frame["id"].tolist() == ["s1:0", "own-id", "s1:2"]
    assert frame["conversation_id"].tolist() == ["s1", "s1", "s1-b"]
    assert frame["agent_id"].tolist() == ["support", "billing", "support"]
    assert frame["user_id"].tolist() == ["alice", "alice", "bob"]
    # No time of its own: the document's last write.
    assert frame["timestamp"].iloc[1] == parse_timestamps([doc["_ts"]])[0].iloc[0]
    assert frame["role"].tolist() == ["user", "agent", "user"]


def test_documents_and_elements_that_hold_no_message_are_quarantined_with_why() -> None:
    docs = [
        {"id": "no-array", "turns": "oops"},
        {"id": "missing"},
        {"id": "bad-element", "_ts": int(time.time()), "turns": ["text, not a message"]},
        {"id": "fine", "_ts": int(time.time()), "turns": [{"role": "user"}]},
    ]
    result = normalise_shaped(docs, MAPPING, SESSION)
    assert result.frame["id"].tolist() == ["fine:0"]
    reasons = {q.id: q.reason for q in result.quarantined}
    assert reasons["no-array"] == "not a session: 'turns' holds str, must be a list of messages"
    assert reasons["missing"] == "not a session: 'turns' holds nothing, must be a list of messages"
    assert reasons["bad-element:0"] == "missing field: 'role'"


def test_a_type_filter_skips_other_records_without_quarantining_them() -> None:
    shape = Shape(where_type="message", default_agent="chat")
    docs = [
        {"id": "c", "type": "conversation", "title": "t"},
        {"id": "m", "type": "message", "conversationId": "c", "role": "user", "timestamp": at(1)},
    ]
    result = normalise_shaped(docs, MAPPING, shape)
    assert result.frame["id"].tolist() == ["m"] and result.quarantined == []
    assert shape.filters() == {"type": "message"}


def test_a_session_window_pushes_down_only_its_start_on_the_documents_write() -> None:
    start, end = NOW - timedelta(hours=1), NOW
    assert SESSION.window(start, end) == (start - timedelta(seconds=1), None)
    assert SESSION.time_field(MAPPING) == "_ts"
    assert Shape().window(start, end) == (start, end)


def test_epoch_micro_and_nanoseconds_are_times_to_the_digit() -> None:
    ns = time.time_ns()
    parsed, bad = parse_timestamps([ns, ns + 1, ns // 1000])  # integers, as JSON holds them
    assert parsed.iloc[1].value - parsed.iloc[0].value == 1
    assert parsed.iloc[2].value == ns // 1000 * 1000
    assert not bad.any()
    _, bad = parse_timestamps([1e16])  # past 2262 in milliseconds, before microseconds
    assert bad.tolist() == [True]


@pytest.mark.parametrize(
    ("toml", "refusal"),
    [
        ("[containers.agents]\npreset = 'langchain'\n", "is not a container with a shape"),
        ("[containers.messages]\nlayout = 'sessions'\n", "did you mean 'session'?"),
        ("[containers.messages]\nmessages_path = 'a b'\n", "messages_path"),
        ("[dimensions]\nagent_id = 'x'\n", "must be a new column name"),
        ("[dimensions]\ntenant = 'tenant id'\n", "is not a field name"),
    ],
)
def test_shape_and_dimension_settings_are_checked(tmp_path, toml: str, refusal: str) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "agentdash.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError, match=refusal):
        load_settings({"AGENTDASH_CONFIG": str(config)})


def test_with_a_section_a_message_without_a_time_takes_its_documents_write() -> None:
    written = int(time.time()) - 30
    docs = [{"id": "m", "conversationId": "c", "role": "user", "_ts": written}]
    assert normalise_shaped(docs, MAPPING, Shape()).frame.empty  # as before: no time, no row
    frame = normalise_shaped(docs, MAPPING, Shape(default_agent="chat")).frame
    assert frame["timestamp"].tolist() == parse_timestamps([written])[0].tolist()
    assert "_ts" in Shape(default_agent="chat").projection(MAPPING, MAPPING.columns)
