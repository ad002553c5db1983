"""Time charts: Bokeh figures over a time axis, for every view and the report.

Counts and percentiles over time are drawn here, and only here, as plain Bokeh
figures: HoloViews analyses nothing in them, and drawing them without it takes a
fraction of the time and memory of each session.  The layers of one chart share
one source when their rows are the same time bins (see
:func:`~app.charts.layers.wide_columns`), or have one each (``shared=False``).
Each builder returns a figure whose glyph renderers are named by their layers'
labels, for :class:`~app.charts.live.LiveFigure` to keep up to date.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from bokeh.core.properties import value as literal
from bokeh.events import SelectionGeometry
from bokeh.models import (
    AllIndices,
    AllLabels,
    Axis,
    BasicTicker,
    BoxSelectTool,
    CategoricalAxis,
    CDSView,
    ColumnDataSource,
    DataRange1d,
    DatetimeAxis,
    DatetimeTicker,
    DatetimeTickFormatter,
    FactorRange,
    Grid,
    HoverTool,
    Line,
    LinearAxis,
    LinearScale,
    LogAxis,
    LogScale,
    NumeralTickFormatter,
    Quad,
    Range,
    Range1d,
    Scatter,
    UnionRenderers,
)
from bokeh.models.annotations import Legend, LegendItem
from bokeh.plotting import figure

from app.charts.layers import Columns, Layer, _own, layer_column, wall_time, wide_columns
from app.theme import PALETTE, color_for
from pipelines.windows import to_local

TOOLS = ["box_zoom", "save", "reset"]
"""The tools of a chart nothing else zooms."""
MIN_HEIGHT = 240
LATENCY_BINS = 60
"""Latency over time is binned coarser than counts (at most this many bins): a percentile
needs replies in its bin, and a line through sparse bins would break into dots."""
BARS_SHARED = ("left", "right")
"""The columns the layers of :func:`stacked_layers` share."""
LINES_SHARED = ("timestamp",)
"""The column the layers of :func:`series_layers` share."""
BANDS_SHARED = ("left", "right", "timestamp")
"""The columns the layers of :func:`bands` share: each bin's edges and its middle."""


def stacked_layers(table: pd.DataFrame, interval: str, labels: Mapping[str, str]) -> list[Layer]:
    """Stacked bars of a time series table (bins x series), one layer per column.

    Each layer holds the ``left``/``right`` edges of its bars (wall time), their
    ``bottom``/``top`` on the stack and the series' own ``count``.
    """
    left = wall_time(table.index)
    right = left + pd.Timedelta(interval).to_timedelta64()
    layers, bottom = [], np.zeros(len(table))
    for column in table.columns:
        count = table[column].to_numpy(dtype="float64")
        top = bottom + count
        columns = {"left": left, "bottom": bottom, "right": right, "top": top, "count": count}
        layers.append(Layer(labels.get(column, str(column)), columns))
        bottom = top
    return layers


def series_layers(table: pd.DataFrame, value: str, columns: Sequence[str]) -> list[Layer]:
    """One line per column of a time series table, labelled by the column, valued ``value``."""
    timestamp = wall_time(table.index)
    return [Layer(c, {"timestamp": timestamp, value: table[c].to_numpy()}) for c in columns]


_UNITS = {"s": "s", "min": "min", "h": "hours", "D": "days"}
_ONE = {"s": "second", "min": "minute", "h": "hour", "D": "day"}


def bin_name(interval: str) -> str:
    """A pandas offset alias as people say it: ``5min`` "5 min", ``1h`` "hour", ``7D`` "7 days"."""
    delta = pd.Timedelta(interval)
    for unit, seconds in (("D", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, rest = divmod(int(delta.total_seconds()), seconds)
        if count and not rest:
            return _ONE[unit] if count == 1 else f"{count} {_UNITS[unit]}"
    return str(delta)


def on_time_range(select: Callable[[Any, Any], None]) -> Callable[[Any], None]:
    """A ``link`` for :class:`LiveFigure`: ``select(x0, x1)`` on a box selection along x."""

    def link(plot: Any) -> None:
        def selected(event: SelectionGeometry) -> None:
            geometry: dict[str, Any] = dict(event.geometry or {})
            if event.final and geometry.get("type") == "rect":
                # A datetime axis speaks milliseconds since the epoch (of wall time).
                select(*(pd.Timestamp(geometry[x], unit="ms") for x in ("x0", "x1")))

        plot.on_event(SelectionGeometry, selected)

    return link


def plain_figure(
    title: str,
    *,
    tools: Sequence[str] = TOOLS,
    **params: Any,
) -> Any:
    """A Bokeh figure with the dashboard's title, toolbar and height, without axes."""
    plot = figure(
        title=title,
        tools=list(tools),
        toolbar_location="above",
        sizing_mode="stretch_width",
        min_height=MIN_HEIGHT,
        x_axis_type=None,
        y_axis_type=None,
        **params,
    )
    plot.toolbar.logo = None
    return plot


class FigureKit:
    """Models that the figures of one page share rather than build one each.

    Bokeh's date ticks are sixteen models per axis; the tick placement and
    labels of value axes, their scale, the selection policy of sources, the
    filter that shows every row and the look of a selection box's handles are
    one each.  None of them holds state of its own, and each model a figure
    holds costs every session about 8 KB of server memory.
    """

    def __init__(self) -> None:
        # Bokeh's round times, five to an axis: labels of half-width charts do not touch.
        self.time_ticker = DatetimeTicker(desired_num_ticks=5)
        self.time_formatter = _time_formatter()
        # Thousands separated, never 1.4e+5 (counts of a 90-day window reach millions).
        self.ticker, self.formatter = BasicTicker(), NumeralTickFormatter(format="0,0.[000]")
        self.count_ticker = BasicTicker(min_interval=1)  # no 0.2 of a message
        # Each figure scales a copy of it (in the browser), and the time charts of a page
        # show one window: one range for their time axes keeps them aligned too.
        self.scale = LinearScale()
        self.time_range = Range1d()
        self.labels = AllLabels()
        self.selection_policy = UnionRenderers()
        self.all_rows = AllIndices()
        self.handles: Any = None  # the first selection box's

    def source(self, columns: Columns) -> ColumnDataSource:
        """A source holding its own copy of ``columns``, which :func:`sync_source` may patch.

        (Columns read from shared, copy-on-write frames are read-only: Bokeh would skip
        patches to them, and they belong to every session.)
        """
        return ColumnDataSource(_own(columns), selection_policy=self.selection_policy)

    def view(self) -> CDSView:
        """A view of every row of a source."""
        return CDSView(filter=self.all_rows)

    def axis(
        self, plot: Any, place: str, label: str = "", kind: str = "linear", grid: bool = True
    ) -> None:
        """Add an axis (``linear``, ``count``, ``log``, ``time`` or ``categorical``), with grid
        lines or not; a ``count`` axis ticks whole numbers only.  (A ``log`` axis needs the
        figure's scale along it to be a ``LogScale``.)"""
        common: dict[str, Any] = {"axis_label": label, "major_label_policy": self.labels}
        axis: Axis
        if kind == "time":
            axis = DatetimeAxis(ticker=self.time_ticker, formatter=self.time_formatter, **common)
        elif kind == "categorical":
            axis = CategoricalAxis(**common)
        elif kind == "log":
            axis = LogAxis(**common)
        else:
            ticker = self.count_ticker if kind == "count" else self.ticker
            # Bokeh types a linear axis' formatter as its default's class; any one works.
            axis = LinearAxis(ticker=ticker, formatter=self.formatter, **common)  # type: ignore[arg-type]
        plot.add_layout(axis, place)
        if grid:
            plot.add_layout(Grid(dimension=0 if place in ("above", "below") else 1, axis=axis))

    def select_x(self, plot: Any) -> None:
        """Make a drag along x select a time range (see :func:`on_time_range`)."""
        tool = BoxSelectTool(dimensions="width")
        if self.handles is None:
            self.handles = tool.overlay.handles
        else:
            tool.overlay.handles = self.handles
        plot.add_tools(tool)
        plot.toolbar.active_drag = tool

    def span(
        self, start: datetime, end: datetime, tz: str, time_range: Range1d | None = None
    ) -> None:
        """Make the time axes (of ``time_range``, else the kit's) span exactly [start, end]
        (aware times), shown in ``tz``; the reset tool goes back to it."""
        shown = time_range or self.time_range
        wall_start, wall_end = (to_local(pd.Timestamp(t), tz).to_pydatetime() for t in (start, end))
        if (shown.start, shown.end) != (wall_start, wall_end):
            shown.update(start=wall_start, end=wall_end, reset_start=wall_start, reset_end=wall_end)


def _time_formatter() -> DatetimeTickFormatter:
    """Short tick labels; the day (or the year) under the first tick and where it changes.

    (Bokeh's own puts "Dec 01, 2026" under every new day, which runs together on
    half-width charts.)
    """
    day = "%b %d"
    context = DatetimeTickFormatter(
        seconds=day, minsec=day, minutes=day, hourmin=day, hours=day, days="%Y", months="", years=""
    )
    return DatetimeTickFormatter(
        seconds="%H:%M:%S",
        minsec="%H:%M:%S",
        minutes="%H:%M",
        hourmin="%H:%M",
        hours="%H:%M",
        days=day,
        months="%b %Y",
        years="%Y",
        context=context,
    )


def _time_frame(
    title: str,
    ylabel: str,
    select: bool,
    kit: FigureKit,
    *,
    counts: bool = False,
    log: bool = False,
    time_range: Range | None = None,
) -> Any:
    """A time figure: its x axis spans ``time_range`` (the kit's), its y axis starts at
    zero (or is a log axis)."""
    plot = plain_figure(
        title,
        # Where a drag selects a time range, it narrows the window of every view: that
        # is the zoom, and a zoom tool of its own (with a reset) would only be more to
        # build per session.
        tools=["save"] if select else TOOLS,
        x_range=time_range or kit.time_range,
        y_range=DataRange1d(range_padding=0.05)
        if log
        else DataRange1d(range_padding=0.05, start=0),
    )
    plot.x_scale = kit.scale
    plot.y_scale = LogScale() if log else kit.scale
    kit.axis(plot, "below", kind="time")
    kit.axis(plot, "left", ylabel, kind="log" if log else "count" if counts else "linear")
    if select:
        kit.select_x(plot)
    return plot


def bar_frame(
    title: str, categories: Iterable[Any], xlabel: str, kit: FigureKit | None = None
) -> Any:
    """A figure for horizontal bars over ``categories``, counts from zero, without a grid."""
    kit = kit or FigureKit()
    plot = plain_figure(
        title,
        tools=["save"],
        x_range=DataRange1d(range_padding=0.05, start=0),
        y_range=FactorRange(factors=[str(c) for c in categories]),
    )
    plot.x_scale = kit.scale
    kit.axis(plot, "below", xlabel, kind="count", grid=False)
    kit.axis(plot, "left", kind="categorical", grid=False)
    return plot


def _legend(plot: Any, renderers: Sequence[Any]) -> None:
    items = [LegendItem(label=literal(r.name), renderers=[r]) for r in renderers]
    plot.add_layout(Legend(items=items, click_policy="hide"), "right")


def stacked_bars(
    layers: Sequence[Layer],
    *,
    title: str,
    ylabel: str,
    select: bool = False,
    kit: FigureKit | None = None,
    number: str = "0,0",
    counts: bool = True,
) -> Any:
    """Stacked bars of counts over time from :func:`stacked_layers`; of amounts (dollars)
    without ``counts``, whose axis then ticks fractions too.

    Hovering a bar shows every series of its time bin, each as ``number`` formats it
    (a Bokeh number format: ``$0,0.00`` for dollars).
    """
    kit = kit or FigureKit()
    return _time_chart(
        _time_frame(title, ylabel, select, kit, counts=counts),
        layers,
        lambda i, layer: Quad(
            left="left",
            right="right",
            bottom=layer_column("bottom", i),
            top=layer_column("top", i),
            fill_color=color_for(layer.label, i),
            line_alpha=0,
        ),
        hover=lambda i, layer: (layer.label, f"@{{{layer_column('count', i)}}}{{{number}}}"),
        shared=BARS_SHARED,
        kit=kit,
    )


def lines(
    layers: Sequence[Layer],
    *,
    value: str,
    title: str,
    ylabel: str,
    select: bool = False,
    markers: bool = False,
    dashed: Collection[str] = (),
    shared: bool = True,
    counts: bool = False,
    log: bool = False,
    time_range: Range | None = None,
    kit: FigureKit | None = None,
) -> Any:
    """Lines over time from :func:`series_layers`, valued ``value``.

    ``dashed`` names layers drawn dashed; with ``markers``, a dot on each value
    (a value between two gaps draws no line, and would not show without it).
    Layers whose rows differ (``shared=False``) get a source each; hovering then
    shows the line under the pointer, else every line's value at that time.
    ``counts`` ticks whole numbers, ``log`` draws values on a log scale;
    ``time_range`` is the range of the time axis (default: the kit's).
    """

    def line(i: int, layer: Layer) -> Any:
        x, y = ("timestamp", layer_column(value, i)) if shared else ("timestamp", value)
        return Line(
            x=x,
            y=y,
            line_color=color_for(layer.label, i),
            line_width=2,
            line_dash="dashed" if layer.label in dashed else "solid",
        )

    def dot(i: int, layer: Layer) -> Any:
        y = layer_column(value, i) if shared else value
        color = color_for(layer.label, i)
        return Scatter(x="timestamp", y=y, size=4, fill_color=color, line_color=color)

    kit = kit or FigureKit()
    plot = _time_frame(title, ylabel, select, kit, counts=counts, log=log, time_range=time_range)
    return _time_chart(
        plot,
        layers,
        line,
        hover=lambda i, layer: (layer.label, f"@{{{layer_column(value, i)}}}{{0,0}} {ylabel}"),
        shared=LINES_SHARED if shared else None,
        kit=kit,
        markers=dot if markers else None,
        value=(value, ylabel),
    )


def bands(
    layers: Sequence[Layer],
    *,
    title: str,
    ylabel: str,
    log: bool = False,
    kit: FigureKit | None = None,
) -> Any:
    """Bands between ``low`` and ``high`` in each time bin (``left`` to ``right``), and a
    line through the ``value`` of layers that have one instead (a median inside its
    bands), with a dot on each; all of the same bins (see :data:`BANDS_SHARED`).

    A bin without a value has no band and breaks the line: a gap in the data is a gap
    in the chart.  ``log`` draws the values on a log scale.
    """

    def glyph(i: int, layer: Layer) -> Any:
        color = PALETTE[i % len(PALETTE)]
        if "low" in layer.columns:
            return Quad(
                left="left",
                right="right",
                bottom=layer_column("low", i),
                top=layer_column("high", i),
                fill_color=color,
                fill_alpha=0.5,
                line_alpha=0,
            )
        return Line(x="timestamp", y=layer_column("value", i), line_color=color, line_width=2)

    def dot(i: int, layer: Layer) -> Any:
        if "low" in layer.columns:
            return None
        color = PALETTE[i % len(PALETTE)]
        y = layer_column("value", i)
        return Scatter(x="timestamp", y=y, size=4, fill_color=color, line_color=color)

    def hover(i: int, layer: Layer) -> tuple[str, str]:
        if "low" in layer.columns:
            low, high = layer_column("low", i), layer_column("high", i)
            return layer.label, f"@{{{low}}}{{0,0}} to @{{{high}}}{{0,0}} {ylabel}"
        return layer.label, f"@{{{layer_column('value', i)}}}{{0,0}} {ylabel}"

    kit = kit or FigureKit()
    plot = _time_frame(title, ylabel, False, kit, log=log)
    return _time_chart(plot, layers, glyph, hover=hover, shared=BANDS_SHARED, kit=kit, markers=dot)


def _time_chart(
    plot: Any,
    layers: Sequence[Layer],
    glyph: Callable[[int, Layer], Any],
    *,
    hover: Callable[[int, Layer], tuple[str, str]],
    shared: Sequence[str] | None,
    kit: FigureKit,
    markers: Callable[[int, Layer], Any | None] | None = None,
    value: tuple[str, str] | None = None,
) -> Any:
    """One glyph per layer on ``plot`` (a :func:`_time_frame`), a hover tool and a legend;
    ``markers`` adds a glyph to the layers it gives one.

    With ``shared`` (the columns the layers share) all glyphs read one source and
    hovering shows every layer at that time (``hover`` gives each one's label and
    field).  (A source of their own per glyph would be five more models per layer,
    in every session: the source, its selection and its policy, a view and its
    filter.)  Without, each layer has its own source and hovering shows the one under
    the pointer (``value``: its column and unit).
    """
    view = kit.view()
    if shared is not None:
        source = kit.source(wide_columns(layers, shared))
        sources = [source] * len(layers)
    else:
        sources = [kit.source(layer.columns) for layer in layers]
    renderers = [
        plot.add_glyph(source, glyph(i, layer), view=view, name=layer.label)
        for i, (layer, source) in enumerate(zip(layers, sources, strict=True))
    ]
    if markers is not None:
        for i, (layer, source) in enumerate(zip(layers, sources, strict=True)):
            if (marker := markers(i, layer)) is not None:
                plot.add_glyph(source, marker, view=view)
    when = "from" if shared == BARS_SHARED else "at"
    x = "left" if shared == BARS_SHARED else "timestamp"
    if shared is not None:
        tooltips = [hover(i, layer) for i, layer in enumerate(layers)]
    else:
        assert value is not None
        tooltips = [("", "$name"), (value[1], f"@{{{value[0]}}}{{0,0.[00]}}")]
    tooltips.append((when, f"@{x}{{%F %H:%M}}"))
    plot.add_tools(
        HoverTool(renderers=renderers, tooltips=tooltips, formatters={f"@{x}": "datetime"})
    )
    _legend(plot, renderers)
    return plot


def add_glyph(plot: Any, glyph: Any, layer: Layer, kit: FigureKit | None = None) -> Any:
    """Draw ``glyph`` from a source of its own holding ``layer``, named by the layer's label.

    Unlike ``figure.quad()`` and friends, this leaves the dimmed look of unselected
    and muted glyphs to the browser ("auto"), instead of two more models per glyph
    in every session.
    """
    kit = kit or FigureKit()
    return plot.add_glyph(kit.source(layer.columns), glyph, view=kit.view(), name=layer.label)
