"""Demo data: the documents a user loads, and the patterns the dashboard shows on them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from pipelines import demo

NOW = datetime(2026, 11, 25, 10, 15, 2, 123_000, tzinfo=UTC)
MESSAGE_FIELDS = {
    "id",
    "conversationId",
    "agentId",
    "role",
    "timestamp",
    "latencyMs",
    "tokensIn",
    "tokensOut",
    "status",
    "userId",
    "model",
    "tokensCachedIn",
    "content",
}
AGENT_FIELDS = ["id", "name", "kind", "status", "team", "createdAt", "lastSeen"]
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
Data = tuple[list[dict], list[dict]]  # (agent documents, message documents)


@pytest.fixture(scope="module")
def data() -> Data:
    return demo.generate(agents=12, messages=20_000, days=7.0, seed=3, now=NOW)


@pytest.fixture(scope="module")
def frame(data: Data) -> pd.DataFrame:
    messages = pd.DataFrame(data[1])
    messages["ts"] = pd.to_datetime(messages["timestamp"], format="ISO8601", utc=True)
    return messages


@pytest.fixture(scope="module")
def replies(frame: pd.DataFrame) -> pd.DataFrame:
    replies = frame[frame["role"] == "agent"]
    return replies.assign(failed=replies["status"] != "ok")


def test_exact_count_and_contract_field_names(data: Data) -> None:
    agents, messages = data
    assert len(agents) == 12
    assert len(messages) == 20_000
    assert all(list(doc) == AGENT_FIELDS for doc in agents)
    assert set().union(*messages) == MESSAGE_FIELDS
    required = MESSAGE_FIELDS - {"latencyMs", "tokensIn", "tokensOut", "model", "tokensCachedIn"}
    assert all(required <= doc.keys() for doc in messages)


def test_timestamps_are_iso_ms_utc_within_the_window(data: Data, frame: pd.DataFrame) -> None:
    agents, messages = data
    stamps = [m["timestamp"] for m in messages]
    stamps += [a[field] for a in agents for field in ("createdAt", "lastSeen")]
    assert all(ISO_MS.match(s) for s in stamps)
    assert frame["ts"].min() >= NOW - timedelta(days=7)
    assert frame["ts"].max() <= NOW
    assert frame["ts"].is_monotonic_increasing


def test_roles_statuses_and_measurements(frame: pd.DataFrame) -> None:
    assert set(frame["role"]) == {"user", "agent", "system", "tool"}
    assert set(frame["status"]) == {"ok", "error", "timeout"}
    assert set(frame.loc[frame["role"].isin(["user", "system"]), "status"]) == {"ok"}
    timed = frame["role"].isin(["agent", "tool"])
    assert frame.loc[timed, "latencyMs"].gt(0).all()
    assert frame.loc[~timed, "latencyMs"].isna().all()
    agent = frame[frame["role"] == "agent"]
    assert agent["tokensIn"].gt(0).all() and agent["tokensOut"].ge(0).all()
    user = frame[frame["role"] == "user"]
    assert user["tokensOut"].isna().all()
    assert 0 < user["tokensIn"].notna().mean() < 1  # some clients count user tokens, some don't
    assert frame.groupby("conversationId")["userId"].nunique().eq(1).all()
    assert frame["userId"].str.fullmatch(r"u-\d{4,}").all()


def test_ids_are_unique_and_deterministic_for_a_seed(
    data: Data,
) -> None:
    agents, messages = data
    assert len({m["id"] for m in messages}) == len(messages)
    assert {m["agentId"] for m in messages} <= {a["id"] for a in agents}
    assert demo.generate(messages=20_000, seed=3, now=NOW) == data
    assert demo.generate(messages=20_000, seed=4, now=NOW)[1][0] != messages[0]


def test_failed_replies_say_so_and_timeouts_take_long(replies: pd.DataFrame) -> None:
    timeouts = replies[replies["status"] == "timeout"]
    errors = replies[replies["status"] == "error"]
    assert timeouts["latencyMs"].min() >= 30_000
    assert timeouts["content"].str.startswith("Timeout").all()
    assert errors["content"].str.startswith("Error").all()
    assert (errors["tokensOut"] == 0).all()


def test_error_bursts_stand_out(replies: pd.DataFrame) -> None:
    overall = replies.groupby("agentId")["failed"].mean()
    hourly = replies.groupby(["agentId", replies["ts"].dt.floor("h")])["failed"].agg(
        ["size", "mean"]
    )
    busy = hourly[hourly["size"] >= 6]
    ratio = busy["mean"] / overall.reindex(busy.index.get_level_values("agentId")).to_numpy()
    assert busy["mean"].max() >= 0.4
    assert ratio.max() >= 5


def test_the_degraded_agent_is_failing_right_now(data: Data, replies: pd.DataFrame) -> None:
    agents, _ = data
    (degraded,) = [a["id"] for a in agents if a["status"] == "degraded"]
    mine = replies[replies["agentId"] == degraded]
    recent = mine[mine["ts"] >= NOW - timedelta(minutes=45)]
    assert len(recent) > 0
    assert recent["failed"].mean() > max(0.25, 5 * mine["failed"].mean())


def test_conversations_are_handed_off_between_agents(data: Data, replies: pd.DataFrame) -> None:
    agents, _ = data
    router = next(a["id"] for a in agents if a["kind"] == "router")
    answering = replies.groupby("conversationId")["agentId"]
    assert answering.nunique().ge(2).mean() > 0.5
    assert answering.nunique().ge(3).any()
    assert (answering.first() == router).mean() > 0.5


def test_traffic_follows_working_hours(frame: pd.DataFrame) -> None:
    by_hour = frame.groupby(frame["ts"].dt.hour).size()
    assert by_hour.max() > 5 * by_hour.min()
    weekend = frame["ts"].dt.day_of_week >= 5
    per_weekend_day, per_weekday = weekend.sum() / 2, (~weekend).sum() / 5  # a 7-day window
    assert per_weekend_day < 0.5 * per_weekday


def test_conversations_alternate_and_some_go_unanswered(frame: pd.DataFrame) -> None:
    conversations = frame.groupby("conversationId")
    assert (conversations["role"].first() == "user").all()
    assert conversations.size().between(1, 30).all()
    assert conversations.size().nunique() > 8
    unanswered = (conversations["role"].last() == "user").mean()
    assert 0.02 < unanswered < 0.2
    gaps = conversations["ts"].diff().dropna().dt.total_seconds()
    assert gaps.min() >= 0
    assert gaps.quantile(0.95) > 10 and gaps.max() < 3600


def test_agents_have_their_own_latency_profile(replies: pd.DataFrame) -> None:
    ok = replies[replies["status"] == "ok"]
    medians = ok.groupby("agentId")["latencyMs"].median()
    assert medians.max() > 5 * medians.min()
    # Rank correlation: slow replies are long ones.
    assert ok["latencyMs"].rank().corr(ok["tokensOut"].rank()) > 0.5


def test_agents_look_like_a_team(data: Data) -> None:
    agents, messages = data
    assert agents[0]["kind"] == "router"
    assert len({a["name"] for a in agents}) == len(agents)
    assert {a["status"] for a in agents} <= {"active", "idle", "degraded", "retired"}
    (retired,) = [a for a in agents if a["status"] == "retired"]
    assert retired["id"] not in {m["agentId"] for m in messages}
    assert all(a["createdAt"] < a["lastSeen"] for a in agents)


def test_live_messages_are_new_and_recent(data: Data) -> None:
    agents, messages = data
    later = NOW + timedelta(hours=1)
    live = demo.live_messages(agents, 50, now=later, seed=1)
    assert len(live) == 50
    assert set().union(*live) <= MESSAGE_FIELDS
    stamps = pd.to_datetime([m["timestamp"] for m in live], format="ISO8601", utc=True)
    assert stamps.min() >= later - timedelta(seconds=10) and stamps.max() <= later
    assert not {m["id"] for m in live} & {m["id"] for m in messages}
    serving = {a["id"] for a in agents if a["status"] != "retired"}
    assert {m["agentId"] for m in live} <= serving
    assert demo.live_messages(agents, 50, now=later, seed=1) == live


def test_touch_agents_moves_last_seen_forward(data: Data) -> None:
    agents, _ = data
    later = NOW + timedelta(minutes=5)
    touched = demo.touch_agents(agents, later)
    assert [a["id"] for a in touched] == [a["id"] for a in agents if a["status"] != "retired"]
    assert {a["lastSeen"] for a in touched} == {"2026-11-25T10:20:02.123Z"}
    assert "idle" not in {a["status"] for a in touched}


def test_no_messages_still_gives_agents() -> None:
    agents, messages = demo.generate(agents=3, messages=0, now=NOW)
    assert messages == [] and len(agents) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"agents": 1}, "router"), ({"messages": -1}, "zero or more"), ({"days": 0}, "longer")],
)
def test_rejects_impossible_requests(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        demo.generate(**kwargs)
