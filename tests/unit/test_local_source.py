"""The embedded store: pages, projection, change tokens, several processes, and imports."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import AgentdashError, SourceError
from pipelines.importer import Entry, import_file, read_documents
from pipelines.query import Query
from pipelines.schema import FieldMapping, normalise
from pipelines.sources.local import MAX_DEPTH, LocalSource, Refused
from pipelines.sources.local_sql import Cursor, compile_page, window_start

ALL = Query.build("messages")


def deep(levels: int) -> Any:
    """A value nested ``levels`` deep (the document around it is one more)."""
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


def messages(n: int, start: int = 0, **fields: Any) -> list[dict[str, Any]]:
    return [
        {"id": f"m{i:03d}", "conversationId": f"c{i % 4}", "n": i, **fields}
        for i in range(start, start + n)
    ]


def read(source: LocalSource, query: Query = ALL) -> list[dict[str, Any]]:
    return [doc for page in source.fetch(query) for doc in page]


@pytest.fixture
def store(tmp_path: Path) -> LocalSource:
    return LocalSource(tmp_path / "store.db", page_size=4)


# --- pages and projection -------------------------------------------------------------------


def test_fetch_yields_pages_of_at_most_page_size(store: LocalSource) -> None:
    store.upsert("messages", messages(10))
    before = store.stats.snapshot()
    pages = list(store.fetch(ALL))
    assert [len(page) for page in pages] == [4, 4, 2]
    assert [doc["id"] for page in pages for doc in page] == [f"m{i:03d}" for i in range(10)]
    after = store.stats.snapshot()
    assert after["requests"] - before["requests"] == 3
    assert after["documents"] - before["documents"] == 10


def test_a_full_last_page_needs_one_more_request_to_end(store: LocalSource) -> None:
    store.upsert("messages", messages(8))
    assert [len(page) for page in store.fetch(ALL)] == [4, 4]
    assert store.stats.requests == 3


def test_empty_store_yields_no_pages(store: LocalSource) -> None:
    assert list(store.fetch(ALL)) == []
    assert store.is_empty("messages") and store.is_empty("agents")


def test_documents_come_back_as_stored_with_a_write_time(store: LocalSource) -> None:
    doc = {"id": "m1", "conversationId": "c1", "meta": {"tags": ["a", "b"]}, "ok": True}
    store.upsert("messages", [doc])
    [back] = read(store)
    assert {k: v for k, v in back.items() if k != "_ts"} == doc
    assert isinstance(back["_ts"], int)


def test_projection_returns_only_the_named_fields(store: LocalSource) -> None:
    store.upsert(
        "messages",
        [{"id": "m1", "conversationId": "c1", "meta": {"kind": "plan", "score": 0.5}, "x": 1}],
    )
    [doc] = read(store, Query.build("messages", projection=["id", "meta.kind", "missing"]))
    assert doc == {"id": "m1", "meta.kind": "plan", "missing": None}


def test_projection_keeps_json_types(store: LocalSource) -> None:
    doc = {"id": "m1", "flag": True, "off": False, "none": None, "obj": {"a": [1, 2]}, "f": 1.5}
    store.upsert("messages", [doc])
    projection = ["id", "flag", "off", "none", "obj", "f"]
    [back] = read(store, Query.build("messages", projection=projection))
    assert back == doc
    assert back["flag"] is True and back["off"] is False


def test_wrong_types_are_quarantined_alike_with_and_without_projection(
    store: LocalSource,
) -> None:
    mapping = FieldMapping.for_container("messages")
    bad = {"id": "m1", "conversationId": "c1", "agentId": "a1", "role": "user", "timestamp": True}
    store.upsert("messages", [bad])
    projection = mapping.projection(["id", "conversation_id", "agent_id", "role", "timestamp"])
    for query in (ALL, Query.build("messages", projection=projection)):
        result = normalise(read(store, query), mapping)
        assert len(result.frame) == 0
        assert [r.reason.split(":")[0] for r in result.quarantined] == ["bad timestamp"]


def test_filters_and_containers_are_kept_apart(store: LocalSource) -> None:
    store.upsert("messages", messages(6))
    store.upsert("agents", [{"id": "m000", "conversationId": "c0"}])
    query = Query.build("messages", filters={"conversationId": ["c1", "c2"]})
    assert sorted(d["id"] for d in read(store, query)) == ["m001", "m002", "m005"]
    assert [d["id"] for d in read(store, Query.build("agents"))] == ["m000"]


# --- writes -----------------------------------------------------------------------------------


def test_upsert_replaces_by_id(store: LocalSource) -> None:
    assert store.upsert("messages", messages(3)) == 3
    assert store.upsert("messages", [{"id": "m001", "conversationId": "c9", "n": 99}]) == 1
    docs = {d["id"]: d for d in read(store)}
    assert len(docs) == 3
    assert (docs["m001"]["conversationId"], docs["m001"]["n"]) == ("c9", 99)


def test_upsert_in_several_batches(store: LocalSource) -> None:
    assert store.upsert("messages", messages(25), batch=10) == 25
    assert sorted(d["id"] for d in read(store)) == [f"m{i:03d}" for i in range(25)]


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"conversationId": "c1"}, "no 'id'"),
        ({"id": ""}, "no 'id'"),
        ({"id": None}, "no 'id'"),
        ("text", "not a JSON object"),
        ({"id": "a\ud800b"}, "holds text that is not Unicode (a lone surrogate)"),
        ({"id": "m1", "content": "\udfff"}, "holds text that is not Unicode (a lone surrogate)"),
        ({"id": "m1", "nested": deep(MAX_DEPTH)}, f"nested deeper than {MAX_DEPTH} levels"),
        ({"id": "m1", "latencyMs": float("nan")}, "NaN and Infinity are not JSON; use null"),
        ({"id": "m1", "meta": {"score": float("inf")}}, "NaN and Infinity are not JSON; use null"),
    ],
)
def test_a_document_the_store_cannot_hold_is_refused_and_the_store_stays_readable(
    store: LocalSource, doc: Any, reason: str
) -> None:
    store.upsert("messages", messages(2))
    with pytest.raises(Refused, match=re.escape(reason)) as info:
        store.upsert("messages", [doc])
    assert info.value.reason == reason
    assert [d["id"] for d in read(store)] == ["m000", "m001"]


def test_valid_surrogate_pairs_nesting_to_the_limit_and_any_text_are_stored(
    store: LocalSource,
) -> None:
    docs = [
        {"id": "emoji 🤖", "conversationId": "c'; DROP TABLE documents; --", "t": "日本 ✓"},
        {"id": "deep", "nested": deep(MAX_DEPTH - 1)},
        {"id": "x" * 100_000, "content": 'quote " and \\ backslash'},
    ]
    assert store.upsert("messages", docs) == 3
    assert [{k: v for k, v in d.items() if k != "_ts"} for d in read(store)] == docs


def test_unknown_container_is_refused(store: LocalSource) -> None:
    with pytest.raises(SourceError, match="unknown container 'tools'"):
        store.upsert("tools", messages(1))


def test_unopenable_path_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(SourceError, match="AGENTDASH_LOCAL_PATH"):
        LocalSource(tmp_path / "dir.db")


# --- change tokens ---------------------------------------------------------------------------


def test_no_token_gives_the_current_token_and_no_documents(store: LocalSource) -> None:
    empty = store.changes(ALL, None)
    assert empty.documents == []
    store.upsert("messages", messages(5))
    current = store.changes(ALL, None)
    assert current.documents == []
    assert int(current.token) > int(empty.token)
    assert store.changes(ALL, current.token).documents == []


def test_changes_since_a_token_are_the_changed_documents_in_their_latest_version(
    store: LocalSource,
) -> None:
    store.upsert("messages", messages(5))
    token = store.changes(ALL, None).token
    store.upsert("messages", [{"id": "m001", "conversationId": "c1", "n": 100}])
    store.upsert("messages", messages(2, start=5))
    store.upsert("messages", [{"id": "m001", "conversationId": "c1", "n": 200}])
    store.upsert("agents", [{"id": "a1"}])  # another container: not a message change
    changes = store.changes(ALL, token)
    assert sorted((d["id"], d["n"]) for d in changes.documents) == [
        ("m001", 200),
        ("m005", 5),
        ("m006", 6),
    ]
    assert store.changes(ALL, changes.token).documents == []
    assert changes.token == store.changes(ALL, None).token


def test_changes_use_the_projection(store: LocalSource) -> None:
    token = store.changes(ALL, None).token
    store.upsert("messages", messages(2))
    changes = store.changes(Query.build("messages", projection=["id"]), token)
    assert changes.documents == [{"id": "m000"}, {"id": "m001"}]


def test_changes_ignore_the_window_and_filters(store: LocalSource) -> None:
    token = store.changes(ALL, None).token
    store.upsert("messages", messages(3))
    narrow = Query.build("messages", filters={"n": 1})
    assert len(store.changes(narrow, token).documents) == 3


def test_changes_read_in_pages(store: LocalSource) -> None:
    token = store.changes(ALL, None).token
    store.upsert("messages", messages(10))
    assert len(store.changes(ALL, token).documents) == 10


def test_a_token_from_elsewhere_is_refused(store: LocalSource) -> None:
    with pytest.raises(SourceError, match="does not belong to the local store"):
        store.changes(ALL, "cosmos-etag-17")


# --- several processes --------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from pipelines.sources.local import LocalSource

    store = LocalSource(sys.argv[1])
    for round_ in range(40):
        store.upsert(
            "messages",
            [{"id": f"w{i:03d}", "round": round_, "conversationId": "c"} for i in range(50)],
        )
    print("done", flush=True)
    """
)


def test_a_second_process_writes_while_this_one_reads(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    reader = LocalSource(path, page_size=7)
    token = reader.changes(ALL, None).token
    seen: dict[str, dict[str, Any]] = {}
    reads = 0
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        while writer.poll() is None or reads == 0:
            # Each round rewrites all 50 documents in one transaction: a read sees all or none
            # (a document rewritten while paging may come twice, the later version last).
            assert len({doc["id"] for doc in read(reader)}) in (0, 50)
            changes = reader.changes(ALL, token)
            for doc in changes.documents:
                seen[doc["id"]] = doc
            token = changes.token
            reads += 1
    finally:
        stdout, stderr = writer.communicate(timeout=60)
    assert writer.returncode == 0, stderr
    assert stdout.strip() == "done"
    for doc in reader.changes(ALL, token).documents:
        seen[doc["id"]] = doc
    final = read(reader)
    assert len(final) == 50
    assert {d["round"] for d in final} == {39}
    # The change feed read alongside the writer arrives at the same state as a full read.
    assert seen == {d["id"]: d for d in final}
    assert reads >= 1


# --- imports -----------------------------------------------------------------------------------


def skipped(result: Any) -> list[tuple[str, str | None]]:
    return [(entry.where, entry.problem) for entry in result.skipped]


def test_import_json_array(store: LocalSource, tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    docs = [*messages(3), {"conversationId": "c0"}, "text", {"id": ""}]
    path.write_text(json.dumps(docs, indent=2))
    result = import_file(store, path, "messages")
    assert result.written == 3
    assert [why for _, why in skipped(result)] == ["no 'id'", "not a JSON object", "no 'id'"]
    assert [d["id"] for d in read(store)] == ["m000", "m001", "m002"]


def test_import_json_lines(store: LocalSource, tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    lines = [json.dumps(d) for d in messages(3)]
    path.write_text("\n".join([lines[0], "", lines[1], "   ", lines[2], ""]))
    result = import_file(store, path, "messages")
    assert (result.written, result.skipped) == (3, [])
    assert len(read(store)) == 3


def test_import_replaces_documents_already_stored(store: LocalSource, tmp_path: Path) -> None:
    store.upsert("messages", messages(2))
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps({"id": "m001", "conversationId": "c1", "n": 7}) + "\n")
    assert import_file(store, path, "agents").written == 1
    assert import_file(store, path, "messages").written == 1
    assert {d["id"]: d["n"] for d in read(store)} == {"m000": 0, "m001": 7}


def test_import_file_with_a_byte_order_mark(store: LocalSource, tmp_path: Path) -> None:
    array, lines = tmp_path / "array.json", tmp_path / "lines.jsonl"
    array.write_text(json.dumps(messages(2)), encoding="utf-8-sig")
    lines.write_text("\n".join(json.dumps(d) for d in messages(2, start=2)), encoding="utf-8-sig")
    assert import_file(store, array, "messages").written == 2
    assert import_file(store, lines, "messages").written == 2
    assert len(read(store)) == 4


# Every kind of entry an import skips, with its reason; each sits among good documents.
BAD_ENTRIES = [
    ('{"id": "m1", oops}', "not JSON (Expecting property name enclosed in double quotes"),
    ('{"id": "nan", "latencyMs": NaN}', "NaN and Infinity are not JSON; use null"),
    ('{"id": "inf", "meta": {"score": -Infinity}}', "NaN and Infinity are not JSON; use null"),
    ('{"id": "deep", "x": ' + "[" * 1200 + "]" * 1200 + "}", "nested deeper than 128 levels"),
    ('{"id": "deep-ish", "x": ' + "[" * 200 + "]" * 200 + "}", "nested deeper than 128 levels"),
    ('{"id": "a\\ud800b"}', "holds text that is not Unicode (a lone surrogate)"),
    ('{"conversationId": "c1"}', "no 'id'"),
    ('"just text"', "not a JSON object"),
    ('{"id": "big", "n": ' + "9" * 5000 + "}", "not JSON (Exceeds the limit"),
]


def good_lines(n: int) -> list[str]:
    return [json.dumps(d) for d in messages(n)]


def test_an_import_skips_each_bad_line_with_its_number_and_imports_the_rest(
    store: LocalSource, tmp_path: Path
) -> None:
    good = good_lines(40)
    lines = [*good[:5], *(bad for bad, _ in BAD_ENTRIES), *good[5:]]
    path = tmp_path / "export.jsonl"
    path.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe not utf-8\n")

    result = import_file(store, path, "messages")

    assert result.written == 40
    assert len(read(store)) == 40
    reported = skipped(result)
    numbers = [f"line {6 + i}" for i in range(len(BAD_ENTRIES))] + [f"line {len(lines) + 1}"]
    assert [where for where, _ in reported] == numbers
    reasons = [reason for _, reason in BAD_ENTRIES] + ["not UTF-8 text"]
    for (_, why), reason in zip(reported, reasons, strict=True):
        assert why is not None and why.startswith(reason)


def test_an_array_import_skips_each_bad_item_with_its_index_and_imports_the_rest(
    store: LocalSource, tmp_path: Path
) -> None:
    good = good_lines(40)
    items = [*good[:5], *(bad for bad, _ in BAD_ENTRIES), *good[5:]]
    path = tmp_path / "export.json"
    path.write_text("[\n" + ",\n".join(items) + "\n]\n")

    result = import_file(store, path, "messages")

    assert result.written == 40
    reported = skipped(result)
    assert [where for where, _ in reported] == [
        f"index {5 + i} (line {7 + i})" for i in range(len(BAD_ENTRIES))
    ]
    for (_, why), (_, reason) in zip(reported, BAD_ENTRIES, strict=True):
        assert why is not None and why.startswith(reason)


def test_a_truncated_array_imports_what_precedes_the_cut(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text('[{"id": "m1"},\n {"id": "m2"')
    entries = list(read_documents(path))
    assert entries[0] == Entry("index 0 (line 1)", {"id": "m1"})
    assert entries[1].where == "index 1 (line 2)"
    assert entries[1].problem is not None and entries[1].problem.startswith("not JSON")
    assert len(entries) == 2


def test_an_array_followed_by_garbage_reports_where(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text('[{"id": "m1"}\n}{"id": "m2"}]')
    assert [(e.where, e.problem) for e in read_documents(path)] == [
        ("index 0 (line 1)", None),
        ("line 2", "not JSON (expected ',' or ']')"),
    ]


def test_an_empty_array_and_an_empty_file_hold_no_entries(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("  [ ]\n")
    (tmp_path / "empty.jsonl").write_text("")
    assert list(read_documents(tmp_path / "empty.json")) == []
    assert list(read_documents(tmp_path / "empty.jsonl")) == []


def test_an_array_that_is_not_utf8_is_refused_with_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(b'[{"id": "caf\xe9"}]')
    with pytest.raises(AgentdashError, match=r"export\.json is not UTF-8 text \(byte 12\)"):
        list(read_documents(path))


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AgentdashError, match=r"cannot read .*nothing\.json"):
        list(read_documents(tmp_path / "nothing.json"))


# --- a new store, and one written before ---------------------------------------------------


def test_a_store_is_new_until_anything_is_written_even_nothing(tmp_path: Path) -> None:
    store = LocalSource(tmp_path / "store.db")
    assert store.is_new()
    assert store.upsert("messages", []) == 0
    assert not store.is_new()
    assert store.is_empty("messages")
    assert not LocalSource(tmp_path / "store.db").is_new()  # another process sees it too


def test_an_import_of_only_bad_entries_still_marks_the_store_written(
    store: LocalSource, tmp_path: Path
) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(bad for bad, _ in BAD_ENTRIES))
    result = import_file(store, path, "messages")
    assert (result.written, len(result.skipped)) == (0, len(BAD_ENTRIES))
    assert not store.is_new()


# The table as the store wrote it before it kept each document's time.
OLD_SCHEMA = """
CREATE TABLE documents (
    container TEXT NOT NULL, id TEXT NOT NULL, pk TEXT, doc TEXT NOT NULL,
    _ts INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (container, id)
);
CREATE UNIQUE INDEX documents_seq ON documents (container, seq);
CREATE TABLE sequence (value INTEGER NOT NULL);
INSERT INTO sequence VALUES (0);
"""


def old_store(path: Path, docs: list[dict[str, Any]]) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    conn.executemany(
        "INSERT INTO documents VALUES ('messages', ?, ?, ?, 0, ?)",
        [(d["id"], d.get("conversationId"), json.dumps(d), i) for i, d in enumerate(docs, 1)],
    )
    conn.execute("UPDATE sequence SET value = ?", [len(docs)])
    conn.commit()
    conn.close()


def window(start: str, end: str | None = None, field: str = "timestamp") -> Query:
    return Query.build(
        "messages",
        time_field=field,
        start=datetime.fromisoformat(start),
        end=None if end is None else datetime.fromisoformat(end),
    )


TIMED = [
    {"id": "early", "conversationId": "c1", "timestamp": "2026-01-01T00:00:00Z"},
    {"id": "inside", "conversationId": "c1", "timestamp": "2026-01-02T12:00:00Z"},
    {"id": "inside-ms", "conversationId": "c2", "timestamp": 1767355200000},
    {"id": "late", "conversationId": "c2", "timestamp": "2026-01-04T00:00:00+00:00"},
    {"id": "unreadable", "conversationId": "c3", "timestamp": "not a date"},
    {"id": "absent", "conversationId": "c3"},
]


def test_a_store_written_before_the_time_column_opens_and_finds_windows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_store(path, TIMED)

    store = LocalSource(path)

    assert not store.is_new()
    found = read(store, window("2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"))
    assert sorted(d["id"] for d in found) == ["absent", "inside", "inside-ms", "unreadable"]
    store.upsert("messages", [{"id": "new", "timestamp": "2026-01-02T01:00:00Z"}])
    assert "new" in {d["id"] for d in read(store, window("2026-01-02T00:00:00+00:00"))}
    token = store.changes(ALL, None).token
    assert token == "7"  # the sequence goes on from where the old store left it


def test_an_empty_store_written_before_is_still_new(tmp_path: Path) -> None:
    old_store(tmp_path / "old.db", [])
    assert LocalSource(tmp_path / "old.db").is_new()


def test_a_window_on_another_time_field_recomputes_the_column_once_for_every_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    writer = LocalSource(path)  # knows only the default mapping: timestamp
    renamed = [
        {**{k: v for k, v in d.items() if k != "timestamp"}, "createdAt": d.get("timestamp")}
        for d in TIMED
    ]
    writer.upsert("messages", renamed)
    reader = LocalSource(path, time_fields={"messages": "createdAt"})
    day = ("2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00")

    assert sorted(d["id"] for d in read(reader, window(*day, field="createdAt"))) == [
        "absent",
        "inside",
        "inside-ms",
        "unreadable",
    ]
    # The writer keeps the column on the field the store recorded, not on its own default.
    writer.upsert("messages", [{"id": "new", "createdAt": "2026-01-02T06:00:00Z"}])
    assert "new" in {d["id"] for d in read(reader, window(*day, field="createdAt"))}
    # A mapping changed back: every document has "timestamp" missing, so all are unreadable.
    assert len(read(writer, window(*day))) == len(TIMED) + 1


def plan(store: LocalSource, query: Query, after: Cursor = -1) -> str:
    sql, params = compile_page(query, after=after, size=100)
    conn = sqlite3.connect(store.path)
    try:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    finally:
        conn.close()
    return "\n".join(row[-1] for row in rows)


def test_windows_and_conversations_are_found_through_indexes(store: LocalSource) -> None:
    store.upsert("messages", TIMED)
    day = window("2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00")
    conversation = Query.build("messages", filters={"conversationId": "c1"})
    agent = Query.build("agents", filters={"id": ["a1", "a2"]})

    # The documents whose time is NULL, then the window in time order, a page at a time.
    nulls, inside = plan(store, day), plan(store, day, after=window_start(day))
    assert "USING INDEX documents_time (container=? AND time_ns=? AND seq>?)" in nulls
    assert "USING INDEX documents_time (container=? AND (time_ns,seq)>(?,?) AND time_ns<?)" in (
        inside
    )
    assert "USING INDEX documents_pk (container=? AND pk=?" in plan(store, conversation)
    assert "USING INDEX documents_pk (container=? AND pk=?" in plan(store, agent)
    for query in (day, conversation, agent, ALL):
        assert "SCAN" not in plan(store, query)
    assert "SCAN" not in inside and "TEMP B-TREE" not in inside + nulls  # no sort of the window
    assert [d["id"] for d in read(store, conversation)] == ["early", "inside"]
