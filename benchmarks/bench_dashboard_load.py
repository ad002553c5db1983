"""Time a new user waits for the Overview of a 30d window of 1M messages, from a cold process.

Each load is the first page of a server process just started (answering, but with no
session built and no data read: see ``served.PROBE``), opened in a fresh browser
context and timed from navigation until every chart of the page has drawn: the
frame's read, the page's build and its drawing.  A second new user's page on the same
process follows (warm: the frame held).  The baseline, in the same run, is a bare Panel
page with one HoloViews chart served the same way, cold then warm.  Median of
``LOAD_REPEAT`` (5) processes each.  Goal: at most 1.5x the bare page.
``LOAD_MESSAGES`` (1M) messages over 29.5 days, all in the ``LOAD_WINDOW`` (30d).
"""

from __future__ import annotations

import os
import statistics

from benchmarks.common import cached_store, env_number, report
from benchmarks.served import (
    BASELINES,
    DASHBOARD,
    OVERVIEW_CHARTS,
    Server,
    chromium,
    dashboard_env,
    load_seconds,
    ratio,
)

MESSAGES = int(env_number("LOAD_MESSAGES", 1_000_000))
WINDOW = os.environ.get("LOAD_WINDOW", "30d")
REPEAT = int(env_number("LOAD_REPEAT", 5))


def main() -> None:
    store = cached_store(MESSAGES, days=29.5)
    # No refresh during the loads: this measures opening the page, not live updates.
    env = dashboard_env(store.path, refresh_seconds=3600)
    pages = {
        "dashboard": (DASHBOARD, env, f"?window={WINDOW}", OVERVIEW_CHARTS),
        "bare": (BASELINES / "chart.py", {}, "", 1),
    }
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in pages}
    with chromium() as browser:
        for _ in range(REPEAT):
            for name, (app, app_env, query, charts) in pages.items():
                with Server(app, app_env) as server:
                    first, then = times[name]
                    first.append(load_seconds(browser, server.url + query, charts))
                    then.append(load_seconds(browser, server.url + query, charts))
    (cold, warm), (bare_cold, bare_warm) = (
        [statistics.median(values) for values in times[name]] for name in pages
    )
    report(
        f"Overview drawn for a new user, {store.describe()}, window {WINDOW} "
        f"(median of {REPEAT} processes)",
        [
            ("dashboard, cold process", f"{cold:.2f} s"),
            ("bare page, cold process", f"{bare_cold:.2f} s"),
            ("ratio, cold", f"{ratio(cold, bare_cold)} (goal <= 1.5x)"),
            ("dashboard, next user", f"{warm:.2f} s"),
            ("bare page, next user", f"{bare_warm:.2f} s"),
            ("ratio, next user", f"{ratio(warm, bare_warm)} (goal <= 1.5x)"),
        ],
    )


if __name__ == "__main__":
    main()
