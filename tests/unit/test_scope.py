"""The team scope: part of the pipelines' question, cut in memory from the shared live frames."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from app import memo
from app.api.parameters import FILTERS
from app.views.filters import url_names
from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline, demo, metrics
from tests.conftest import stored_frames

AGENTS, MESSAGES = demo.generate(8, 2000, 2, seed=5)
TEAMS = sorted({agent["team"] for agent in AGENTS})


@pytest.fixture
def frames(tmp_path: Path) -> Iterator[LiveFrames]:
    with stored_frames(tmp_path, AGENTS, MESSAGES) as frames:
        yield frames


def agents_of(*teams: str) -> set[str]:
    return {agent["id"] for agent in AGENTS if agent["team"] in teams}


def test_a_scoped_pipeline_holds_only_its_teams_agents_and_their_messages(
    frames: LiveFrames,
) -> None:
    everything = MessagesPipeline(frames=frames, window="7d").frame
    team = TEAMS[0]
    messages = MessagesPipeline(frames=frames, window="7d", teams=[team])
    agents = AgentsPipeline().follow(messages)

    assert set(agents.frame["id"]) == agents_of(team)
    assert set(agents.frame["team"]) == {team}
    expected = everything.loc[everything["agent_id"].isin(agents_of(team))]
    assert len(messages.frame) == len(expected) > 0
    assert set(messages.frame["id"]) == set(expected["id"])
    assert metrics.kpis(messages.frame) == metrics.kpis(expected.reset_index(drop=True))


def test_no_scope_holds_everything_and_an_empty_scope_nothing(frames: LiveFrames) -> None:
    assert len(MessagesPipeline(frames=frames, window="7d").frame) == len(MESSAGES)
    nothing = MessagesPipeline(frames=frames, window="7d", teams=[])
    assert nothing.frame.empty
    assert AgentsPipeline(frames=frames, teams=[]).frame.empty
    assert AgentsPipeline(frames=frames, teams=["no such team"]).frame.empty


def test_filters_narrow_within_the_scope(frames: LiveFrames) -> None:
    team = TEAMS[0]
    outside = sorted(agents_of(*TEAMS[1:]))[0]
    scoped = MessagesPipeline(frames=frames, window="7d", teams=[team], agents=[outside])
    assert scoped.frame.empty  # a filter naming another team's agent widens nothing


def test_the_scope_is_part_of_the_question_and_of_memo_keys(frames: LiveFrames) -> None:
    alpha = MessagesPipeline(frames=frames, window="7d", teams=[TEAMS[0]])
    beta = MessagesPipeline(frames=frames, window="7d", teams=[TEAMS[1]])
    same = MessagesPipeline(frames=frames, window="7d", teams=[TEAMS[0]])
    assert alpha.question() != beta.question()
    assert alpha.question() == same.question()
    assert memo.memo(metrics.kpis, memo.current(alpha)) == metrics.kpis(alpha.frame)
    assert memo.memo(metrics.kpis, memo.current(beta)) == metrics.kpis(beta.frame)
    assert metrics.kpis(alpha.frame) != metrics.kpis(beta.frame)


def test_neither_a_link_nor_an_api_query_nor_a_widget_can_set_the_scope() -> None:
    messages = MessagesPipeline(teams=["alpha"])
    assert "teams" not in url_names(messages)
    assert "teams" not in {parameter.target for parameter in FILTERS}
    with pytest.raises(TypeError, match=r"(?i)constant"):
        messages.teams = None
    assert messages.param["teams"].precedence < 0  # pn.Param shows no widget for it


def test_followers_keep_the_scope(frames: LiveFrames) -> None:
    messages = MessagesPipeline(frames=frames, window="7d", teams=[TEAMS[0]])
    week = MessagesPipeline().follow(messages, window="24h")
    assert week.teams == [TEAMS[0]]
    assert set(week.frame["agent_id"]) <= agents_of(TEAMS[0])


def test_three_teams_cost_one_read_of_each_container(frames: LiveFrames) -> None:
    for team in TEAMS[:3]:
        pipeline = MessagesPipeline(frames=frames, window="24h", teams=[team])
        AgentsPipeline().follow(pipeline).frame  # noqa: B018
        pipeline.frame  # noqa: B018
    loads = [record.spec for record in frames.refreshes]
    assert sorted(loads) == ["agents", "messages[24h]"]


def test_an_agent_moving_team_moves_its_messages(frames: LiveFrames) -> None:
    team = TEAMS[0]
    messages = MessagesPipeline(frames=frames, window="7d", teams=[team])
    before, version = len(messages.frame), messages.version
    mover = next(agent for agent in AGENTS if agent["team"] != team)
    frames.source.upsert("agents", [{**mover, "team": team}])  # type: ignore[attr-defined]
    frames.refresh(AgentsPipeline().spec())
    assert messages.sync() > version  # the page learns that its frame changed
    gained = sum(message["agentId"] == mover["id"] for message in MESSAGES)
    assert len(messages.frame) == before + gained


def test_another_teams_conversation_has_no_message_in_scope(frames: LiveFrames) -> None:
    frame = pd.DataFrame(MESSAGES)
    ours = agents_of(TEAMS[0])
    touched = frame.groupby("conversationId")["agentId"].agg(lambda ids: bool(set(ids) & ours))
    theirs, shared = str(touched.index[~touched][0]), str(touched.index[touched][0])
    assert not MessagesPipeline(frames=frames).conversation(theirs).empty
    scoped = MessagesPipeline(frames=frames, teams=[TEAMS[0]])
    assert scoped.conversation(theirs).empty
    assert set(scoped.conversation(shared)["agent_id"]) <= ours
