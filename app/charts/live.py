"""Charts that later data update in place.

A chart is a Bokeh figure drawn once from layers (:mod:`app.charts.layers`).
When new data arrive, :meth:`LiveFigure.update` streams the new rows into the
drawn sources and patches the changed ones; the chart is drawn again only when
the new layers do not continue the old ones (another filter, other columns,
other labels).  Bars over categories (the busiest agents) take new categories,
or a new order of them, in place too.  Layers without a row are a state of
their own: the chart's title over a sentence saying that nothing matches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

import numpy as np
import panel as pn
from bokeh.models import Column as BkColumn
from bokeh.models import ColumnDataSource, FactorRange, LayoutDOM, Range1d
from bokeh.models import Row as BkRow
from bokeh.models import Spacer as BkSpacer
from bokeh.models.annotations import Label
from bokeh.plotting import figure

from app.charts.layers import Layer, _comparable, _own, sync_source, wide_columns
from app.theme import MUTED

NO_MATCH = "No messages match these filters"
"""What a chart without data says, unless it is given a sentence of its own."""


def _rows(layers: Sequence[Layer]) -> int:
    return sum(len(next(iter(layer.columns.values()), ())) for layer in layers)


def _same(old: Sequence[Layer], new: Sequence[Layer]) -> bool:
    """Whether two lists of layers hold the same labels, columns and values."""
    return [layer.label for layer in old] == [layer.label for layer in new] and all(
        a.columns.keys() == b.columns.keys()
        and all(
            np.array_equal(_comparable(a.columns[c]), _comparable(b.columns[c])) for c in a.columns
        )
        for a, b in zip(old, new, strict=True)
    )


class LiveFigure(pn.viewable.Viewer):
    """A Bokeh figure of layers; new layers stream into the drawn figure when they can.

    ``draw(layers, title=...)`` returns a figure whose glyph renderers are named by
    the layers' labels, drawn from sources holding the layers' columns: each layer's
    own, or one source for all, side by side (see :func:`wide_columns`).  It is never
    given layers without a row: the chart then shows ``title`` over ``empty``.
    ``link`` gets each figure drawn (drill-down).  ``slots`` is the least number of
    categories a bar chart's axis makes room for, so that a few bars keep the
    thickness of many.  With ``in_place=False`` new layers are always drawn anew
    (unless they are the ones drawn): for figures whose other models follow the data,
    such as a colour scale.  The figure is shown in a pane of its own, or by
    :class:`Figures` with others in one.
    """

    def __init__(
        self,
        draw: Callable[..., Any],
        *,
        title: str,
        empty: str = NO_MATCH,
        value_axis: Literal["x", "y"] = "y",
        link: Callable[[Any], None] | None = None,
        slots: int = 0,
        in_place: bool = True,
        height: int | None = None,
        **pane_params: Any,
    ) -> None:
        super().__init__()
        self._draw = draw
        self.title = title
        self.empty = empty
        self._link = link
        self._value_axis = value_axis
        self._slots = slots
        self._in_place = in_place
        self._height = height
        self.figure: Any = None
        self.place: Callable[[Any], None] | None = None
        self._labels: list[str] | None = None  # None: no layers drawn
        self._drawn: Sequence[Layer] = ()
        self._drawn_title = title
        self._empty_title: str | None = None  # the title over the empty state shown
        self._sources: dict[str, list[ColumnDataSource]] = {}
        self._categories: FactorRange | None = None
        pane_params.setdefault("sizing_mode", "stretch_width")
        self._pane_params = {**pane_params, "height": height}
        self._shown_in: pn.pane.Bokeh | None = None

    def __panel__(self) -> pn.pane.Bokeh:
        return self.pane

    @property
    def pane(self) -> pn.pane.Bokeh:
        """The pane showing the chart, made when first asked for."""
        if self._shown_in is None:
            # Filled by the first update(): drawing before the data are known would be wasted.
            self._shown_in = pn.pane.Bokeh(**self._pane_params)
        return self._shown_in

    @property
    def is_empty(self) -> bool:
        """Whether the chart says that nothing matches (rather than showing layers)."""
        return self._empty_title is not None

    def update(self, layers: Sequence[Layer], title: str | None = None) -> None:
        """Show ``layers`` (under ``title``, when given): streamed and patched into the
        drawn chart, else drawn again; without a row, say that nothing matches."""
        if title is not None:
            self.title = title
        if not _rows(layers):
            if self._empty_title != self.title:
                self._labels, self._empty_title, self._drawn = None, self.title, ()
                self._sources.clear()
                self._categories = None
                self._show_empty()
            return
        self._empty_title = None
        labels = [layer.label for layer in layers]
        if not self._in_place:
            if not (self._retitle() and self._labels == labels and _same(self._drawn, layers)):
                self._redraw(layers)
            return
        in_place = (
            labels == self._labels
            and all(self._sources.get(label) for label in labels)
            and self._retitle()
            and self._sync(layers)
        )
        if not in_place:
            self._redraw(layers)

    def _retitle(self) -> bool:
        if self.title != self._drawn_title and self.figure is not None:
            self.figure.title.text = self._drawn_title = self.title
        return True

    def _redraw(self, layers: Sequence[Layer]) -> None:
        self._labels = [layer.label for layer in layers]
        self._drawn = list(layers)
        self._drawn_title = self.title
        self._sources.clear()
        self._categories = None
        plot = self._draw(layers, title=self.title)
        for renderer in plot.renderers:
            if renderer.name in self._labels:
                self._keep(renderer.name, renderer.data_source, plot)
        if self._link is not None:
            self._link(plot)
        self._present(plot)

    def _keep(self, label: str, source: ColumnDataSource, plot: Any) -> None:
        """Remember the source of the glyph labelled ``label`` on the figure ``plot``."""
        sources = self._sources.setdefault(label, [])
        if all(s is not source for s in sources):
            sources.append(source)
        category_axis = "y" if self._value_axis == "x" else "x"
        categories = getattr(plot, f"{category_axis}_range")
        if isinstance(categories, FactorRange):
            self._categories = categories
            self._pad(len(categories.factors))

    def _pad(self, factors: int) -> None:
        """Room for ``slots`` categories on the axis, half of what is missing at each end."""
        assert self._categories is not None
        self._categories.range_padding_units = "absolute"
        self._categories.range_padding = max(0, self._slots - factors) / 2

    def _show_empty(self) -> None:
        """The title over the sentence ``empty``, in the place of the chart."""
        self._present(empty_figure(self.title, self.empty, self._height or 240))

    def _present(self, plot: Any) -> None:
        plot.sizing_mode = "stretch_width"
        if self._height is not None:
            plot.height = self._height
        self.figure = plot
        if self.place is not None:
            self.place(plot)
        else:
            self.pane.object = plot

    def _sync(self, layers: Sequence[Layer]) -> bool:
        """Bring the drawn sources to ``layers``; False when only a redraw can."""
        if self._categories is not None:
            return self._recategorise(layers)
        sources = {id(s): s for label in self._labels or () for s in self._sources[label]}
        if len(sources) > 1:  # a source per layer
            return all(
                sync_source(source, layer.columns)
                for layer in layers
                for source in self._sources[layer.label]
            )
        (source,) = sources.values()  # the one all layers share
        # The columns the layers share are in the source under their own names.
        shared = [name for name in layers[0].columns if name in source.data]
        return sync_source(source, wide_columns(layers, shared))

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
        self._pad(len(factors))
        return True


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


def empty_figure(title: str, text: str, height: int) -> Any:
    """A chart's ``title`` over the sentence ``text`` (why there is nothing to draw), in a
    figure of the chart's ``height``: no axes, grid or tools."""
    plot = figure(
        title=title,
        x_range=Range1d(start=0, end=1),
        y_range=Range1d(start=0, end=1),
        x_axis_type=None,
        y_axis_type=None,
        toolbar_location=None,
        tools=[],
        height=height,
    )
    plot.grid.visible = False
    plot.outline_line_alpha = 0
    plot.add_layout(
        Label(
            x=0.5,
            y=0.5,
            text=text,
            text_align="center",
            text_baseline="middle",
            text_color=MUTED,
            text_font_size="12pt",
        )
    )
    return plot
