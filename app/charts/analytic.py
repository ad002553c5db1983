"""Analytic charts: distributions and breakdowns, drawn by HoloViews.

Latency histograms and ECDFs, bars per agent and the matrix of agent hand-offs
are HoloViews elements built from layers (:mod:`app.charts.layers`); a chart
never computes a statistic, the metrics do.  :class:`~app.charts.live.LiveChart` keeps them up
to date.  (Charts over time are in :mod:`app.charts.time`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
from bokeh.models import BasicTicker, NumeralTickFormatter
from bokeh.palettes import Blues256

from app.charts.layers import Layer
from app.theme import PALETTE, color_for

ECDF_POINTS = 100

FRAME: dict[str, Any] = {
    "responsive": True,
    "min_height": 240,
    "toolbar": "above",
    "default_tools": ["box_zoom", "save", "reset"],
    "backend_opts": {"plot.toolbar.logo": None},
    "show_grid": True,
    "fontscale": 0.9,
}
"""Options every dashboard chart shares."""
BOX = ("left", "bottom", "right", "top")


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


def _whole_counts(plot: Any, element: Any) -> None:
    """Tick the count axis at whole numbers: there is no 0.2 of a message."""
    for axis in plot.state.yaxis:
        axis.ticker = BasicTicker(min_interval=1)


def histogram(layers: Sequence[Layer], *, title: str, xlabel: str, log: bool = False) -> hv.Overlay:
    """Bars between numeric edges from :func:`histogram_layer`, counted from zero;
    ``log`` puts the edges on a log axis (for bins of equal width in log)."""
    bars = [
        hv.Rectangles(layer.frame, kdims=list(BOX), vdims=["count"], label=layer.label).opts(
            color=color_for(layer.label, i),
            line_alpha=0,
            tools=["hover"],
            hover_tooltips=[("from", "@left{0,0}"), ("to", "@right{0,0}"), ("count", "@count")],
        )
        for i, layer in enumerate(layers)
    ]
    return hv.Overlay(bars).opts(
        title=title,
        xlabel=xlabel,
        ylabel="count",
        logx=log,
        # Bars stand on the x axis, and the axis starts where the first bin does.
        padding=((0, 0.02), (0, 0.05)),
        hooks=[_whole_counts],
        **{**FRAME, "show_legend": False},
    )


def thin_ecdf(ecdf: pd.DataFrame, by: str, points: int = ECDF_POINTS) -> dict[str, pd.DataFrame]:
    """Each group's ECDF at ``points`` evenly spaced fractions: enough to draw, small to send."""
    steps = np.linspace(0, 1, points + 1)[1:]
    thinned = {}
    for key, group in ecdf.groupby(by, sort=True):
        fraction = group["fraction"].to_numpy()
        rows = np.unique(np.searchsorted(fraction, steps).clip(max=len(group) - 1))
        thinned[str(key)] = group.iloc[rows]
    return thinned


def ecdf(layers: Sequence[Layer], *, title: str) -> hv.Overlay:
    """One step line per layer (``latency_ms``, ``fraction``), latency on a log axis."""
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
        title=title,
        xlabel="latency (ms, log scale)",
        ylabel="share of replies",
        logx=True,
        # Inside, where an ECDF leaves room (few replies are slow and few fast): outside,
        # the legend took half the width of the chart.
        legend_position="bottom_right",
        **FRAME,
        legend_cols=1 + len(curves) // 11,
        legend_opts={
            "label_text_font_size": "7.5pt",
            "spacing": 0,
            "padding": 4,
            "glyph_height": 12,
            "label_height": 12,
            "background_fill_alpha": 0.6,
        },
    )


def agent_bars(
    layers: Sequence[Layer], *, title: str, value: str, label: str, number_format: str
) -> hv.Bars:
    """Horizontal bars per agent, valued ``value`` (shown as ``label``); a ``part``
    column stacks parts of each bar."""
    frame = layers[0].frame
    parts = "part" in frame
    kdims = ["agent", "part"] if parts else ["agent"]
    return hv.Bars(frame, kdims, hv.Dimension(value, label=label)).opts(
        title=title,
        invert_axes=True,
        stacked=parts,
        xformatter=NumeralTickFormatter(format=number_format),
        color="part" if parts else PALETTE[0],
        cmap=list(PALETTE),
        tools=["hover"],
        xlabel="",
        legend_position="right",
        **{**FRAME, "min_height": rows_height(frame["agent"].nunique(), 22, 100)},
    )


HANDOFF_COLORS = Blues256[::-1][64:]
"""Light to dark blue, leaving out the near-white end, so one hand-off shows on a white
page as on a dark one."""


def rows_height(rows: int, each: int, frame: int) -> int:
    """Pixels a chart of ``rows`` categories needs for each to be ``each`` high, with
    ``frame`` for its title and axis; at least the height of the other charts."""
    return max(300, frame + each * rows)


def handoffs(layers: Sequence[Layer], *, title: str) -> hv.HeatMap:
    """Agent hand-offs (``source, target, count``) as a matrix, from-agent by row and
    to-agent by column: readable from two agents to fifty, loops or not."""
    edges = layers[0].frame
    agents = sorted({*edges["source"], *edges["target"]})
    return hv.HeatMap(
        edges,
        [hv.Dimension("target", label="to"), hv.Dimension("source", label="from")],
        hv.Dimension("count", label="hand-offs"),
    ).opts(
        title=title,
        cmap=HANDOFF_COLORS,
        clipping_colors={"NaN": "transparent"},  # no hand-off: no cell
        colorbar=True,
        tools=["hover"],
        xrotation=45,
        **{**FRAME, "show_grid": False, "min_height": rows_height(len(agents), 18, 160)},
        fontsize={"xticks": "8pt", "yticks": "8pt"},
    )
