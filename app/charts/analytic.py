"""Analytic charts: distributions and breakdowns, as plain Bokeh figures.

Latency histograms and ECDFs, bars per agent and the matrix of agent hand-offs
are drawn from layers (:mod:`app.charts.layers`); a chart never computes a
statistic, the metrics do.  :class:`~app.charts.live.LiveFigure` keeps them up
to date.  Like the time charts (:mod:`app.charts.time`), they are Bokeh figures
built directly: HoloViews took four fifths of the time to open the Metrics tab.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from bokeh.models import (
    DataRange1d,
    FactorRange,
    HBar,
    HoverTool,
    LinearColorMapper,
    LogScale,
    NumeralTickFormatter,
    Quad,
    Rect,
    Step,
)
from bokeh.models.annotations import ColorBar, Legend, LegendItem
from bokeh.palettes import Blues256

from app.charts.layers import Layer
from app.charts.time import FigureKit, add_glyph, plain_figure
from app.theme import PALETTE, color_for

ECDF_POINTS = 100
HANDOFF_COLORS = Blues256[::-1][64:]
"""Light to dark blue, leaving out the near-white end, so one hand-off shows on a white
page as on a dark one."""


def histogram_layer(table: pd.DataFrame, label: str) -> Layer:
    """Bars of a ``left, right, count`` table (e.g. ``metrics.latency_distribution``)."""
    count = table["count"].to_numpy(dtype="float64")
    columns = {
        "left": table["left"].to_numpy(),
        "bottom": np.zeros(len(table)),
        "right": table["right"].to_numpy(),
        "top": count,
        "count": count,
    }
    return Layer(label, columns)


def bins_text(table: pd.DataFrame, log: bool = False) -> str:
    """The width of a histogram's bins (a ``left, right, count`` table), as a title says it."""
    if not len(table):
        return "no bins"
    left, right = float(table["left"].iloc[0]), float(table["right"].iloc[0])
    if log:
        return f"log bins, each {right / left:.2f}x the one before"
    return f"bins of {right - left:,.0f} ms"


def _value_frame(
    title: str, xlabel: str, ylabel: str, log: bool, kit: FigureKit, y_range: Any = None
) -> Any:
    """A figure of numbers along x (a log axis with ``log``) and y from zero."""
    plot = plain_figure(
        title,
        x_range=DataRange1d(range_padding=0.02),
        y_range=y_range or DataRange1d(range_padding=0.05, start=0),
    )
    plot.x_scale = LogScale() if log else kit.scale
    plot.y_scale = kit.scale
    kit.axis(plot, "below", xlabel, kind="log" if log else "linear")
    kit.axis(plot, "left", ylabel, kind="count" if ylabel == "count" else "linear")
    return plot


def histogram(
    layers: Sequence[Layer],
    *,
    title: str,
    xlabel: str,
    log: bool = False,
    kit: FigureKit | None = None,
) -> Any:
    """Bars between numeric edges from :func:`histogram_layer`, counted from zero;
    ``log`` puts the edges on a log axis (for bins of equal width in log)."""
    kit = kit or FigureKit()
    plot = _value_frame(title, xlabel, "count", log, kit)
    bars = [
        add_glyph(
            plot,
            Quad(
                left="left",
                right="right",
                bottom="bottom",
                top="top",
                fill_color=color_for(layer.label, i),
                line_alpha=0,
            ),
            layer,
            kit,
        )
        for i, layer in enumerate(layers)
    ]
    tooltips = [("from", "@left{0,0} ms"), ("to", "@right{0,0} ms"), ("count", "@count{0,0}")]
    plot.add_tools(HoverTool(renderers=bars, tooltips=tooltips))
    return plot


def thin_ecdf(ecdf: pd.DataFrame, by: str, points: int = ECDF_POINTS) -> dict[str, pd.DataFrame]:
    """Each group's ECDF at ``points`` evenly spaced fractions: enough to draw, small to send."""
    steps = np.linspace(0, 1, points + 1)[1:]
    thinned = {}
    for key, group in ecdf.groupby(by, sort=True):
        fraction = group["fraction"].to_numpy()
        rows = np.unique(np.searchsorted(fraction, steps).clip(max=len(group) - 1))
        thinned[str(key)] = group.iloc[rows]
    return thinned


def ecdf(layers: Sequence[Layer], *, title: str, kit: FigureKit | None = None) -> Any:
    """One step line per layer (``latency_ms``, ``fraction``), latency on a log axis, and
    a legend inside, where an ECDF leaves room (few replies are slow and few fast)."""
    kit = kit or FigureKit()
    plot = _value_frame(
        title, "latency (ms, log scale)", "share of replies", True, kit, DataRange1d(start=0, end=1)
    )
    lines = [
        add_glyph(
            plot,
            Step(
                x="latency_ms",
                y="fraction",
                mode="after",
                line_color=color_for(layer.label, i),
                line_width=2,
                # Past the palette's ten colours, a dashed line tells an agent from the one
                # that has its colour.
                line_dash="solid" if i < len(PALETTE) else "dashed",
            ),
            layer,
            kit,
        )
        for i, layer in enumerate(layers)
    ]
    plot.add_tools(
        HoverTool(
            renderers=lines,
            tooltips=[
                ("", "$name"),
                ("latency", "@latency_ms{0,0} ms"),
                ("share", "@fraction{0%}"),
            ],
        )
    )
    legend = Legend(
        items=[LegendItem(label=line.name, renderers=[line]) for line in lines],
        location="bottom_right",
        click_policy="hide",
        ncols=1 + len(lines) // 11,
        label_text_font_size="7.5pt",
        spacing=0,
        glyph_height=12,
        label_height=12,
        background_fill_alpha=0.6,
    )
    legend.padding = 4  # type: ignore[assignment]  # Bokeh types it as its Property
    plot.add_layout(legend)
    return plot


def rows_height(rows: int, each: int, frame: int) -> int:
    """Pixels a chart of ``rows`` categories needs for each to be ``each`` high, with
    ``frame`` for its title and axis; at least the height of the other charts."""
    return max(300, frame + each * rows)


def agent_bars(
    layers: Sequence[Layer],
    *,
    title: str,
    xlabel: str,
    parts: Sequence[tuple[str | None, str, str, str]],
    number_format: str,
    kit: FigureKit | None = None,
) -> Any:
    """Horizontal bars per agent (the layer's ``agent`` column, first row at the bottom),
    made of ``parts`` side by side along x: (start column, or None for zero; end column;
    column of the value, for hovering; label) each.  A legend names them when there are
    several."""
    (layer,) = layers
    kit = kit or FigureKit()
    plot = plain_figure(
        title,
        tools=["save"],
        x_range=DataRange1d(range_padding=0.05, start=0),
        y_range=FactorRange(factors=[str(a) for a in layer.columns["agent"]]),
        height=rows_height(len(layer.columns["agent"]), 22, 100),
    )
    plot.x_scale = kit.scale
    kit.axis(plot, "below", xlabel, grid=False)
    plot.below[0].formatter = NumeralTickFormatter(format=number_format)
    kit.axis(plot, "left", kind="categorical", grid=False)
    bars = [
        add_glyph(
            plot,
            HBar(
                y="agent",
                left=0 if start is None else start,
                right=end,
                height=0.8,
                fill_color=PALETTE[i],
                line_color=PALETTE[i],
            ),
            layer,
            kit,
        )
        for i, (start, end, _, _) in enumerate(parts)
    ]
    tooltips = [("agent", "@agent")] + [
        (label, f"@{{{value}}}{{{number_format}}}") for _, _, value, label in parts
    ]
    plot.add_tools(HoverTool(renderers=bars[:1], tooltips=tooltips))
    if len(parts) > 1:
        items = [
            LegendItem(label=part[3], renderers=[bar])
            for part, bar in zip(parts, bars, strict=True)
        ]
        plot.add_layout(Legend(items=items), "right")
    return plot


def handoffs(layers: Sequence[Layer], *, title: str, kit: FigureKit | None = None) -> Any:
    """Agent hand-offs (``source, target, count``) as a matrix, from-agent by row and
    to-agent by column, darker for more: readable from two agents to fifty, loops or not."""
    (layer,) = layers
    edges = layer.columns
    agents = sorted({*map(str, edges["source"]), *map(str, edges["target"])})
    kit = kit or FigureKit()
    plot = plain_figure(
        title,
        tools=["save"],
        x_range=FactorRange(factors=agents),
        y_range=FactorRange(factors=agents[::-1]),
        height=rows_height(len(agents), 18, 160),
    )
    kit.axis(plot, "below", "to", kind="categorical", grid=False)
    kit.axis(plot, "left", "from", kind="categorical", grid=False)
    plot.below[0].major_label_orientation = np.pi / 4
    colors = LinearColorMapper(palette=HANDOFF_COLORS, low=0, high=max(edges["count"].max(), 1))
    cells = add_glyph(
        plot,
        Rect(
            x="target",
            y="source",
            width=0.95,
            height=0.95,
            fill_color={"field": "count", "transform": colors},
            line_alpha=0,
        ),
        layer,
        kit,
    )
    plot.add_tools(
        HoverTool(
            renderers=[cells],
            tooltips=[("from", "@source"), ("to", "@target"), ("hand-offs", "@count{0,0}")],
        )
    )
    plot.add_layout(ColorBar(color_mapper=colors, title="hand-offs", width=12), "right")
    return plot
