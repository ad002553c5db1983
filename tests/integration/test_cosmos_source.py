"""CosmosSource: the real ``azure-cosmos`` SDK over HTTP.

Tests marked ``cosmos_live`` run against the gateway stand-in and, when
``AGENTDASH_COSMOS_ENDPOINT`` and ``AGENTDASH_COSMOS_KEY`` name a real account or the
official emulator, against it as well (in a throwaway database).  The others need the
stand-in's fault injection and counters.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from azure.cosmos import CosmosClient, DatabaseProxy, PartitionKey

from pipelines import AgentsPipeline, FrameSpec, LiveFrames, MessagesPipeline, demo
from pipelines.cache import MemoryFrameCache
from pipelines.errors import (
    ConfigError,
    SourceAuthError,
    SourceError,
    SourceNotFoundError,
    SourceUnavailableError,
)
from pipelines.query import Query
from pipelines.settings import Settings
from pipelines.sources.base import Document
from pipelines.sources.cosmos import Backoff, CosmosSource
from pipelines.sources.local import PARTITION_KEYS, LocalSource
from pipelines.windows import Window
from tests.conftest import free_port, wait_until
from tests.cosmos_standin import (
    CosmosStandin,
    Drop,
    Fault,
    Refuse,
    RequestKind,
    Throttle,
    Unavailable,
)

FAST = Backoff(attempts=3, base_seconds=0.01, max_seconds=0.05)
WEEK = FrameSpec("messages", Window.parse("7d"))
# Users name things differently: here the latency sits in a nested object.
FIELDS = {"messages": {"latency_ms": "metrics.latency"}}


class Target:
    """Where a test's documents live: the stand-in, or a real account."""

    def __init__(
        self, url: str, key: str, database: str, standin: CosmosStandin | None = None
    ) -> None:
        self.url, self.key, self.database, self.standin = url, key, database, standin
        self._client: CosmosClient | None = None
        self._db: DatabaseProxy | None = None
        if standin is None:
            self._client = CosmosClient(url, key)
            self._db = self._client.create_database(database)

    def create(self, container: str) -> str:
        """A new, empty container for the logical ``container``; returns its name."""
        name = f"{container}-{uuid.uuid4().hex[:8]}"
        pk_path = "/" + PARTITION_KEYS[container]
        if self._db is None:
            assert self.standin is not None
            self.standin.create_container(self.database, name, pk_path=pk_path)
        else:
            self._db.create_container(name, PartitionKey(pk_path))
        return name

    def upsert(self, name: str, docs: Iterable[Document]) -> None:
        if self._db is None:
            assert self.standin is not None
            self.standin.upsert(self.database, name, docs)
        else:
            container = self._db.get_container_client(name)
            for doc in docs:
                container.upsert_item(doc)

    def drop(self, name: str) -> None:
        if self._db is None:
            assert self.standin is not None
            self.standin.delete_container(self.database, name)
        else:
            self._db.delete_container(name)

    def close(self) -> None:
        if self._client is not None:
            self._client.delete_database(self.database)

    def source(self, containers: dict[str, str], **options: Any) -> CosmosSource:
        options.setdefault("backoff", FAST)
        return CosmosSource(self.url, self.database, self.key, containers=containers, **options)


@pytest.fixture(scope="module")
def standin() -> Iterator[CosmosStandin]:
    with CosmosStandin() as server:
        yield server


@pytest.fixture(scope="module", params=["standin", "account"])
def target(request: pytest.FixtureRequest, standin: CosmosStandin) -> Iterator[Target]:
    if request.param == "standin":
        yield Target(standin.url, standin.key, "agentdash", standin)
        return
    endpoint = os.environ.get("AGENTDASH_COSMOS_ENDPOINT")
    if not endpoint:
        pytest.skip("AGENTDASH_COSMOS_ENDPOINT is not set: no real account or emulator to test")
    key = os.environ.get("AGENTDASH_COSMOS_KEY")
    if not key:
        pytest.fail("AGENTDASH_COSMOS_ENDPOINT is set: set AGENTDASH_COSMOS_KEY too")
    account = Target(endpoint, key, f"agentdash-test-{uuid.uuid4().hex[:8]}")
    yield account
    account.close()


@pytest.fixture
def standin_target(standin: CosmosStandin) -> Iterator[Target]:
    standin.reset_counters()
    yield Target(standin.url, standin.key, "agentdash", standin)
    standin.clear_faults()


@pytest.fixture
def demo_docs() -> tuple[list[Document], list[Document]]:
    agents, messages = demo.generate(6, 600, days=2, seed=7)
    return agents, [nest_latency(m) for m in messages]


def nest_latency(message: Document) -> Document:
    doc = dict(message)
    if "latencyMs" in doc:
        doc["metrics"] = {"latency": doc.pop("latencyMs"), "model": "gpt-4o"}
    return doc


class Loaded:
    """Containers holding the demo documents, and sources reading them."""

    def __init__(self, target: Target, agents: list[Document], messages: list[Document]) -> None:
        self.target = target
        self.names = {"agents": target.create("agents"), "messages": target.create("messages")}
        target.upsert(self.names["agents"], agents)
        target.upsert(self.names["messages"], messages)
        self.agents, self.messages = agents, messages

    def source(self, **options: Any) -> CosmosSource:
        return self.target.source(self.names, **options)

    def backend(self, **options: Any) -> LiveFrames:
        return LiveFrames(self.source(**options), MemoryFrameCache(), fields=FIELDS)

    def drop(self) -> None:
        for name in self.names.values():
            self.target.drop(name)


@pytest.fixture
def loaded(target: Target, demo_docs: tuple[list[Document], list[Document]]) -> Iterator[Loaded]:
    data = Loaded(target, *demo_docs)
    if target.standin is not None:
        target.standin.reset_counters()
    yield data
    data.drop()


@pytest.fixture
def loaded_standin(
    standin_target: Target, demo_docs: tuple[list[Document], list[Document]]
) -> Iterator[Loaded]:
    data = Loaded(standin_target, *demo_docs)
    assert standin_target.standin is not None
    standin_target.standin.reset_counters()
    yield data
    data.drop()


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("id", ignore_index=True)


def fresh_frames(data: Loaded) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What a cold start reads now: the messages of the last 7 days, and the agents."""
    backend = data.backend()
    messages = MessagesPipeline(frames=backend, window="7d").frame
    return by_id(messages), by_id(AgentsPipeline(frames=backend).frame)


# -- queries ------------------------------------------------------------------------------


@pytest.mark.cosmos_live
def test_fetch_pages_through_continuations_in_batches(target: Target) -> None:
    name = target.create("messages")
    docs = [{"id": f"m{i:03d}", "conversationId": f"c{i % 9}"} for i in range(250)]
    target.upsert(name, docs)
    source = target.source({"messages": name}, page_size=40, batch_size=100)

    batches = list(source.fetch(Query.build("messages", projection=["id"])))

    assert [len(batch) for batch in batches] == [120, 120, 10]
    assert sorted(doc["id"] for batch in batches for doc in batch) == [d["id"] for d in docs]
    stats = source.stats.snapshot()
    assert stats["documents"] == 250
    assert stats["requests"] >= 7 and stats["request_charge"] > 0
    if target.standin is not None:
        assert target.standin.counters().requests["query"] == 7
    target.drop(name)


NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


# Every timestamp form a container may hold, a few minutes apart; none falls in the
# second of a window bound (ISO bounds are whole seconds: see cosmos_sql.iso_bounds).
WINDOW_DOCS: list[Document] = [
    {"id": "iso-ms", "ts": _at(1).isoformat(timespec="milliseconds").replace("+00:00", "Z")},
    {"id": "iso-s", "ts": _at(2).isoformat(timespec="seconds").replace("+00:00", "Z")},
    {"id": "iso-us-offset", "ts": _at(3.5).isoformat(timespec="microseconds")},
    {"id": "iso-at-start", "ts": "2026-03-01T12:00:00Z"},
    {"id": "epoch-s", "ts": int(_at(4).timestamp())},
    {"id": "epoch-s-float", "ts": _at(5.25).timestamp()},
    {"id": "epoch-ms", "ts": int(_at(6).timestamp() * 1000)},
    {"id": "epoch-ms-late", "ts": int(_at(90).timestamp() * 1000)},
    {"id": "iso-early", "ts": _at(-30).isoformat().replace("+00:00", "Z")},
    {"id": "epoch-s-early", "ts": int(_at(-30).timestamp())},
    # No time: every window returns them, for normalisation to quarantine.  (Text that is
    # no time is not among them: Cosmos compares it as text, see cosmos_sql._window.)
    {"id": "no-ts"},
    {"id": "null-ts", "ts": None},
    {"id": "bool-ts", "ts": True},
    {"id": "object-ts", "ts": {"$date": "2026-03-01T12:05:00Z"}},
    {"id": "array-ts", "ts": [1772366700]},
    {"id": "zero-ts", "ts": 0},
    {"id": "negative-ts", "ts": -1e20},
    {"id": "ms-before-2000", "ts": 500_000_000_000},
    {"id": "s-past-the-range", "ts": 50_000_000_000},
    {"id": "ms-past-the-range", "ts": 1e16},
]
for _i, _doc in enumerate(WINDOW_DOCS):
    _doc |= {
        "conversationId": f"c{_i % 3}",
        "agentId": ("a", "b", 7)[_i % 3],
        "flag": _i % 2 == 0,
        "metrics": {"latency": _i * 10.0},
        "value": _i,
    }

QUERIES = {
    "window": Query.build("messages", time_field="ts", start=_at(0), end=_at(10)),
    "from-start": Query.build("messages", time_field="ts", start=_at(2.5)),
    "until-end": Query.build("messages", time_field="ts", end=_at(5)),
    "filters": Query.build("messages", filters={"agentId": ["a", 7], "flag": True}),
    "projection": Query.build(
        "messages",
        time_field="ts",
        start=_at(0),
        filters={"conversationId": "c1"},
        projection=["id", "metrics.latency", "value", "agentId", "missing"],
    ),
    "empty-in": Query.build("messages", filters={"agentId": []}),
}


@pytest.mark.cosmos_live
@pytest.mark.parametrize("name", QUERIES)
def test_query_selects_what_the_local_store_selects(
    target: Target, tmp_path: Path, name: str
) -> None:
    container = target.create("messages")
    target.upsert(container, WINDOW_DOCS)
    local = LocalSource(tmp_path / "local.db")
    local.upsert("messages", WINDOW_DOCS)
    query = QUERIES[name]

    def rows(source: CosmosSource | LocalSource) -> list[Document]:
        docs = [doc for batch in source.fetch(query) for doc in batch]
        if query.projection is None:
            docs = [{"id": doc["id"]} for doc in docs]
        return sorted(docs, key=str)

    assert rows(target.source({"messages": container})) == rows(local)
    target.drop(container)


# A dotted path, an explicit null, and fields missing or under a non-object.
KEYED_DOCS: list[Document] = [
    {"id": "full", "conversationId": "c1", "role": "user", "metrics": {"latency": 12.5}},
    {"id": "null-role", "conversationId": "c1", "role": None, "metrics": {}},
    {"id": "bare", "conversationId": "c2", "metrics": "n/a"},
]
KEYED_PROJECTION = ("metrics.latency", "id", "role", "missing")


def test_a_conversation_read_over_several_pages_holds_its_messages_with_text(
    loaded_standin: Loaded,
) -> None:
    counts = pd.Series([m["conversationId"] for m in loaded_standin.messages]).value_counts()
    conversation = str(counts.index[0])  # the longest: it spans several pages and batches
    expected = sorted(
        (m for m in loaded_standin.messages if m["conversationId"] == conversation),
        key=lambda m: (m["timestamp"], m["id"]),
    )
    assert len(expected) > 3
    backend = LiveFrames(
        loaded_standin.source(page_size=2, batch_size=3), MemoryFrameCache(), fields=FIELDS
    )

    turns = backend.conversation(conversation)

    assert list(turns["id"]) == [m["id"] for m in expected]
    assert list(turns["content"]) == [m["content"] for m in expected]
    assert list(turns["latency_ms"].fillna(-1)) == [
        m.get("metrics", {}).get("latency", -1) or -1 for m in expected
    ]
    assert backend.conversation("no-such-conversation").empty


@pytest.mark.cosmos_live
def test_projected_documents_are_keyed_by_exactly_the_field_paths(target: Target) -> None:
    name = target.create("messages")
    source = target.source({"messages": name})
    query = Query.build("messages", projection=list(KEYED_PROJECTION))
    token = source.changes(query, None).token
    target.upsert(name, KEYED_DOCS)

    reads = {
        "query": [doc for batch in source.fetch(query) for doc in batch],
        "change feed": source.changes(query, token).documents,
        # The watermark reads by _ts, and keeps it for the next token.
        "watermark": source.changes(query, "ts:0").documents,
    }

    for read, docs in reads.items():
        fields = [*KEYED_PROJECTION, "_ts"] if read == "watermark" else list(KEYED_PROJECTION)
        assert [list(doc) for doc in docs] == [fields] * len(KEYED_DOCS), read
        values = {doc["id"]: [doc[path] for path in KEYED_PROJECTION] for doc in docs}
        assert values == {
            "full": [12.5, "full", "user", None],
            "null-role": [None, "null-role", None, None],
            "bare": [None, "bare", None, None],
        }, read
    target.drop(name)


def test_projection_transfers_a_fraction_of_the_bytes(loaded_standin: Loaded) -> None:
    standin = loaded_standin.target.standin
    assert standin is not None
    backend = loaded_standin.backend()
    source = loaded_standin.source()

    whole = sum(len(batch) for batch in source.fetch(Query.build("messages")))
    whole_bytes = standin.counters().bytes_sent
    standin.reset_counters()
    projection = backend.base_query(WEEK).projection
    projected = sum(
        len(batch) for batch in source.fetch(Query.build("messages", projection=projection))
    )

    assert projected == whole == len(loaded_standin.messages)
    # Rows travel as arrays of values: no property names, no system properties.
    assert standin.counters().bytes_sent < 0.4 * whole_bytes


# -- incremental refresh ------------------------------------------------------------------


def changes_to(data: Loaded) -> tuple[list[Document], list[Document], list[Document]]:
    """New messages, edited messages and an edited agent, as an application writes them."""
    new = [nest_latency(m) for m in demo.live_messages(data.agents, 30, seed=3)]
    edited = [m | {"status": "error", "metrics": {"latency": 99_999.0}} for m in data.messages[:10]]
    agent = [data.agents[0] | {"status": "retired"}]
    return new, edited, agent


@pytest.mark.cosmos_live
def test_refresh_reads_only_the_changes_and_equals_a_reload(loaded: Loaded) -> None:
    backend = loaded.backend(page_size=100)
    # The rows' refresh, counted alone: the rollups' own is tested in test_long_windows.
    backend.rollup_from = timedelta(days=10**4)
    messages = MessagesPipeline(frames=backend, window="7d")
    agents = AgentsPipeline(frames=backend)
    rows_before = len(messages.frame)
    assert rows_before == len(loaded.messages) and len(agents.frame) == len(loaded.agents)
    standin = loaded.target.standin
    new, edited, agent = changes_to(loaded)
    loaded.target.upsert(loaded.names["messages"], new + edited)
    loaded.target.upsert(loaded.names["agents"], agent)
    if standin is not None:
        standin.reset_counters()

    assert messages.refresh() == len(new) + len(edited)
    record = backend.refreshes[-1]
    assert (record.spec, record.documents) == ("messages[7d]", 40)
    assert agents.refresh() == 1
    if standin is not None:
        assert standin.counters().documents_returned == 41

    reload_messages, reload_agents = fresh_frames(loaded)
    pd.testing.assert_frame_equal(by_id(messages.frame), reload_messages)
    pd.testing.assert_frame_equal(by_id(agents.frame), reload_agents)
    assert len(messages.frame) == rows_before + len(new)
    assert (
        messages.frame.set_index("id").loc[[m["id"] for m in edited], "status"] == "error"
    ).all()
    assert not messages.stale


def test_watermark_fallback_where_the_change_feed_is_refused(loaded_standin: Loaded) -> None:
    standin = loaded_standin.target.standin
    assert standin is not None
    standin.inject(
        Refuse(400, "Change feed is not supported on this account."), 100, kind="changefeed"
    )
    backend = loaded_standin.backend()
    messages = MessagesPipeline(frames=backend, window="7d")
    token = messages.live.token
    assert token is not None and token.startswith("ts:")
    new, edited, _ = changes_to(loaded_standin)

    # _ts counts whole seconds and the watermark re-reads its own second (>=): write each
    # batch in a later second than the one before, to see exactly what a refresh reads.
    def next_second(after: int) -> None:
        wait_until(lambda: int(time.time()) > after, message="the clock to pass a second")

    next_second(int(token[3:]))
    loaded_standin.target.upsert(loaded_standin.names["messages"], new)
    messages.refresh()
    next_second(int(messages.live.token[3:]))  # type: ignore[index]
    loaded_standin.target.upsert(loaded_standin.names["messages"], edited)
    standin.reset_counters()

    assert messages.refresh() == len(new) + len(edited)
    assert backend.refreshes[-1].documents == len(new) + len(edited)
    assert standin.counters().requests.get("changefeed", 0) == 0
    pd.testing.assert_frame_equal(by_id(messages.frame), fresh_frames(loaded_standin)[0])


def test_a_token_from_elsewhere_is_refused(standin_target: Target) -> None:
    source = standin_target.source({})

    with pytest.raises(SourceError, match="does not belong to a Cosmos DB source"):
        source.changes(Query.build("messages"), "42")


# -- throttling, faults, outages ------------------------------------------------------------


def test_throttling_storm_keeps_data_complete_and_counts_every_429(loaded_standin: Loaded) -> None:
    standin = loaded_standin.target.standin
    assert standin is not None
    spec = WEEK
    calm = loaded_standin.backend(page_size=100)
    calm.get(spec)
    calm_cost, calm_served = calm.refreshes[-1], standin.counters().requests
    # The SDK gives up after 100 throttles in a row; the source retries on top of it.
    storm = 150
    standin.reset_counters()
    standin.inject(Throttle(retry_after_ms=1), storm, kind="query")
    stormy = loaded_standin.backend(page_size=100)

    frame = stormy.get(spec).frame

    served = standin.counters()
    pd.testing.assert_frame_equal(by_id(frame), by_id(calm.get(spec).frame))
    cost = stormy.refreshes[-1]
    assert cost.throttled == served.throttled == stormy.source.stats.throttled == storm
    assert cost.requests == sum(served.requests.values())
    assert served.requests["query"] == calm_served["query"] + storm
    # The stand-in charges 1 RU for an answer without documents, a 429 as any other.
    extra = cost.requests - calm_cost.requests
    assert cost.request_charge == pytest.approx(calm_cost.request_charge + extra, abs=0.01)


@pytest.mark.parametrize(
    ("kind", "fault", "times", "counter"),
    # One more than the SDK survives on its own: 503 x4, dropped connection x5, 429 x100.
    [
        ("query", Unavailable(), 4, "unavailable"),
        ("changefeed", Drop(), 5, "dropped"),
        ("query", Throttle(retry_after_ms=1), 101, "throttled"),
        ("changefeed", Throttle(retry_after_ms=1), 101, "throttled"),
    ],
    ids=["query-503", "changefeed-dropped", "query-429", "changefeed-429"],
)
def test_transient_faults_are_retried_to_complete_data(
    loaded_standin: Loaded, kind: RequestKind, fault: Fault, times: int, counter: str
) -> None:
    standin = loaded_standin.target.standin
    assert standin is not None
    source = loaded_standin.source(page_size=200, batch_size=200)
    messages = Query.build("messages", projection=["id"])
    everything = sorted(m["id"] for m in loaded_standin.messages)

    if kind == "query":
        batches = source.fetch(messages)
        first = next(batches)
        standin.inject(fault, times, kind=kind)  # the second page: resumed from its continuation
        ids = [doc["id"] for batch in [first, *batches] for doc in batch]
        assert sorted(ids) == everything
    else:
        token = source.changes(messages, None).token
        loaded_standin.target.upsert(loaded_standin.names["messages"], loaded_standin.messages[:5])
        standin.inject(fault, times, kind=kind)
        changed = source.changes(messages, token).documents
        assert sorted(d["id"] for d in changed) == sorted(
            m["id"] for m in loaded_standin.messages[:5]
        )
    assert getattr(standin.counters(), counter) == times


def test_faults_outlasting_the_retries_name_the_endpoint(loaded_standin: Loaded) -> None:
    standin = loaded_standin.target.standin
    assert standin is not None
    source = loaded_standin.source(backoff=Backoff(attempts=2, base_seconds=0.01))
    standin.inject(Throttle(retry_after_ms=1), 1000, kind="query")

    with pytest.raises(SourceUnavailableError, match=r"throttling.*\(429\) after 2 attempts"):
        list(source.fetch(Query.build("messages")))


def test_outage_serves_the_last_frame_as_stale_then_recovers(loaded_standin: Loaded) -> None:
    standin = loaded_standin.target.standin
    assert standin is not None
    backend = loaded_standin.backend(backoff=Backoff(attempts=2, base_seconds=0.01))
    messages = MessagesPipeline(frames=backend, window="7d")
    before = messages.frame
    new, _, _ = changes_to(loaded_standin)

    standin.stop()
    try:
        assert messages.refresh() == 0
        assert messages.stale
        pd.testing.assert_frame_equal(messages.frame, before)
        status = backend.status().to_json()["frames"][messages.spec().describe()]
        assert status["stale"] and "AGENTDASH_COSMOS_ENDPOINT" in status["error"]
    finally:
        standin.start()
    loaded_standin.target.upsert(loaded_standin.names["messages"], new)

    assert messages.refresh() == len(new)
    assert not messages.stale
    pd.testing.assert_frame_equal(by_id(messages.frame), fresh_frames(loaded_standin)[0])


# -- setup errors -------------------------------------------------------------------------


@pytest.mark.cosmos_live
def test_wrong_key_is_an_auth_error_naming_the_setting(target: Target) -> None:
    wrong = base64.b64encode(b"not the key".ljust(64, b".")).decode()
    source = CosmosSource(target.url, target.database, wrong, backoff=FAST)

    with pytest.raises(SourceAuthError) as raised:
        list(source.fetch(Query.build("messages")))

    assert str(raised.value) == "Cosmos DB rejected the key (401): check AGENTDASH_COSMOS_KEY"


@pytest.mark.cosmos_live
@pytest.mark.parametrize(
    ("database", "container", "setting"),
    [
        (None, "no-such-container", "AGENTDASH_COSMOS_MESSAGES_CONTAINER"),
        ("no-such-database", "messages", "AGENTDASH_COSMOS_DATABASE"),
    ],
)
def test_missing_database_or_container_names_the_setting(
    target: Target, database: str | None, container: str, setting: str
) -> None:
    source = CosmosSource(
        target.url,
        database or target.database,
        target.key,
        containers={"messages": container},
        backoff=FAST,
    )

    for read in (
        lambda: list(source.fetch(Query.build("messages"))),
        lambda: source.changes(Query.build("messages"), None),
    ):
        with pytest.raises(SourceNotFoundError, match=setting) as raised:
            read()
        assert repr(database or container) in str(raised.value)


def test_settings_need_an_endpoint_and_azure_ad_needs_https() -> None:
    with pytest.raises(ConfigError, match="AGENTDASH_COSMOS_ENDPOINT"):
        CosmosSource.from_settings(Settings())
    plain_http = Settings(cosmos_endpoint=f"http://127.0.0.1:{free_port()}/", cosmos_database="d")

    with pytest.raises(ConfigError, match="https"):
        CosmosSource.from_settings(plain_http)


def test_backend_from_settings_reads_the_containers_the_settings_name(
    loaded_standin: Loaded,
) -> None:
    target = loaded_standin.target
    settings = Settings(
        source="cosmos",
        cosmos_endpoint=target.url,
        cosmos_key=target.key,
        cosmos_database=target.database,
        cosmos_agents_container=loaded_standin.names["agents"],
        cosmos_messages_container=loaded_standin.names["messages"],
        fields=FIELDS,
    )

    backend = LiveFrames.from_settings(settings)

    assert len(MessagesPipeline(frames=backend, window="7d").frame) == len(loaded_standin.messages)
    assert backend.status().to_json()["source"] == backend.source.identity
    assert loaded_standin.names["messages"] in backend.source.identity
