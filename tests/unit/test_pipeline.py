"""The question declared once on the pipelines: version, selection, links, following."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
import param
import pytest

from app.views.filters import url_names
from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline, demo
from tests.conftest import stored_frames

AGENTS, MESSAGES = demo.generate(4, 800, 2, seed=3)


@pytest.fixture
def frames(tmp_path: Path) -> Iterator[LiveFrames]:
    with stored_frames(tmp_path, AGENTS, MESSAGES) as frames:
        yield frames


class Counted(pn.viewable.Viewer):
    """A custom view as the notebooks write one: one dependency, the pipeline's version."""

    messages = param.ClassSelector(class_=MessagesPipeline)

    shown = param.List(default=[], doc="Rows of each frame drawn.")

    @param.depends("messages.version", watch=True, on_init=True)
    def draw(self) -> None:
        self.shown = [*self.shown, len(self.messages.frame)]


def test_a_view_on_the_version_follows_a_search_and_a_live_insert(frames: LiveFrames) -> None:
    messages = MessagesPipeline(frames=frames, window="24h")
    view = Counted(messages=messages)
    everything = view.shown[-1]
    conversation = str(messages.frame["conversation_id"].iloc[0])

    messages.search = conversation.upper()
    assert view.shown[-1] == (messages.frame["conversation_id"] == conversation).sum() > 0
    messages.search = ""
    assert view.shown[-1] == everything

    new = {**demo.live_messages(AGENTS, 1, seed=9)[0], "id": "m-new"}
    frames.source.upsert("messages", [new])  # type: ignore[attr-defined]
    frames.refresh(messages.spec())
    messages.sync()  # what a served page does on the refresher's news
    assert view.shown[-1] == everything + 1


def test_pn_bind_on_the_version_follows_the_window_and_the_time_zone(frames: LiveFrames) -> None:
    messages = MessagesPipeline(frames=frames, window="24h")
    calls: list[tuple[str, str]] = []
    bound = pn.bind(lambda _: calls.append((messages.window, messages.tz)), messages.param.version)
    pn.panel(bound).get_root()
    messages.window = "1h"
    messages.tz = "Asia/Tokyo"
    assert calls[-2:] == [("1h", "UTC"), ("1h", "Asia/Tokyo")]


def test_the_version_stays_when_nothing_changed(frames: LiveFrames) -> None:
    messages = MessagesPipeline(frames=frames)
    messages.frame  # noqa: B018
    version = messages.version
    messages.refresh()
    assert messages.sync() == version


def test_each_filter_keeps_rows_by_its_column(frames: LiveFrames) -> None:
    everything = MessagesPipeline(frames=frames, window="7d").frame
    agent = str(everything["agent_id"].iloc[0])
    user = str(everything["user_id"].dropna().iloc[0])
    cases: dict[str, tuple[Any, pd.Series]] = {
        "agents": ([agent], everything["agent_id"] == agent),
        "statuses": (["error"], everything["status"] == "error"),
        "roles": (["user", "tool"], everything["role"].isin(["user", "tool"])),
        "models": (["gpt-4.1-mini"], everything["model"] == "gpt-4.1-mini"),
        "search": (
            user.upper(),
            everything["user_id"].str.contains(user, regex=False).fillna(False)
            | everything["conversation_id"].str.contains(user, regex=False),
        ),
    }
    assert set(cases) == set(MessagesPipeline.columns)
    for name, (value, expected) in cases.items():
        pipeline = MessagesPipeline(frames=frames, window="7d", **{name: value})
        assert sorted(pipeline.frame["id"]) == sorted(everything.loc[expected, "id"]), name
        assert pipeline.filters() == {name: value}


def test_the_same_question_in_another_order_or_zone_is_the_same(frames: LiveFrames) -> None:
    one = MessagesPipeline(frames=frames, statuses=["ok", "error"], tz="Europe/Paris")
    other = MessagesPipeline(frames=frames, statuses=["error", "ok"])
    assert one.question() == other.question()
    assert one.question() != MessagesPipeline(frames=frames, statuses=["ok"]).question()


def test_links_and_api_queries_name_the_question_parameters() -> None:
    assert url_names(MessagesPipeline()) == {
        "tz": "tz",
        "window": "window",
        "start": "start",
        "end": "end",
        "agents": "agent",
        "statuses": "status",
        "roles": "role",
        "models": "model",
        "search": "search",
    }
    assert MessagesPipeline.param.search.query == "q"
    assert MessagesPipeline.param.tz.query is None


def test_a_custom_window_without_bounds_keeps_the_window_shown(frames: LiveFrames) -> None:
    messages = MessagesPipeline(frames=frames, window="24h")
    shown = messages.bounds
    messages.window = "custom"
    assert (messages.start, messages.end) == shown and messages.bounds == shown
    messages.window = "7d"
    assert (messages.start, messages.end) == (None, None)


def test_a_follower_asks_what_its_parent_asks_but_for_what_is_fixed(frames: LiveFrames) -> None:
    messages = MessagesPipeline(frames=frames, window="24h")
    week = MessagesPipeline().follow(messages, window="7d")
    agents = AgentsPipeline().follow(messages)
    assert week.frames is frames and agents.frames is frames
    messages.param.update(agents=["a-1"], tz="Asia/Tokyo", statuses=["error"])
    assert (week.window, week.agents, week.tz, week.statuses) == (
        "7d",
        ["a-1"],
        "Asia/Tokyo",
        ["error"],
    )
    # The agents' statuses are not the messages': only parameters of the same kind follow.
    assert (agents.agents, agents.tz, agents.statuses) == (["a-1"], "Asia/Tokyo", [])


def test_a_custom_window_of_naive_times_is_read_as_utc(frames: LiveFrames) -> None:
    end = datetime.now(UTC).replace(tzinfo=None)
    messages = MessagesPipeline(frames=frames, start=end - timedelta(hours=3), end=end)
    assert messages.bounds == (
        (end - timedelta(hours=3)).replace(tzinfo=UTC),
        end.replace(tzinfo=UTC),
    )
