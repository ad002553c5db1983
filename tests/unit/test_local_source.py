"""The embedded store: pages, projection, change tokens, several processes, and imports."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import AgentdashError, SourceError
from pipelines.importer import import_file, read_documents
from pipelines.query import Query
from pipelines.schema import FieldMapping, normalise
from pipelines.sources.local import LocalSource

ALL = Query.build("messages")


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
    bad = {"id": "m1", "conversationId": "c1", "role": "user", "timestamp": True}
    store.upsert("messages", [bad])
    projection = mapping.projection(["id", "conversation_id", "role", "timestamp"])
    for query in (ALL, Query.build("messages", projection=projection)):
        result = normalise(read(store, query), mapping)
        assert len(result.frame) == 0
        assert [r.reason.split(":")[0] for r in result.quarantined] == ["bad timestamp"]


def test_filters_and_containers_are_kept_apart(store: LocalSource) -> None:
    store.upsert("messages", messages(6))
    store.upsert("agents", [{"id": "m000", "conversationId": "c0"}])
    query = Query.build("messages", filters={"conversationId": ["c1", "c2"]})
    assert sorted(d["id"] for d in read(store, query)) == ["m001", "m002", "m005"]
    assert store.count(query) == 3
    assert store.count(Query.build("agents")) == 1


# --- writes -----------------------------------------------------------------------------------


def test_upsert_replaces_by_id(store: LocalSource) -> None:
    assert store.upsert("messages", messages(3)) == 3
    assert store.upsert("messages", [{"id": "m001", "conversationId": "c9", "n": 99}]) == 1
    docs = {d["id"]: d for d in read(store)}
    assert len(docs) == 3
    assert (docs["m001"]["conversationId"], docs["m001"]["n"]) == ("c9", 99)


def test_upsert_in_several_batches(store: LocalSource) -> None:
    assert store.upsert("messages", messages(25), batch=10) == 25
    assert store.count(ALL) == 25


@pytest.mark.parametrize("doc", [{"conversationId": "c1"}, {"id": ""}, {"id": None}, "text"])
def test_a_document_without_an_id_is_refused(store: LocalSource, doc: Any) -> None:
    with pytest.raises(SourceError, match="a document needs an 'id'"):
        store.upsert("messages", [doc])


def test_unknown_container_is_refused(store: LocalSource) -> None:
    with pytest.raises(SourceError, match="unknown container 'tools'"):
        store.upsert("tools", messages(1))


def test_nan_is_refused_and_the_store_stays_readable(store: LocalSource) -> None:
    store.upsert("messages", messages(2))
    with pytest.raises(SourceError, match="NaN and Infinity are not JSON"):
        store.upsert("messages", [{"id": "bad", "latencyMs": float("nan")}])
    with pytest.raises(SourceError, match="NaN and Infinity are not JSON"):
        store.upsert("messages", [{"id": "bad", "meta": {"score": float("inf")}}])
    assert [d["id"] for d in read(store)] == ["m000", "m001"]


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


def test_import_json_array(store: LocalSource, tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    docs = [*messages(3), {"conversationId": "c0"}, "text", {"id": ""}]
    path.write_text(json.dumps(docs, indent=2))
    assert import_file(store, path, "messages") == (3, 3)
    assert [d["id"] for d in read(store)] == ["m000", "m001", "m002"]


def test_import_json_lines(store: LocalSource, tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    lines = [json.dumps(d) for d in messages(3)]
    path.write_text("\n".join([lines[0], "", lines[1], "   ", lines[2], ""]))
    assert import_file(store, path, "messages") == (3, 0)
    assert store.count(ALL) == 3


def test_import_replaces_documents_already_stored(store: LocalSource, tmp_path: Path) -> None:
    store.upsert("messages", messages(2))
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps({"id": "m001", "conversationId": "c1", "n": 7}) + "\n")
    assert import_file(store, path, "agents") == (1, 0)
    assert import_file(store, path, "messages") == (1, 0)
    assert {d["id"]: d["n"] for d in read(store)} == {"m000": 0, "m001": 7}


def test_import_file_with_a_byte_order_mark(store: LocalSource, tmp_path: Path) -> None:
    array, lines = tmp_path / "array.json", tmp_path / "lines.jsonl"
    array.write_text(json.dumps(messages(2)), encoding="utf-8-sig")
    lines.write_text("\n".join(json.dumps(d) for d in messages(2, start=2)), encoding="utf-8-sig")
    assert import_file(store, array, "messages") == (2, 0)
    assert import_file(store, lines, "messages") == (2, 0)
    assert store.count(ALL) == 4


def test_malformed_line_names_the_file_and_line(store: LocalSource, tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text('{"id": "m1"}\n\n{"id": "m2", oops}\n{"id": "m3"}\n')
    with pytest.raises(AgentdashError, match=r"export\.jsonl:3 is not a JSON document") as info:
        import_file(store, path, "messages")
    assert "give a JSON array or one JSON object per line" in str(info.value)


def test_malformed_array_is_refused_with_the_position(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text('[{"id": "m1"},\n {"id": "m2"')
    with pytest.raises(AgentdashError, match=r"export\.json is not valid JSON: .* line 2"):
        list(read_documents(path))


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AgentdashError, match=r"cannot read .*nothing\.json"):
        list(read_documents(tmp_path / "nothing.json"))
