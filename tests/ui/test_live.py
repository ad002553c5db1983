"""Live updates in a real browser: new data, the age of the data, pause, stale source, cleanup.

The store holds demo messages of the last 12 hours only, so no message leaves
the 24h window while a test runs: a message written by a test moves the
Messages card by exactly one.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from pipelines.sources.local import LocalSource
from tests.conftest import wait_until
from tests.ui.conftest import ServedApp, make_served_app, new_message

PERIOD = 2.0  # AGENTDASH_REFRESH_SECONDS of the app under test: the budgets below are in periods
# Sessions are dropped 5 s after their page closes (Bokeh's default is 15 s, checked every 17 s).
SESSION_ARGS = ("--", "--unused-session-lifetime", "5000", "--check-unused-sessions", "500")


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    app = make_served_app(
        tmp_path_factory.mktemp("live"),
        messages=2000,
        days=0.5,
        AGENTDASH_REFRESH_SECONDS=str(PERIOD),
    )
    app.start(*SESSION_ARGS)
    yield app
    app.stop()


def periods(n: float) -> float:
    """``n`` refresh periods in Playwright's milliseconds."""
    return n * PERIOD * 1000


def open_dashboard(page: Page, app: ServedApp) -> None:
    page.goto(app.url + "/")
    expect(messages_card(page)).to_have_text(re.compile(r"^[\d,]+$"), timeout=30_000)


def messages_card(page: Page) -> Locator:
    """The number on the Messages card (the tab of the same name excepted)."""
    return page.locator("div:not(.bk-tab):text-is('Messages') + div")


def count(card: Locator) -> int:
    return int((card.text_content() or "").replace(",", ""))


def age(page: Page) -> Locator:
    return page.locator(".agentdash-age")


def health(app: ServedApp) -> dict[str, Any]:
    status, body = app.get_json("/health")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def write_message(app: ServedApp) -> None:
    LocalSource(app.store).upsert("messages", [new_message()])


@contextmanager
def store_offline(app: ServedApp) -> Iterator[None]:
    """Make the store fail every query for real: its table disappears, then comes back."""
    with sqlite3.connect(app.store) as conn:
        conn.execute("ALTER TABLE documents RENAME TO documents_offline")
    try:
        yield
    finally:
        with sqlite3.connect(app.store) as conn:
            conn.execute("ALTER TABLE documents_offline RENAME TO documents")


def test_a_closed_page_leaves_no_session_or_listener(
    live_app: ServedApp, guarded_page: tuple[Page, Any]
) -> None:
    page, _guard = guarded_page

    def sessions_and_listeners() -> tuple[int, int]:
        body = health(live_app)
        return body["sessions"], body["listeners"]

    # The session the fixture's readiness probe opened goes first.
    wait_until(lambda: sessions_and_listeners() == (0, 0), timeout=20)
    open_dashboard(page, live_app)
    assert sessions_and_listeners() == (1, 1)

    page.goto("about:blank")
    wait_until(
        lambda: sessions_and_listeners() == (0, 0),
        timeout=20,
        message="the closed page's session to be dropped",
    )


def test_a_new_message_shows_within_two_refresh_periods(
    live_app: ServedApp, guarded_page: tuple[Page, Any]
) -> None:
    page, _guard = guarded_page
    open_dashboard(page, live_app)
    card = messages_card(page)
    before = count(card)
    write_message(live_app)
    expect(card).to_have_text(f"{before + 1:,}", timeout=periods(2))


def test_the_age_of_the_data_ticks_in_the_browser(
    live_app: ServedApp, guarded_page: tuple[Page, Any]
) -> None:
    page, _guard = guarded_page
    frames: list[object] = []
    page.on("websocket", lambda socket: socket.on("framereceived", lambda f: frames.append(f)))
    open_dashboard(page, live_app)
    expect(age(page)).to_have_text(re.compile(r"^updated \d+ s ago$"))

    # Paused, the server sends nothing: whatever moves on the page is counted by the browser.
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()

    def ticked(seconds: int) -> int:
        """Wait until the age has grown by ``seconds`` (or one more: a tick may skip)."""
        shown = int(re.findall(r"\d+", age(page).text_content() or "")[0])
        later = f"{shown + seconds}|{shown + seconds + 1}"
        expect(age(page)).to_have_text(re.compile(rf"^updated ({later}) s ago \(paused\)$"))
        return len(frames)

    # The server's answers to the click come first: wait for a second in which nothing came.
    received = ticked(1)
    for _ in range(10):
        before, received = received, ticked(1)
        if received == before:
            break
    else:
        raise AssertionError("the server kept sending to a paused page")
    assert ticked(2) == received, [str(frame)[:200] for frame in frames[received:]]

    # Resumed, the page takes up the time of the latest refresh: the age starts again.
    page.get_by_role("button", name="Resume").click()
    expect(age(page)).to_have_text(re.compile(r"^updated [01] s ago$"), timeout=periods(2))


def test_pause_holds_the_figures_and_resume_catches_up(
    live_app: ServedApp, guarded_page: tuple[Page, Any]
) -> None:
    paused, _guard = guarded_page
    live = paused.context.new_page()
    # Both pages first show every message held: one written by an earlier test may still be
    # on its way to a page opened meanwhile.
    _, summary = live_app.get_json("/api/v1/metrics/summary?window=24h")
    before = summary["messages"]
    for page in (paused, live):
        open_dashboard(page, live_app)
        expect(messages_card(page)).to_have_text(f"{before:,}", timeout=periods(2))
    paused.get_by_role("button", name="Pause").click()
    expect(paused.get_by_role("button", name="Resume")).to_be_visible()

    write_message(live_app)
    # Once the live page shows it, the paused one has been told too, and ignored it. (How
    # soon a page shows a new message is the test above; here, only that it does.)
    expect(messages_card(live)).to_have_text(f"{before + 1:,}", timeout=periods(4))
    expect(messages_card(paused)).to_have_text(f"{before:,}")

    paused.get_by_role("button", name="Resume").click()
    expect(messages_card(paused)).to_have_text(f"{before + 1:,}", timeout=periods(1))
    live.close()


def test_a_failing_source_shows_a_banner_and_keeps_the_last_data(
    live_app: ServedApp, guarded_page: tuple[Page, Any]
) -> None:
    page, _guard = guarded_page
    open_dashboard(page, live_app)
    card = messages_card(page)
    shown = card.text_content() or ""
    banner = page.get_by_text("The data source is failing")

    with store_offline(live_app):
        expect(banner).to_be_visible(timeout=periods(3))
        expect(page.get_by_text("no such table")).to_be_visible()
        expect(card).to_have_text(shown)
        assert health(live_app)["status"] == "stale"

    expect(banner).to_be_hidden(timeout=periods(3))
    write_message(live_app)
    expect(card).to_have_text(f"{int(shown.replace(',', '')) + 1:,}", timeout=periods(2))
