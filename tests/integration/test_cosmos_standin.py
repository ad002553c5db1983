"""The Cosmos DB stand-in speaks enough of the gateway protocol for the real SDK.

Every test drives the unmodified ``azure.cosmos.CosmosClient`` over HTTP.
"""

from __future__ import annotations

import base64
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

import pytest
from azure.core.paging import PageIterator
from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey
from azure.cosmos.exceptions import CosmosHttpResponseError

from tests.cosmos_standin import (
    CosmosStandin,
    Drop,
    Fault,
    RequestKind,
    Slow,
    Throttle,
    Unavailable,
)

DB = "agentdash"
MESSAGES: list[dict[str, Any]] = [
    {
        "id": f"m{i:02d}",
        "agent": f"agent-{i % 3}",
        "ts": 1_000 + i,
        "tokens": i % 7,
        "meta": {"model": "gpt-4o", "latency_ms": 10 * i},
    }
    for i in range(60)
]


@pytest.fixture(scope="module")
def standin() -> Iterator[CosmosStandin]:
    with CosmosStandin() as server:
        yield server


@pytest.fixture(scope="module")
def client(standin: CosmosStandin) -> CosmosClient:
    return CosmosClient(standin.url, standin.key)


@pytest.fixture
def container(standin: CosmosStandin, client: CosmosClient) -> Iterator[ContainerProxy]:
    """A fresh container holding MESSAGES, loaded without HTTP, with counters at zero."""
    name = f"messages-{uuid.uuid4().hex[:8]}"
    standin.create_container(DB, name, pk_path="/agent")
    standin.upsert(DB, name, MESSAGES)
    standin.reset_counters()
    yield client.get_database_client(DB).get_container_client(name)
    standin.clear_faults()
    standin.delete_container(DB, name)


def ids(items: Iterable[Mapping[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def read_changes(container: ContainerProxy, **kwargs: Any) -> tuple[list[dict[str, Any]], str]:
    """All changes, and the continuation to read the next ones from."""
    changes = list(container.query_items_change_feed(**kwargs))
    # After a full read the SDK leaves its own continuation (base64 JSON around the
    # server's etag) in the last response headers; the response hook sees the raw etag.
    return changes, container.client_connection.last_response_headers["etag"]


def test_sdk_creates_database_and_container_and_upserts(
    standin: CosmosStandin, client: CosmosClient
) -> None:
    name = f"db-{uuid.uuid4().hex[:8]}"
    database = client.create_database_if_not_exists(name)
    assert client.create_database_if_not_exists(name).id == database.id
    container = database.create_container_if_not_exists("messages", PartitionKey("/agent"))
    again = database.create_container_if_not_exists("messages", PartitionKey("/agent"))
    assert again.read()["partitionKey"] == {"paths": ["/agent"], "kind": "Hash", "version": 2}

    created = container.upsert_item({"id": "m1", "agent": "a", "text": "hello"})
    replaced = container.upsert_item({"id": "m1", "agent": "a", "text": "hello again"})
    read = container.read_item("m1", partition_key="a")

    assert read["text"] == "hello again"
    assert read["_rid"] == created["_rid"] == replaced["_rid"]
    assert read["_etag"] == replaced["_etag"] != created["_etag"]
    assert read["_self"].startswith("dbs/")
    assert abs(read["_ts"] - time.time()) < 60
    standin.delete_container(name, "messages")


def test_paged_parameterized_query_returns_every_row_once(
    standin: CosmosStandin, container: ContainerProxy
) -> None:
    charges: list[float] = []
    pages = container.query_items(
        "SELECT * FROM c WHERE c.ts >= @lo AND c.ts < @hi",
        parameters=[{"name": "@lo", "value": 1_005}, {"name": "@hi", "value": 1_050}],
        max_item_count=7,
        response_hook=lambda headers, _: charges.append(float(headers["x-ms-request-charge"])),
    ).by_page()
    sizes, found = [], []
    for page in pages:
        items = list(page)
        sizes.append(len(items))
        found += ids(items)

    assert sorted(found) == [f"m{i:02d}" for i in range(5, 50)]
    assert len(found) == len(set(found))
    assert sizes == [7] * 6 + [3]
    assert len(charges) == len(sizes) and all(charge > 1 for charge in charges)
    counters = standin.counters()
    assert counters.requests["query"] == len(sizes)
    assert counters.documents_returned == 45


def test_query_resumes_from_a_continuation_token(container: ContainerProxy) -> None:
    query = "SELECT c.id FROM c"
    first_pages = cast(PageIterator, container.query_items(query, max_item_count=25).by_page())
    first = ids(next(first_pages))
    token = first_pages.continuation_token

    rest_pages = container.query_items(query, max_item_count=25).by_page(token)
    rest = ids(item for page in rest_pages for item in page)

    assert sorted(first + rest) == ids(MESSAGES)


def test_projection_returns_only_projected_fields_and_fewer_bytes(
    standin: CosmosStandin, container: ContainerProxy
) -> None:
    where = " FROM c WHERE c.agent = @agent"
    parameters: list[dict[str, object]] = [{"name": "@agent", "value": "agent-1"}]

    whole = list(container.query_items("SELECT *" + where, parameters=parameters))
    whole_bytes = standin.counters().bytes_sent
    standin.reset_counters()
    projected = list(
        container.query_items(
            'SELECT c.id, c.meta.model, c["tokens"] AS t' + where, parameters=parameters
        )
    )

    assert len(projected) == len(whole) == 20
    assert {tuple(sorted(row)) for row in projected} == {("id", "model", "t")}
    assert projected[0] == {"id": "m01", "model": "gpt-4o", "t": 1}
    assert standin.counters().bytes_sent < whole_bytes / 3


SPARSE: list[dict[str, Any]] = [
    {"id": "full", "agent": "sparse", "n": 1, "meta": {"model": "gpt-4o"}},
    {"id": "null-n", "agent": "sparse", "n": None},
    {"id": "no-n", "agent": "sparse", "meta": {"model": "o3"}},
    {"id": "flat-meta", "agent": "sparse", "n": -2, "meta": "none"},
]


def sparse_rows(
    standin: CosmosStandin, container: ContainerProxy, elements: str, **parameters: Any
) -> dict[str, list[Any]]:
    """Each SPARSE document's ``SELECT VALUE [c.id, <elements>]`` row, by id."""
    standin.upsert(DB, container.id, SPARSE)
    rows = container.query_items(
        f"SELECT VALUE [c.id, {elements}] FROM c WHERE c.agent = 'sparse'",
        parameters=[{"name": name, "value": value} for name, value in parameters.items()],
        partition_key="sparse",
    )
    return {row[0]: row[1:] for row in rows}


def test_value_array_leaves_undefined_values_out(
    standin: CosmosStandin, container: ContainerProxy
) -> None:
    rows = sparse_rows(standin, container, 'c.n, c.meta.model, c["meta"]')

    # As in Cosmos DB: a missing property is no element at all, null is one.
    assert rows == {
        "full": [1, "gpt-4o", {"model": "gpt-4o"}],
        "null-n": [None],
        "no-n": ["o3", {"model": "o3"}],
        "flat-meta": [-2, "none"],
    }


def test_is_defined_ternaries_keep_every_value_at_its_position(
    standin: CosmosStandin, container: ContainerProxy
) -> None:
    rows = sparse_rows(
        standin,
        container,
        "IS_DEFINED(c.n) ? c.n : null, "
        'IS_DEFINED(c["meta"]["model"]) ? c["meta"]["model"] : @absent, '
        "NOT IS_DEFINED(c.meta) ? 'no meta' : (IS_DEFINED(c.n) AND c.n > 0) ? 'positive' : 'other'",
        **{"@absent": "absent"},
    )

    assert rows == {
        "full": [1, "gpt-4o", "positive"],
        "null-n": [None, "absent", "no meta"],
        "no-n": [None, "o3", "other"],
        "flat-meta": [-2, "absent", "other"],
    }


def test_in_and_order_by(container: ContainerProxy) -> None:
    rows = list(
        container.query_items(
            "SELECT c.id, c.agent, c.ts FROM c WHERE c.agent IN (@a, @b) ORDER BY c.ts DESC",
            parameters=[{"name": "@a", "value": "agent-0"}, {"name": "@b", "value": "agent-2"}],
            max_item_count=6,
        )
    )

    expected = [m for m in MESSAGES if m["agent"] in ("agent-0", "agent-2")]
    assert ids(rows) == ids(sorted(expected, key=lambda m: m["ts"], reverse=True))


def test_comparisons_follow_cosmos_type_rules(
    standin: CosmosStandin, container: ContainerProxy
) -> None:
    typed: list[dict[str, Any]] = [
        {"id": "number", "agent": "typed", "n": 5},
        {"id": "small", "agent": "typed", "n": 1},
        {"id": "string", "agent": "typed", "n": "5"},
        {"id": "null", "agent": "typed", "n": None},
        {"id": "flag", "agent": "typed", "n": True},
        {"id": "missing", "agent": "typed"},
    ]
    standin.upsert(DB, container.id, typed)

    def select(condition: str) -> set[str]:
        query = f"SELECT c.id FROM c WHERE c.agent = 'typed' AND ({condition})"
        return set(ids(container.query_items(query, partition_key="typed")))

    assert select("c.n = 5") == {"number"}
    assert select("c.n != 5") == {"small"}
    # NOT of an undefined comparison (other types, missing property) stays undefined.
    assert select("NOT (c.n > 3)") == {"small"}
    assert select("c.n = null") == {"null"}
    assert select("c.n = '5' OR c.n < 2") == {"string", "small"}
    assert select("NOT IS_DEFINED(c.n)") == {"missing"}
    assert select("c.n IN (5, '5', true)") == {"number", "string", "flag"}
    assert select("IS_NUMBER(c.n)") == {"number", "small"}
    assert select("IS_STRING(c.n)") == {"string"}
    assert select("NOT (IS_STRING(c.n) OR IS_NUMBER(c.n))") == {"null", "flag", "missing"}


def test_value_count(container: ContainerProxy) -> None:
    query = "SELECT VALUE COUNT(1) FROM c WHERE c.tokens >= @min"
    counted = container.query_items(query, parameters=[{"name": "@min", "value": 5}])

    assert list(counted) == [sum(1 for m in MESSAGES if m["tokens"] >= 5)]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT TOP 5 * FROM c",
        "SELECT * FROM c WHERE x.agent = 'a'",
        "SELECT * FROM c WHERE c.agent = @missing",
        "SELECT * FROM c WHERE STARTSWITH(c.agent, 'a')",
        "SELECT VALUE [c.id, c.agent ? 1 : 2] FROM c",
        "SELECT VALUE [c.id, IS_DEFINED(c.agent) ? c.agent] FROM c",
    ],
)
def test_queries_outside_the_subset_are_bad_requests(container: ContainerProxy, query: str) -> None:
    with pytest.raises(CosmosHttpResponseError) as raised:
        list(container.query_items(query))

    assert raised.value.status_code == 400


def test_change_feed_from_the_beginning_then_only_latest_changes(container: ContainerProxy) -> None:
    everything, continuation = read_changes(container, start_time="Beginning", max_item_count=25)
    assert ids(everything) == ids(MESSAGES)

    container.upsert_item({**MESSAGES[5], "tokens": 100})
    container.upsert_item({"id": "m60", "agent": "agent-0", "ts": 1_060})
    container.upsert_item({**MESSAGES[5], "tokens": 200})
    changes, continuation = read_changes(container, continuation=continuation)

    assert ids(changes) == ["m60", "m05"]
    assert changes[1]["tokens"] == 200
    assert read_changes(container, continuation=continuation)[0] == []


def test_change_feed_from_now(container: ContainerProxy) -> None:
    nothing, continuation = read_changes(container, start_time="Now")
    container.upsert_item({"id": "m60", "agent": "agent-0", "ts": 1_060})

    assert nothing == []
    assert ids(read_changes(container, continuation=continuation)[0]) == ["m60"]


def test_wrong_key_is_unauthorized(standin: CosmosStandin) -> None:
    wrong_key = base64.b64encode(b"not the key".ljust(64, b".")).decode()

    with pytest.raises(CosmosHttpResponseError) as raised:
        CosmosClient(standin.url, wrong_key)

    assert raised.value.status_code == 401


def test_missing_container_is_not_found(client: CosmosClient) -> None:
    missing = client.get_database_client(DB).get_container_client("no-such-container")

    with pytest.raises(CosmosHttpResponseError) as raised:
        list(missing.query_items("SELECT * FROM c"))

    assert raised.value.status_code == 404


def test_throttled_queries_are_retried_and_counted(
    standin: CosmosStandin, container: ContainerProxy
) -> None:
    standin.inject(Throttle(retry_after_ms=5), times=3, kind="query")

    rows = list(container.query_items("SELECT c.id FROM c", max_item_count=20))

    assert sorted(ids(rows)) == ids(MESSAGES)
    counters = standin.counters()
    assert counters.throttled == 3
    assert counters.requests["query"] == 3 + 3  # three pages, three refusals


READS: dict[RequestKind, Callable[[ContainerProxy], list[dict[str, Any]]]] = {
    "query": lambda c: list(c.query_items("SELECT * FROM c", max_item_count=20)),
    "changefeed": lambda c: list(c.query_items_change_feed(start_time="Beginning")),
}
FAULT_COUNTERS: dict[type, str] = {
    Throttle: "throttled",
    Unavailable: "unavailable",
    Drop: "dropped",
}


@pytest.mark.parametrize("kind", READS)
@pytest.mark.parametrize("fault", [Throttle(retry_after_ms=5), Unavailable(), Drop()], ids=repr)
def test_faulted_reads_are_retried_to_complete_data(
    standin: CosmosStandin, container: ContainerProxy, kind: RequestKind, fault: Fault
) -> None:
    standin.inject(fault, kind=kind)

    rows = READS[kind](container)

    assert sorted(ids(rows)) == ids(MESSAGES)
    assert getattr(standin.counters(), FAULT_COUNTERS[type(fault)]) == 1


def test_slow_answers_arrive_late_but_whole(
    standin: CosmosStandin, container: ContainerProxy
) -> None:
    standin.inject(Slow(seconds=0.3), kind="read", path_contains="/m07")
    started = time.monotonic()

    doc = container.read_item("m07", partition_key="agent-1")

    assert time.monotonic() - started >= 0.3
    assert doc["tokens"] == MESSAGES[7]["tokens"]


def test_stopped_server_refuses_connections_and_restarts_on_the_same_port(
    standin: CosmosStandin, container: ContainerProxy
) -> None:
    port = standin.port
    standin.stop()
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        standin.start()

    assert standin.port == port
    assert len(list(container.query_items("SELECT c.id FROM c"))) == len(MESSAGES)


def test_large_container_streams_projected_pages(
    standin: CosmosStandin, client: CosmosClient
) -> None:
    name = f"large-{uuid.uuid4().hex[:8]}"
    standin.create_container(DB, name, pk_path="/agent")
    docs = (
        {"id": f"m{i}", "agent": f"agent-{i % 50}", "ts": i, "text": "hello " * 40}
        for i in range(200_000)
    )
    assert standin.upsert(DB, name, docs) == 200_000
    standin.reset_counters()

    container = client.get_database_client(DB).get_container_client(name)
    pages = container.query_items(
        "SELECT c.id, c.ts FROM c WHERE c.ts >= @lo AND c.ts < @hi",
        parameters=[{"name": "@lo", "value": 10_000}, {"name": "@hi", "value": 190_000}],
        max_item_count=5_000,
    ).by_page()
    sizes = [len(list(page)) for page in pages]

    assert sizes == [5_000] * 36
    assert standin.counters().documents_returned == 180_000
    standin.delete_container(DB, name)
