"""Signing in with a password, and a team's user seeing only their team, in a real Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline
from pipelines.cache import MemoryFrameCache
from pipelines.sources.local import LocalSource
from tests.ui.conftest import PageGuard, ServedApp, add_user, make_signed_in_app

pytestmark = pytest.mark.ui

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def team_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    app = make_signed_in_app(tmp_path_factory.mktemp("sign-in"), "basic", messages=3000, days=3)
    app.start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def store(team_app: ServedApp) -> LiveFrames:
    return LiveFrames(LocalSource(team_app.store), MemoryFrameCache())


@pytest.fixture(scope="module")
def team(team_app: ServedApp, store: LiveFrames) -> str:
    """A team with several agents, and a viewer of it: ada."""
    teams = AgentsPipeline(frames=store).frame["team"].value_counts()
    name = str(teams.index[0])
    add_user(team_app, "ada", "viewer", PASSWORD, teams=name)
    return name


@pytest.fixture
def ui(guarded_page: tuple[Page, PageGuard]) -> Page:
    page, _ = guarded_page
    page.set_viewport_size({"width": 1500, "height": 1200})
    return page


def sign_in(page: Page, app: ServedApp, password: str, query: str = "") -> None:
    page.goto(f"{app.url}/{query}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("User name").fill("ada")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_page_asks_for_a_password_and_opens_with_the_right_one(
    ui: Page, team_app: ServedApp, team: str
) -> None:
    sign_in(ui, team_app, "not the password")
    expect(ui.get_by_role("alert")).to_have_text("Invalid username or password!")
    expect(ui.locator(".bk-tab")).to_have_count(0)

    sign_in(ui, team_app, PASSWORD, "?window=7d")
    expect(ui.locator(".bk-tab.bk-active")).to_have_text("Overview")
    expect(ui.get_by_text(f"ada (viewer, {team})")).to_be_visible()
    assert "window=7d" in ui.url


def test_a_team_sees_only_its_agents_rows_downloads_and_threads(
    ui: Page, team_app: ServedApp, team: str, store: LiveFrames, tmp_path: Path
) -> None:
    everything = MessagesPipeline(frames=store, window="7d")
    ours = MessagesPipeline(frames=store, window="7d", teams=[team])
    agents = AgentsPipeline(frames=store, teams=[team]).frame
    names = set(agents["name"])
    # A conversation handed over between this team's agents and another team's.
    frame = everything.frame
    mixed = frame.groupby("conversation_id")["agent_id"].agg(
        lambda ids: 0 < ids.isin(agents["id"]).sum() < len(ids)
    )
    conversation = str(mixed.index[mixed][0])
    turns = ours.conversation(conversation)
    assert 0 < len(turns) < len(everything.conversation(conversation))

    sign_in(ui, team_app, PASSWORD, "?tab=agents&window=7d")
    expect(ui.locator(".tabulator-row")).to_have_count(len(agents))
    assert {c.strip() for c in ui.locator("[tabulator-field='name']").all_text_contents()} <= (
        names | {"agent"}  # the heading of the name column
    )

    ui.goto(f"{team_app.url}/?tab=messages&window=7d")
    expect(ui.get_by_text(f"{len(ours.frame):,} messages", exact=True)).to_be_visible()
    shown = ui.locator(".tabulator-row [tabulator-field='agent']").all_text_contents()
    assert shown and {name.strip() for name in shown} <= names
    with ui.expect_download() as download:
        ui.get_by_role("button", name="Download CSV", exact=True).click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    rows = pd.read_csv(path)
    assert len(rows) == len(ours.frame)
    assert set(rows["agent_id"]) <= set(agents["id"])

    ui.goto(f"{team_app.url}/?tab=messages&window=7d&search={conversation}")
    ui.locator(".tabulator-row").first.click()
    expect(ui.get_by_text(f"Conversation {conversation}")).to_be_visible()
    expect(ui.locator(".chat-turn")).to_have_count(len(turns))
