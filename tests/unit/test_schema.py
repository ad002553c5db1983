"""Normalisation of raw documents: timestamps, quarantine, synonyms, field mappings, dtypes."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.schema import (
    AGENT_DTYPES,
    CANONICAL_FIELDS,
    DERIVED,
    DTYPES,
    MESSAGE_DTYPES,
    OPTIONAL_DTYPES,
    REQUIRED,
    RULES,
    FieldMapping,
    coerce,
    empty_frame,
    normalise,
    parse_timestamps,
)
from pipelines.sources.base import ColumnBatch

MESSAGES = FieldMapping.for_container("messages")
_ROLES = "user, agent, system, tool"
_NUMBER = "must be a non-negative number"
_COUNT = "must be a non-negative integer"
# A value of another kind in every column: it sends each column down the general path.
MIXED = {
    "conversationId": 7,
    "agentId": 7,
    "role": 7,
    "timestamp": 1704067200,
    "latencyMs": "x",
    "tokensIn": "x",
    "tokensOut": "x",
    "status": 7,
    "userId": 7,
}
AGENTS = FieldMapping.for_container("agents")
NEW_YEAR = pd.Timestamp("2024-01-01T00:00:00", tz="UTC")  # epoch 1704067200 s


def message(**fields: Any) -> dict[str, Any]:
    """A complete, valid message document; ``fields`` replace (or with None, drop) fields."""
    doc: dict[str, Any] = {
        "id": "m1",
        "conversationId": "c1",
        "agentId": "a1",
        "role": "agent",
        "timestamp": "2024-01-01T00:00:00Z",
        "latencyMs": 120.5,
        "tokensIn": 10,
        "tokensOut": 20,
        "status": "ok",
        "userId": "u1",
        "content": "hello",
    }
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not None}


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return frame.dtypes.astype(str).to_dict()


# --- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-01T00:00:00Z", NEW_YEAR),
        ("2024-01-01T00:00:00+00:00", NEW_YEAR),
        ("2024-01-01T01:30:00+01:30", NEW_YEAR),
        ("2023-12-31T19:00:00-05:00", NEW_YEAR),
        ("2024-01-01T05:00:00+0500", NEW_YEAR),
        ("2024-01-01T00:00:00", NEW_YEAR),  # no zone: taken as UTC
        ("2024-01-01 00:00:00", NEW_YEAR),
        ("2024-01-01", NEW_YEAR),
        ("2024-01-01T00:00:00.5Z", NEW_YEAR + pd.Timedelta(milliseconds=500)),
        ("2024-01-01T00:00:00.123456Z", NEW_YEAR + pd.Timedelta(microseconds=123456)),
        ("2024-01-01T00:00:00.123456789Z", NEW_YEAR + pd.Timedelta(nanoseconds=123456789)),
        ("2024-01-01T02:00:00.250+02:00", NEW_YEAR + pd.Timedelta(milliseconds=250)),
        (1704067200, NEW_YEAR),  # epoch seconds
        (1704067200.25, NEW_YEAR + pd.Timedelta(milliseconds=250)),
        (1704067200000, NEW_YEAR),  # epoch milliseconds
        (1704067200123, NEW_YEAR + pd.Timedelta(milliseconds=123)),
        (1704067200123.0, NEW_YEAR + pd.Timedelta(milliseconds=123)),
        ("1704067200", NEW_YEAR),  # numeric strings
        ("1704067200.5", NEW_YEAR + pd.Timedelta(milliseconds=500)),
        ("1704067200000", NEW_YEAR),
        (0, pd.Timestamp("1970-01-01", tz="UTC")),
        (-86400, pd.Timestamp("1969-12-31", tz="UTC")),
    ],
)
def test_every_timestamp_form_parses_to_utc(raw: Any, expected: pd.Timestamp) -> None:
    parsed, bad = parse_timestamps([raw])
    assert parsed.tolist() == [expected] and not bad.any()
    assert str(parsed.dtype) == "datetime64[ns, UTC]"
    if expected >= pd.Timestamp("2000-01-01", tz="UTC"):  # older times are quarantined
        result = normalise([message(timestamp=raw)], MESSAGES)
        assert result.quarantined == []
        assert result.frame["timestamp"].tolist() == [expected]


def test_timestamp_forms_mixed_in_one_batch() -> None:
    raws = [
        "2024-01-01T00:00:00Z",
        1704067200,
        1704067200000,
        "1704067200",
        "2024-01-01T01:00+01:00",
    ]
    docs = [message(id=f"m{i}", timestamp=raw) for i, raw in enumerate(raws)]
    frame = normalise(docs, MESSAGES).frame
    assert frame["timestamp"].tolist() == [NEW_YEAR] * len(raws)


def test_parse_timestamps_reports_unreadable_values_but_not_absent_ones() -> None:
    parsed, bad = parse_timestamps(["2024-01-01T00:00:00Z", None, math.nan, "soon", True])
    assert parsed.tolist()[0] == NEW_YEAR
    assert parsed.isna().tolist() == [False, True, True, True, True]
    assert bad.tolist() == [False, False, True, True, True]  # NaN is a number, not a time


@pytest.mark.parametrize(
    "raw",
    [
        "yesterday",
        "2024-13-01T00:00:00Z",
        "2024-01-01T25:00:00Z",
        "",
        True,
        False,
        {"$date": "2024-01-01"},
        ["2024-01-01"],
        math.inf,
        "9999-12-31T00:00:00Z",  # a valid date, but not representable in nanoseconds
        "1500-01-01T00:00:00Z",
        1e300,
        9_300_000_000_000,  # epoch ms in 2264: past the nanosecond range
        "not a date",
        "2026-13-45T00:00:00Z",
        "0000-01-01T00:00:00Z",  # year 0
        -1e20,
        10**400,  # past every float
        "1" + "0" * 400,
        "1999-12-31T23:59:59Z",  # before 2000: a clock that was never set
        0,
        "2200-01-01T00:00:00Z",  # readable, but far in the future
    ],
)
def test_unreadable_timestamp_is_quarantined(raw: Any) -> None:
    result = normalise([message(id="bad", timestamp=raw), message(id="good")], MESSAGES)
    assert result.frame["id"].tolist() == ["good"]
    [record] = result.quarantined
    assert record.id == "bad"
    assert record.container == "messages"
    assert record.reason.startswith("bad timestamp: 'timestamp'")
    assert record.document["timestamp"] == raw or raw != raw


# --- missing and wrong-typed fields -------------------------------------------------------


def test_a_timestamp_up_to_a_day_ahead_is_read_and_further_is_quarantined() -> None:
    now = pd.Timestamp.now(tz="UTC")
    soon, late = now + pd.Timedelta(hours=23), now + pd.Timedelta(hours=25)
    docs = [
        message(id="soon", timestamp=soon.isoformat()),
        message(id="late", timestamp=late.isoformat()),
    ]
    result = normalise(docs, MESSAGES)
    assert result.frame["timestamp"].tolist() == [soon]
    [record] = result.quarantined
    assert record.id == "late"
    assert record.reason == (
        "bad timestamp: 'timestamp' holds a time more than a day ahead, must be ISO 8601 "
        "or epoch seconds/milliseconds/microseconds/nanoseconds, from 2000-01-01 to a day ahead"
    )


@pytest.mark.parametrize(
    ("raw", "holds"),
    [
        ("not a date", "text that is no time"),
        ("", "empty text"),
        (True, "a boolean"),
        ({"$date": "2024-01-01"}, "an object"),
        (-1e20, "a number out of range"),
        ("1990-06-01T00:00:00Z", "a time before 2000-01-01"),
    ],
)
def test_the_reason_for_a_timestamp_names_what_it_holds(raw: Any, holds: str) -> None:
    [record] = normalise([message(timestamp=raw)], MESSAGES).quarantined
    assert record.reason.startswith(f"bad timestamp: 'timestamp' holds {holds}, must be ")


@pytest.mark.parametrize("missing", ["id", "conversationId", "agentId", "role", "timestamp"])
def test_document_without_a_required_field_is_quarantined(missing: str) -> None:
    doc = message(id="bad")
    del doc[missing]
    result = normalise([doc, message(id="good")], MESSAGES)
    assert result.frame["id"].tolist() == ["good"]
    [record] = result.quarantined
    assert record.reason == f"missing field: {missing!r}"
    assert record.document is doc
    assert record.id == (None if missing == "id" else "bad")


def test_null_and_empty_required_fields_count_as_missing() -> None:
    result = normalise(
        [message(id="n1", conversationId=None), {**message(id="n2"), "conversationId": ""}],
        MESSAGES,
    )
    assert len(result.frame) == 0
    assert [r.reason for r in result.quarantined] == ["missing field: 'conversationId'"] * 2


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"id": 1.5}, "wrong type: 'id' holds a number, must be text"),
        ({"id": True}, "wrong type: 'id' holds a boolean, must be text"),
        ({"id": {"a": 1}}, "wrong type: 'id' holds an object, must be text"),
        ({"id": 2**63}, "wrong type: 'id' holds a number, must be text"),
        ({"conversationId": ["c1"]}, "wrong type: 'conversationId' holds a list, must be text"),
        ({"agentId": {"name": "a1"}}, "wrong type: 'agentId' holds an object, must be text"),
        ({"userId": 3.0}, "wrong type: 'userId' holds a number, must be text"),
        ({"role": "wizard"}, "bad role: 'role' holds an unknown role, must be one of " + _ROLES),
        ({"role": 7}, "bad role: 'role' holds a number, must be one of " + _ROLES),
        ({"role": ["agent"]}, "bad role: 'role' holds a list, must be one of " + _ROLES),
        ({"status": {"code": 500}}, "bad status: 'status' holds an object, must be text"),
        ({"status": 503}, "bad status: 'status' holds a number, must be text"),
        ({"status": False}, "bad status: 'status' holds a boolean, must be text"),
        ({"latencyMs": "fast"}, "wrong type: 'latencyMs' holds text, " + _NUMBER),
        ({"latencyMs": "250"}, "wrong type: 'latencyMs' holds text, " + _NUMBER),
        ({"latencyMs": -1}, "wrong type: 'latencyMs' holds a negative number, " + _NUMBER),
        ({"latencyMs": True}, "wrong type: 'latencyMs' holds a boolean, " + _NUMBER),
        ({"latencyMs": math.inf}, "wrong type: 'latencyMs' holds infinity, " + _NUMBER),
        ({"latencyMs": math.nan}, "wrong type: 'latencyMs' holds NaN, " + _NUMBER),
        ({"latencyMs": 10**400}, "wrong type: 'latencyMs' holds a number too large, " + _NUMBER),
        ({"tokensIn": 1.5}, "wrong type: 'tokensIn' holds a fraction, " + _COUNT),
        ({"tokensIn": "ten"}, "wrong type: 'tokensIn' holds text, " + _COUNT),
        ({"tokensIn": "7"}, "wrong type: 'tokensIn' holds text, " + _COUNT),
        ({"tokensIn": 1e300}, "wrong type: 'tokensIn' holds a number too large, " + _COUNT),
        ({"tokensOut": 2**63}, "wrong type: 'tokensOut' holds a number too large, " + _COUNT),
        ({"tokensOut": -3}, "wrong type: 'tokensOut' holds a negative number, " + _COUNT),
        ({"tokensOut": [1]}, "wrong type: 'tokensOut' holds a list, " + _COUNT),
        (
            {"agentId": "a\ud800"},
            "wrong type: 'agentId' holds text that is not Unicode (a lone surrogate), must be text",
        ),
    ],
)
def test_wrong_typed_field_is_quarantined_with_its_reason(
    fields: dict[str, Any], reason: str
) -> None:
    # A batch of one kind reads on the fast path; one value of another kind sends the whole
    # column down the value-by-value path: both give the same verdict.
    alone = normalise([message(**{"id": "bad", **fields}), message(id="good")], MESSAGES)
    mixed = normalise(
        [message(**{"id": "bad", **fields}), message(id="good"), message(id="x", **MIXED)],
        MESSAGES,
    )
    for result in (alone, mixed):
        assert result.frame["id"].tolist() == ["good"]
        assert [r.reason for r in result.quarantined][:1] == [reason]


def test_huge_numbers_in_one_document_leave_the_others_readable() -> None:
    docs = [
        message(id="tokens-in", tokensIn=1e300),
        message(id="tokens-out", tokensOut=9223372036854775808),
        message(id="latency", latencyMs=10**400),
        message(id="time", timestamp=10**400),
        *(message(id=f"ok{i}") for i in range(3)),
    ]
    result = normalise(docs, MESSAGES)
    assert result.frame["id"].tolist() == ["ok0", "ok1", "ok2"]
    assert [r.id for r in result.quarantined] == ["tokens-in", "tokens-out", "latency", "time"]
    assert dtypes(result.frame) == MESSAGE_DTYPES


def test_counts_are_exact_up_to_the_largest_int64() -> None:
    largest, past_floats = 2**63 - 1, 2**53 + 1
    docs = [
        message(id="largest", tokensIn=largest),
        message(id="past-floats", tokensIn=past_floats, tokensOut=2.0),
    ]
    for batch in (docs, [*docs, message(id="mixed", tokensIn=3.0)]):
        frame = normalise(batch, MESSAGES).frame.set_index("id")
        assert frame.loc["largest", "tokens_in"] == largest
        assert frame.loc["past-floats", "tokens_in"] == past_floats
        assert frame.loc["past-floats", "tokens_out"] == 2


@pytest.mark.parametrize("doc", ["a string", 42, None, ["id", "m1"]])
def test_a_document_that_is_not_an_object_is_quarantined(doc: Any) -> None:
    result = normalise([doc, message(id="good")], MESSAGES)
    assert result.frame["id"].tolist() == ["good"]
    [record] = result.quarantined
    assert record.id is None
    assert record.reason == "not an object: a document must be a JSON object"
    assert record.document == doc


def test_only_unreadable_documents_give_an_empty_canonical_frame() -> None:
    docs = ["x", message(id="m1", role="wizard"), message(id="m2", timestamp="never")]
    result = normalise(docs, MESSAGES)
    assert len(result.frame) == 0
    assert dtypes(result.frame) == MESSAGE_DTYPES
    assert len(result.quarantined) == 3


def test_whole_numbers_read_as_text_and_integral_floats_as_counts() -> None:
    doc = message(id=42, latencyMs=12, tokensIn=7, tokensOut=3.0, conversationId=7, agentId=-1)
    frame = normalise([doc], MESSAGES).frame
    row = frame.iloc[0]
    assert (row["id"], row["conversation_id"], row["agent_id"]) == ("42", "7", "-1")
    assert (row["latency_ms"], row["tokens_in"], row["tokens_out"]) == (12.0, 7, 3)


@pytest.mark.parametrize(
    "text",
    [
        "ünïcødé ✓ 日本語 🤖",
        "x' OR '1'='1",
        "'; DROP TABLE documents; --",
        'quote " and \\ backslash',
        "a" * 1_000_000,
        "line\nbreak\ttab",
    ],
)
def test_any_unicode_text_is_kept_as_it_is(text: str) -> None:
    doc = message(id=text, conversationId=text, agentId=text, userId=text, content=text)
    result = normalise([doc], MESSAGES, extra=("content",))
    assert result.quarantined == []
    row = result.frame.iloc[0]
    assert [row[c] for c in ("id", "conversation_id", "agent_id", "user_id", "content")] == [
        text
    ] * 5


# --- optional fields, synonyms ---------------------------------------------------------------


def test_absent_optional_fields_are_missing_values() -> None:
    doc = {
        "id": "m1",
        "conversationId": "c1",
        "agentId": "a1",
        "role": "user",
        "timestamp": 1704067200,
    }
    frame = normalise([doc], MESSAGES).frame
    row = frame.iloc[0]
    assert pd.isna(row["user_id"])
    assert math.isnan(row["latency_ms"])
    assert row["tokens_in"] is pd.NA and row["tokens_out"] is pd.NA
    assert row["status"] == "other"  # a message without a status is neither ok nor an error
    assert dtypes(frame) == MESSAGE_DTYPES


def test_null_optional_fields_are_missing_values() -> None:
    doc = {**message(), "userId": None, "latencyMs": None, "tokensIn": None, "status": None}
    row = normalise([doc], MESSAGES).frame.iloc[0]
    assert pd.isna(row["user_id"]) and math.isnan(row["latency_ms"])
    assert row["tokens_in"] is pd.NA
    assert row["status"] == "other"


@pytest.mark.parametrize(
    ("raw", "role"),
    [
        ("user", "user"),
        ("assistant", "agent"),
        ("Assistant", "agent"),
        ("bot", "agent"),
        ("human", "user"),
        (" HUMAN ", "user"),
        ("function", "tool"),
        ("tool", "tool"),
        ("System", "system"),
    ],
)
def test_role_synonyms(raw: str, role: str) -> None:
    assert normalise([message(role=raw)], MESSAGES).frame["role"].tolist() == [role]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("ok", "ok"),
        ("success", "ok"),
        ("Succeeded", "ok"),
        ("completed", "ok"),
        ("fail", "error"),
        ("FAILED", "error"),
        ("failure", "error"),
        ("exception", "error"),
        ("error", "error"),
        ("timed_out", "timeout"),
        ("TimedOut", "timeout"),
        ("time_out", "timeout"),
        ("timeout", "timeout"),
        ("cancelled", "other"),
        ("", "other"),
    ],
)
def test_status_synonyms(raw: Any, status: str) -> None:
    result = normalise([message(status=raw)], MESSAGES)
    assert result.quarantined == []
    assert result.frame["status"].tolist() == [status]


# --- field mappings ---------------------------------------------------------------------------


def test_custom_field_mapping_is_honoured() -> None:
    mapping = FieldMapping.for_container(
        "messages",
        {"messages": {"timestamp": "createdAt", "latency_ms": "meta.latency", "id": "msgId"}},
    )
    doc = {
        "msgId": "x1",
        "conversationId": "c1",
        "agentId": "a1",
        "role": "assistant",
        "createdAt": "2024-01-01T00:00:00Z",
        "timestamp": "1999-01-01T00:00:00Z",  # not the mapped field: ignored
        "meta": {"latency": 250},
    }
    result = normalise([doc], mapping)
    assert result.quarantined == []
    row = result.frame.iloc[0]
    assert (row["id"], row["timestamp"], row["latency_ms"]) == ("x1", NEW_YEAR, 250.0)
    assert mapping.projection(["id", "timestamp", "latency_ms"]) == (
        "msgId",
        "createdAt",
        "meta.latency",
    )


def test_nested_field_already_projected_by_the_source_is_read() -> None:
    mapping = FieldMapping.for_container("messages", {"messages": {"latency_ms": "meta.latency"}})
    projected = {**message(), "meta.latency": 75}
    assert normalise([projected], mapping).frame["latency_ms"].tolist() == [75.0]


def test_nested_field_through_a_non_object_is_missing() -> None:
    mapping = FieldMapping.for_container("messages", {"messages": {"latency_ms": "meta.latency"}})
    docs = [{**message(id="s"), "meta": "text"}, {**message(id="n"), "meta": None}]
    frame = normalise(docs, mapping).frame
    assert frame["latency_ms"].isna().tolist() == [True, True]


def test_custom_mapping_names_the_source_field_in_reasons() -> None:
    mapping = FieldMapping.for_container("messages", {"messages": {"timestamp": "createdAt"}})
    result = normalise([{**message(), "createdAt": "soon"}], mapping)
    assert [r.reason.split(" holds ")[0] for r in result.quarantined] == [
        "bad timestamp: 'createdAt'"
    ]


def test_unknown_container_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown container"):
        FieldMapping.for_container("tools")


# --- canonical dtypes -------------------------------------------------------------------------


def test_messages_have_exactly_the_canonical_dtypes() -> None:
    frame = normalise([message(id="a"), message(id="b", userId=None)], MESSAGES).frame
    assert dtypes(frame) == {
        "id": "str",
        "conversation_id": "str",
        "agent_id": "str",
        "role": "str",
        "timestamp": "datetime64[ns, UTC]",
        "latency_ms": "float64",
        "tokens_in": "Int64",
        "tokens_out": "Int64",
        "status": "str",
        "user_id": "str",
        "model": "str",
        "tokens_cached_in": "Int64",
        "cost_usd": "float64",
    }
    assert list(frame.index) == [0, 1]
    # No document gives a cost: it is priced after normalisation.
    assert frame["cost_usd"].isna().all()


def test_extra_content_column_is_kept_on_request() -> None:
    frame = normalise([message()], MESSAGES, extra=("content",)).frame
    assert frame["content"].tolist() == ["hello"]
    assert str(frame["content"].dtype) == "str"
    assert "content" not in normalise([message()], MESSAGES).frame


def test_agents_have_exactly_the_canonical_dtypes() -> None:
    docs = [
        {
            "id": "a1",
            "name": "Planner",
            "kind": "llm",
            "status": "active",
            "team": "core",
            "createdAt": "2023-06-01T00:00:00Z",
            "lastSeen": 1704067200000,
        },
        {"id": "a2"},
    ]
    result = normalise(docs, AGENTS)
    assert result.quarantined == []
    assert dtypes(result.frame) == AGENT_DTYPES
    assert result.frame["last_seen"].tolist()[0] == NEW_YEAR
    assert result.frame["status"].tolist()[0] == "active"  # agents keep their own statuses
    assert result.frame.iloc[1].drop("id").isna().all()


def test_empty_input_gives_the_canonical_empty_frame() -> None:
    assert dtypes(normalise([], MESSAGES).frame) == MESSAGE_DTYPES
    assert dtypes(normalise([], AGENTS).frame) == AGENT_DTYPES
    assert dtypes(empty_frame("messages", ["content"])) == {**MESSAGE_DTYPES, "content": "str"}


def test_coerce_restores_canonical_dtypes() -> None:
    loose = pd.DataFrame(
        {
            "id": pd.Series(["m1"], dtype=object),
            "timestamp": pd.Series([NEW_YEAR.tz_localize(None)]).dt.tz_localize("UTC"),
            "tokens_in": pd.Series([3], dtype="int64"),
            "latency_ms": pd.Series([1], dtype="int64"),
        }
    )
    fixed = coerce(loose, "messages")
    assert dtypes(fixed) == {
        "id": "str",
        "timestamp": "datetime64[ns, UTC]",
        "tokens_in": "Int64",
        "latency_ms": "float64",
    }


# --- duplicates -------------------------------------------------------------------------------


def test_a_later_unreadable_version_of_an_id_replaces_the_readable_one() -> None:
    docs = [message(id="m1"), message(id="m2", role="wizard"), message(id="m1", role="wizard")]
    docs.append(message(id="m2"))
    result = normalise(docs, MESSAGES)
    assert result.frame["id"].tolist() == ["m2"]
    assert [(r.id, r.document) for r in result.quarantined] == [("m1", docs[2])]


def test_duplicate_ids_in_one_batch_keep_the_last() -> None:
    docs = [
        message(id="m1", status="ok"),
        message(id="m2"),
        message(id="m1", status="failed", latencyMs=900),
    ]
    frame = normalise(docs, MESSAGES).frame
    assert sorted(frame["id"]) == ["m1", "m2"]
    m1 = frame.set_index("id").loc["m1"]
    assert (m1["status"], m1["latency_ms"]) == ("error", 900.0)
    assert list(frame.index) == [0, 1]


# --- epoch numbers are exact ------------------------------------------------------------------


@given(ms=st.integers(min_value=100_000_000_000, max_value=9_000_000_000_000))
def test_epoch_milliseconds_are_exact(ms: int) -> None:
    parsed, bad = parse_timestamps([ms, str(ms)])
    assert not bad.any()
    assert parsed.tolist() == [pd.Timestamp(ms, unit="ms", tz="UTC")] * 2


@given(
    seconds=st.integers(min_value=-9_000_000_000, max_value=9_000_000_000),
    quarter=st.integers(min_value=0, max_value=3),
)
def test_epoch_seconds_are_exact(seconds: int, quarter: int) -> None:
    value = seconds + quarter / 4
    parsed, _ = parse_timestamps([value])
    expected = pd.Timestamp(seconds, unit="s", tz="UTC") + pd.Timedelta(milliseconds=250 * quarter)
    assert parsed.tolist() == [expected]


# --- fast paths read exactly what the general path reads -----------------------------------------

# A value of another type sends a whole batch down the general, value-by-value path.
_GENERAL = object()

_ZONED_TIMES = st.builds(
    lambda t, fraction, zone: t.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone,
    st.datetimes(min_value=pd.Timestamp("1700-01-01"), max_value=pd.Timestamp("2250-12-31")),
    st.sampled_from(["", ".5", ".123", ".123456", ".123456789"]),
    st.sampled_from(["Z", "+00:00", "+02:00", "-05:30", "+0100"]),
)


@given(st.lists(st.one_of(st.none(), _ZONED_TIMES), min_size=1, max_size=30))
def test_zoned_iso_timestamps_parse_as_on_the_general_path(values: list[Any]) -> None:
    fast, fast_bad = parse_timestamps(values)
    general, general_bad = parse_timestamps([*values, _GENERAL])
    assert fast.tolist() == general.tolist()[:-1]
    assert not fast_bad.any() and not general_bad[:-1].any()


_ROLE_WORDS = ["agent", "Assistant", " BOT ", "user", "human", "tool", "function", "system"]
_STATUS_WORDS = ["ok", "Success", "FAILED", "timed_out", "error", "timeout", "pending"]
_WORDS = st.sampled_from([*_ROLE_WORDS, *_STATUS_WORDS, "wizard", "", "  "])


@given(st.lists(st.one_of(st.none(), _WORDS), min_size=1, max_size=30))
def test_roles_and_statuses_read_as_on_the_general_path(words: list[Any]) -> None:
    docs = [message(id=f"m{i}", role=w, status=w) for i, w in enumerate(words)]
    fast = normalise(docs, MESSAGES)
    general = normalise([*docs, message(id="general", role=7, status=7)], MESSAGES)
    general_frame = general.frame[general.frame["id"] != "general"].reset_index(drop=True)
    pd.testing.assert_frame_equal(fast.frame, general_frame)
    reasons = {(q.id, q.reason) for q in general.quarantined if q.id != "general"}
    assert {(q.id, q.reason) for q in fast.quarantined} == reasons


def test_a_column_batch_normalises_like_the_documents_it_holds() -> None:
    docs = [
        message(id="m1"),
        message(id="m2", role="wizard"),
        message(id="m3", timestamp=1704067200),
        message(id="m1", status="failed"),
    ]
    fields = [source for _, source in MESSAGES.fields]
    batch = ColumnBatch.from_rows(fields, [[doc.get(f) for f in fields] for doc in docs])
    by_dicts, by_columns = normalise(docs, MESSAGES), normalise(batch, MESSAGES)
    pd.testing.assert_frame_equal(by_columns.frame, by_dicts.frame)
    assert [(q.id, q.reason) for q in by_columns.quarantined] == [
        (q.id, q.reason) for q in by_dicts.quarantined
    ]
    assert by_columns.quarantined[0].document == {f: docs[1].get(f) for f in fields}


def test_a_column_batch_reads_as_documents() -> None:
    batch = ColumnBatch.from_rows(["id", "a.b"], [["x", 1], ["y", None]])
    assert len(batch) == 2
    assert list(batch) == [{"id": "x", "a.b": 1}, {"id": "y", "a.b": None}]
    assert batch[1] == {"id": "y", "a.b": None} and batch[-1] == batch[1]
    assert batch[:1] == [{"id": "x", "a.b": 1}]
    assert list(batch.column("missing")) == [None, None]
    with pytest.raises(ValueError):
        ColumnBatch.from_rows(["id", "a.b"], [["x", 1], ["y"]])


# --- every column has a rule ------------------------------------------------------------------


def test_every_canonical_column_has_a_rule_and_required_columns_follow_them() -> None:
    for container, dtypes_ in DTYPES.items():
        assert set(RULES[container]) == (set(dtypes_) - set(DERIVED[container])) | (
            set(OPTIONAL_DTYPES) & set(CANONICAL_FIELDS[container])
        )
    assert REQUIRED == {
        "messages": ("id", "conversation_id", "agent_id", "role", "timestamp"),
        "agents": ("id",),
    }


# --- any JSON value in any field: never an exception, each document in one place -------------

_HUGE = st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**400, -(10**400), 2**53 + 1])
_TEXT = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=8)
_SPECIAL = st.sampled_from(
    ["", "250", "2024-01-01T00:00:00Z", "1704067200", "agent", "ok", "not a date", "x' OR 1=1"]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _HUGE | st.floats() | _TEXT | _SPECIAL,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)
# Values each field accepts, so that a batch mixes readable documents with the others.
_GOOD = {
    "id": st.text(min_size=1, max_size=4) | st.integers(0, 99),
    "conversationId": st.sampled_from(["c1", "c2"]),
    "agentId": st.sampled_from(["a1", "a2"]),
    "role": st.sampled_from(["user", "Assistant", "tool"]),
    "timestamp": st.sampled_from(["2024-01-01T00:00:00Z", 1704067200, 1704067200000]),
    "latencyMs": st.floats(0, 1e6) | st.integers(0, 10**6),
    "tokensIn": st.integers(0, 2**63 - 1),
    "tokensOut": st.integers(0, 10**6),
    "status": st.sampled_from(["ok", "failed", "pending"]),
    "userId": st.sampled_from(["u1", "u2"]),
    "content": st.text(max_size=5),
}


@st.composite
def fuzzed_documents(draw: st.DrawFn) -> list[Any]:
    docs: list[Any] = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.integers(0, 19)) == 0:
            docs.append(draw(json_values))  # not even an object
            continue
        doc = {}
        for name, good in _GOOD.items():
            value = draw(st.sampled_from(["good", "good", "any", "absent"]))
            if value == "good":
                doc[name] = draw(good)
            elif value == "any":
                doc[name] = draw(json_values)
        docs.append(doc)
    return docs


def _text_id(doc: Any) -> str | None:
    """The id a frame holds for ``doc``, when it has one that reads as text."""
    raw = doc.get("id") if isinstance(doc, dict) else None
    if type(raw) is int and -(2**63) <= raw < 2**63:
        return str(raw)
    if type(raw) is str and raw:
        try:
            raw.encode()
        except UnicodeEncodeError:
            return None
        return raw
    return None


def _positions(docs: list[Any], documents: list[Any]) -> list[int]:
    """Where each of ``documents`` itself (not an equal one) is in ``docs``; a value seen at
    several places (None, a number) takes the next one each time."""
    taken: list[int] = []
    for document in documents:
        taken.append(next(i for i, d in enumerate(docs) if d is document and i not in taken))
    return taken


@settings(max_examples=150)
@given(fuzzed_documents())
def test_any_json_in_any_field_lands_each_document_in_the_frame_or_in_quarantine(
    docs: list[Any],
) -> None:
    result = normalise(docs, MESSAGES, extra=("content",), deduplicate=False)
    assert dtypes(result.frame) == {**MESSAGE_DTYPES, "content": "str"}
    positions = _positions(docs, [r.document for r in result.quarantined])
    kept = [d for i, d in enumerate(docs) if i not in positions]
    assert len(kept) + len(positions) == len(docs)  # never lost, never both
    assert result.frame["id"].tolist() == [_text_id(d) for d in kept]
    assert all(r.id == _text_id(r.document) for r in result.quarantined)


@settings(max_examples=100)
@given(fuzzed_documents())
def test_any_json_in_a_column_batch_reads_as_the_same_documents(docs: list[Any]) -> None:
    objects = [d for d in docs if isinstance(d, dict)]
    fields = [source for _, source in MESSAGES.fields]
    batch = ColumnBatch.from_rows(fields, [[d.get(f) for f in fields] for d in objects])
    by_dicts = normalise(objects, MESSAGES, extra=("content",))
    by_columns = normalise(batch, MESSAGES, extra=("content",))
    pd.testing.assert_frame_equal(by_columns.frame, by_dicts.frame)
    assert [(q.id, q.reason, q.identity) for q in by_columns.quarantined] == [
        (q.id, q.reason, q.identity) for q in by_dicts.quarantined
    ]


@settings(max_examples=100)
@given(fuzzed_documents())
def test_with_duplicates_the_last_version_of_each_id_decides(docs: list[Any]) -> None:
    result = normalise(docs, MESSAGES)
    frame_ids = result.frame["id"].tolist()
    assert len(frame_ids) == len(set(frame_ids))
    last = {_text_id(d): d for d in docs if _text_id(d) is not None}
    quarantined_ids = {r.id for r in result.quarantined if r.id is not None}
    assert set(frame_ids) | quarantined_ids == set(last)  # never neither
    assert not set(frame_ids) & quarantined_ids  # never both
    assert all(r.document is last[r.id] for r in result.quarantined if r.id is not None)
    assert dtypes(result.frame) == MESSAGE_DTYPES
