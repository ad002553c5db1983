"""The weekly report of 1M messages: build time and file size, against one bare chart.

Goals: ``agentdash report --window 7d`` over 1M messages takes at most 5 s in a fresh
process, as a scheduler runs it (the command itself, median of ``REPORT_REPEAT``, 3),
and writes at most 5 MB.  The baseline, in the same run, is the bare ``save`` of one
HoloViews chart of the same frame (its volume series), so the ratio shows what the
whole report adds.  The in-process split tells the first read of the store (source +
normalisation) from the report itself.  ``REPORT_MESSAGES`` (1M) messages over 7 days.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import holoviews as hv
import holoviews.plotting.bokeh  # the baseline chart is saved through its backend
import pandas as pd
import panel as pn
from bokeh.resources import INLINE

from app.report import Report
from benchmarks.common import cached_store, env_number, median_seconds, report
from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline, metrics
from pipelines.cache import MemoryFrameCache
from pipelines.sources.local import LocalSource

MESSAGES = int(env_number("REPORT_MESSAGES", 1_000_000))
REPEAT = int(env_number("REPORT_REPEAT", 3))
DAYS = 7
# The installed command when there is one (as a scheduler runs it), else the same module.
AGENTDASH = Path(sys.executable).with_name("agentdash")
COMMAND = [str(AGENTDASH)] if AGENTDASH.exists() else [sys.executable, "-m", "app.cli"]


def bare_chart(frame: pd.DataFrame) -> int:
    """Save one chart of the frame's message volume, as a plain Panel page; its size."""
    start, end = frame["timestamp"].min(), frame["timestamp"].max()
    volume = metrics.volume_series(frame, metrics.choose_interval(start, end), by=None)
    chart = hv.Curve((volume.index.tz_localize(None), volume["messages"]), "time", "messages")
    buffer = io.StringIO()
    pn.pane.HoloViews(chart.opts(responsive=True, height=300)).save(buffer, resources=INLINE)
    return len(buffer.getvalue().encode())


def command_seconds(store: Path, out: Path) -> tuple[float, str]:
    """Wall time of ``agentdash report`` in a fresh process, as a scheduler runs it, and
    what it printed."""
    env = {**os.environ, "AGENTDASH_SOURCE": "local", "AGENTDASH_LOCAL_PATH": str(store)}
    env.pop("AGENTDASH_REDIS_URL", None)
    started = time.perf_counter()
    done = subprocess.run(
        [*COMMAND, "report", "--window", "7d", "--out", str(out)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - started, done.stdout.strip().splitlines()[-1]


def main() -> None:
    stored = cached_store(MESSAGES, days=DAYS)
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalSource(stored.path)
        out = Path(tmp) / "report.html"
        runs = [command_seconds(stored.path, out) for _ in range(REPEAT)]
        t_command, said = statistics.median(t for t, _ in runs), runs[-1][1]
        command_size = out.stat().st_size

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
        f"report --window 7d of {stored.describe()}",
        [
            (
                "agentdash report, fresh process",
                f"{t_command:.2f} s, median of {REPEAT} (goal <= 5 s)",
            ),
            ("  its file", f"{command_size / 1e6:.2f} MB (goal <= 5 MB)"),
            ("  it said", said),
            ("  first read: source + normalisation", f"{t_load:.2f} s, {rows:,} rows"),
            ("  report: metrics, layout, save", f"{t_report:.2f} s (median of 3)"),
            ("baseline: save of one bare chart", f"{t_bare:.2f} s (median of 3)"),
            ("ratio report / baseline", f"{t_report / t_bare:.1f}x"),
            ("report file, in process", f"{size / 1e6:.2f} MB"),
            ("baseline file", f"{bare_size / 1e6:.2f} MB"),
            ("ratio report / baseline file", f"{size / bare_size:.2f}x"),
        ],
    )


if __name__ == "__main__":
    main()
