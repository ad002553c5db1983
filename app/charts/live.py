"""Charts that later data update in place.

A chart is drawn once from layers (:mod:`app.charts.layers`), by HoloViews
(:class:`LiveChart`) or as a plain Bokeh figure (:class:`LiveFigure`).  When
new data arrive, :meth:`LiveChart.update` streams the new rows into the drawn
sources and patches the changed ones; the chart is drawn again only when the
new layers do not continue the old ones (another filter, other columns, other
labels).  Bars over categories (the busiest agents) take new categories, or a
new order of them, in place too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, Literal

import holoviews as hv
import panel as pn
from bokeh.models import Column as BkColumn
from bokeh.models import ColumnDataSource, DataRange1d, FactorRange, LayoutDOM, Range1d
from bokeh.models import Row as BkRow
from bokeh.models import Spacer as BkSpacer

from app.charts.layers import Layer, _own, sync_source, wide_columns


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
    columns they share once, the others once per layer; or, when their rows
    differ, each has a source of its own.  ``draw`` returns a figure drawn from
    such sources, its glyph renderers named by the layers' labels (see
    :mod:`app.charts.time`); ``link`` gets the figure.  The figure
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
        sources = {id(s): s for label in self._labels for s in self._sources[label]}
        if len(sources) > 1:  # a source per layer
            return super()._sync(layers)
        (source,) = sources.values()  # the one all layers share
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
