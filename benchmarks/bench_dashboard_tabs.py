"""Time until a tab shows all its charts, as a new user waits for it.

- The Metrics tab, opened by a link (``?tab=metrics``), with 50k and with 1M messages
  in the 24h window; and visited again after the Overview, when its charts should not
  be drawn again (their Bokeh figures are the same objects).
- The first 30d view of a server whose store holds 1M messages over 30 days.

Each is timed in a fresh browser context, from navigation until every chart of the
tab has drawn (see ``served.DRAWN``), median of ``LOADS``, next to a bare
Panel page with one HoloViews chart served the same way in the same run.  Goals:
Metrics <= 1 s at 50k and <= 2 s at 1M; the first 30d view at 1M <= 3 s.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from benchmarks.common import demo_store, report
from benchmarks.served import (
    BASELINES,
    DASHBOARD,
    DRAWN,
    Server,
    dashboard_env,
    load_seconds,
    ratio,
)
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS

LOADS = 5
METRICS_CHARTS = 7
OVERVIEW_CHARTS = 3
# Ids of the figures drawn on the page: the same ids on a second visit, nothing redrawn.
FIGURE_IDS = """() => [...Bokeh.index.all_views()]
  .filter((view) => view.model.type === "Figure").map((view) => view.model.id).sort()"""


def median_load(browser: Any, url: str, charts: int) -> tuple[float, float]:
    """The first load and the median of ``LOADS`` more, in seconds."""
    first = load_seconds(browser, url, charts)
    return first, statistics.median(load_seconds(browser, url, charts) for _ in range(LOADS))


def second_visit(browser: Any, server: Server) -> tuple[float, int]:
    """Seconds for the Metrics tab, visited again after the Overview, to show its charts,
    and how many of its figures were drawn anew."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{server.url}?tab=metrics")
    page.wait_for_function(DRAWN, arg=METRICS_CHARTS, timeout=300_000, polling=20)
    before = page.evaluate(FIGURE_IDS)
    page.locator(".bk-tab", has_text="Overview").click()
    page.wait_for_function(DRAWN, arg=OVERVIEW_CHARTS, timeout=300_000, polling=20)
    started = time.perf_counter()
    page.locator(".bk-tab", has_text="Metrics").click()
    page.wait_for_function(DRAWN, arg=METRICS_CHARTS, timeout=300_000, polling=20)
    elapsed = time.perf_counter() - started
    redrawn = len(set(page.evaluate(FIGURE_IDS)) - set(before))
    context.close()
    return elapsed, redrawn


Result = tuple[str, float, str]
"""What was timed, its seconds and what else to say of it."""


def metrics_tab(browser: Any, messages: int, tmp: Path) -> list[Result]:
    store = tmp / f"metrics-{messages}.db"
    demo_store(store, messages, days=0.9)  # all of them inside the 24h window
    with Server(DASHBOARD, dashboard_env(store, refresh_seconds=3600)) as server:
        first, median = median_load(browser, f"{server.url}?tab=metrics", METRICS_CHARTS)
        again, redrawn = second_visit(browser, server)
    return [
        (f"Metrics, {messages:,} messages", median, f"first load {first:.2f} s"),
        (f"Metrics visited again, {messages:,}", again, f"{redrawn} figures drawn anew"),
    ]


def first_30d_view(browser: Any, tmp: Path) -> list[Result]:
    """The first 30d view of a server already serving the 24h one (its first page)."""
    store = tmp / "month.db"
    demo_store(store, 1_000_000, days=29.5)
    with Server(DASHBOARD, dashboard_env(store, refresh_seconds=3600)) as server:
        load_seconds(browser, server.url, OVERVIEW_CHARTS)  # someone opened the 24h view
        first = load_seconds(browser, f"{server.url}?window=30d", OVERVIEW_CHARTS)
        median = statistics.median(
            load_seconds(browser, f"{server.url}?window=30d", OVERVIEW_CHARTS) for _ in range(LOADS)
        )
    return [("first 30d view, 1,000,000 messages", first, f"then {median:.2f} s")]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        with Server(BASELINES / "chart.py") as bare:
            _, baseline = median_load(browser, bare.url, 1)
        results = [
            *metrics_tab(browser, 50_000, Path(tmp)),
            *metrics_tab(browser, 1_000_000, Path(tmp)),
            *first_30d_view(browser, Path(tmp)),
        ]
        browser.close()
    report(
        f"tabs drawn as a new user waits for them (median of {LOADS}; goals 1 s, 2 s, 3 s)",
        [("bare page, one chart", f"{baseline:.2f} s")]
        + [
            (name, f"{seconds:.2f} s, {ratio(seconds, baseline)} the bare page ({extra})")
            for name, seconds, extra in results
        ],
    )


if __name__ == "__main__":
    main()
