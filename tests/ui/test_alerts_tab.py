"""The Alerts tab in a real Chromium: a rule replayed over the window, a threshold tried."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.ui.conftest import PageGuard, ServedApp, make_served_app

pytestmark = pytest.mark.ui

RULE = """
[[alerts]]
name = "busy"
metric = "messages"
over = "1h"
every = "15m"
condition = "> 3"

[[alerts]]
name = "nobody's"
metric = "messages"
over = "1h"
every = "15m"
condition = "> 3"
agents = ["nobody-*"]

[[alerts]]
name = "users' latency"
metric = "latency_p95"
over = "1h"
every = "15m"
condition = "> 4000"
roles = ["user"]
"""


@pytest.fixture(scope="module")
def alerting_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    config = tmp_path_factory.mktemp("config") / "agentdash.toml"
    config.write_text(RULE)
    app = make_served_app(tmp_path_factory.mktemp("alerts"), AGENTDASH_CONFIG=str(config))
    app.start()
    yield app
    app.stop()


def open_alerts(page: Page, app: ServedApp, query: str) -> Locator:
    """Open the Alerts tab with ``query``; its summary, once shown."""
    page.set_viewport_size({"width": 1500, "height": 1200})
    page.goto(f"{app.url}/?tab=alerts&{query}")
    summary = page.get_by_text(re.compile("over this window it would have fired"))
    expect(summary).to_be_visible(timeout=30_000)
    return summary


def test_a_threshold_tried_moves_the_firings(
    guarded_page: tuple[Page, PageGuard], alerting_app: ServedApp
) -> None:
    page, _ = guarded_page
    summary = open_alerts(page, alerting_app, "window=7d")
    expect(page.locator(".bk-Figure")).to_have_count(1)
    fired = re.compile(r"would have fired [1-9][\d,]* times")
    expect(summary).to_have_text(fired)
    threshold = page.get_by_label("Threshold")
    threshold.fill("1000000")
    threshold.press("Enter")
    expect(summary).to_contain_text("would have fired 0 times")
    expect(page.get_by_text("It would not have fired")).to_be_visible()


@pytest.mark.parametrize(
    ("link", "rule", "said"),
    [
        (
            "window=7d&agent=nobody",
            "busy",
            "No message in this window matches the page's filters: nothing to replay",
        ),
        (
            "window=7d",
            "nobody's",
            "No message in this window is in the rule's scope (agents nobody-*)",
        ),
        (
            "window=7d",
            "users' latency",
            "latency_p95 has no value in this window (no message it is computed from)",
        ),
    ],
)
def test_a_chart_with_nothing_to_draw_says_why(
    guarded_page: tuple[Page, PageGuard], alerting_app: ServedApp, link: str, rule: str, said: str
) -> None:
    page, _ = guarded_page
    open_alerts(page, alerting_app, link)
    page.get_by_label("Rule").select_option(rule)
    expect(page.get_by_text("It would not have fired")).to_be_visible()
    # The sentence is drawn on the chart's canvas: read it from the views drawn.
    shown = page.wait_for_function(
        """said => [...Bokeh.index.all_views()].some(
            view => view.model.constructor.__name__ === "Label" && view.model.text === said)""",
        arg=said,
        timeout=30_000,
    )
    assert shown.json_value()
    assert "Traceback" not in alerting_app.log()


def test_a_rule_and_threshold_tried_reopen_from_the_link(
    guarded_page: tuple[Page, PageGuard], alerting_app: ServedApp
) -> None:
    page, _ = guarded_page
    summary = open_alerts(page, alerting_app, "window=7d")
    page.get_by_label("Rule").select_option("users' latency")
    expect(summary).to_contain_text("latency_p95 > 4000")
    threshold = page.get_by_label("Threshold")
    threshold.fill("2500")
    threshold.press("Enter")
    page.wait_for_function(
        "() => location.search.includes('threshold=2500')"
        " && location.search.includes('rule=users%27+latency')",
        timeout=30_000,
    )
    shared = page.url
    page.goto("about:blank")
    page.goto(shared)
    expect(summary).to_contain_text("latency_p95 > 2500", timeout=30_000)
    expect(page.get_by_label("Rule")).to_have_value("users' latency")
    expect(page.get_by_label("Threshold")).to_have_value("2500")


def test_a_link_to_an_unknown_rule_is_refused_with_a_message(
    guarded_page: tuple[Page, PageGuard], alerting_app: ServedApp
) -> None:
    page, _ = guarded_page
    page.set_viewport_size({"width": 1500, "height": 1200})
    page.goto(f"{alerting_app.url}/?tab=alerts&window=7d&rule=gone&threshold=high")
    alert = page.locator(".alert-warning", has_text="Ignored")
    expect(alert).to_contain_text("Ignored rule=gone", timeout=30_000)
    expect(alert).to_contain_text("busy")
    expect(alert).to_contain_text("Kept the first rule")
    expect(alert).to_contain_text("Ignored threshold=high")
    expect(alert).to_contain_text("Kept the rule's own")
    # The first rule at its own threshold is shown instead.
    summary = page.get_by_text(re.compile("over this window it would have fired"))
    expect(summary).to_contain_text("messages > 3")
    assert "Traceback" not in alerting_app.log()
