"""Time until the Overview shows all its charts with 1M messages in the window.

Compared, in the same run, with a bare Panel page holding one HoloViews chart,
served the same way: median of 5 loads each, in fresh browser contexts, timed
from navigation until every Bokeh view of the page has drawn (the document is
idle).  Goal: at most 1.5x the bare page.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from benchmarks.common import demo_store, report
from benchmarks.served import BASELINES, DASHBOARD, Server, dashboard_env, ratio
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS

MESSAGES = 1_000_000
LOADS = 5
# Every chart of the page drawn: no loading spinner left, `charts` figures, each painted.
DRAWN = """charts => {
  if (!window.Bokeh || !Bokeh.index) return false
  const views = []
  const walk = (view) => { views.push(view); (view.child_views ?? []).forEach(walk) }
  Object.values(Bokeh.index).forEach(walk)
  const figures = views.filter((view) => view.model.type === "Figure")
  const loading = views.some((view) => view.model.css_classes?.includes("pn-loading"))
  return !loading && figures.length >= charts && figures.every((view) => view.has_finished())
}"""
OVERVIEW_CHARTS = 3  # message volume, latency, busiest agents


def load_seconds(browser: Any, url: str, charts: int) -> float:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_function(DRAWN, arg=charts, timeout=300_000, polling=20)
    elapsed = time.perf_counter() - started
    context.close()
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.db"
        # 0.9 days: all of them inside the 24h window.
        demo_store(store, MESSAGES, days=0.9)
        # No refresh during the loads: this measures drawing the page, not live updates.
        env = dashboard_env(store, refresh_seconds=3600)
        with (
            Server(DASHBOARD, env) as dashboard,
            Server(BASELINES / "chart.py") as bare,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            charts = {dashboard: OVERVIEW_CHARTS, bare: 1}
            first = {s.app.stem: load_seconds(browser, s.url, n) for s, n in charts.items()}
            times: dict[str, list[float]] = {s.app.stem: [] for s in charts}
            for _ in range(LOADS):
                for server, n in charts.items():
                    times[server.app.stem].append(load_seconds(browser, server.url, n))
            browser.close()
    overview, baseline = (statistics.median(times[k]) for k in (DASHBOARD.stem, "chart"))
    report(
        f"page drawn, {MESSAGES:,} messages in the window (median of {LOADS})",
        [
            ("dashboard Overview", f"{overview:.2f} s (first load {first[DASHBOARD.stem]:.2f} s)"),
            ("bare page, one chart", f"{baseline:.2f} s (first load {first['chart']:.2f} s)"),
            ("ratio", f"{ratio(overview, baseline)} (goal <= 1.5x)"),
        ],
    )


if __name__ == "__main__":
    main()
