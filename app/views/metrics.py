"""Metrics: latency distributions and bands, per-agent costs, week over week, hand-offs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import panel as pn

from app.charts.analytic import (
    agent_bars,
    ecdf,
    handoffs,
    histogram,
    histogram_layer,
    thin_ecdf,
)
from app.charts.layers import Layer, wall_time
from app.charts.live import LiveChart, LiveFigure
from app.charts.time import bands, lines
from app.memo import as_of, current, memo, span
from app.tables import agent_names, named
from app.views.base import View
from pipelines import metrics
from pipelines.pipeline import MessagesPipeline
from pipelines.windows import to_local

WEEK_BIN = "1h"


class MetricsView(View):
    """Distributions and breakdowns of the window's messages.

    Week over week reads a 7-day window of the same filters (and the 7 days before).
    Most of these charts are drawn again on new data, so they follow it every 30 s.
    """

    data_refresh_seconds = 30.0

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.week = MessagesPipeline().follow(self.messages, window="7d", start=None, end=None)
        self.histogram = LiveChart(
            lambda layers: histogram(layers, title="Reply latency", xlabel="ms"), height=280
        )
        self.ecdf = LiveChart(ecdf, height=280)
        self.bands = LiveFigure(
            lambda layers: bands(layers, title="Latency percentile bands", ylabel="ms"),
            height=280,
        )
        self.tokens = LiveChart(
            lambda layers: agent_bars(layers, "Tokens by agent", "tokens", "0.[0]a"),
            value_axis="x",
            height=300,
        )
        self.errors = LiveChart(
            lambda layers: agent_bars(layers, "Error rate by agent", "error_rate", "0.0%"),
            value_axis="x",
            height=300,
        )
        self.week_chart = LiveFigure(
            lambda layers: lines(
                layers,
                value="messages",
                title=f"This week against last week (messages per {WEEK_BIN})",
                ylabel="messages",
                dashed=("last week",),
            ),
            height=280,
        )
        self.handoffs = LiveChart(handoffs, height=420)
        self.layout.extend(
            [
                pn.Row(self.histogram, self.ecdf),
                self.bands,
                pn.Row(self.tokens, self.errors),
                self.week_chart,
                self.handoffs,
            ]
        )
        self._refresh_now()

    def refresh(self) -> None:
        names = memo(agent_names, current(self.agents))
        self._latency(names)
        self._per_agent(names)
        self._week_over_week()
        edges = named(memo(metrics.handoffs, current(self.messages)), names, "source", "target")
        self.handoffs.update([Layer("handoffs", _columns(edges))])

    def _latency(self, names: Mapping[str, str]) -> None:
        messages, frame = self.messages, current(self.messages)
        histogram = memo(metrics.latency_distribution, frame)
        self.histogram.update([histogram_layer(histogram, "all")])
        curves = thin_ecdf(memo(metrics.latency_ecdf, frame, by="agent_id"), "agent_id")
        self.ecdf.update(
            [Layer(names.get(agent, agent), _columns(rows)) for agent, rows in curves.items()]
        )
        start, end = messages.bounds
        interval = metrics.choose_interval(pd.Timestamp(start), pd.Timestamp(end))
        latency = memo(metrics.latency_series, frame, interval, tz=messages.tz)
        timestamp = wall_time(latency.index)

        def band(low: str, high: str) -> Layer:
            columns = {"timestamp": timestamp, "high": latency[high], "low": latency[low]}
            return Layer(f"{low} to {high}", _columns(columns))

        median = Layer("p50", _columns({"timestamp": timestamp, "value": latency["p50"]}))
        self.bands.update([band("p50", "p95"), band("p95", "p99"), median])

    def _per_agent(self, names: Mapping[str, str]) -> None:
        table = memo(metrics.per_agent, current(self.messages), current(self.agents))
        # Least first: inverted bars draw the first row at the bottom.
        active = named(table[table["messages"] > 0].iloc[::-1], names, "agent_id")
        tokens = active.melt("agent_id", ["tokens_in", "tokens_out"], "part", "tokens")
        tokens["part"] = tokens["part"].str.removeprefix("tokens_")
        tokens = tokens.rename(columns={"agent_id": "agent"})
        self.tokens.update([Layer("tokens", _columns(tokens))])
        errors = active[["agent_id", "error_rate"]].rename(columns={"agent_id": "agent"})
        self.errors.update([Layer("errors", _columns(errors))])

    def _week_over_week(self) -> None:
        week, tz = self.week, self.messages.tz
        counts = memo(metrics.week_over_week, span(week), WEEK_BIN, now=as_of(week))
        start = pd.Timestamp(week.bounds[0])
        times = wall_time(to_local(pd.DatetimeIndex(start + counts["offset"]), tz))
        self.week_chart.update(
            [
                Layer(label, {"timestamp": times, "messages": counts[column].to_numpy()})
                for label, column in (("this week", "this_week"), ("last week", "last_week"))
            ]
        )


def _columns(table: pd.DataFrame | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Source columns from a frame or a mapping of series and arrays."""
    return {str(name): np.asarray(values) for name, values in dict(table.items()).items()}
