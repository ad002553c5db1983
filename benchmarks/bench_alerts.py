"""Alerts: the backtest of 10 rules over 30 days of 1M messages, and the live evaluation's
share of a refresh cycle.

Goals: the backtest of 10 rules at a 5-minute step (8,640 steps each) takes at most 10 s;
evaluating the same 10 rules live costs at most 10% of a refresh cycle (the refresh that
brings 1k new messages into the 24h frame, measured in the same run, plus the evaluation),
with the alert state in SQLite (one server) and in Redis (several).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from benchmarks.common import RedisServer, demo_store, median_seconds, report
from pipelines import FrameSpec, LiveFrames, demo
from pipelines.alerts import Alerting, AlertStore, backtest
from pipelines.alerts.engine import AGENTS
from pipelines.alerts.rules import check_rules
from pipelines.alerts.state import RedisAlertStore, SqliteAlertStore
from pipelines.cache import MemoryFrameCache
from pipelines.query import Query
from pipelines.sources.local import LocalSource
from pipelines.windows import Window

MESSAGES = 1_000_000
DAYS = 30
NEW = 1_000
DAY = FrameSpec("messages", Window.parse("24h"))
CYCLES = 60
"""Refresh cycles in a 5-minute step at the default 5 s period: the rules are due on one."""


def rule(name: str, metric: str, condition: str, **more: object) -> dict[str, object]:
    return {"name": name, "metric": metric, "condition": condition, "over": "15m", "every": "5m",
            **more}  # fmt: skip


RULES = check_rules(
    [
        rule("volume", "messages", "> 400"),
        rule("errors", "error_rate", "> 0.2", **{"for": "10m"}),
        rule("errors by agent", "error_rate", "> 0.3", group_by="agent"),
        rule("p95", "latency_p95", "> 4000", **{"for": "10m"}),
        rule("p95 by agent", "latency_p95", "> 6000", group_by="agent"),
        rule("p99 hourly", "latency_p99", "> 8000", over="1h"),
        rule("conversations", "conversations", "< 5", over="30m"),
        rule("active agents", "active_agents", "< 3"),
        rule("tokens out", "tokens_out", "> 200000"),
        rule("cost by model", "cost_usd", "> 5", group_by="model", over="1h"),
    ],
    {},
    {},
)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = demo_store(Path(tmp) / "bench.db", MESSAGES, days=DAYS)
        frames = LiveFrames(store, MemoryFrameCache())
        end = datetime.now(UTC)
        start = end - timedelta(days=DAYS)
        history = FrameSpec("messages", Window.parse(start=start - timedelta(hours=1), end=end))
        started = time.perf_counter()
        messages = frames.get(history).frame
        t_read = time.perf_counter() - started
        agents = frames.get(AGENTS).frame
        replays: list[object] = []

        def replay() -> None:
            replays[:] = backtest(RULES, messages, agents, pd.Timestamp(start), pd.Timestamp(end))

        t_backtest = median_seconds(replay, repeat=3)
        steps = sum(len(r.times) for r in replays)  # type: ignore[attr-defined]

        # Live: the 24h frame every server keeps, refreshed with 1k new messages a cycle; the
        # cycle measured is the one on which all 10 rules are due (a 5-minute step falls on
        # one refresh in 60 at the default 5 s period: the others evaluate nothing).
        frames.get(DAY)
        agent_docs = [doc for page in store.fetch(Query.build("agents")) for doc in page]
        server = RedisServer(Path(tmp))
        server.start()
        try:
            live = {
                "SQLite state": measure_live(
                    frames, store, agent_docs, SqliteAlertStore(Path(tmp) / "alerts.db")
                ),
                "Redis state": measure_live(frames, store, agent_docs, RedisAlertStore(server.url)),
            }
        finally:
            server.stop()
    rows = [
        ("read the history (once)", f"{t_read:.2f} s"),
        (f"backtest, {steps:,} instance-steps (median of 3)", f"{t_backtest:.2f} s (goal <= 10 s)"),
    ]
    for label, (t_refresh, t_eval) in live.items():
        rows += [
            (f"{label}: refresh of the 24h frame, {NEW:,} new (median of 5)",
             f"{t_refresh * 1000:.0f} ms"),
            (f"{label}: evaluation of the {len(RULES)} rules (median of 5)",
             f"{t_eval * 1000:.1f} ms"),
            (f"{label}: evaluation / (refresh + evaluation)",
             f"{t_eval / (t_refresh + t_eval):.1%} (goal <= 10%)"),
            (f"{label}: evaluation / the 5 s refresh period", f"{t_eval / 5:.2%}"),
            (
                f"{label}: per cycle, over the {CYCLES} cycles of a 5-minute step",
                f"{t_eval / CYCLES / t_refresh:.1%} of a refresh",
            ),
        ]  # fmt: skip
    report(f"alerts: {len(RULES)} rules over {DAYS} days of {len(messages):,} messages", rows)


def measure_live(
    frames: LiveFrames, store: LocalSource, agent_docs: list[dict[str, object]], state: AlertStore
) -> tuple[float, float]:
    """Median times of a refresh bringing 1k new messages and of evaluating every rule."""
    alerting = Alerting(RULES, {}, state, frames)
    refreshes, evaluations = [], []
    for _ in range(5):
        store.upsert("messages", demo.live_messages(agent_docs, NEW))
        started = time.perf_counter()
        frames.refresh(DAY)
        refreshes.append(time.perf_counter() - started)
        started = time.perf_counter()
        alerting.run_once()
        evaluations.append(time.perf_counter() - started)
    return statistics.median(refreshes), statistics.median(evaluations)


if __name__ == "__main__":
    main()
