"""Metrics: latency distributions and bands, per-agent costs, week over week, hand-offs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import NumeralTickFormatter

from app.compute import as_of, current, memo, span
from app.theme import PALETTE, color_for
from app.views.base import View, agent_names, derived
from app.views.charts import (
    FRAME,
    Layer,
    LiveChart,
    histogram,
    histogram_layer,
    wall_time,
)
from pipelines import metrics

ECDF_POINTS = 100
WEEK_BIN = "1h"


def thin_ecdf(ecdf: pd.DataFrame, by: str, points: int = ECDF_POINTS) -> dict[str, pd.DataFrame]:
    """Each group's ECDF at ``points`` evenly spaced fractions: enough to draw, small to send."""
    steps = np.linspace(0, 1, points + 1)[1:]
    thinned = {}
    for key, group in ecdf.groupby(by, sort=True):
        fraction = group["fraction"].to_numpy()
        rows = np.unique(np.searchsorted(fraction, steps).clip(max=len(group) - 1))
        thinned[str(key)] = group.iloc[rows]
    return thinned


def has_cycle(edges: pd.DataFrame) -> bool:
    """Whether the ``source -> target`` edges loop somewhere (Sankey diagrams cannot)."""
    targets: dict[str, set[str]] = {}
    incoming: dict[str, int] = {}
    for source, target in zip(edges["source"], edges["target"], strict=True):
        if target not in targets.setdefault(source, set()):
            targets[source].add(target)
            incoming[target] = incoming.get(target, 0) + 1
        incoming.setdefault(source, 0)
    # Kahn: peel off nodes nothing points to; whatever remains sits on a cycle.
    ready = [node for node, count in incoming.items() if count == 0]
    while ready:
        for target in targets.get(ready.pop(), ()):
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    return any(incoming.values())


def _bands(layers: Sequence[Layer]) -> hv.Overlay:
    parts: list[hv.Element] = []
    for i, layer in enumerate(layers):
        if "low" in layer.columns:
            band = hv.Area(layer.frame, "timestamp", ["high", "low"], label=layer.label)
            parts.append(band.opts(color=PALETTE[i], alpha=0.5, line_alpha=0))
        else:
            curve = hv.Curve(layer.frame, "timestamp", "latency_ms", label=layer.label)
            parts.append(curve.opts(color=PALETTE[i], tools=["hover"]))
    return hv.Overlay(parts).opts(title="Latency percentile bands", xlabel="", ylabel="ms", **FRAME)


def _ecdf(layers: Sequence[Layer]) -> hv.Overlay:
    curves = [
        hv.Curve(layer.frame, "latency_ms", "fraction", label=layer.label).opts(
            color=color_for(layer.label, i),
            # Past the palette's ten colours, a dashed line tells an agent from the one
            # that has its colour.
            line_dash="solid" if i < len(PALETTE) else "dashed",
            interpolation="steps-post",
            tools=["hover"],
        )
        for i, layer in enumerate(layers)
    ]
    return hv.Overlay(curves).opts(
        title="Latency ECDF by agent",
        xlabel="ms",
        ylabel="share of replies",
        logx=True,
        # A column of more than ten agents would run past the top of the chart.
        legend_cols=1 + len(curves) // 11,
        legend_opts={"label_text_font_size": "8pt", "spacing": 0},
        **FRAME,
    )


def _agent_bars(layers: Sequence[Layer], title: str, value: str, number_format: str) -> hv.Bars:
    """Horizontal bars per agent; a ``part`` column stacks parts of each bar."""
    frame = layers[0].frame
    parts = "part" in frame
    kdims = ["agent", "part"] if parts else ["agent"]
    return hv.Bars(frame, kdims, value).opts(
        title=title,
        invert_axes=True,
        stacked=parts,
        xformatter=NumeralTickFormatter(format=number_format),
        color="part" if parts else PALETTE[0],
        cmap=list(PALETTE),
        tools=["hover"],
        xlabel="",
        **FRAME,
    )


def _week(layers: Sequence[Layer]) -> hv.Overlay:
    curves = [
        hv.Curve(layer.frame, "timestamp", "messages", label=layer.label).opts(
            color=PALETTE[i], line_dash="solid" if i == 0 else "dashed", tools=["hover"]
        )
        for i, layer in enumerate(layers)
    ]
    return hv.Overlay(curves).opts(
        title=f"This week against last week (messages per {WEEK_BIN})",
        xlabel="",
        ylabel="messages",
        **FRAME,
    )


def _handoffs(layers: Sequence[Layer]) -> hv.Element:
    edges = layers[0].frame
    if not len(edges):
        return hv.Text(0, 0, "No hand-offs in this window").opts(**FRAME, xaxis=None, yaxis=None)
    if has_cycle(edges):
        nodes = hv.Dataset(pd.DataFrame({"agent": sorted({*edges.source, *edges.target})}), "agent")
        chord = hv.Chord((edges, nodes), ["source", "target"], ["count"])
        return chord.opts(
            title="Agent hand-offs (they loop: chord)",
            labels="agent",
            node_color="agent",
            edge_color="source",
            cmap=list(PALETTE),
            edge_cmap=list(PALETTE),
            # A circle needs equal axes: a fixed square rather than the page's width.
            **{**FRAME, "responsive": False, "width": 560, "height": 560, "show_grid": False},
            xaxis=None,
            yaxis=None,
        )
    return hv.Sankey(edges, ["source", "target"], ["count"]).opts(
        title="Agent hand-offs",
        labels="index",
        node_color="index",
        cmap=list(PALETTE),
        edge_color="source",
        **{**FRAME, "min_height": 420},
    )


def named(table: pd.DataFrame, names: Mapping[str, str], *columns: str) -> pd.DataFrame:
    """``table`` with agent ids in ``columns`` replaced by their names."""
    return table.assign(**{c: table[c].map(lambda agent: names.get(agent, agent)) for c in columns})


class MetricsView(View):
    """Distributions and breakdowns of the window's messages.

    Week over week reads a 7-day window of the same filters (and the 7 days before).
    Most of these charts are drawn again on new data, so they follow it every 30 s.
    """

    data_refresh_seconds = 30.0

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.week = derived(self.messages, window="7d", start=None, end=None)
        self.histogram = LiveChart(
            lambda layers: histogram(layers, title="Reply latency", xlabel="ms"), height=280
        )
        self.ecdf = LiveChart(_ecdf, height=280)
        self.bands = LiveChart(_bands, height=280)
        self.tokens = LiveChart(
            lambda layers: _agent_bars(layers, "Tokens by agent", "tokens", "0.[0]a"),
            value_axis="x",
            height=300,
        )
        self.errors = LiveChart(
            lambda layers: _agent_bars(layers, "Error rate by agent", "error_rate", "0.0%"),
            value_axis="x",
            height=300,
        )
        self.week_chart = LiveChart(_week, height=280)
        self.handoffs = LiveChart(_handoffs, height=420)
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
        ecdf = thin_ecdf(memo(metrics.latency_ecdf, frame, by="agent_id"), "agent_id")
        self.ecdf.update(
            [Layer(names.get(agent, agent), _columns(rows)) for agent, rows in ecdf.items()]
        )
        start, end = messages.bounds
        interval = metrics.choose_interval(pd.Timestamp(start), pd.Timestamp(end))
        latency = memo(metrics.latency_series, frame, interval, tz=messages.tz)
        timestamp = wall_time(latency.index)

        def band(low: str, high: str) -> Layer:
            columns = {"timestamp": timestamp, "high": latency[high], "low": latency[low]}
            return Layer(f"{low} to {high}", _columns(columns))

        median = Layer("p50", _columns({"timestamp": timestamp, "latency_ms": latency["p50"]}))
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
        times = wall_time(pd.DatetimeIndex(start + counts["offset"]).tz_convert(tz))
        self.week_chart.update(
            [
                Layer(label, {"timestamp": times, "messages": counts[column].to_numpy()})
                for label, column in (("this week", "this_week"), ("last week", "last_week"))
            ]
        )


def _columns(table: pd.DataFrame | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Source columns from a frame or a mapping of series and arrays."""
    return {str(name): np.asarray(values) for name, values in dict(table.items()).items()}
