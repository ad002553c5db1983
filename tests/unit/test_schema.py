"""Normalisation of raw documents: timestamps, quarantine, synonyms, field mappings, dtypes."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.schema import (
    AGENT_DTYPES,
    MESSAGE_DTYPES,
    FieldMapping,
    Quarantine,
    coerce,
    empty_frame,
    normalise,
    parse_timestamps,
)
from pipelines.sources.base import ColumnBatch

MESSAGES = FieldMapping.for_container("messages")
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
    result = normalise([message(timestamp=raw)], MESSAGES)
    assert result.quarantined == []
    assert result.frame["timestamp"].tolist() == [expected]
    assert str(result.frame["timestamp"].dtype) == "datetime64[ns, UTC]"


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
    assert bad.tolist() == [False, False, False, True, True]


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


@pytest.mark.parametrize("missing", ["id", "conversationId", "role", "timestamp"])
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
        ({"id": 1.5}, "wrong type: 'id' must be a string"),
        ({"id": True}, "wrong type: 'id' must be a string"),
        ({"conversationId": ["c1"]}, "wrong type: 'conversationId' must be a string"),
        ({"agentId": {"name": "a1"}}, "wrong type: 'agentId' must be a string"),
        ({"userId": 3.0}, "wrong type: 'userId' must be a string"),
        ({"role": "wizard"}, "bad role: 'role' must be one of user, agent, system, tool"),
        ({"role": 7}, "bad role: 'role' must be one of user, agent, system, tool"),
        ({"role": ["agent"]}, "bad role: 'role' must be one of user, agent, system, tool"),
        ({"status": {"code": 500}}, "bad status: 'status' must be a string"),
        ({"latencyMs": "fast"}, "wrong type: 'latencyMs' must be a non-negative number"),
        ({"latencyMs": -1}, "wrong type: 'latencyMs' must be a non-negative number"),
        ({"latencyMs": True}, "wrong type: 'latencyMs' must be a non-negative number"),
        ({"latencyMs": math.inf}, "wrong type: 'latencyMs' must be a non-negative number"),
        ({"tokensIn": 1.5}, "wrong type: 'tokensIn' must be a non-negative integer"),
        ({"tokensIn": "ten"}, "wrong type: 'tokensIn' must be a non-negative integer"),
        ({"tokensOut": -3}, "wrong type: 'tokensOut' must be a non-negative integer"),
        ({"tokensOut": [1]}, "wrong type: 'tokensOut' must be a non-negative integer"),
    ],
)
def test_wrong_typed_field_is_quarantined_with_its_reason(
    fields: dict[str, Any], reason: str
) -> None:
    result = normalise([message(**{"id": "bad", **fields}), message(id="good")], MESSAGES)
    assert result.frame["id"].tolist() == ["good"]
    assert [r.reason for r in result.quarantined] == [reason]


@pytest.mark.parametrize("doc", ["a string", 42, None, ["id", "m1"]])
def test_a_document_that_is_not_an_object_is_quarantined(doc: Any) -> None:
    result = normalise([doc, message(id="good")], MESSAGES)
    assert result.frame["id"].tolist() == ["good"]
    [record] = result.quarantined
    assert record.id is None
    assert record.reason == "not an object: a document must be a JSON object"
    assert record.document == doc


def test_only_unreadable_documents_give_an_empty_canonical_frame() -> None:
    result = normalise(["x", message(role="wizard"), message(timestamp="never")], MESSAGES)
    assert len(result.frame) == 0
    assert dtypes(result.frame) == MESSAGE_DTYPES
    assert len(result.quarantined) == 3


def test_numbers_given_as_strings_and_integer_ids_are_read() -> None:
    doc = message(id=42, latencyMs="12.5", tokensIn="7", tokensOut=3.0, conversationId=7)
    frame = normalise([doc], MESSAGES).frame
    row = frame.iloc[0]
    assert (row["id"], row["conversation_id"]) == ("42", "7")
    assert (row["latency_ms"], row["tokens_in"], row["tokens_out"]) == (12.5, 7, 3)


def test_quarantine_counts_reasons_and_keeps_the_documents() -> None:
    docs = [
        message(id="ok"),
        message(id="q1", role="wizard"),
        message(id="q2", timestamp="never"),
        message(id="q3", timestamp="later"),
        message(id="q4", conversationId=None),
        "not a document",
    ]
    quarantine = Quarantine()
    quarantine.add(normalise(docs, MESSAGES).quarantined)
    assert quarantine.count == 5
    assert quarantine.reasons() == {
        "not an object": 1,
        "bad role": 1,
        "bad timestamp": 2,
        "missing field": 1,
    }
    assert sorted(str(r.id) for r in quarantine.records()) == ["None", "q1", "q2", "q3", "q4"]
    table = quarantine.frame()
    assert list(table.columns) == ["container", "id", "reason", "document"]
    assert len(table) == 5
    assert "wizard" in table.loc[table["id"] == "q1", "document"].item()


def test_quarantine_counts_a_document_read_twice_once() -> None:
    quarantine = Quarantine()
    for _ in range(3):  # three refreshes reading the same bad document
        quarantine.add(normalise([message(id="q1", role="wizard")], MESSAGES).quarantined)
    assert quarantine.count == 1
    assert len(quarantine.records()) == 1


def test_quarantine_keeps_the_latest_records_but_counts_all() -> None:
    quarantine = Quarantine(keep=2)
    docs = [message(id=f"q{i}", role="wizard") for i in range(5)]
    quarantine.add(normalise(docs, MESSAGES).quarantined)
    assert quarantine.count == 5
    assert [r.id for r in quarantine.records()] == ["q3", "q4"]


# --- optional fields, synonyms ---------------------------------------------------------------


def test_absent_optional_fields_are_missing_values() -> None:
    doc = {"id": "m1", "conversationId": "c1", "role": "user", "timestamp": 1704067200}
    frame = normalise([doc], MESSAGES).frame
    row = frame.iloc[0]
    assert pd.isna(row["agent_id"]) and pd.isna(row["user_id"])
    assert math.isnan(row["latency_ms"])
    assert row["tokens_in"] is pd.NA and row["tokens_out"] is pd.NA
    assert row["status"] == "other"  # a message without a status is neither ok nor an error
    assert dtypes(frame) == MESSAGE_DTYPES


def test_null_optional_fields_are_missing_values() -> None:
    doc = {**message(), "agentId": None, "latencyMs": None, "tokensIn": None, "status": None}
    row = normalise([doc], MESSAGES).frame.iloc[0]
    assert pd.isna(row["agent_id"]) and math.isnan(row["latency_ms"])
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
        (503, "other"),
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
    assert [r.reason.split(" is ")[0] for r in result.quarantined] == ["bad timestamp: 'createdAt'"]


def test_unknown_container_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown container"):
        FieldMapping.for_container("tools")


# --- canonical dtypes -------------------------------------------------------------------------


def test_messages_have_exactly_the_canonical_dtypes() -> None:
    frame = normalise([message(id="a"), message(id="b", agentId=None)], MESSAGES).frame
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
    }
    assert list(frame.index) == [0, 1]


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
