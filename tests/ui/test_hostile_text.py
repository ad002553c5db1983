"""Script planted in documents and links never runs: every text is shown as text.

Every text field of an agent and of its messages holds markup that would run
script if it were rendered as HTML or Markdown (an ``onerror`` image, an SVG
``onload``, a script element, a Markdown link to ``javascript:``), and so does
every parameter of the page's URL.  The pages record any dialog (``alert``)
and any call of ``window.__pwned``; a guarded page also fails on a console
error, such as the load of a planted image.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.ui.conftest import PageGuard, ServedApp, make_served_app, new_message

pytestmark = pytest.mark.ui

HOSTILE = (
    "<img src=x onerror=alert(1)>\"'><svg onload=alert(2)><script>alert(3)</script>"
    "`<b onmouseover=__pwned()>`[x](javascript:alert(5))**$x$**"
)
AGENT = f"a-{HOSTILE}"
CONVERSATION = f"c-{HOSTILE}"
LINK_PARAMETERS = [
    "window",
    "start",
    "end",
    "agent",
    "model",
    "status",
    "role",
    "search",
    "tz",
    "tab",
    "theme",
    "conversation",
    "agent_page",
    "by",
    "breakdown",
    "sort",
    "filters",
]
# Calls of __pwned by planted script, and every dialog, are counted on the page.
HOOK = "window.__calls = 0; window.__pwned = () => { window.__calls += 1 }"


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """A served demo store with one agent, and its conversation, made of planted markup."""
    workdir = tmp_path_factory.mktemp("hostile")
    app = make_served_app(workdir, messages=1000, days=2)
    now = datetime.now(UTC)
    agent = {
        "id": AGENT,
        "name": f"agent {HOSTILE}",
        "kind": HOSTILE,
        "status": HOSTILE,
        "team": HOSTILE,
        "createdAt": (now - timedelta(days=3)).isoformat(),
        "lastSeen": now.isoformat(),
    }
    messages = [
        new_message(
            id=f"m-{i}-{HOSTILE}",
            conversationId=CONVERSATION,
            agentId=AGENT,
            role=role,
            status=status,
            userId=f"u-{HOSTILE}",
            model=f"m-{HOSTILE}",  # a model without a price: named as unpriced
            content=HOSTILE,
            timestamp=(now - timedelta(minutes=10 - i)).isoformat(),
        )
        for i, (role, status) in enumerate([("user", "ok"), ("agent", HOSTILE), ("agent", "ok")])
    ]
    for container, docs in (("agents", [agent]), ("messages", messages)):
        path = workdir / f"{container}.jsonl"
        path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
        app.command("import", str(path), "--container", container)
    app.start()
    yield app
    app.stop()


def watch(page: Page) -> Callable[[], None]:
    """Record what planted script would do on ``page``; the check to call at the end."""
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.add_init_script(HOOK)

    def check() -> None:
        assert page.evaluate("window.__calls") == 0, "planted script called __pwned"
        assert dialogs == [], f"planted script opened dialogs: {dialogs}"

    return check


@pytest.fixture
def watched(guarded_page: tuple[Page, PageGuard]) -> Iterator[Page]:
    """A guarded page that fails the test if planted script ran: a dialog or a hook call."""
    page, _ = guarded_page
    page.set_viewport_size({"width": 1500, "height": 1200})
    check = watch(page)
    yield page
    check()


def open_page(page: Page, app: ServedApp, query: str) -> None:
    page.goto(f"{app.url}/{query}")
    expect(page.locator(".bk-tab.bk-active")).to_be_visible()


@pytest.mark.parametrize("tab", ["overview", "agents", "messages", "metrics", "ops"])
def test_planted_documents_show_as_text_on_every_tab(
    watched: Page, hostile_app: ServedApp, tab: str
) -> None:
    open_page(watched, hostile_app, f"?tab={tab}&agent={quote(AGENT)}&window=1h")
    # The sidebar names the agent picked, as written.
    expect(watched.get_by_text(f"agent {HOSTILE}", exact=True).first).to_be_visible()
    if tab == "overview":  # the model, unpriced, named as written
        expect(watched.get_by_text(f"1 model unpriced: m-{HOSTILE}")).to_be_visible()
    if tab == "agents":
        expect(watched.locator(".tabulator-row").first).to_contain_text(f"agent {HOSTILE}")
    if tab == "messages":
        expect(watched.locator(".tabulator-row").first).to_contain_text(CONVERSATION)
    watched.locator(".bk-Figure, .tabulator-row").first.hover()


def test_a_planted_agent_page_and_conversation_show_as_text(
    watched: Page, hostile_app: ServedApp
) -> None:
    open_page(watched, hostile_app, f"?tab=agents&window=1h&agent_page={quote(AGENT)}")
    expect(watched.get_by_text(f"agent {HOSTILE}", exact=True).last).to_be_visible()
    watched.locator(".tabulator-row", has_text=CONVERSATION).first.click()
    expect(watched.get_by_text(f"Conversation {CONVERSATION}")).to_be_visible()
    expect(watched.locator(".chat-turn")).to_have_count(3)
    expect(watched.locator(".chat-turn").first).to_contain_text(HOSTILE)
    # Picking the agent in the sidebar by typing its name.
    picker = watched.get_by_role("combobox", name="Agents")
    picker.fill(f"agent {HOSTILE}")
    picker.press("Enter")
    expect(watched.locator(".names-chip")).to_contain_text(f"agent {HOSTILE}")


def test_planted_link_values_show_as_text(watched: Page, hostile_app: ServedApp) -> None:
    query = urlencode({name: HOSTILE for name in LINK_PARAMETERS})
    open_page(watched, hostile_app, f"?{query}")
    alert = watched.locator(".alert-warning", has_text="Ignored")
    expect(alert).to_contain_text(f"Ignored window={HOSTILE}")
    expect(alert).to_contain_text(f"Ignored theme={HOSTILE}")
    # A search is any text: kept as it is, in its box.
    expect(watched.get_by_placeholder("contains…").first).to_have_value(HOSTILE)
    for tab in ("Agents", "Messages"):
        watched.locator(".bk-tab", has_text=tab).click()
        expect(watched.locator(".bk-tab.bk-active")).to_have_text(tab)
    expect(watched.get_by_text(f"Conversation {HOSTILE}")).to_be_visible()


def test_the_api_docs_page_shows_planted_answers_as_text(
    watched: Page, hostile_app: ServedApp
) -> None:
    watched.goto(f"{hostile_app.url}/api/v1/docs?q={quote(HOSTILE)}")
    section = watched.locator("section", has_text="/api/v1/conversations/{id}")
    section.locator("input[name=id]").fill(CONVERSATION)
    section.get_by_role("button", name="Try it").click()
    expect(section.locator("pre")).to_contain_text("200")
    expect(section.locator("pre")).to_contain_text(HOSTILE.replace('"', '\\"'))


def test_a_report_of_planted_documents_shows_them_as_text(
    browser: Browser, hostile_app: ServedApp, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    hostile_app.command(
        "report", "--window", "24h", "--agents", AGENT, "--title", HOSTILE, "--out", str(out)
    )
    context = browser.new_context(offline=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    check = watch(page)
    page.goto(out.as_uri())
    expect(page.get_by_text(HOSTILE, exact=True).first).to_be_visible()
    expect(page.locator(".tabulator-row", has_text=f"agent {HOSTILE}").first).to_be_visible()
    check()
    context.close()
    assert errors == []
