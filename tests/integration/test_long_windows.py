"""Long windows are answered from rollups kept beside the store, equal to the rows' numbers.

Over a real embedded store: a window of ``AGENTDASH_ROLLUP_FROM`` or longer answers from
the hourly rollups (counts and sums exactly those of its rows from the start of its first
hour, percentiles within the sketch's rank error), stays equal through inserts, updates and
late arrivals read from the change feed, and a process started later reads the stored
rollups and the changes since, never the history again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines import demo, metrics, rollup_store
from pipelines.answers import FrameAnswers
from pipelines.cache import MemoryFrameCache
from pipelines.errors import SourceUnavailableError
from pipelines.live import FrameSpec, LiveFrames
from pipelines.pipeline import MessagesPipeline
from pipelines.rollup_store import FileRollupStore
from pipelines.rollups import RANK_ERROR
from pipelines.schema import empty_frame
from pipelines.sources.local import LocalSource

AGENTS, MESSAGES = demo.generate(6, 6000, days=40, seed=11)
QUESTIONS: list[dict[str, Any]] = [
    {"window": "7d"},
    {"window": "30d"},
    {"window": "90d"},
    {"window": "30d", "statuses": ["error", "timeout"]},
    {"window": "30d", "roles": ["agent"], "tz": "Asia/Kolkata"},
    {"window": "7d", "agents": [AGENTS[0]["id"], AGENTS[1]["name"]]},
    {"window": "30d", "teams": [AGENTS[2]["team"]]},
    {
        "window": "custom",
        "start": datetime.now(UTC) - timedelta(days=20),
        "end": datetime.now(UTC) - timedelta(days=9, hours=5),
    },
]


@pytest.fixture
def store(tmp_path: Path) -> LocalSource:
    source = LocalSource(tmp_path / "store.db")
    source.upsert("agents", AGENTS)
    source.upsert("messages", MESSAGES)
    return source


def frames_over(store: LocalSource, folder: Path) -> LiveFrames:
    return LiveFrames(store, MemoryFrameCache(), rollup_store=FileRollupStore(folder))


def agents_of(frames: LiveFrames) -> pd.DataFrame:
    return frames.get(FrameSpec("agents")).frame


def raw(store: LocalSource, question: dict[str, Any], start: datetime, end: datetime) -> Any:
    """What the rows say of the window widened to whole hours (``[start's hour, the end of
    end's hour)``): the reference.  The hours of a zone off whole hours start off them too."""
    frames = LiveFrames(store, MemoryFrameCache(), rollup_from=timedelta(days=10**4))
    offset = pd.Timedelta(
        minutes=MessagesPipeline(frames=frames, tz=question.get("tz", "UTC")).rollup_offset()
    )
    first = (pd.Timestamp(start) - offset).floor("h") + offset
    last = (pd.Timestamp(end) - offset).floor("h") + offset + pd.Timedelta(hours=1)
    reference = MessagesPipeline(
        frames=frames,
        **{**question, "window": "custom", "start": first, "end": last - pd.Timedelta(1, "ns")},
    )
    assert not reference.rolled_up()
    return FrameAnswers(reference.frame)


def assert_same(rolled: Any, rows: Any, agents: pd.DataFrame) -> None:
    got, expected = rolled.kpis(), rows.kpis()
    for name in ("messages", "conversations", "active_agents", "tokens_in", "tokens_out"):
        assert getattr(got, name) == getattr(expected, name), name
    assert got.error_rate == pytest.approx(expected.error_rate, nan_ok=True)
    assert got.cost_usd == pytest.approx(expected.cost_usd)
    pd.testing.assert_frame_equal(
        rolled.per_agent(agents)[
            ["agent_id", "messages", "conversations", "tokens_in", "error_rate"]
        ],
        rows.per_agent(agents)[
            ["agent_id", "messages", "conversations", "tokens_in", "error_rate"]
        ],
    )
    pd.testing.assert_frame_equal(rolled.breakdown("model"), rows.breakdown("model"))
    pd.testing.assert_frame_equal(rolled.top_errors(10), rows.top_errors(10))
    assert rolled.last_message() == rows.last_message()
    # A percentile within the rank error: its rank among the rows' latencies.
    latencies = np.sort(rows.messages.loc[rows.messages["role"] == "agent", "latency_ms"].dropna())
    for p, value in ((50, got.latency_p50), (95, got.latency_p95), (99, got.latency_p99)):
        if len(latencies):
            rank = np.searchsorted(latencies, value, side="right") / len(latencies)
            assert abs(rank - p / 100) <= RANK_ERROR + 1 / len(latencies), (p, rank)


def slowest_of_rows(
    store: LocalSource, question: dict[str, Any], start: datetime, end: datetime
) -> pd.DataFrame:
    """The 10 slowest conversations of the question's rows from ``start`` to ``end``."""
    rows = LiveFrames(store, MemoryFrameCache(), rollup_from=timedelta(days=10**4))
    exact = MessagesPipeline(
        frames=rows, **{**question, "window": "custom", "start": start, "end": end}
    )
    return metrics.slowest_conversations(exact.frame, 10)


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: "-".join(map(str, q.values())))
def test_long_windows_answer_from_rollups_as_their_rows_do(
    store: LocalSource, tmp_path: Path, question: dict[str, Any]
) -> None:
    frames = frames_over(store, tmp_path / "rollups")
    asked = MessagesPipeline(frames=frames, **question)
    assert asked.rolled_up()
    start, end = asked.bounds
    assert_same(asked.answers(), raw(store, question, start, end), agents_of(frames))
    # The rows of a long window are never read for its numbers.
    assert [f.frame for f in frames.status().frames if f.frame.startswith("messages")] == []


@pytest.mark.parametrize("question", QUESTIONS[:3], ids=lambda q: "-".join(map(str, q.values())))
def test_rollups_built_in_many_parts_answer_as_the_rows_do(
    store: LocalSource,
    tmp_path: Path,
    question: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Five parts of the history (pages of 400, parts of 1,200 rows), merged in pairs, then
    # pairs of pairs, the odd one on its own: as a long history is built.
    monkeypatch.setattr(store, "page_size", 400)
    monkeypatch.setattr(rollup_store, "CHUNK_ROWS", 1000)
    frames = frames_over(store, tmp_path / "rollups")
    asked = MessagesPipeline(frames=frames, **question)
    start, end = asked.bounds
    assert_same(asked.answers(), raw(store, question, start, end), agents_of(frames))
    expected = slowest_of_rows(store, question, start, end)
    pd.testing.assert_frame_equal(asked.slowest_conversations(10), expected)


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: "-".join(map(str, q.values())))
def test_the_slowest_conversations_of_a_long_window_are_its_rows_without_holding_them(
    store: LocalSource, tmp_path: Path, question: dict[str, Any]
) -> None:
    frames = frames_over(store, tmp_path / "rollups")
    asked = MessagesPipeline(frames=frames, **question)
    assert asked.rolled_up()
    start, end = asked.bounds
    expected = slowest_of_rows(store, question, start, end)
    got = asked.slowest_conversations(10)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got, expected)
    assert [f.frame for f in frames.status().frames if f.frame.startswith("messages")] == []


@pytest.mark.parametrize(
    "question", [{"agents": ["nobody"]}, {"roles": ["user"]}, {"statuses": ["other"]}]
)
def test_a_long_window_with_no_slow_conversation_says_so_as_its_rows_do(
    store: LocalSource, tmp_path: Path, question: dict[str, Any]
) -> None:
    asked = MessagesPipeline(
        frames=frames_over(store, tmp_path / "rollups"), window="30d", **question
    )
    assert asked.rolled_up()
    expected = metrics.slowest_conversations(empty_frame("messages"), 10)
    pd.testing.assert_frame_equal(asked.slowest_conversations(10), expected)


def test_rollups_follow_inserts_updates_and_late_arrivals(
    store: LocalSource, tmp_path: Path
) -> None:
    frames = frames_over(store, tmp_path / "rollups")
    asked = MessagesPipeline(frames=frames, window="30d")
    asked.answers().kpis()
    before = asked.data_version()
    now = datetime.now(UTC)
    changed = [
        {**MESSAGES[0], "status": "error", "latencyMs": 99_000},  # an update
        {**MESSAGES[1], "timestamp": (now - timedelta(days=3)).isoformat()},  # moved hours
        *[
            {**MESSAGES[2], "id": f"late-{i}", "timestamp": (now - timedelta(days=12)).isoformat()}
            for i in range(5)
        ],  # late arrivals, in a conversation already rolled up
        *[{**MESSAGES[3], "id": f"new-{i}", "timestamp": now.isoformat()} for i in range(7)],
    ]
    store.upsert("messages", changed)
    frames.refresh_all()
    fresh = MessagesPipeline(frames=frames, window="30d")
    start, end = fresh.bounds
    assert_same(fresh.answers(), raw(store, {"window": "30d"}, start, end), agents_of(frames))
    assert asked.data_version() != before  # the views learn of it


def test_a_restart_reads_the_stored_rollups_and_only_the_changes_since(
    store: LocalSource, tmp_path: Path
) -> None:
    first = frames_over(store, tmp_path / "rollups")
    MessagesPipeline(frames=first, window="90d").answers().kpis()
    assert first.rollup_state().documents_built == len(MESSAGES)
    store.upsert(
        "messages", [{**MESSAGES[5], "id": "after", "timestamp": datetime.now(UTC).isoformat()}]
    )

    read_before = store.stats.snapshot()["documents"]
    restarted = frames_over(store, tmp_path / "rollups")
    asked = MessagesPipeline(frames=restarted, window="90d")
    answered = asked.answers().kpis()
    assert restarted.rollup_state().loaded
    # The one change since the stored token, not the history.
    assert store.stats.snapshot()["documents"] - read_before == 1
    start, end = asked.bounds
    assert answered.messages == raw(store, {"window": "90d"}, start, end).kpis().messages


def test_a_day_bin_in_a_zone_off_whole_hours_counts_its_own_messages(
    store: LocalSource, tmp_path: Path
) -> None:
    frames = frames_over(store, tmp_path / "rollups")
    asked = MessagesPipeline(frames=frames, window="30d", tz="Asia/Kolkata")
    assert asked.rollup_offset() == 30
    start, end = asked.bounds
    expected = raw(store, {"window": "30d", "tz": "Asia/Kolkata"}, start, end)
    pd.testing.assert_frame_equal(
        asked.answers().volume_series("1D", by="status", tz="Asia/Kolkata"),
        expected.volume_series("1D", by="status", tz="Asia/Kolkata"),
        check_freq=False,
    )
    assert metrics.choose_interval(pd.Timestamp(start), pd.Timestamp(end)) != "1min"


class Flaky:
    """The store, unreachable while ``down`` (a source that fails: no mock of the data)."""

    def __init__(self, store: LocalSource) -> None:
        self.store, self.down = store, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def changes(self, query: Any, token: str | None) -> Any:
        if self.down:
            raise SourceUnavailableError("cannot reach the store")
        return self.store.changes(query, token)


def test_a_long_window_says_when_its_rollups_cannot_be_refreshed(
    store: LocalSource, tmp_path: Path
) -> None:
    source = Flaky(store)
    frames = LiveFrames(
        source,  # type: ignore[arg-type]
        MemoryFrameCache(),
        rollup_store=FileRollupStore(tmp_path / "rollups"),
    )
    asked = MessagesPipeline(frames=frames, window="30d")
    shown = asked.answers().kpis()
    MessagesPipeline(frames=frames, window="24h").prefetch()  # a live frame the cycle reads
    source.down = True
    frames.refresh_all()
    assert asked.stale and "cannot reach the store" in (asked.error or "")
    assert asked.answers().kpis() == shown  # the last numbers stay
    source.down = False
    frames.refresh_all()
    assert not asked.stale and asked.error is None


def test_a_refresh_cycle_reads_each_change_once_for_every_window_and_the_rollups(
    store: LocalSource, tmp_path: Path
) -> None:
    frames = frames_over(store, tmp_path / "rollups")
    long = MessagesPipeline(frames=frames, window="30d")
    short = [MessagesPipeline(frames=frames, window=w) for w in ("15m", "1h", "24h")]
    counted = long.answers().kpis().messages
    for pipeline in short:
        pipeline.prefetch()
    frames.refresh_all()  # from here on, every reader of the feed is at the same token
    now = datetime.now(UTC)
    new = [
        {**MESSAGES[4], "id": f"cycle-{i}", "timestamp": (now - timedelta(minutes=i)).isoformat()}
        for i in range(40)
    ]
    store.upsert("messages", new)
    before = store.stats.snapshot()["documents"]
    frames.refresh_all()
    assert store.stats.snapshot()["documents"] - before == len(new)
    ids = {m["id"] for m in new}
    for window in ("1h", "24h"):  # each frame took them in, and so did the rollups
        frame = MessagesPipeline(frames=frames, window=window).frame
        assert ids <= set(frame["id"]), window
    assert MessagesPipeline(frames=frames, window="30d").answers().kpis().messages == (
        counted + len(new)
    )
