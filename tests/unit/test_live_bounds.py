"""The live frames one process keeps are bounded, whatever is asked of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.cache import MemoryFrameCache
from pipelines.live import FrameSpec, LiveFrames
from pipelines.pipeline import MessagesPipeline
from pipelines.sources.local import LocalSource
from pipelines.windows import Window
from tests.integration.test_cache import message

NOW = datetime.now(UTC)


@pytest.fixture
def store(tmp_path: Path) -> LocalSource:
    source = LocalSource(tmp_path / "store.db")
    source.upsert("messages", [message(i, NOW - timedelta(hours=3 * i)) for i in range(80)])
    return source


def held(frames: LiveFrames) -> list[str]:
    """The frames of rows held (the rollups are not rows)."""
    return [frame.frame for frame in frames.status().frames if frame.frame != "rollups"]


def test_past_max_frames_the_frame_read_least_recently_goes(store: LocalSource) -> None:
    frames = LiveFrames(store, MemoryFrameCache(), max_frames=3)
    for label in ("15m", "1h", "24h"):
        frames.get(FrameSpec("messages", Window.parse(label)))
    frames.get(FrameSpec("messages", Window.parse("15m")))  # read again: now the most recent
    frames.get(FrameSpec("messages", Window.parse("7d")))
    assert held(frames) == ["messages[15m]", "messages[24h]", "messages[7d]"]
    # A dropped frame is read again when asked for, and is right.
    hour = MessagesPipeline(frames=frames, window="1h")
    reference = MessagesPipeline(frames=LiveFrames(store, MemoryFrameCache()), window="1h")
    assert sorted(hour.frame["id"]) == sorted(reference.frame["id"])
    assert len(held(frames)) == 3
    assert len(frames.refresh_all()) == 3  # what is held is what is refreshed


def test_explicit_windows_read_once_are_right_and_not_kept(store: LocalSource) -> None:
    frames = LiveFrames(store, MemoryFrameCache())
    reference = LiveFrames(store, MemoryFrameCache())
    with frames.once():
        for days in range(2, 8):
            start, end = NOW - timedelta(days=days + 1), NOW - timedelta(days=days)
            asked = MessagesPipeline(frames=frames, start=start, end=end)
            expected = MessagesPipeline(frames=reference, start=start, end=end)
            assert sorted(asked.frame["id"]) == sorted(expected.frame["id"])
            assert len(asked.previous_frame) == len(expected.previous_frame)
    assert held(frames) == []
    # Outside such a block (a dashboard's page), the window it reads is followed live.
    frames.get(
        FrameSpec(
            "messages", Window.parse(start=NOW - timedelta(days=3), end=NOW - timedelta(days=2))
        )
    )
    assert len(held(frames)) == 1


def test_the_memory_budget_holds_under_windows_larger_than_it(tmp_path: Path) -> None:
    store = LocalSource(tmp_path / "hourly.db")
    store.upsert("messages", [message(i, NOW - timedelta(hours=i)) for i in range(60 * 24)])
    sizes = {
        label: LiveFrames(store, MemoryFrameCache()).get(FrameSpec("messages", Window.parse(label)))
        for label in ("24h", "7d", "30d")
    }
    budget = sizes["7d"].nbytes + sizes["24h"].nbytes  # less than the 30d frame alone
    assert sizes["30d"].nbytes > budget
    frames = LiveFrames(store, MemoryFrameCache(), memory_budget=budget)
    reference = LiveFrames(store, MemoryFrameCache())
    for label in ("24h", "7d", "30d", "24h", "7d", "24h", "30d", "7d"):
        asked = MessagesPipeline(frames=frames, window=label)
        expected = MessagesPipeline(frames=reference, window=label)
        # Each window is right, whether it was held or dropped and read again ...
        assert sorted(asked.frame["id"]) == sorted(expected.frame["id"])
        # ... and the frames held stay within the budget, or are the one window asked for.
        assert frames.held_bytes() <= budget or held(frames) == [f"messages[{label}]"]
    assert held(frames) == ["messages[7d]"]
    assert frames.status().frames[0].bytes == sizes["7d"].nbytes
