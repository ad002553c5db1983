"""Metrics: latency distributions and bands, per-agent costs, week over week, hand-offs."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import Range1d

from app.charts.analytic import (
    agent_bars,
    bins_text,
    ecdf,
    handoffs,
    histogram,
    histogram_layer,
    thin_ecdf,
)
from app.charts.layers import Layer, wall_time
from app.charts.live import LiveFigure
from app.charts.time import LATENCY_BINS, FigureKit, bands, bin_name, lines
from app.memo import answers, as_of, current, memo, span
from app.tables import agent_names, named
from app.views.base import View
from pipelines import metrics
from pipelines.answers import ask
from pipelines.pipeline import MessagesPipeline
from pipelines.windows import to_local

WEEK_BIN = "1h"
HISTOGRAM_BINS = 50
NO_REPLY = "No agent reply with a latency matches these filters"
AGENT_SLOTS = 8
"""Bars per agent keep the thickness of eight, however few agents are left."""


class MetricsView(View):
    """Distributions and breakdowns of the window's messages.

    Week over week reads a 7-day window of the same filters (and the 7 days before).
    Most of these charts are drawn again on new data, so they follow it every 30 s.
    ``scale`` draws latencies on a linear or a log scale.
    """

    data_refresh_seconds = 30.0

    scale: str = param.Selector(  # type: ignore[assignment]
        default="linear", objects=["linear", "log"], doc="Scale of the latency charts."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.week = MessagesPipeline().follow(self.messages, window="7d", start=None, end=None)
        self._kit = FigureKit()  # the window's time axis, shared by the page's figures
        self._week_range = Range1d()  # this week's
        self.histogram = LiveFigure(
            self._draw_histogram, title="Reply latency", empty=NO_REPLY, height=280
        )
        self.ecdf = LiveFigure(
            partial(ecdf, kit=self._kit), title="Latency ECDF by agent", empty=NO_REPLY, height=280
        )
        self.bands = LiveFigure(
            self._draw_bands, title="Latency percentile bands", empty=NO_REPLY, height=280
        )
        self.tokens = LiveFigure(
            partial(
                agent_bars,
                xlabel="tokens",
                parts=[
                    (None, "end_in", "tokens_in", "in"),
                    ("end_in", "end_out", "tokens_out", "out"),
                ],
                number_format="0.[0]a",
                kit=self._kit,
            ),
            title="Tokens by agent",
            value_axis="x",
            slots=AGENT_SLOTS,
        )
        self.errors = LiveFigure(
            partial(
                agent_bars,
                xlabel="error rate",
                parts=[(None, "error_rate", "error_rate", "error rate")],
                number_format="0.0%",
                kit=self._kit,
            ),
            title="Error rate of replies by agent",
            empty="No agent reply matches these filters",
            value_axis="x",
            slots=AGENT_SLOTS,
        )
        self.week_chart = LiveFigure(
            partial(
                lines,
                value="messages",
                ylabel="messages",
                dashed=("last week",),
                counts=True,
                time_range=self._week_range,
                kit=self._kit,
            ),
            title=f"This week against last week (messages per {bin_name(WEEK_BIN)})",
            empty="No message in these two weeks matches these filters",
            height=280,
        )
        self.handoffs = LiveFigure(
            partial(handoffs, kit=self._kit),
            in_place=False,  # its colour scale follows the counts
            title="Agent hand-offs: replies by one agent, then another, in a conversation",
            empty="No hand-off between agents matches these filters",
        )
        scale = pn.widgets.RadioButtonGroup.from_param(
            self.param.scale,
            label="Latency scale",
            options={"linear latency": "linear", "log latency": "log"},
            button_type="default",
            button_style="outline",
            width=240,
            description=None,
        )
        self.layout.extend(
            [
                scale,
                pn.Row(self.histogram, self.ecdf),
                self.bands,
                pn.Row(self.tokens, self.errors),
                self.week_chart,
                self.handoffs,
            ]
        )
        self.param.watch(self._filters_changed, "scale")
        self._first_refresh()

    def _draw_histogram(self, layers: list[Layer], title: str) -> Any:
        return histogram(
            layers, title=title, xlabel="latency (ms)", log=self.scale == "log", kit=self._kit
        )

    def _draw_bands(self, layers: list[Layer], title: str) -> Any:
        return bands(layers, title=title, ylabel="ms", log=self.scale == "log", kit=self._kit)

    def refresh(self) -> None:
        names = memo(agent_names, current(self.agents))
        self._latency(names)
        self._per_agent(names)
        self._week_over_week()
        edges = named(memo(ask, answers(self.messages), "handoffs"), names, "source", "target")
        self.handoffs.update([Layer("handoffs", _columns(edges))])

    def _latency(self, names: Mapping[str, str]) -> None:
        messages, window, log = self.messages, answers(self.messages), self.scale == "log"
        table = memo(ask, window, "latency_distribution", HISTOGRAM_BINS, log=log)
        self.histogram.update(
            [histogram_layer(table, "all")], title=f"Reply latency ({bins_text(table, log)})"
        )
        curves = thin_ecdf(memo(ask, window, "latency_ecdf", by="agent_id"), "agent_id")
        self.ecdf.update(
            [Layer(names.get(agent, agent), _columns(rows)) for agent, rows in curves.items()]
        )
        start, end = messages.bounds
        interval = metrics.choose_interval(pd.Timestamp(start), pd.Timestamp(end), LATENCY_BINS)
        latency = memo(ask, window, "latency_series", interval, tz=messages.tz)
        self._kit.span(start, end, messages.tz)
        left = wall_time(latency.index)
        width = pd.Timedelta(interval).to_timedelta64()
        bins = {"left": left, "right": left + width, "timestamp": left + width / 2}

        def band(low: str, high: str) -> Layer:
            return Layer(
                f"{low} to {high}", _columns({**bins, "high": latency[high], "low": latency[low]})
            )

        median = Layer("p50", _columns({**bins, "value": latency["p50"]}))
        drawn = [band("p50", "p95"), band("p95", "p99"), median]
        self.bands.update(
            drawn if latency["count"].any() else [],
            title=f"Latency percentile bands per {bin_name(interval)}",
        )

    def _per_agent(self, names: Mapping[str, str]) -> None:
        table = memo(ask, answers(self.messages), "per_agent", current(self.agents))
        # Least first: inverted bars draw the first row at the bottom.
        active = named(table[table["messages"] > 0].iloc[::-1], names, "agent_id")
        tokens = {
            "agent": active["agent_id"],
            "tokens_in": active["tokens_in"],
            "tokens_out": active["tokens_out"],
            "end_in": active["tokens_in"],
            "end_out": active["tokens_in"] + active["tokens_out"],
        }
        self.tokens.update([Layer("tokens", _columns(tokens))])
        # An agent without replies has no error rate (not a rate of zero).
        errors = active[["agent_id", "error_rate"]].dropna().rename(columns={"agent_id": "agent"})
        self.errors.update([Layer("errors", _columns(errors))])

    def _week_over_week(self) -> None:
        week, tz = self.week, self.messages.tz
        counts = memo(metrics.week_over_week, span(week), WEEK_BIN, now=as_of(week))
        start, end = week.bounds
        times = wall_time(to_local(pd.DatetimeIndex(pd.Timestamp(start) + counts["offset"]), tz))
        self._kit.span(start, end, tz, self._week_range)
        any_message = bool(counts[["this_week", "last_week"]].to_numpy().any())
        self.week_chart.update(
            [
                Layer(label, {"timestamp": times, "messages": counts[column].to_numpy()})
                for label, column in (("this week", "this_week"), ("last week", "last_week"))
            ]
            if any_message
            else []
        )


def _columns(table: pd.DataFrame | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Source columns from a frame or a mapping of series and arrays."""
    return {str(name): np.asarray(values) for name, values in dict(table.items()).items()}
