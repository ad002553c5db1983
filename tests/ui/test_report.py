"""A report file in a real Chromium with no network: charts drawn and live, numbers right.

The browser context is offline and every request is recorded: a report that
still needs a CDN, a font or a server fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect

from app.cards import KPIS
from pipelines import metrics
from pipelines.cache import MemoryFrameCache
from pipelines.live import FrameSpec, LiveFrames
from pipelines.sources.local import LocalSource
from tests.ui.conftest import PageGuard, ServedApp, make_served_app

pytestmark = pytest.mark.ui

CHARTS = 4  # message volume, latency over time, latency distribution, cost
TABLES = 4  # agents, models, top errors, slowest conversations
# The Bokeh figures of the page, in page order (a JavaScript expression).
FIGURES = (
    '[...Bokeh.index.all_views()].filter(view => view.model.constructor.__name__ === "Figure")'
)
FIGURES_DRAWN = (
    "() => window.Bokeh !== undefined && " + FIGURES + ".filter(view => view.has_finished()).length"
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> ServedApp:
    """A demo store of 15 days (a week and the week before) and the command line on it."""
    return make_served_app(tmp_path_factory.mktemp("report"), messages=20_000, days=15)


@pytest.fixture(scope="module")
def report(demo: ServedApp) -> Path:
    out = demo.workdir / "report.html"
    demo.command("report", "--window", "7d", "--out", str(out))
    return out


@pytest.fixture
def offline_page(browser: Browser, report: Path) -> Iterator[tuple[Page, PageGuard]]:
    """The report opened from file:// with the network off, requests and console errors kept.

    The test fails at teardown if the page asked for anything but the file itself
    or logged an error.
    """
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
    guard = PageGuard()

    def record(route: Any) -> None:
        url = route.request.url
        if url != report.as_uri() and not url.startswith(("data:", "blob:")):
            guard.external_requests.append(url)
        route.continue_()

    context.route("**/*", record)
    page = context.new_page()
    page.on("console", lambda msg: msg.type == "error" and guard.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: guard.console_errors.append(str(exc)))
    page.goto(report.as_uri())
    page.wait_for_function(f"({FIGURES_DRAWN})() === {CHARTS}")
    yield page, guard
    context.close()
    assert guard.external_requests == [], "the report asked for something beyond its file"
    assert guard.console_errors == [], "the report logged console errors"


def test_every_chart_and_table_is_drawn_offline(offline_page: tuple[Page, PageGuard]) -> None:
    page, _ = offline_page

    expect(page.locator(".bk-Canvas")).to_have_count(CHARTS)
    for canvas in page.locator(".bk-Canvas").all():
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 200
    expect(page.locator(".tabulator")).to_have_count(TABLES)
    for table in page.locator(".tabulator").all():
        expect(table.locator(".tabulator-row").first).to_be_visible()
    expect(page.get_by_text("About this report")).to_be_visible()


# The tallest bar of the volume chart: its count and where its middle is on the screen.
TALLEST_BAR = (
    "() => { const plot = "
    + FIGURES
    + """[0]
    let bar = null
    for (const renderer of plot.model.renderers) {
        const data = renderer.data_source.data, glyph = renderer.glyph
        const [left, right, bottom, top] = ["left", "right", "bottom", "top"].map(
            side => data[glyph[side].field])
        const count = top.map((t, i) => t - bottom[i])
        count.forEach((n, i) => {
            if (bar === null || n > bar.count)
                bar = {count: n, x: (left[i] + right[i]) / 2, y: (bottom[i] + top[i]) / 2}
        })
    }
    const canvas = plot.canvas_view.el.getBoundingClientRect()
    return {
        count: bar.count,
        x: canvas.x + plot.frame.x_scale.compute(bar.x),
        y: canvas.y + plot.frame.y_scale.compute(bar.y),
    }
}"""
)
VOLUME_X_SPAN = (
    "() => { const range = " + FIGURES + "[0].model.x_range; return range.end - range.start }"
)


def test_charts_hover_and_zoom_without_a_server(offline_page: tuple[Page, PageGuard]) -> None:
    page, _ = offline_page
    page.locator(".bk-Canvas").first.scroll_into_view_if_needed()
    bar = page.evaluate(TALLEST_BAR)
    span = page.evaluate(VOLUME_X_SPAN)

    page.mouse.move(bar["x"], bar["y"])
    expect(page.locator(".bk-Tooltip").first).to_contain_text(f"{bar['count']:,.0f}")

    page.mouse.down()
    page.mouse.move(bar["x"] + 150, bar["y"] + 40, steps=5)
    page.mouse.up()
    page.wait_for_function(f"span => ({VOLUME_X_SPAN})() < span / 2", arg=span)


def test_the_kpis_shown_are_the_metrics_of_the_window(
    offline_page: tuple[Page, PageGuard], demo: ServedApp
) -> None:
    page, _ = offline_page
    built = page.evaluate(
        "() => JSON.parse(document.getElementById('agentdash-report').textContent)"
    )
    backend = LiveFrames(LocalSource(demo.store), MemoryFrameCache())
    everything = backend.get(FrameSpec("messages")).frame
    start, end = pd.Timestamp(built["start"]), pd.Timestamp(built["end"])
    previous_start = pd.Timestamp(built["previous_start"])
    # A 7d window's numbers come from the hourly rollups: of its hours, whole.
    hours = metrics.trim_window(
        everything, start.floor("h"), end.floor("h") + pd.Timedelta(hours=1) - pd.Timedelta(1, "ns")
    )
    assert len(hours) == built["rows"]["messages"] > 0
    assert built["rolled_up"] is True
    rollups = backend.rollups()
    now = rollups.select(start, end + pd.Timedelta(1, "ns")).kpis()
    before = rollups.select(previous_start, start + pd.Timedelta(1, "ns")).kpis()
    changes = metrics.kpi_changes(now, before)

    for name, card in KPIS.items():
        value = f"div:text-is('{card.title}') + div[style*='20pt']"
        expect(page.locator(value)).to_have_text(card.fmt.format(value=getattr(now, name)))
        change = changes[name]
        assert change is not None, f"{name} has no previous value to compare with"
        expect(page.locator(f"{value} + div")).to_have_text(
            f"{_arrow(change)} {change:+.1%} vs previous 7d"
        )


def _arrow(change: float) -> str:
    return "▲" if change > 0 else "▼" if change < 0 else "■"
