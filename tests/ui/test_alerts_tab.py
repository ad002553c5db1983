"""The Alerts tab in a real Chromium: a rule replayed over the window, a threshold tried."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import PageGuard, ServedApp, make_served_app

pytestmark = pytest.mark.ui

RULE = """
[[alerts]]
name = "busy"
metric = "messages"
over = "1h"
every = "15m"
condition = "> 3"
"""


@pytest.fixture(scope="module")
def alerting_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    config = tmp_path_factory.mktemp("config") / "agentdash.toml"
    config.write_text(RULE)
    app = make_served_app(tmp_path_factory.mktemp("alerts"), AGENTDASH_CONFIG=str(config))
    app.start()
    yield app
    app.stop()


def test_a_threshold_tried_moves_the_firings(
    guarded_page: tuple[Page, PageGuard], alerting_app: ServedApp
) -> None:
    page, _ = guarded_page
    page.set_viewport_size({"width": 1500, "height": 1200})
    page.goto(f"{alerting_app.url}/?tab=alerts&window=7d")
    summary = page.get_by_text(re.compile("over this window it would have fired"))
    expect(summary).to_be_visible(timeout=30_000)
    expect(page.locator(".bk-Figure")).to_have_count(1)
    fired = re.compile(r"would have fired [1-9][\d,]* times")
    expect(summary).to_have_text(fired)
    threshold = page.get_by_label("Threshold")
    threshold.fill("1000000")
    threshold.press("Enter")
    expect(summary).to_contain_text("would have fired 0 times")
    expect(page.get_by_text("It would not have fired")).to_be_visible()
