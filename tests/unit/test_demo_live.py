"""Live demo data: new messages that go on at the rate of the history, as their time comes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from pipelines import demo

NOW = datetime(2026, 11, 25, 10, 15, tzinfo=UTC)  # a Wednesday morning
HISTORY_DAYS = 30
AGENTS, MESSAGES = demo.generate(12, 50_000, HISTORY_DAYS, seed=3, now=NOW)


def seconds(start: datetime, count: int, step: float = 1.0) -> list[datetime]:
    return [start + timedelta(seconds=i * step) for i in range(count)]


def stamps(docs: list[dict]) -> pd.Series:
    return pd.to_datetime(pd.Series([d["timestamp"] for d in docs]), format="ISO8601", utc=True)


def test_live_messages_go_on_at_the_rate_of_the_history() -> None:
    rate = demo.Rate.of_history(len(MESSAGES), NOW - timedelta(days=HISTORY_DAYS), NOW)
    # The same hour a week earlier: what the history holds at this time of the week.
    history = stamps(MESSAGES)
    week_before = NOW - timedelta(days=7)
    expected = int(history.between(week_before, week_before + timedelta(hours=1)).sum())

    batches = list(demo.live(AGENTS, rate, seconds(NOW, 3600), seed=1))

    live = [doc for batch in batches for doc in batch]
    assert expected / 2 <= len(live) <= expected * 2
    when = stamps(live)
    assert when.min() > NOW and when.max() <= NOW + timedelta(hours=1)
    assert when.is_monotonic_increasing
    ids = {doc["id"] for doc in live}
    assert len(ids) == len(live) and not ids & {doc["id"] for doc in MESSAGES}


def test_each_instant_gets_the_messages_of_its_past_only() -> None:
    instants = seconds(NOW, 120)
    batches = demo.live(AGENTS, demo.Rate(2.0), instants, seed=2)
    previous = NOW
    for instant, batch in zip(instants, batches, strict=True):
        if batch:
            when = stamps(batch)
            assert when.min() > previous and when.max() <= instant
        previous = instant


def test_a_slow_rate_still_gives_whole_conversations() -> None:
    rate = demo.Rate.of_history(len(MESSAGES), NOW - timedelta(days=HISTORY_DAYS), NOW)
    live = [
        m for batch in demo.live(AGENTS, rate, seconds(NOW, 4 * 3600, 10), seed=4) for m in batch
    ]
    roles = pd.Series([m["role"] for m in live]).value_counts(normalize=True)
    history_roles = pd.Series([m["role"] for m in MESSAGES]).value_counts(normalize=True)
    # Questions and their replies, not the first message of many conversations.
    assert abs(roles["agent"] - history_roles["agent"]) < 0.1
    assert abs(roles["user"] - history_roles["user"]) < 0.1


def test_an_explicit_rate_is_messages_a_second_and_late_instants_catch_up() -> None:
    every_second = demo.live(AGENTS, demo.Rate(0.5), seconds(NOW, 1201), seed=5)
    every_minute = demo.live(AGENTS, demo.Rate(0.5), seconds(NOW, 21, 60), seed=5)
    counts = [sum(map(len, batches)) for batches in (every_second, every_minute)]
    for count in counts:
        assert 600 / 2 <= count <= 600 * 2  # 0.5 a second for 20 minutes
    assert counts[0] == counts[1]  # the same draws, handed out at other instants


def test_the_rate_of_a_history_follows_the_load_curve() -> None:
    rate = demo.Rate.of_history(len(MESSAGES), NOW - timedelta(days=HISTORY_DAYS), NOW)
    mean = len(MESSAGES) / (HISTORY_DAYS * 86400)
    night, morning = NOW.replace(hour=3), NOW.replace(hour=11)
    assert rate.at(night) < mean < rate.at(morning)
    assert rate.at(NOW + timedelta(days=3)) < rate.at(NOW)  # Saturday
    assert demo.Rate(5).at(night) == demo.Rate(5).at(morning) == 5


def test_no_rate_without_a_history() -> None:
    with pytest.raises(ValueError, match="no rate to tell from 0 messages"):
        demo.Rate.of_history(0, NOW - timedelta(days=1), NOW)


def test_agents_that_are_not_the_demos_are_refused() -> None:
    stranger = {**AGENTS[1], "id": "a-1", "kind": "chatbot"}
    with pytest.raises(ValueError, match="'a-1' is of kind 'chatbot', not one of the demo's"):
        demo.live([AGENTS[0], stranger], demo.Rate(1), [NOW])
