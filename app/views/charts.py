"""Charts that later data update in place.

A chart is drawn once, by HoloViews or directly as a Bokeh figure, from
*layers*: one labelled set of columns per glyph, named as HoloViews names the
columns of the glyph's Bokeh ``ColumnDataSource``.  When new data arrive,
:meth:`LiveChart.update` streams the new rows into those sources and patches
the changed ones, which costs a few hundred bytes on the websocket and almost
no server time; the chart is drawn again only when the new layers do not
continue the old ones (another filter, other columns, other labels).  Bars over
categories (the busiest agents) take new categories, or a new order of them, in place too.

The Overview's live charts (:class:`LiveFigure`) are plain Bokeh figures: they
show counts and percentiles, nothing HoloViews analyses, and drawing them
without it takes a fraction of the time and memory of each session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Literal

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
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
    LayoutDOM,
    Line,
    LinearAxis,
    LinearScale,
    Quad,
    Range1d,
    UnionRenderers,
)
from bokeh.models import Column as BkColumn
from bokeh.models import Row as BkRow
from bokeh.models import Spacer as BkSpacer
from bokeh.models.annotations import Legend, LegendItem
from bokeh.plotting import figure

from app.theme import color_for

Columns = Mapping[str, np.ndarray]
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


@dataclass(frozen=True)
class Layer:
    """The data of one glyph: its label and its source columns, rows keyed by the first column."""

    label: str
    columns: Columns

    @property
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(dict(self.columns))


def wall_time(index: pd.Index | pd.Series) -> np.ndarray:
    """Timestamps as naive local times, which Bokeh's datetime axis shows as they are."""
    values = pd.DatetimeIndex(index)
    if values.tz is not None:
        values = values.tz_localize(None)
    return values.as_unit("ns").to_numpy()


def _comparable(values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "mM":
        return array.astype("datetime64[ns]").view("int64")
    return array


def _changed(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Positions where ``new`` differs from ``old``; NaN equals NaN."""
    a, b = _comparable(old), _comparable(new)
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        a, b = a.astype("float64"), b.astype("float64")
        return np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))))
    return np.flatnonzero(a != b)


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _own(columns: Columns) -> dict[str, Any]:
    return {name: np.array(values) for name, values in columns.items()}


def sync_source(source: ColumnDataSource, columns: Columns) -> bool:
    """Bring ``source`` to ``columns`` with the smallest update Bokeh can send.

    Rows are matched on the first column, whose values are unique: the new rows
    must be the old ones, less some at the start (rolled over), plus some at
    the end (streamed); other cells that changed are patched.  Returns False,
    having changed nothing, when the new rows do not continue the old ones.
    """
    if set(source.data) != set(columns):
        return False
    key = next(iter(columns))
    old_keys, new_keys = _comparable(source.data[key]), _comparable(columns[key])
    if not len(old_keys) or not len(new_keys):
        return False
    first = np.flatnonzero(old_keys == new_keys[0])
    start = int(first[0]) if len(first) else len(old_keys)
    kept = len(old_keys) - start
    if kept == 0 or kept > len(new_keys) or (old_keys[start:] != new_keys[:kept]).any():
        return False
    patches: dict[str, list[tuple[int, Any]]] = {}
    for name, values in columns.items():
        old = np.asarray(source.data[name])[start:]
        changed = _changed(old, np.asarray(values)[:kept])
        if len(changed):
            patches[name] = [(start + int(i), _python(values[i])) for i in changed]
    if patches:
        source.patch(patches)
    if kept < len(new_keys) or start:
        added: dict[str, Any] = {
            name: np.asarray(values)[kept:] for name, values in columns.items()
        }
        source.stream(added, rollover=len(new_keys))
    return True


def _autorange(figure: Any, value_axis: Literal["x", "y"]) -> None:
    """Let the browser fit the axes to the data, so that streamed rows stay in view."""
    for axis in ("x", "y"):
        if isinstance(getattr(figure, f"{axis}_range"), Range1d):
            fitted = DataRange1d(range_padding=0.05)
            if axis == value_axis:
                fitted.start = 0
            setattr(figure, f"{axis}_range", fitted)


class LiveChart(pn.viewable.Viewer):
    """A HoloViews chart of layers; new layers stream into the drawn chart when they can.

    ``draw`` turns layers into a HoloViews element or overlay whose glyphs'
    labels are the layers' labels. ``link`` attaches streams (drill-down) to
    each element drawn.
    """

    def __init__(
        self,
        draw: Callable[[Sequence[Layer]], Any],
        *,
        value_axis: Literal["x", "y"] = "y",
        link: Callable[[Any], None] | None = None,
        **pane_params: Any,
    ) -> None:
        super().__init__()
        self._draw = draw
        self._link = link
        self._value_axis = value_axis
        self._labels: list[str] = []
        self._sources: dict[str, list[ColumnDataSource]] = {}
        self._categories: FactorRange | None = None
        self.redraws = 0
        pane_params.setdefault("sizing_mode", "stretch_width")
        self._pane_params = pane_params
        self._shown_in: pn.pane.HoloViews | pn.pane.Bokeh | None = None

    def __panel__(self) -> pn.pane.HoloViews | pn.pane.Bokeh:
        return self.pane

    @property
    def pane(self) -> pn.pane.HoloViews | pn.pane.Bokeh:
        """The pane showing the chart, made when first asked for."""
        if self._shown_in is None:
            # Filled by the first update(): drawing before the data are known would be wasted.
            self._shown_in = self._pane(**self._pane_params)
        return self._shown_in

    def _pane(self, **params: Any) -> pn.pane.HoloViews | pn.pane.Bokeh:
        return pn.pane.HoloViews(linked_axes=False, **params)

    def _keep(self, label: str, source: ColumnDataSource, plot: Any) -> None:
        """Remember the source of the glyph labelled ``label`` on the Bokeh figure ``plot``."""
        sources = self._sources.setdefault(label, [])
        if all(s is not source for s in sources):
            sources.append(source)
        _autorange(plot, self._value_axis)
        category_axis = "y" if self._value_axis == "x" else "x"
        categories = getattr(plot, f"{category_axis}_range")
        if isinstance(categories, FactorRange):
            self._categories = categories

    def _capture(self, plot: Any, element: hv.Element) -> None:
        source = plot.handles.get("source")
        if source is not None:
            self._keep(element.label, source, plot.state)

    def _redraw(self, layers: Sequence[Layer]) -> None:
        self._labels = [layer.label for layer in layers]
        self._sources.clear()
        self._categories = None
        self.redraws += 1
        self._show(layers)

    def _show(self, layers: Sequence[Layer]) -> None:
        element = self._draw(layers)
        glyphs: Iterable[hv.Element] = element if isinstance(element, hv.Overlay) else [element]
        for glyph in glyphs:
            glyph.opts(hooks=[self._capture])  # the sources exist once the pane renders
        if self._link is not None:
            self._link(element)
        self.pane.object = element

    def _sync(self, layers: Sequence[Layer]) -> bool:
        """Bring the drawn sources to ``layers``; False when only a redraw can."""
        if self._categories is not None:
            return self._recategorise(layers)
        return all(
            sync_source(source, layer.columns)
            for layer in layers
            for source in self._sources[layer.label]
        )

    def _recategorise(self, layers: Sequence[Layer]) -> bool:
        """Bars of one layer over categories (its first column): new values are patched;
        other categories, or the same in another order, replace the rows and the axis'
        factors (rows rolled over and streamed as in a time series would miss the axis)."""
        assert self._categories is not None
        if len(layers) != 1:
            return False
        (layer,) = layers
        sources = self._sources[layer.label]
        factors = [str(key) for key in next(iter(layer.columns.values()))]
        if factors == list(self._categories.factors):
            return all(sync_source(source, layer.columns) for source in sources)
        if len(set(factors)) < len(factors) or any(
            set(source.data) != set(layer.columns) for source in sources
        ):
            return False
        for source in sources:
            source.data = _own(layer.columns)
        self._categories.factors = factors
        return True

    def update(self, layers: Sequence[Layer]) -> None:
        """Show ``layers``: streamed and patched into the drawn chart, else drawn again."""
        labels = [layer.label for layer in layers]
        in_place = (
            labels == self._labels
            and all(self._sources.get(label) for label in labels)
            and self._sync(layers)
        )
        if not in_place:
            self._redraw(layers)


class LiveFigure(LiveChart):
    """A :class:`LiveChart` drawn directly as a Bokeh figure, for charts HoloViews adds nothing to.

    Its layers share one source, side by side (see :func:`wide_columns`): the
    columns they share once, the others once per layer.  ``draw`` returns a
    figure drawn from such a source, its glyph renderers named by the layers'
    labels (see :func:`live_stacked_bars`); ``link`` gets the figure.  The figure
    is shown in a pane of its own, or by :class:`Figures` with others in one.
    """

    def __init__(
        self,
        draw: Callable[[Sequence[Layer]], Any],
        *,
        height: int | None = None,
        **params: Any,
    ) -> None:
        self.figure: Any = None
        self.place: Callable[[Any], None] | None = None
        self._height = height
        super().__init__(draw, height=height, **params)

    def _pane(self, **params: Any) -> pn.pane.HoloViews | pn.pane.Bokeh:
        return pn.pane.Bokeh(**params)

    def _show(self, layers: Sequence[Layer]) -> None:
        plot = self._draw(layers)
        plot.sizing_mode = "stretch_width"
        if self._height is not None:
            plot.height = self._height
        labels = set(self._labels)
        for renderer in plot.renderers:
            if renderer.name in labels:
                self._keep(renderer.name, renderer.data_source, plot)
        if self._link is not None:
            self._link(plot)
        self.figure = plot
        if self.place is not None:
            self.place(plot)
        else:
            self.pane.object = plot

    def _sync(self, layers: Sequence[Layer]) -> bool:
        if self._categories is not None:
            return self._recategorise(layers)
        source = self._sources[self._labels[0]][0]  # the one all layers share
        # The columns the layers share are in the source under their own names.
        shared = [name for name in layers[0].columns if name in source.data]
        return sync_source(source, wide_columns(layers, shared))


class Figures(pn.viewable.Viewer):
    """Live figures, and other Bokeh models, in rows of one Bokeh layout shown by one pane.

    Each Panel pane, layout or widget costs every session about as much memory
    as a small figure; a view with several figures holds them in one.
    """

    def __init__(self, *rows: Sequence[LiveFigure | LayoutDOM], **pane_params: Any) -> None:
        super().__init__()
        layout = BkColumn(sizing_mode="stretch_width")
        for items in rows:
            # An item alone needs no row of its own.
            row = BkRow(sizing_mode="stretch_width") if len(items) > 1 else layout
            for item in items:
                if isinstance(item, LiveFigure):
                    item.place = partial(self._place, row, len(row.children))
                    item = item.figure or BkSpacer()
                row.children.append(item)
            if row is not layout:
                layout.children.append(row)
        pane_params.setdefault("sizing_mode", "stretch_width")
        self.pane = pn.pane.Bokeh(layout, **pane_params)

    def __panel__(self) -> pn.pane.Bokeh:
        return self.pane

    @staticmethod
    def _place(row: BkRow | BkColumn, index: int, plot: Any) -> None:
        row.children[index] = plot


def wide_columns(layers: Sequence[Layer], shared: Sequence[str]) -> dict[str, np.ndarray]:
    """The columns of ``layers`` side by side, for one source to hold them all.

    The ``shared`` columns (those of the first layer: the layers' rows are the
    same) appear once; every other column once per layer, named by
    :func:`layer_column`.  The first column comes first, keying the rows.
    """
    columns: dict[str, np.ndarray] = {}
    for i, layer in enumerate(layers):
        for name, values in layer.columns.items():
            if name not in shared:
                columns[layer_column(name, i)] = values
            elif i == 0:
                columns[name] = values
    return columns


def layer_column(name: str, index: int) -> str:
    """The name of layer ``index``'s column ``name`` in :func:`wide_columns`."""
    return f"{name}_{index}"


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


def _time_chart(glyphs: list[hv.Element], title: str, ylabel: str, select: bool) -> hv.Overlay:
    overlay = hv.Overlay(glyphs).opts(title=title, xlabel="", ylabel=ylabel, **FRAME)
    if select:  # a drag along x then picks a time range (see on_time_range)
        overlay.opts(active_tools=["xbox_select"])
    return overlay


def stacked_bars(
    layers: Sequence[Layer], *, title: str, ylabel: str, select: bool = False
) -> hv.Overlay:
    """Stacked bars over time from :func:`stacked_layers`."""
    bars = [
        hv.Rectangles(layer.frame, kdims=list(BOX), vdims=["count"], label=layer.label).opts(
            color=color_for(layer.label, i),
            line_alpha=0,
            tools=["hover", "xbox_select"] if select else ["hover"],
            hover_tooltips=[(layer.label, "@count{0,0}"), ("from", "@left{%F %H:%M}")],
            hover_formatters={"@left": "datetime"},
        )
        for i, layer in enumerate(layers)
    ]
    return _time_chart(bars, title, ylabel, select)


def lines(
    layers: Sequence[Layer],
    *,
    value: str,
    title: str,
    ylabel: str,
    select: bool = False,
    markers: bool = False,
) -> hv.Overlay:
    """Lines over time from :func:`series_layers`; with ``markers``, a dot on each value
    (for series of events, whose first value alone would draw no line)."""
    glyphs: list[hv.Element] = []
    for i, layer in enumerate(layers):
        color = color_for(layer.label, i)
        tools = ["hover", "xbox_select"] if select else ["hover"]
        glyphs.append(
            hv.Curve(layer.frame, "timestamp", value, label=layer.label).opts(
                color=color, tools=tools
            )
        )
        if markers:
            glyphs.append(
                hv.Scatter(layer.frame, "timestamp", value, label=layer.label).opts(
                    color=color, size=6, tools=tools
                )
            )
    return _time_chart(glyphs, title, ylabel, select)


def to_utc(wall: Any, tz: str) -> datetime:
    """A wall time on a chart axis (see :func:`wall_time`) back to an aware UTC datetime."""
    stamp = pd.Timestamp(wall)
    return stamp.tz_localize(tz, ambiguous=True, nonexistent="shift_forward").tz_convert("UTC")


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
    tools: Sequence[str] = FRAME["default_tools"],
    **params: Any,
) -> Any:
    """A Bokeh figure dressed as :data:`FRAME` dresses the HoloViews charts, without axes."""
    plot = figure(
        title=title,
        tools=list(tools),
        toolbar_location=FRAME["toolbar"],
        sizing_mode="stretch_width",
        min_height=FRAME["min_height"],
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
        tools=["save"] if select else FRAME["default_tools"],
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


BARS_SHARED = ("left", "right")
"""The columns the layers of :func:`stacked_layers` share."""
LINES_SHARED = ("timestamp",)
"""The column the layers of :func:`series_layers` share."""


def live_stacked_bars(
    layers: Sequence[Layer],
    *,
    title: str,
    ylabel: str,
    select: bool = False,
    kit: FigureKit | None = None,
) -> Any:
    """:func:`stacked_bars` as a Bokeh figure, for :class:`LiveFigure`.

    Hovering a bar shows every series of its time bin.
    """
    return _live_time_chart(
        layers,
        lambda i, layer: Quad(
            left="left",
            right="right",
            bottom=layer_column("bottom", i),
            top=layer_column("top", i),
            fill_color=color_for(layer.label, i),
            line_alpha=0,
        ),
        hover=("count", "", "from"),
        shared=BARS_SHARED,
        frame=(title, ylabel, select),
        kit=kit,
    )


def live_lines(
    layers: Sequence[Layer],
    *,
    value: str,
    title: str,
    ylabel: str,
    select: bool = False,
    kit: FigureKit | None = None,
) -> Any:
    """:func:`lines` as a Bokeh figure, for :class:`LiveFigure`.

    Hovering a line shows every line's value at that time.
    """
    return _live_time_chart(
        layers,
        lambda i, layer: Line(
            x="timestamp",
            y=layer_column(value, i),
            line_color=color_for(layer.label, i),
            line_width=2,
        ),
        hover=(value, f" {ylabel}", "at"),
        shared=LINES_SHARED,
        frame=(title, ylabel, select),
        kit=kit,
    )


def _live_time_chart(
    layers: Sequence[Layer],
    glyph: Callable[[int, Layer], Any],
    *,
    hover: tuple[str, str, str],
    shared: Sequence[str],
    frame: tuple[str, str, bool],
    kit: FigureKit | None,
) -> Any:
    """A time figure (``frame``: title, y label, drag-select), one glyph per layer,
    all from one source, one hover tool, and a legend.

    ``hover`` names the column whose value each layer shows, the unit after it,
    and the label of the time (the first ``shared`` column).  (A source of their
    own per glyph would be five more models per layer, in every session: the
    source, its selection and its policy, a view and its filter.)
    """
    kit = kit or FigureKit()
    plot = _time_frame(*frame, kit)
    source, view = kit.source(wide_columns(layers, shared)), kit.view()
    renderers = [
        plot.add_glyph(source, glyph(i, layer), view=view, name=layer.label)
        for i, layer in enumerate(layers)
    ]
    column, unit, when = hover
    tooltips = [
        (layer.label, f"@{{{layer_column(column, i)}}}{{0,0}}{unit}")
        for i, layer in enumerate(layers)
    ]
    tooltips.append((when, f"@{shared[0]}{{%F %H:%M}}"))
    plot.add_tools(
        HoverTool(renderers=renderers, tooltips=tooltips, formatters={f"@{shared[0]}": "datetime"})
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
