"""merge(): changes upserted into a live frame, with small frames worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from pipelines.merge import merge
from pipelines.schema import FieldMapping, normalise
from pipelines.windows import Window

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
DAY = Window.parse("24h")


def rows(*messages: tuple[str, float]) -> pd.DataFrame:
    """Canonical rows of (id, hours before NOW)."""
    docs = [
        {
            "id": message_id,
            "conversationId": "c1",
            "agentId": "a1",
            "role": "agent",
            "timestamp": (NOW - timedelta(hours=hours)).isoformat(),
            "status": "ok",
        }
        for message_id, hours in messages
    ]
    return normalise(docs, FieldMapping.for_container("messages")).frame


def merged(frame: pd.DataFrame, changes: pd.DataFrame, **options: object) -> object:
    return merge(frame, changes, DAY, NOW, container="messages", time_column="timestamp", **options)


def test_new_rows_are_added_and_updates_replace_by_id() -> None:
    frame = rows(("m1", 1), ("m2", 2))
    result = merged(frame, rows(("m2", 0.5), ("m3", 0.1)))
    assert sorted(result.frame["id"]) == ["m1", "m2", "m3"]
    moved = result.frame.set_index("id").loc["m2", "timestamp"]
    assert moved == pd.Timestamp(NOW - timedelta(hours=0.5))
    assert sorted(result.changed["id"]) == ["m2", "m3"]
    assert result.upserted and not result.moved and not result.unchanged


def test_nothing_changed_gives_back_the_same_frame() -> None:
    frame = rows(("m1", 1), ("m2", 30))
    result = merged(frame, rows(), previous_as_of=NOW - timedelta(seconds=5))
    assert result.frame is frame and result.unchanged and len(result.changed) == 0


def test_rows_before_the_previous_period_leave_the_frame() -> None:
    frame = rows(("m1", 1), ("old", 49))  # the previous period starts 48 h before NOW
    result = merged(frame, rows())
    assert list(result.frame["id"]) == ["m1"] and result.moved and not result.upserted


def test_a_row_crossing_into_the_previous_period_is_a_move() -> None:
    frame = rows(("m1", 1), ("edge", 24.2))  # 12 min past the edge, inside it 15 min ago
    result = merged(frame, rows(), previous_as_of=NOW - timedelta(minutes=15))
    assert result.frame is frame and result.moved  # still held: the previous period shows it


def test_a_window_that_slid_a_little_with_nothing_read_is_left_as_it_is() -> None:
    # 10 minutes of 24 hours: under SETTLE, so no cut, no move, though rows crossed.
    frame = rows(("m1", 1), ("edge", 24.001), ("old", 48.1))
    result = merged(frame, rows(), previous_as_of=NOW - timedelta(minutes=10))
    assert result.frame is frame and result.unchanged
    # A change is merged (and the rows cut) whenever it comes.
    result = merged(frame, rows(("m2", 0.1)), previous_as_of=NOW - timedelta(minutes=10))
    assert sorted(result.frame["id"]) == ["edge", "m1", "m2"]


def test_changes_outside_the_periods_are_not_changed_rows() -> None:
    result = merged(rows(("m1", 1)), rows(("far", 72)))
    assert list(result.frame["id"]) == ["m1"] and len(result.changed) == 0


def test_an_update_that_cannot_be_read_removes_the_row() -> None:
    result = merged(rows(("m1", 1), ("m2", 2)), rows(), gone=["m2"])
    assert list(result.frame["id"]) == ["m1"] and result.upserted


def test_a_fixed_window_keeps_nothing_after_its_end() -> None:
    window = Window.parse(start=NOW - timedelta(hours=2), end=NOW - timedelta(hours=1))
    result = merge(
        rows(("in", 1.5)),
        rows(("after", 0.5), ("inside", 1.2)),
        window,
        NOW,
        container="messages",
        time_column="timestamp",
    )
    assert sorted(result.frame["id"]) == ["in", "inside"]
