"""Analytic charts: distributions and breakdowns, drawn by HoloViews.

Latency histograms and ECDFs, bars per agent and agent hand-offs are HoloViews
elements built from layers (:mod:`app.charts.layers`); a chart never computes a
statistic, the metrics do.  :class:`~app.charts.live.LiveChart` keeps them up
to date.  (Charts over time are in :mod:`app.charts.time`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
from bokeh.models import NumeralTickFormatter

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
    "legend_position": "right",
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


def histogram(layers: Sequence[Layer], *, title: str, xlabel: str) -> hv.Overlay:
    """Bars between numeric edges from :func:`histogram_layer`."""
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
        title=title, xlabel=xlabel, ylabel="count", **{**FRAME, "show_legend": False}
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


def ecdf(layers: Sequence[Layer]) -> hv.Overlay:
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


def agent_bars(layers: Sequence[Layer], title: str, value: str, number_format: str) -> hv.Bars:
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


def handoffs(layers: Sequence[Layer]) -> hv.Element:
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
