"""The weekly report of 1M messages: build time and file size, against one bare chart.

Goals: ``agentdash report`` over 1M messages in a 7-day window takes at most 15 s
from a cold process, and writes at most 5 MB.  The baseline, in the same run, is
the bare ``save`` of one HoloViews chart of the same frame (its volume series),
so the ratio shows what the whole report adds.  The in-process split tells the
first read of the store (source + normalisation) from the report itself.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import holoviews as hv
import pandas as pd
import panel as pn
from bokeh.resources import INLINE

from app.report import Report
from benchmarks.common import demo_store, median_seconds, report
from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline, metrics
from pipelines.cache import MemoryFrameCache

MESSAGES = 1_000_000
DAYS = 7


def bare_chart(frame: pd.DataFrame) -> int:
    """Save one chart of the frame's message volume, as a plain Panel page; its size."""
    start, end = frame["timestamp"].min(), frame["timestamp"].max()
    volume = metrics.volume_series(frame, metrics.choose_interval(start, end), by=None)
    chart = hv.Curve((volume.index.tz_localize(None), volume["messages"]), "time", "messages")
    buffer = io.StringIO()
    pn.pane.HoloViews(chart.opts(responsive=True, height=300)).save(buffer, resources=INLINE)
    return len(buffer.getvalue().encode())


def command_seconds(store: Path, out: Path) -> float:
    """Wall time of ``agentdash report`` in a fresh process, as a scheduler runs it."""
    env = {**os.environ, "AGENTDASH_SOURCE": "local", "AGENTDASH_LOCAL_PATH": str(store)}
    env.pop("AGENTDASH_REDIS_URL", None)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "app.cli", "report", "--window", "7d", "--out", str(out)],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = demo_store(path, MESSAGES, days=DAYS)
        out = Path(tmp) / "report.html"
        t_command = command_seconds(path, out)

        backend = LiveFrames(store, MemoryFrameCache())
        messages = MessagesPipeline(frames=backend, window="7d")
        agents = AgentsPipeline(frames=backend)
        started = time.perf_counter()
        rows = len(messages.frame) + len(agents.frame)
        t_load = time.perf_counter() - started
        built = Report(messages, agents)
        t_report = median_seconds(lambda: built.save(out), repeat=3)
        size = out.stat().st_size
        t_bare = median_seconds(lambda: bare_chart(messages.frame), repeat=3)
        bare_size = bare_chart(messages.frame)

    report(
        f"report of {MESSAGES:,} messages over {DAYS} days",
        [
            ("agentdash report, fresh process", f"{t_command:.2f} s (goal <= 15 s)"),
            ("  first read: source + normalisation", f"{t_load:.2f} s, {rows:,} rows"),
            ("  report: metrics, layout, save", f"{t_report:.2f} s (median of 3)"),
            ("baseline: save of one bare chart", f"{t_bare:.2f} s (median of 3)"),
            ("ratio report / baseline", f"{t_report / t_bare:.1f}x"),
            ("report file", f"{size / 1e6:.2f} MB (goal <= 5 MB)"),
            ("baseline file", f"{bare_size / 1e6:.2f} MB"),
            ("ratio report / baseline file", f"{size / bare_size:.2f}x"),
        ],
    )


if __name__ == "__main__":
    main()
