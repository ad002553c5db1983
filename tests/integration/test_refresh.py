"""Incremental refresh of the pipelines equals a full reload, with the memory cache and Redis."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from pipelines.cache import FrameCache, MemoryFrameCache, RedisFrameCache
from pipelines.errors import QueryError, SourceUnavailableError
from pipelines.live import FrameSpec, LiveFrames
from pipelines.pipeline import AgentsPipeline, MessagesPipeline
from pipelines.query import Query
from pipelines.reading import collector_paused
from pipelines.sources.base import ChangeSet, Document
from pipelines.sources.local import LocalSource

CacheFactory = Callable[[], FrameCache]
NOW = datetime.now(UTC)
T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)  # a custom window: [T0, T0 + 1h]
NEW_YORK = timezone(timedelta(hours=-5))
AGENTS = ["a0", "a1", "a2"]
STATUSES = ["ok", "ok", "failed", "timeout"]  # "failed" reads as "error"
ROLES = ["user", "assistant", "tool"]  # "assistant" reads as "agent"


def message(i: int, at: datetime | Any, prefix: str = "m", **fields: Any) -> dict[str, Any]:
    return {
        "id": f"{prefix}{i:03d}",
        "conversationId": f"conv-{i % 6}",
        "agentId": AGENTS[i % 3],
        "role": ROLES[i % 3],
        "timestamp": at.isoformat() if isinstance(at, datetime) else at,
        "latencyMs": 5.0 * i,
        "tokensIn": i,
        "status": STATUSES[i % 4],
        "userId": f"User-{i % 4}",
        "content": f"text {i}",
        **fields,
    }


def recent_messages() -> list[dict[str, Any]]:
    """m000-m023 in the last 24 h, m024-m029 in the 24 h before, o000-o004 days older."""
    docs = [message(i, NOW - timedelta(hours=i + 0.5)) for i in range(30)]
    docs += [message(i, NOW - timedelta(days=3.5 + i), prefix="o") for i in range(5)]
    return docs


def ids(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["id"])


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("id", ignore_index=True)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def new_cache(request: pytest.FixtureRequest) -> CacheFactory:
    """A cache per backend; with Redis they all share one server, as processes would."""
    if request.param == "memory":
        return MemoryFrameCache
    url = request.getfixturevalue("redis_url")
    return lambda: RedisFrameCache(url)


@pytest.fixture
def store(tmp_path: Path) -> LocalSource:
    source = LocalSource(tmp_path / "store.db")
    source.upsert("messages", recent_messages())
    return source


def full_load(store: LocalSource, **params: Any) -> MessagesPipeline:
    """A pipeline on a fresh backend and a fresh memory cache: everything read from the source."""
    return MessagesPipeline(
        frames=LiveFrames(LocalSource(store.path), MemoryFrameCache()), **params
    )


def assert_same_frames(pipeline: MessagesPipeline, reference: MessagesPipeline) -> None:
    assert_frame_equal(by_id(pipeline.frame), by_id(reference.frame))
    assert_frame_equal(by_id(pipeline.previous_frame), by_id(reference.previous_frame))


# --- incremental refresh equals a full reload --------------------------------------------------


def test_refresh_after_inserts_and_updates_equals_a_full_reload(
    store: LocalSource, new_cache: CacheFactory
) -> None:
    backend = LiveFrames(LocalSource(store.path), new_cache())
    pipeline = MessagesPipeline(frames=backend, window="24h")
    assert ids(pipeline.frame) == [f"m{i:03d}" for i in range(24)]
    assert ids(pipeline.previous_frame) == [f"m{i:03d}" for i in range(24, 30)]

    changes = [
        *(message(i, NOW - timedelta(minutes=10 + i), prefix="n") for i in range(5)),
        message(5, int((NOW - timedelta(minutes=3)).timestamp() * 1000), prefix="n"),  # epoch ms
        message(6, int((NOW - timedelta(hours=30)).timestamp()), prefix="n"),  # epoch s
        message(1, NOW - timedelta(hours=1.5), status="exception"),  # status ok -> error
        message(2, NOW - timedelta(days=5)),  # moved out of both periods
        message(3, NOW - timedelta(hours=30)),  # moved into the previous period
        message(0, NOW - timedelta(hours=1), prefix="o"),  # moved into the window
        message(1, NOW - timedelta(hours=36), prefix="o"),  # moved into the previous period
        message(4, NOW - timedelta(hours=4.5), role="wizard"),  # updated into an unreadable one
        message(2, NOW - timedelta(days=9), prefix="o"),  # still outside: no visible change
    ]
    store.upsert("messages", changes)
    before = backend.source.stats.snapshot()

    changed_rows = pipeline.refresh()

    assert_same_frames(pipeline, full_load(store, window="24h"))
    # Another backend on the same kind of cache: a hit on Redis, a full load from memory.
    assert_same_frames(pipeline, MessagesPipeline(frames=LiveFrames(store, new_cache())))
    window = set(pipeline.frame["id"])
    assert {"n000", "n004", "n005", "m001", "o000"} <= window
    assert not {"m002", "m003", "m004", "o001", "n006"} & window
    assert {"m003", "o001", "n006"} <= set(pipeline.previous_frame["id"])
    assert pipeline.frame.set_index("id").loc["m001", "status"] == "error"
    # Rows that changed in the two periods: 7 new messages, m001, m003, o000, o001.
    assert changed_rows == 11
    record = backend.refreshes[-1]
    assert (record.documents, record.rows_changed, record.error) == (len(changes), 11, None)
    after = backend.source.stats.snapshot()
    assert after["documents"] - before["documents"] == len(changes)
    assert after["requests"] - before["requests"] == record.requests == 1
    assert pipeline.version == 1 and not pipeline.stale
    assert backend.quarantine.reasons() == {"bad role": 1}


def test_refresh_with_nothing_new_changes_nothing(
    store: LocalSource, new_cache: CacheFactory
) -> None:
    backend = LiveFrames(LocalSource(store.path), new_cache())
    pipeline = MessagesPipeline(frames=backend)
    first = by_id(pipeline.frame)
    assert pipeline.refresh() == 0
    assert_frame_equal(by_id(pipeline.frame), first)
    assert backend.refreshes[-1].documents == 0


def test_repeated_refreshes_follow_repeated_updates(
    store: LocalSource, new_cache: CacheFactory
) -> None:
    pipeline = MessagesPipeline(frames=LiveFrames(LocalSource(store.path), new_cache()))
    assert len(pipeline.frame) == 24
    for round_ in range(5):
        store.upsert(
            "messages",
            [
                message(round_, NOW - timedelta(minutes=round_), prefix="r"),
                message(round_ + 10, NOW - timedelta(days=4)),  # leaves the window
                message(7, NOW - timedelta(hours=2), status=STATUSES[round_ % 4]),
            ],
        )
        pipeline.refresh()
        assert_same_frames(pipeline, full_load(store))
    assert len(pipeline.frame) == 24 + 5 - 5
    assert pipeline.version == 5


def test_custom_window_refresh_equals_a_full_reload(
    store: LocalSource, new_cache: CacheFactory
) -> None:
    end = T0 + timedelta(hours=1)
    ms = int(T0.timestamp() * 1000)
    store.upsert(
        "messages",
        [
            message(0, T0, prefix="w"),  # on the start
            message(1, end.isoformat().replace("+00:00", "Z"), prefix="w"),  # on the end
            message(2, ms + 1_800_000, prefix="w"),  # epoch ms, mid-window
            message(3, int(T0.timestamp()) + 600, prefix="w"),  # epoch s
            message(4, (T0 + timedelta(minutes=20)).astimezone(NEW_YORK).isoformat(), prefix="w"),
            message(5, ms + 3_600_001, prefix="w"),  # 1 ms after the end
            message(6, ms - 1, prefix="w"),  # 1 ms before the start: previous period
            message(7, T0 - timedelta(hours=1), prefix="w"),  # start of the previous period
            message(8, T0 - timedelta(hours=1, milliseconds=1), prefix="w"),  # before it
        ],
    )
    backend = LiveFrames(LocalSource(store.path), new_cache())
    pipeline = MessagesPipeline(frames=backend, start=T0, end=end)
    assert pipeline.window == "custom"
    assert pipeline.bounds == (T0, end)
    assert pipeline.previous_bounds == (T0 - timedelta(hours=1), T0)
    assert ids(pipeline.frame) == ["w000", "w001", "w002", "w003", "w004"]
    assert ids(pipeline.previous_frame) == ["w000", "w006", "w007"]  # both ends inclusive

    store.upsert(
        "messages",
        [
            message(0, T0 + timedelta(hours=2), prefix="w"),  # out
            message(5, end, prefix="w"),  # in, on the end
            message(8, T0 - timedelta(minutes=30), prefix="w"),  # into the previous period
            message(9, ms + 60_000, prefix="w"),  # new
            message(10, NOW, prefix="w"),  # new, outside
        ],
    )
    pipeline.refresh()
    assert ids(pipeline.frame) == ["w001", "w002", "w003", "w004", "w005", "w009"]
    assert ids(pipeline.previous_frame) == ["w006", "w007", "w008"]
    assert_same_frames(pipeline, full_load(store, start=T0, end=end))


def test_agents_refresh_equals_a_full_reload(tmp_path: Path, new_cache: CacheFactory) -> None:
    store = LocalSource(tmp_path / "store.db")
    store.upsert(
        "agents",
        [
            {"id": f"a{i}", "name": f"Agent {i}", "status": "active", "lastSeen": 1704067200 + i}
            for i in range(4)
        ],
    )
    pipeline = AgentsPipeline(frames=LiveFrames(LocalSource(store.path), new_cache()))
    assert ids(pipeline.frame) == ["a0", "a1", "a2", "a3"]
    store.upsert("agents", [{"id": "a1", "status": "retired"}, {"id": "a9", "status": "active"}])
    assert pipeline.refresh() == 2
    fresh = AgentsPipeline(frames=LiveFrames(LocalSource(store.path), MemoryFrameCache()))
    assert_frame_equal(by_id(pipeline.frame), by_id(fresh.frame))
    pipeline.statuses = ["active"]
    assert ids(pipeline.frame) == ["a0", "a2", "a3", "a9"]
    pipeline.agents = ["a1", "a2"]
    assert ids(pipeline.frame) == ["a2"]


# --- a failing source -----------------------------------------------------------------------


class FlakySource:
    """The local store, with a change feed that can be made to fail."""

    def __init__(self, inner: LocalSource) -> None:
        self.inner = inner
        self.identity = inner.identity
        self.stats = inner.stats
        self.failure: Exception | None = None

    def fetch(self, query: Query) -> Iterator[list[Document]]:
        return self.inner.fetch(query)

    def changes(self, query: Query, token: str | None) -> ChangeSet:
        if token is not None and self.failure is not None:
            raise self.failure
        return self.inner.changes(query, token)


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (SourceUnavailableError("Cosmos DB unreachable: retry later"), "Cosmos DB unreachable"),
        (RuntimeError("socket closed"), "RuntimeError: socket closed"),
    ],
)
def test_failing_source_keeps_the_last_frame_marked_stale(
    store: LocalSource,
    new_cache: CacheFactory,
    caplog: pytest.LogCaptureFixture,
    failure: Exception,
    reason: str,
) -> None:
    source = FlakySource(LocalSource(store.path))
    backend = LiveFrames(source, new_cache())
    pipeline = MessagesPipeline(frames=backend)
    last = by_id(pipeline.frame)
    store.upsert("messages", [message(50, NOW, prefix="n")])
    source.failure = failure

    with caplog.at_level(logging.WARNING, logger="pipelines.live"):
        assert pipeline.refresh() == 0

    assert pipeline.stale
    assert_frame_equal(by_id(pipeline.frame), last)
    assert reason in str(pipeline.live.error)
    assert reason in str(backend.refreshes[-1].error)
    assert backend.status().to_json()["frames"]["messages[24h]"]["stale"] is True
    assert any("serving the last frame" in r.getMessage() for r in caplog.records)

    source.failure = None
    assert pipeline.refresh() == 1
    assert not pipeline.stale
    assert "n050" in set(pipeline.frame["id"])
    assert_same_frames(pipeline, full_load(store))


# --- filters and periods -----------------------------------------------------------------------


def expected(docs: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> list[str]:
    return sorted(d["id"] for d in docs if keep(d))


def test_filters(store: LocalSource, new_cache: CacheFactory) -> None:
    docs = [d for d in recent_messages() if d["id"] < "m024"]  # the last 24 h
    pipeline = MessagesPipeline(frames=LiveFrames(LocalSource(store.path), new_cache()))
    assert ids(pipeline.frame) == expected(docs, lambda d: True)

    pipeline.agents = ["a1"]
    assert ids(pipeline.frame) == expected(docs, lambda d: d["agentId"] == "a1")
    pipeline.param.update(agents=[], statuses=["error"])
    assert ids(pipeline.frame) == expected(docs, lambda d: d["status"] == "failed")
    pipeline.param.update(statuses=["ok", "timeout"], roles=["agent"])
    assert ids(pipeline.frame) == expected(
        docs, lambda d: d["status"] != "failed" and d["role"] == "assistant"
    )
    pipeline.param.update(statuses=[], roles=[], search="user-3")  # any case
    assert ids(pipeline.frame) == expected(docs, lambda d: d["userId"] == "User-3")
    pipeline.search = "CONV-2"
    assert ids(pipeline.frame) == expected(docs, lambda d: d["conversationId"] == "conv-2")
    pipeline.param.update(search="", agents=["a0", "a2"], roles=["user", "tool"])
    assert ids(pipeline.frame) == expected(docs, lambda d: d["agentId"] in ("a0", "a2"))
    pipeline.agents = ["nobody"]
    assert len(pipeline.frame) == 0
    assert len(pipeline.previous_frame) == 0


def test_filters_apply_to_the_previous_period_and_to_refreshed_rows(
    store: LocalSource, new_cache: CacheFactory
) -> None:
    pipeline = MessagesPipeline(frames=LiveFrames(store, new_cache()), agents=["a0"])
    older = [d for d in recent_messages() if "m024" <= d["id"] < "m030"]
    assert ids(pipeline.previous_frame) == expected(older, lambda d: d["agentId"] == "a0")
    store.upsert(
        "messages",
        [message(3, NOW - timedelta(minutes=1), prefix="n"), message(4, NOW, prefix="n")],
    )
    pipeline.refresh()
    assert {"n003"} <= set(pipeline.frame["id"])  # agent a0
    assert "n004" not in set(pipeline.frame["id"])  # agent a1
    assert set(pipeline.frame["agent_id"]) == {"a0"}


def test_a_window_label_change_reads_its_own_frame(store: LocalSource) -> None:
    pipeline = MessagesPipeline(frames=LiveFrames(store, MemoryFrameCache()), window="1h")
    assert ids(pipeline.frame) == ["m000"]
    assert ids(pipeline.previous_frame) == ["m001"]
    pipeline.window = "7d"
    assert ids(pipeline.frame) == [
        *(f"m{i:03d}" for i in range(30)),
        "o000",
        "o001",
        "o002",
        "o003",
    ]
    start, end = pipeline.bounds
    assert end - start == timedelta(days=7)
    assert end == pipeline.as_of


def test_frames_hold_utc_whatever_the_display_time_zone(store: LocalSource) -> None:
    pipeline = MessagesPipeline(frames=LiveFrames(store, MemoryFrameCache()), tz="Asia/Kolkata")
    assert str(pipeline.frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert len(pipeline.frame) == 24


def test_dates_and_naive_datetimes_give_utc_bounds(store: LocalSource) -> None:
    backend = LiveFrames(store, MemoryFrameCache())
    by_date = MessagesPipeline(frames=backend, start=date(2024, 3, 1), end=date(2024, 3, 2))
    assert by_date.bounds == (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC))
    naive = MessagesPipeline(
        frames=backend, start=datetime(2024, 3, 1, 12), end=datetime(2024, 3, 1, 13)
    )
    assert naive.bounds == (T0, T0 + timedelta(hours=1))


# --- refused values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"tz": "Mars/Olympus_Mons"}, "time zone 'Mars/Olympus_Mons' is unknown"),
        ({"tz": ""}, "is unknown"),
        ({"start": T0 + timedelta(hours=1), "end": T0}, "is not before end"),
        ({"start": T0, "end": T0}, "is not before end"),
        ({"start": T0}, "needs both start and end"),
        ({"end": T0}, "needs both start and end"),
        ({"window": "custom"}, "needs both start and end"),
    ],
)
def test_bad_window_and_time_zone_are_refused(
    store: LocalSource, params: dict[str, Any], match: str
) -> None:
    with pytest.raises(QueryError, match=match):
        MessagesPipeline(frames=LiveFrames(store, MemoryFrameCache()), **params)


def test_bad_values_set_later_are_refused(store: LocalSource) -> None:
    pipeline = MessagesPipeline(frames=LiveFrames(store, MemoryFrameCache()))
    with pytest.raises(QueryError, match="is unknown"):
        pipeline.tz = "Europe/Atlantis"
    assert pipeline.tz == "UTC"
    pipeline.param.update(window="custom", start=T0 + timedelta(days=1), end=T0)
    with pytest.raises(QueryError, match="is not before end"):
        pipeline.frame  # noqa: B018


def test_unknown_window_label_is_refused(store: LocalSource) -> None:
    with pytest.raises(ValueError, match="2h"):
        MessagesPipeline(frames=LiveFrames(store, MemoryFrameCache()), window="2h")


def test_spec_of_a_pipeline(store: LocalSource) -> None:
    pipeline = MessagesPipeline(frames=LiveFrames(store, MemoryFrameCache()), window="7d")
    assert pipeline.spec().describe() == "messages[7d]"
    assert FrameSpec("agents").describe() == "agents"


def test_a_drill_down_window_is_cut_from_the_loaded_frame(store: LocalSource) -> None:
    backend = LiveFrames(LocalSource(store.path), MemoryFrameCache())
    day = MessagesPipeline(frames=backend, window="24h")
    assert len(day.frame) == 24
    read = backend.source.stats.snapshot()["requests"]
    end = day.as_of - timedelta(hours=2)
    start = end - timedelta(hours=3)
    drill = MessagesPipeline(frames=backend, start=start, end=end)

    assert_same_frames(drill, full_load(store, start=start, end=end))
    assert backend.source.stats.snapshot()["requests"] == read  # nothing read again

    store.upsert("messages", [message(90, end - timedelta(minutes=1), prefix="d")])
    drill.refresh()
    assert "d090" in set(drill.frame["id"])
    assert "d090" in set(day.frame["id"])


# --- the garbage collector during a cold read ---------------------------------------------------


class WatchedSource(FlakySource):
    """Notes whether the garbage collector ran while each batch was read."""

    def __init__(self, inner: LocalSource, fail_fetch: bool = False) -> None:
        super().__init__(inner)
        self.collector_on: list[bool] = []
        self.fail_fetch = fail_fetch

    def fetch(self, query: Query) -> Iterator[list[Document]]:
        for batch in self.inner.fetch(query):
            self.collector_on.append(gc.isenabled())
            if self.fail_fetch:
                raise SourceUnavailableError("connection dropped mid-read")
            yield batch


def test_a_cold_read_holds_the_collector_off_and_gives_it_back(store: LocalSource) -> None:
    source = WatchedSource(LocalSource(store.path))
    assert len(LiveFrames(source, MemoryFrameCache()).get(FrameSpec("messages")).frame) == 35
    assert source.collector_on == [False]
    assert gc.isenabled()

    failing = WatchedSource(LocalSource(store.path), fail_fetch=True)
    with pytest.raises(SourceUnavailableError, match="dropped mid-read"):
        LiveFrames(failing, MemoryFrameCache()).get(FrameSpec("messages"))
    assert failing.collector_on == [False]
    assert gc.isenabled()


def test_collector_pauses_nest_and_keep_a_disabled_collector_disabled() -> None:
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still runs
    assert gc.isenabled()

    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_refreshes_that_read_nothing_change_nothing(
    store: LocalSource, new_cache: CacheFactory
) -> None:
    from pipelines.pipeline import SLICES

    frames = LiveFrames(store, new_cache())
    pipeline = MessagesPipeline(frames=frames, window="30d")
    shown = pipeline.frame, pipeline.previous_frame
    version, writes = pipeline.version, frames.cache.stats.writes
    held = len(SLICES._entries)
    for _ in range(5):  # the window slides a little at each, its rows cross no cut
        assert pipeline.refresh() == 0
        assert pipeline.frame is not None and pipeline.previous_frame is not None  # read
    assert pipeline.version == version and pipeline.live.version == 0
    assert frames.cache.stats.writes == writes  # the frame is not written again
    assert len(SLICES._entries) <= held + 2  # one cut per period, not one per refresh
    assert len(pipeline.frame) == len(shown[0]) and len(pipeline.previous_frame) == len(shown[1])
    # A message written is merged at the next refresh, as ever.
    store.upsert("messages", [message(99, datetime.now(UTC) - timedelta(minutes=1))])
    assert pipeline.refresh() == 1
    assert pipeline.version == version + 1 and "m099" in set(pipeline.frame["id"])
