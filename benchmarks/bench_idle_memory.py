"""Idle memory: one browser session on a 30d window of 1M messages, refreshed for 10 minutes.

A served dashboard (``panel serve app/main.py``, refreshing every
``IDLE_REFRESH_SECONDS``, 1) and one Chromium page of its Overview for the 30d window of
``IDLE_MESSAGES`` (1M) messages; nothing new is written, so every refresh finds nothing.
The server's resident memory is read once the page has drawn (and ``IDLE_SETTLE_SECONDS``,
10, more), every 10 s for ``IDLE_MINUTES`` (10), and at the end, with the kernel's high-water
mark.  Goals: growth from start to end <= 10%, and <= 1 GB in all (at the end and at the
peak).  The page must still be live at the end (its charts drawn, its session served).
"""

from __future__ import annotations

import time

from benchmarks.common import cached_store, env_number, report
from benchmarks.served import (
    DASHBOARD,
    DRAWN,
    OVERVIEW_CHARTS,
    Server,
    chromium,
    dashboard_env,
    megabytes,
    page_open,
)

MESSAGES = int(env_number("IDLE_MESSAGES", 1_000_000))
MINUTES = env_number("IDLE_MINUTES", 10)
REFRESH = env_number("IDLE_REFRESH_SECONDS", 1)
SETTLE = env_number("IDLE_SETTLE_SECONDS", 10)
GIB = 2**30


def main() -> None:
    store = cached_store(MESSAGES, days=29.5)  # all of them in the 30d window; none written
    env = dashboard_env(store.path, refresh_seconds=REFRESH)
    with Server(DASHBOARD, env) as server, chromium() as browser:
        url = f"{server.url}?window=30d"
        with page_open(browser, url, OVERVIEW_CHARTS) as (page, drawn):
            time.sleep(SETTLE)
            start, samples = server.rss(), []
            ends = time.monotonic() + MINUTES * 60
            while (left := ends - time.monotonic()) > 0:
                time.sleep(min(10.0, left))
                samples.append(server.rss())
            end, peak = server.rss(), server.peak_rss()
            samples.append(end)
            live = bool(page.evaluate(DRAWN, OVERVIEW_CHARTS))
            # /health loads the default frames of a process: read only once the memory is.
            health = server.health()
    growth = (end - start) / start
    rows = [
        ("page drawn (new user, cold process)", f"{drawn:.2f} s"),
        ("RSS at start", megabytes(start)),
        (f"RSS after {MINUTES:g} min", megabytes(end)),
        ("growth", f"{growth:+.1%} (goal <= 10%)"),
        ("highest sample / peak (VmHWM)", f"{megabytes(max(samples))} / {megabytes(peak)}"),
        (
            "in all (end, peak)",
            f"{megabytes(end)}, {megabytes(peak)} (goal <= 1 GB: "
            f"{'met' if max(end, peak) <= GIB else 'missed'})",
        ),
        ("refresh cycles", f"{health['refresher']['cycles']} every {REFRESH:g} s"),
        ("page still live at the end", "yes" if live else "no (its charts are gone)"),
        ("sessions served at the end", str(health["sessions"])),
    ]
    report(f"idle memory, one browser session, 30d window of {store.describe()}", rows)


if __name__ == "__main__":
    main()
