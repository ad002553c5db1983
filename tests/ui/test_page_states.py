"""Every state of the page in a real Chromium: empty selections, time axes, shared links.

The browser runs in Asia/Kolkata (UTC+05:30): a page opened without ``tz`` in
its link shows that zone.  Each test ends by checking that the server logged
no traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline
from pipelines.cache import MemoryFrameCache
from pipelines.sources.local import LocalSource
from tests.ui.conftest import PageGuard, ServedApp

pytestmark = pytest.mark.ui

BROWSER_ZONE = "Asia/Kolkata"
TABS = ("Overview", "Agents", "Messages", "Metrics", "Ops")
# What the charts drawn on the page say (on their canvas) when nothing matches.
EMPTY_CHARTS = """() => [...Bokeh.index.all_views()].flatMap((view) => {
  const model = view.model
  if (model.constructor.__name__ === "Label") return [model.text]
  if (model.glyph?.constructor.__name__ === "Text") return [...model.data_source.data.text]
  return []
}).filter((text) => /^No .* match(es)? these filters$/.test(text))"""
# Title, start and end (ms of wall time) of each figure with a time axis drawn on the page.
TIME_AXES = """() => [...Bokeh.index.all_views()].map((view) => view.model)
  .filter((m) => m.constructor.__name__ === "Figure")
  .filter((m) => m.below.some((axis) => axis.constructor.__name__ === "DatetimeAxis"))
  .map((m) => [m.title.text, m.x_range.start, m.x_range.end])"""


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_context_args,
        "timezone_id": BROWSER_ZONE,
        "viewport": {"width": 1500, "height": 1200},
    }


@pytest.fixture(scope="module")
def store(served_app: ServedApp) -> Iterator[LiveFrames]:
    yield LiveFrames(LocalSource(served_app.store), MemoryFrameCache())


def tracebacks(log: str) -> list[str]:
    """The tracebacks in a server log (a page closed while the server wrote to it too)."""
    records = re.split(r"\n(?=\d{4}-\d\d-\d\d )", log)  # each with its traceback
    return [block for block in records if "Traceback" in block]


@pytest.fixture
def ui(guarded_page: tuple[Page, PageGuard], served_app: ServedApp) -> Iterator[Page]:
    page, _ = guarded_page
    yield page
    assert tracebacks(served_app.log()) == [], "the server logged a traceback"


def open_dashboard(page: Page, app: ServedApp, query: str = "") -> None:
    page.goto(f"{app.url}/{query}")
    expect(page.locator(".bk-tab.bk-active")).to_be_visible()


def expect_link(page: Page, pattern: str) -> str:
    """Wait for the page's address to match ``pattern``; return it.

    (Read in the page: Playwright's ``page.url`` misses an address replaced in place.)
    """
    page.wait_for_function("pattern => new RegExp(pattern).test(location.href)", arg=pattern)
    return str(page.evaluate("location.href"))


def tab(page: Page, name: str) -> None:
    page.locator(".bk-tab", has_text=name).click()
    expect(page.locator(".bk-tab.bk-active")).to_have_text(name)


def expect_empty_charts(page: Page, count: int) -> None:
    """Wait for ``count`` charts of the tab shown to say that nothing matches."""
    page.wait_for_function(f"count => ({EMPTY_CHARTS})().length === count", arg=count)


def kpi(page: Page, title: str) -> Locator:
    return page.locator(f"div:text-is('{title}') + div[style*='20pt']")


EMPTY_SELECTIONS = {
    "an unknown agent": ("agent=nobody", lambda page: page.get_by_text("nobody (unknown)")),
    "a search": ("search=zzzz", lambda page: page.get_by_placeholder("contains…").first),
    "a status": (
        "status=other",
        lambda page: page.locator(".bk-btn.bk-active", has_text="other"),
    ),
    "a window with no data": (
        "window=custom&start=2020-01-01&end=2020-01-03",
        lambda page: page.get_by_role("textbox", name="From", exact=True),
    ),
    "a future window": (
        "window=custom&start=2099-01-01&end=2099-01-02",
        lambda page: page.get_by_role("textbox", name="To", exact=True),
    ),
}


@pytest.mark.parametrize("selection", list(EMPTY_SELECTIONS))
def test_every_tab_says_when_nothing_matches(
    ui: Page, served_app: ServedApp, selection: str
) -> None:
    query, shown = EMPTY_SELECTIONS[selection]
    open_dashboard(ui, served_app, f"?{query}")
    # The filters as the link gives them, and headline numbers without a rate to show.
    expect(shown(ui)).to_be_visible()
    expect(kpi(ui, "Messages")).to_have_text("0")
    expect(kpi(ui, "Error rate")).to_have_text("-")
    expect_empty_charts(ui, 4)  # volume, latency, busiest agents, cost
    tab(ui, "Agents")
    if selection == "an unknown agent":
        expect(ui.get_by_text("No agent matches these filters")).to_be_visible()
    tab(ui, "Messages")
    expect(ui.get_by_text("No message matches these filters")).to_be_visible()
    expect(ui.get_by_text(re.compile(r"^0 messages$"))).to_be_visible()
    expect(ui.get_by_role("button", name="New messages: show the latest")).to_be_hidden()
    tab(ui, "Metrics")
    # All but the week over week, which a window of its own may fill.
    expect_empty_charts(ui, 6 if "window" in selection else 7)
    tab(ui, "Ops")
    expect(ui.get_by_text("Data freshness")).to_be_visible()
    expect(shown(ui)).to_be_visible()


def wall_ms(moment: datetime, zone: str) -> float:
    """``moment`` as Bokeh's datetime axes hold it: ms since the epoch of its wall time."""
    return moment.astimezone(ZoneInfo(zone)).replace(tzinfo=UTC).timestamp() * 1000


def expect_spans(page: Page, titles: tuple[str, ...], length: timedelta, zone: str) -> None:
    """Wait until each time axis of a figure titled by one of ``titles`` (one figure each)
    spans ``length`` exactly and ends now, in the wall time of ``zone``."""
    check = f"""([titles, length, now]) => {{
      const axes = ({TIME_AXES})().filter(([title]) => titles.some((t) => title.startsWith(t)))
      return axes.length === titles.length &&
        axes.every(([, start, end]) => end - start === length && Math.abs(end - now) < 120000)
    }}"""
    now = wall_ms(datetime.now(UTC), zone)
    try:
        page.wait_for_function(check, arg=[list(titles), length.total_seconds() * 1000, now])
    except PlaywrightTimeout:
        raise AssertionError(
            f"time axes {page.evaluate(TIME_AXES)}, expected {length} ending at {now} ({zone})"
        ) from None


OVERVIEW = ("Messages per", "Agent reply latency per")
METRICS = ("Latency percentile bands", "This week against last week")


def test_time_axes_span_the_window_in_its_zone(
    ui: Page, served_app: ServedApp, store: LiveFrames
) -> None:
    open_dashboard(ui, served_app)
    zone = ui.get_by_label("Time zone")
    # The browser's (Chromium names Asia/Kolkata by its older name), the link naming none.
    browser = str(ui.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone"))
    assert ZoneInfo(browser).utcoffset(datetime.now()) == timedelta(hours=5, minutes=30)
    expect(zone).to_have_value(browser)
    expect_link(ui, f"tz={quote(browser, safe='')}")
    expect_spans(ui, OVERVIEW, timedelta(hours=24), BROWSER_ZONE)
    for window, length in (("7d", timedelta(days=7)), ("30d", timedelta(days=30))):
        ui.get_by_role("button", name=window, exact=True).click()
        expect_link(ui, f"window={window}")
        expect_spans(ui, OVERVIEW, length, BROWSER_ZONE)
    zone.fill("")
    zone.press_sequentially("New_York")
    ui.get_by_text("America/New_York", exact=True).click()  # the suggestion
    expect_link(ui, "tz=America%2FNew_York")
    expect_spans(ui, OVERVIEW, timedelta(days=30), "America/New_York")
    tab(ui, "Metrics")
    expect_spans(ui, METRICS[:1], timedelta(days=30), "America/New_York")
    expect_spans(ui, METRICS[1:], timedelta(days=7), "America/New_York")
    agent = AgentsPipeline(frames=store).frame.iloc[0]
    open_dashboard(ui, served_app, f"?tab=agents&window=7d&tz=UTC&agent_page={agent['id']}")
    expect_spans(ui, ("Messages per",), timedelta(days=7), "UTC")


def test_links_reopen_a_conversation_an_agent_page_and_a_stacking(
    ui: Page, served_app: ServedApp, store: LiveFrames
) -> None:
    week = MessagesPipeline(frames=store, window="7d").frame
    conversation = str(week["conversation_id"].iloc[-1])
    open_dashboard(ui, served_app, f"?tab=messages&window=7d&conversation={conversation}")
    expect(ui.get_by_text(f"Conversation {conversation}")).to_be_visible()
    turns = MessagesPipeline(frames=store).conversation(conversation)
    expect(ui.locator(".chat-turn")).to_have_count(len(turns))
    name = str(AgentsPipeline(frames=store).frame["name"].iloc[0])
    open_dashboard(ui, served_app, f"?tab=agents&window=7d&agent_page={quote(name)}&by=agent")
    expect(ui.get_by_role("heading", name=name)).to_be_visible()
    tab(ui, "Overview")
    expect(ui.locator(".bk-btn.bk-active", has_text="by agent")).to_be_visible()
    # Reset leaves no empty value in the link.
    ui.get_by_role("button", name="Reset filters").click()
    link = expect_link(ui, r"window=24h")
    assert not re.search(r"[?&][a-z_]+=(&|$)", link), link


def test_a_sorted_filtered_table_reopens_from_its_link(ui: Page, served_app: ServedApp) -> None:
    # A zone in the link: the browser's, arriving later, would draw the table again.
    open_dashboard(ui, served_app, "?tab=messages&window=30d&tz=UTC")
    count = ui.get_by_text(re.compile(r"^[\d,]+ messages$"))
    expect(count).to_be_visible()
    total = count.text_content()
    expect(ui.locator(".tabulator-row").first).to_be_visible()
    latency = ui.locator(".tabulator-col[tabulator-field='latency_ms'] .tabulator-col-title")
    # A click sorts one way, the next the other (which comes first is Tabulator's choice,
    # and a click while the table redraws its rows may be lost): click until descending.
    for _ in range(4):
        latency.click()
        try:
            ui.wait_for_function(
                "() => location.href.includes('sort=latency_ms%3Adesc')", timeout=5000
            )
            break
        except PlaywrightTimeout:
            continue
    expect_link(ui, "sort=latency_ms%3Adesc")
    status = ui.locator(".tabulator-col[tabulator-field='status'] .tabulator-header-filter input")
    status.click()
    ui.locator(".tabulator-edit-list-item", has_text="error").click()
    expect_link(ui, "filters=status%3Aerror")
    filtered = ui.get_by_text(re.compile(rf"^[\d,]+ of {re.escape(total.split()[0])} messages"))
    expect(filtered).to_be_visible()
    shown = filtered.text_content()
    link = str(ui.evaluate("location.href"))

    ui.goto("about:blank")
    ui.goto(link)
    expect(ui.get_by_text(shown, exact=True)).to_be_visible()
    statuses = ui.locator(".tabulator-row .tabulator-cell[tabulator-field='status']")
    expect(statuses.first).to_have_text("error")
    assert set(statuses.all_text_contents()) == {"error"}
    latencies = ui.locator(".tabulator-row .tabulator-cell[tabulator-field='latency_ms']")
    values = [float(v.replace(",", "")) for v in latencies.all_text_contents() if v != "-"]
    assert values == sorted(values, reverse=True) and values
