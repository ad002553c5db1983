"""The Alerts tab: a rule's metric over the window, its threshold, its firings shaded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from bokeh.document import Document
from bokeh.models import BoxAnnotation, Span

from app.views.alerts import AlertsView
from pipelines import LiveFrames, MessagesPipeline
from pipelines.alerts.rules import check_rules
from pipelines.windows import to_local
from tests.alerting import AGENTS, Planted, planted
from tests.conftest import stored_frames

FIVE = timedelta(minutes=5)
RULES = check_rules(
    [
        {
            "name": "errors",
            "metric": "error_rate",
            "over": "5m",
            "every": "5m",
            "condition": "> 0.5",
            "group_by": "agent",
        },
        {
            "name": "slow",
            "metric": "latency_p95",
            "over": "5m",
            "every": "5m",
            "condition": "> 4000",
        },
    ],
    {},
    {},
)


@pytest.fixture
def history(tmp_path: Path) -> Iterator[tuple[Planted, LiveFrames]]:
    incidents = planted()
    with stored_frames(tmp_path, AGENTS, incidents.messages) as frames:
        yield incidents, frames


def shaded(view: AlertsView) -> list[tuple[float, float]]:
    return [
        (box.left, box.right) for box in view.chart.object.center if isinstance(box, BoxAnnotation)
    ]


def wall_ms(moment: object, tz: str) -> float:
    return float(to_local(pd.Timestamp(moment), tz).value / 1e6)


def test_the_tab_shades_where_the_rule_would_have_fired(
    history: tuple[Planted, LiveFrames],
) -> None:
    incidents, frames = history
    tz = "Europe/Berlin"
    view = AlertsView(RULES, messages=MessagesPipeline(frames=frames, window="24h", tz=tz))
    view.chart.get_root(Document())
    assert "would have fired 1 times (1 of 3 groups), sent 2 notifications" in view.summary.object
    start, end = incidents.error_start + FIVE, incidents.error_end + FIVE
    assert shaded(view) == [(wall_ms(start, tz), wall_ms(end, tz))]
    (threshold,) = [m for m in view.chart.object.center if isinstance(m, Span)]
    assert threshold.location == 0.5
    # The time axis spans the window, in the page's zone (not Bokeh's default of 0 to 1 ms).
    window = view.messages.bounds
    x_range = view.chart.object.x_range
    assert (x_range.start, x_range.end) == tuple(
        to_local(pd.Timestamp(t), tz).to_pydatetime() for t in window
    )
    rows = view.firings.value
    assert rows[["group", "start", "end", "peak"]].values.tolist() == [
        ["a-sup1", to_local(pd.Timestamp(start), tz), to_local(pd.Timestamp(end), tz), 1.0]
    ]


def test_trying_another_threshold_moves_the_firings(history: tuple[Planted, LiveFrames]) -> None:
    incidents, frames = history
    view = AlertsView(RULES, messages=MessagesPipeline(frames=frames, window="24h"))
    view.rule = "slow"
    assert view.threshold == 4000
    assert shaded(view) == [
        (wall_ms(incidents.slow_start + FIVE, "UTC"), wall_ms(incidents.slow_end + FIVE, "UTC"))
    ]
    view.threshold = 7000  # above the planted 6 s: it would never have fired
    assert shaded(view) == []
    assert "would have fired 0 times" in view.summary.object
    assert view.firings.value.empty


def test_without_rules_the_tab_says_how_to_write_one(history: tuple[Planted, LiveFrames]) -> None:
    _, frames = history
    view = AlertsView((), messages=MessagesPipeline(frames=frames))
    assert "No alert rule is configured" in view.layout[-1].object
