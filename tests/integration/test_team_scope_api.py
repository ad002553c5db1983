"""The REST API for a team's user never answers a row, count or conversation of another team.

Property test: for random teams and filters, each answer of the served API
(JWT sign-in) equals the metrics computed here on the frame cut to those
teams.  The store holds messages of the last 12 hours only, so the server's
24h and 7d windows and the ones computed here hold the same messages.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline
from pipelines.cache import MemoryFrameCache
from pipelines.schema import ROLES, STATUSES
from pipelines.sources.local import LocalSource
from tests.integration.test_sign_in import call
from tests.ui.conftest import ServedApp, jwt_token, make_signed_in_app

API = "/api/v1"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    served = make_signed_in_app(
        tmp_path_factory.mktemp("scoped-api"), "jwt", messages=3000, days=0.5
    )
    served.start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def frames(app: ServedApp) -> LiveFrames:
    return LiveFrames(LocalSource(app.store), MemoryFrameCache())


@pytest.fixture(scope="module")
def teams(frames: LiveFrames) -> list[str]:
    return sorted(set(AgentsPipeline(frames=frames).frame["team"].dropna()))


def ask(app: ServedApp, path: str, teams: list[str], **params: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {jwt_token(sub='scoped', teams=teams)}"}
    query = urllib.parse.urlencode(params, doseq=True)
    status, _, body = call(f"{app.url}{API}{path}?{query}", headers)
    return status, json.loads(body)


questions = st.fixed_dictionaries(
    {
        "window": st.sampled_from(["24h", "7d"]),
        "status": st.lists(st.sampled_from(STATUSES), max_size=2, unique=True),
        "role": st.lists(st.sampled_from(ROLES), max_size=2, unique=True),
    }
)


@settings(max_examples=20)
@given(picked=st.data(), question=questions)
def test_answers_equal_the_metrics_of_the_frame_cut_to_the_teams(
    app: ServedApp, frames: LiveFrames, teams: list[str], picked: Any, question: dict[str, Any]
) -> None:
    mine = picked.draw(st.lists(st.sampled_from(teams), min_size=1, max_size=2, unique=True))
    params = {k: v for k, v in question.items() if v}  # lists as repeated parameters
    local = MessagesPipeline(
        frames=frames,
        window=question["window"],
        statuses=question["status"],
        roles=question["role"],
        teams=mine,
    )
    ours = set(AgentsPipeline(frames=frames, teams=mine).frame["id"])

    status, summary = ask(app, "/metrics/summary", mine, **params)
    assert status == 200
    assert summary == json.loads(
        # The window's answers: its rows, or for a long window the hourly rollups.
        json.dumps({"window": question["window"], **local.answers().kpis().to_dict()})
    )

    status, page = ask(app, "/messages", mine, limit=1000, **params)
    assert status == 200
    assert len(page["items"]) == min(len(local.frame), 1000)
    assert {item["agent_id"] for item in page["items"]} <= ours

    status, agents = ask(app, "/agents", mine, **params)
    assert status == 200
    assert {row["agent_id"] for row in agents["items"]} == ours


def test_another_teams_conversation_is_not_found(
    app: ServedApp, frames: LiveFrames, teams: list[str]
) -> None:
    everything = MessagesPipeline(frames=frames, window="24h").frame
    team = teams[0]
    ours = set(AgentsPipeline(frames=frames, teams=[team]).frame["id"])
    touched = everything.groupby("conversation_id")["agent_id"].agg(
        lambda ids: bool(set(ids) & ours)
    )
    theirs, mine = str(touched.index[~touched][0]), str(touched.index[touched][0])

    status, body = ask(app, f"/conversations/{theirs}", [team])
    assert status == 404
    assert body["error"] == "not found"
    assert ask(app, f"/conversations/{theirs}", teams)[0] == 200  # it exists for its team
    status, body = ask(app, f"/conversations/{mine}", [team])
    assert status == 200
    assert {message["agent_id"] for message in body["messages"]} <= ours


def test_a_viewer_without_teams_reads_nothing_and_an_admin_everything(
    app: ServedApp, frames: LiveFrames
) -> None:
    assert ask(app, "/metrics/summary", [])[1]["messages"] == 0
    admin = jwt_token(sub="root", roles=["admin"])
    status, _, body = call(f"{app.url}{API}/metrics/summary", {"Authorization": f"Bearer {admin}"})
    assert status == 200
    assert json.loads(body)["messages"] == len(MessagesPipeline(frames=frames).frame) > 0
