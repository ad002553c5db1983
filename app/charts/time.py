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
    BasicTickFormatter,
    BoxSelectTool,
    CategoricalAxis,
    CDSView,
    ColumnDataSource,
    DataRange1d,
    DatetimeAxis,
    FactorRange,
    Grid,
    HoverTool,
    Line,
    LinearAxis,
    LinearScale,
    Quad,
    Scatter,
    UnionRenderers,
    VArea,
)
from bokeh.models.annotations import Legend, LegendItem
from bokeh.plotting import figure

from app.charts.layers import Columns, Layer, _own, layer_column, wall_time, wide_columns
from app.theme import PALETTE, color_for

TOOLS = ["box_zoom", "save", "reset"]
"""The tools of a chart nothing else zooms."""
MIN_HEIGHT = 240
BARS_SHARED = ("left", "right")
"""The columns the layers of :func:`stacked_layers` share."""
LINES_SHARED = ("timestamp",)
"""The column the layers of :func:`series_layers` share."""


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


def _frame(
    title: str,
    *,
    tools: Sequence[str] = TOOLS,
    **params: Any,
) -> Any:
    """A Bokeh figure dressed as :data:`FRAME` dresses the HoloViews charts, without axes."""
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
        axis = DatetimeAxis()  # Bokeh's own: round times, with the date under the hours
        self.time_ticker, self.time_formatter = axis.ticker, axis.formatter
        self.ticker, self.formatter = BasicTicker(), BasicTickFormatter()
        # Each figure scales a copy of it (in the browser), and the time charts of a page
        # show one window: one range for their time axes keeps them aligned too.
        self.scale = LinearScale()
        self.time_range = DataRange1d(range_padding=0.05)
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
        """Add an axis (``linear``, ``time`` or ``categorical``), with grid lines or not."""
        common: dict[str, Any] = {"axis_label": label, "major_label_policy": self.labels}
        axis: Axis
        if kind == "time":
            axis = DatetimeAxis(ticker=self.time_ticker, formatter=self.time_formatter, **common)
        elif kind == "categorical":
            axis = CategoricalAxis(**common)
        else:
            axis = LinearAxis(ticker=self.ticker, formatter=self.formatter, **common)
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


def _time_frame(title: str, ylabel: str, select: bool, kit: FigureKit) -> Any:
    plot = _frame(
        title,
        # Where a drag selects a time range, it narrows the window of every view: that
        # is the zoom, and a zoom tool of its own (with a reset) would only be more to
        # build per session.
        tools=["save"] if select else TOOLS,
        x_range=kit.time_range,
        y_range=DataRange1d(range_padding=0.05, start=0),
    )
    plot.x_scale = plot.y_scale = kit.scale
    kit.axis(plot, "below", kind="time")
    kit.axis(plot, "left", ylabel)
    if select:
        kit.select_x(plot)
    return plot


def bar_frame(
    title: str, categories: Iterable[Any], xlabel: str, kit: FigureKit | None = None
) -> Any:
    """A figure for horizontal bars over ``categories``, values from zero, without a grid."""
    kit = kit or FigureKit()
    plot = _frame(
        title,
        tools=["save"],
        x_range=DataRange1d(range_padding=0.05, start=0),
        y_range=FactorRange(factors=[str(c) for c in categories]),
    )
    plot.x_scale = kit.scale
    kit.axis(plot, "below", xlabel, grid=False)
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
) -> Any:
    """Stacked bars over time from :func:`stacked_layers`.

    Hovering a bar shows every series of its time bin, each as ``number`` formats it
    (a Bokeh number format: ``$0,0.00`` for dollars).
    """
    return _time_chart(
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
        frame=(title, ylabel, select),
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
    kit: FigureKit | None = None,
) -> Any:
    """Lines over time from :func:`series_layers`, valued ``value``.

    ``dashed`` names layers drawn dashed; with ``markers``, a dot on each value
    (for series of events, whose first value alone would draw no line).  Layers
    whose rows differ (``shared=False``) get a source each; hovering then shows
    the line under the pointer, else every line's value at that time.
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
        return Scatter(x="timestamp", y=y, size=6, fill_color=color_for(layer.label, i))

    return _time_chart(
        layers,
        line,
        hover=lambda i, layer: (layer.label, f"@{{{layer_column(value, i)}}}{{0,0}} {ylabel}"),
        shared=LINES_SHARED if shared else None,
        frame=(title, ylabel, select),
        kit=kit,
        markers=dot if markers else None,
        value=(value, ylabel),
    )


def bands(layers: Sequence[Layer], *, title: str, ylabel: str, kit: FigureKit | None = None) -> Any:
    """Bands between ``low`` and ``high`` over time, and lines of layers that have a
    ``value`` column instead (a median inside its bands), all of the same time bins."""

    def glyph(i: int, layer: Layer) -> Any:
        color = PALETTE[i % len(PALETTE)]
        if "low" in layer.columns:
            return VArea(
                x="timestamp",
                y1=layer_column("low", i),
                y2=layer_column("high", i),
                fill_color=color,
                fill_alpha=0.5,
            )
        return Line(x="timestamp", y=layer_column("value", i), line_color=color, line_width=2)

    def hover(i: int, layer: Layer) -> tuple[str, str]:
        if "low" in layer.columns:
            low, high = layer_column("low", i), layer_column("high", i)
            return layer.label, f"@{{{low}}}{{0,0}} to @{{{high}}}{{0,0}} {ylabel}"
        return layer.label, f"@{{{layer_column('value', i)}}}{{0,0}} {ylabel}"

    return _time_chart(
        layers, glyph, hover=hover, shared=LINES_SHARED, frame=(title, ylabel, False), kit=kit
    )


def _time_chart(
    layers: Sequence[Layer],
    glyph: Callable[[int, Layer], Any],
    *,
    hover: Callable[[int, Layer], tuple[str, str]],
    shared: Sequence[str] | None,
    frame: tuple[str, str, bool],
    kit: FigureKit | None,
    markers: Callable[[int, Layer], Any] | None = None,
    value: tuple[str, str] | None = None,
) -> Any:
    """A time figure (``frame``: title, y label, drag-select), one glyph per layer, a
    hover tool and a legend.

    With ``shared`` (the columns the layers share) all glyphs read one source and
    hovering shows every layer at that time (``hover`` gives each one's label and
    field).  (A source of their own per glyph would be five more models per layer,
    in every session: the source, its selection and its policy, a view and its
    filter.)  Without, each layer has its own source and hovering shows the one under
    the pointer (``value``: its column and unit).
    """
    kit = kit or FigureKit()
    plot = _time_frame(*frame, kit)
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
            plot.add_glyph(source, markers(i, layer), view=view)
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
