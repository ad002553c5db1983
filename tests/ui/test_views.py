"""The served dashboard in a real Chromium: tabs, filters, links, drill-down and downloads.

Every page is a ``guarded_page``: a request beyond localhost or a console error
fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import Locator, Page, expect

from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline
from pipelines.cache import MemoryFrameCache
from pipelines.sources.local import LocalSource
from tests.ui.conftest import PageGuard, ServedApp

pytestmark = pytest.mark.ui

COUNT = re.compile(r"^[\d,]+ messages$")


@pytest.fixture(scope="module")
def store(served_app: ServedApp) -> Iterator[LiveFrames]:
    """The served app's store, read directly, to know what the page should show."""
    yield LiveFrames(LocalSource(served_app.store), MemoryFrameCache())


@pytest.fixture
def ui(guarded_page: tuple[Page, PageGuard]) -> Page:
    """A guarded page as wide as a desktop screen."""
    page, _ = guarded_page
    page.set_viewport_size({"width": 1500, "height": 1200})
    return page


def open_dashboard(page: Page, app: ServedApp, query: str = "") -> None:
    page.goto(f"{app.url}/{query}")
    expect(page.locator(".bk-tab.bk-active")).to_be_visible(timeout=30_000)


def text(locator: Locator) -> str:
    """What the element says, shown or not (a view being refreshed is hidden a moment)."""
    return (locator.text_content() or "").strip()


def number(shown: str) -> int:
    return int(re.sub(r"[^\d]", "", shown))


def changed_number(locator: Locator, old: str) -> int:
    """Wait for ``locator`` to show a number other than ``old``; return it."""
    other = re.compile(rf"^(?!{re.escape(old)}$)[\d,]+( messages)?$")
    expect(locator).to_have_text(other)
    return number(text(locator))


def kpi(page: Page, title: str) -> Locator:
    """The value of a KPI card (the 20 pt line under its title)."""
    return page.locator(f"div:text-is('{title}') + div[style*='20pt']")


def message_count(page: Page) -> Locator:
    return page.get_by_text(COUNT)


def button(page: Page, label: str) -> Locator:
    return page.get_by_role("button", name=label, exact=True)


def column(page: Page, field: str) -> list[str]:
    cells = page.locator(f".tabulator-row .tabulator-cell[tabulator-field='{field}']")
    return [cell.strip() for cell in cells.all_text_contents()]


MARKERS: dict[str, Any] = {
    "overview": lambda page: kpi(page, "Conversations"),
    "agents": lambda page: page.get_by_text("Select an agent to open its page."),
    "messages": lambda page: button(page, "Download CSV"),
    "metrics": lambda page: page.locator(".bk-Figure").nth(6),
    "alerts": lambda page: page.get_by_text("No alert rule is configured"),
    "ops": lambda page: page.get_by_text("Data freshness"),
}
FIGURES = {"overview": 4, "agents": 0, "messages": 0, "metrics": 7, "alerts": 0, "ops": 2}


@pytest.mark.parametrize("tab", list(MARKERS))
def test_every_tab_renders_offline_without_errors(
    ui: Page, served_app: ServedApp, tab: str
) -> None:
    open_dashboard(ui, served_app, f"?tab={tab}")
    expect(MARKERS[tab](ui)).to_be_visible(timeout=30_000)
    expect(ui.locator(".bk-tab.bk-active")).to_have_text(tab.capitalize())
    expect(ui.locator(".bk-Figure")).to_have_count(FIGURES[tab])
    if tab in ("agents", "messages", "ops"):
        expect(ui.locator(".tabulator-row").first).to_be_visible()


def test_the_first_page_loads_no_mathjax(ui: Page, served_app: ServedApp) -> None:
    # 1.7 MB of JavaScript that nothing on the Overview uses: a fifth of a second to load.
    scripts: list[str] = []
    ui.on("request", lambda request: scripts.append(request.url))
    open_dashboard(ui, served_app)
    expect(ui.locator(".bk-Figure")).to_have_count(FIGURES["overview"])
    assert any("bokeh.min.js" in url for url in scripts)
    assert not [url for url in scripts if "mathjax" in url.lower()]


def test_a_filter_change_updates_cards_table_and_url(ui: Page, served_app: ServedApp) -> None:
    open_dashboard(ui, served_app)
    messages = kpi(ui, "Messages")
    expect(messages).to_have_text(re.compile(r"\d"))
    day = text(messages)
    button(ui, "7d").click()
    assert changed_number(messages, day) > number(day)
    expect(ui).to_have_url(re.compile(r"window=7d"))

    ui.locator(".bk-tab", has_text="Messages").click()
    expect(message_count(ui)).to_be_visible()
    week = text(message_count(ui))
    button(ui, "error").click()
    assert 0 < changed_number(message_count(ui), week) < number(week)
    expect(ui.locator(".tabulator-row").first).to_be_visible()
    assert set(column(ui, "status")) == {"error"}
    expect(ui).to_have_url(re.compile(r"status=error"))


def test_a_link_opens_the_same_view(ui: Page, served_app: ServedApp, store: LiveFrames) -> None:
    agent = AgentsPipeline(frames=store).frame.iloc[0]
    open_dashboard(ui, served_app, f"?window=7d&agent={agent['id']}&tab=agents")
    expect(ui.locator(".bk-tab.bk-active")).to_have_text("Agents")
    expect(button(ui, "7d")).to_have_class(re.compile(r"bk-active"))
    expect(ui.locator(".tabulator-row")).to_have_count(1)
    expect(ui.locator(".tabulator-row").first).to_contain_text(agent["name"])


def test_bad_link_values_are_refused_with_a_message(ui: Page, served_app: ServedApp) -> None:
    open_dashboard(ui, served_app, "?window=2d&tz=Mars/Base&tab=settings")
    alert = ui.locator(".alert-warning", has_text="Ignored")
    expect(alert).to_contain_text("Ignored window=2d")
    expect(alert).to_contain_text("Mars/Base")
    expect(alert).to_contain_text("Ignored tab=settings")
    expect(button(ui, "24h")).to_have_class(re.compile(r"bk-active"))
    expect(ui.locator(".bk-tab.bk-active")).to_have_text("Overview")
    expect(kpi(ui, "Conversations")).to_be_visible()
    # The link is read again once the page has loaded: each reason is still shown once.
    expect(ui.get_by_text("Ignored window=2d")).to_have_count(1)
    button(ui, "Dismiss").click()
    expect(alert).to_be_hidden()


VOLUME_SERIES = (
    "() => [...Bokeh.index.all_views()]"
    ".filter(view => view.model.title?.text?.startsWith('Messages per'))"
    ".flatMap(view => view.model.renderers.map(renderer => renderer.name))"
)


def test_the_volume_chart_stacks_by_status_or_by_agent(
    ui: Page, served_app: ServedApp, store: LiveFrames
) -> None:
    open_dashboard(ui, served_app)
    expect(kpi(ui, "Conversations")).to_be_visible(timeout=30_000)
    statuses = set(MessagesPipeline(frames=store, window="24h").frame["status"])
    assert set(ui.evaluate(VOLUME_SERIES)) == statuses
    button(ui, "by agent").click()
    agents = AgentsPipeline(frames=store).frame
    names = set(agents["name"].fillna(agents["id"]))
    ui.wait_for_function(f"({VOLUME_SERIES})().length > {len(statuses)}")
    series = set(ui.evaluate(VOLUME_SERIES))
    assert series and series <= names, series - names
    button(ui, "by status").click()
    ui.wait_for_function(f"({VOLUME_SERIES})().length === {len(statuses)}")
    assert set(ui.evaluate(VOLUME_SERIES)) == statuses


def test_the_theme_button_switches_to_dark_and_back(ui: Page, served_app: ServedApp) -> None:
    def background() -> str:
        return str(ui.evaluate("getComputedStyle(document.body).backgroundColor"))

    open_dashboard(ui, served_app)
    light = background()
    button(ui, "☾ Dark theme").click()
    expect(button(ui, "☀ Light theme")).to_be_visible(timeout=30_000)
    assert "theme=dark" in ui.url
    dark = background()
    assert dark != light
    button(ui, "☀ Light theme").click()
    expect(button(ui, "☾ Dark theme")).to_be_visible(timeout=30_000)
    assert background() == light


def test_a_selected_message_opens_its_conversation(
    ui: Page, served_app: ServedApp, store: LiveFrames
) -> None:
    open_dashboard(ui, served_app, "?tab=messages&window=7d")
    first = ui.locator(".tabulator-row").first
    conversation = text(first.locator("[tabulator-field='conversation_id']"))
    first.click()
    expect(ui.get_by_text(f"Conversation {conversation}")).to_be_visible()
    turns = MessagesPipeline(frames=store).conversation(conversation)
    expect(ui.locator(".chat-turn")).to_have_count(len(turns))
    expect(ui.get_by_text(turns["content"].iloc[0]).first).to_be_visible()


def test_box_selecting_a_time_range_narrows_the_messages(ui: Page, served_app: ServedApp) -> None:
    open_dashboard(ui, served_app, "?window=7d")
    total = kpi(ui, "Messages")
    expect(total).to_have_text(re.compile(r"\d"))
    week = text(total)
    volume = ui.locator(".bk-Figure").first.bounding_box()
    assert volume is not None
    y = volume["y"] + volume["height"] * 0.6
    ui.mouse.move(volume["x"] + volume["width"] * 0.3, y)
    ui.mouse.down()
    ui.mouse.move(volume["x"] + volume["width"] * 0.6, y, steps=5)
    ui.mouse.up()
    expect(ui).to_have_url(re.compile(r"window=custom.*start=.*end="))
    assert changed_number(total, week) < number(week)


@pytest.mark.parametrize("kind", ["CSV", "Parquet"])
def test_downloads_hold_the_filtered_rows(
    ui: Page, served_app: ServedApp, tmp_path: Path, kind: str
) -> None:
    open_dashboard(ui, served_app, "?tab=messages&window=30d&status=error,timeout")
    expect(message_count(ui)).to_be_visible()
    shown = number(text(message_count(ui)))
    with ui.expect_download() as download:
        button(ui, f"Download {kind}").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    rows = pd.read_csv(path) if kind == "CSV" else pd.read_parquet(path)
    assert len(rows) == shown > 0
    assert set(rows["status"]) <= {"error", "timeout"}
