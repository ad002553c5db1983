"""What every view shares: pipelines in, a stable layout out, refreshed in place."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, ClassVar

import pandas as pd
import panel as pn
import param

from app.views.notice import Notice
from pipelines.errors import AgentdashError
from pipelines.pipeline import AgentsPipeline, MessagesPipeline, Pipeline

_NOT_FILTERS = ("name", "backend", "version")


def filter_names(pipeline: Pipeline) -> list[str]:
    """The parameters of ``pipeline`` that change what it shows."""
    return [name for name in pipeline.param if name not in _NOT_FILTERS]


def derived(parent: MessagesPipeline, **fixed: Any) -> MessagesPipeline:
    """A messages pipeline that follows ``parent``'s parameters except the ``fixed`` ones."""
    names = [name for name in filter_names(parent) if name not in fixed]
    child = MessagesPipeline(
        backend=parent.backend, **{name: getattr(parent, name) for name in names}, **fixed
    )
    parent.param.watch(lambda *events: child.param.update({e.name: e.new for e in events}), names)
    return child


def agent_names(agents: pd.DataFrame) -> dict[str, str]:
    """Agent id -> display name, for labels (ids without a name keep the id)."""
    named = agents.dropna(subset=["name"])
    return dict(zip(named["id"], named["name"], strict=True))


def narrow_time(pipeline: MessagesPipeline, start: datetime, end: datetime) -> None:
    """Show only ``[start, end]`` (UTC): the drill-down of a box selection on a time axis."""
    if start < end:
        pipeline.param.update(window="custom", start=start, end=end)


def period_name(pipeline: MessagesPipeline) -> str:
    """How to name the window in "vs previous ...": its label, or its length."""
    if pipeline.window != "custom":
        return str(pipeline.window)
    start, end = pipeline.bounds
    hours = (end - start).total_seconds() / 3600
    return f"{hours:.3g} h" if hours < 48 else f"{hours / 24:.3g} days"


class View(pn.viewable.Viewer):
    """Base of the views: a layout built once and refreshed in place.

    A change of filters refreshes behind a loading indicator; new data (the
    pipelines' ``version``) refresh silently.  Subclasses build their panes in
    ``__init__`` and implement :meth:`refresh`, which reads metrics through
    :func:`app.compute.memo` and updates those panes.
    """

    messages: MessagesPipeline = param.ClassSelector(  # type: ignore[assignment]
        class_=MessagesPipeline, doc="The messages shown (and narrowed by drill-down)."
    )
    agents: AgentsPipeline = param.ClassSelector(  # type: ignore[assignment]
        class_=AgentsPipeline,
        default=None,
        allow_None=True,
        doc="The agents named in the view; a pipeline on the same backend when None.",
    )
    shown = param.Boolean(
        default=True, doc="Refresh on new data while True; when hidden, catch up on being shown."
    )

    data_refresh_seconds: ClassVar[float] = 0.0
    """Least time between refreshes for new data; filter changes refresh at once.

    Views whose charts are drawn again (rather than streamed) on new data pace
    themselves with it: distributions of a window barely move in a few seconds.
    """

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if self.messages is None:
            raise TypeError(f"{type(self).__name__} needs messages=MessagesPipeline(...)")
        if self.agents is None:
            self.agents = AgentsPipeline(backend=self.messages.backend)
        self._behind = False
        self._scheduled = False
        self._shown_data = False
        self._refreshed_at = -float("inf")
        self.layout = pn.Column(sizing_mode="stretch_width")
        self.problem = Notice(self.layout, "danger")
        for pipeline in (self.messages, self.agents):
            pipeline.param.watch(self._filters_changed, filter_names(pipeline))
            pipeline.param.watch(self._data_changed, "version")
        self.param.watch(self._shown_changed, "shown")

    def __panel__(self) -> pn.Column:
        return self.layout

    def refresh(self) -> None:
        """Read the metrics for the current filters and data into the panes."""
        raise NotImplementedError

    def _refresh_now(self) -> None:
        self._scheduled = False
        self._refreshed_at = time.monotonic()
        with pn.io.hold():  # whatever the refresh changes leaves in one message
            try:
                self.refresh()
            except AgentdashError as exc:
                # Keep the last figures on screen: a failing source must not blank the view.
                self.problem.notify(
                    f"**Could not update this view; it shows the last data read.** {exc}"
                    if self._shown_data
                    else f"### The data could not be read\n\n{exc}\n\n"
                    "Reload the page once the source answers again."
                )
            else:
                self._shown_data = True
                self.problem.clear()
            finally:
                self.layout.loading = False

    def _request(self, slow: bool) -> None:
        if not self.shown:
            self._behind = True
            return
        if self._scheduled:
            return  # the refresh already on its way reads the latest data and filters
        if not slow:
            # New data: refresh inside the live update's tick, whose hold sends the
            # whole update (every view and the age of the data) as one message.
            self._refresh_now()
            return
        self.layout.loading = True
        # On the server this runs on the next tick: the spinner reaches the browser
        # before the work starts, and filter changes arriving together refresh once.
        self._scheduled = True
        pn.state.execute(self._refresh_now, schedule=True)

    def _filters_changed(self, *events: param.parameterized.Event) -> None:
        self._request(slow=True)

    def _data_changed(self, *events: param.parameterized.Event) -> None:
        if time.monotonic() - self._refreshed_at >= self.data_refresh_seconds:
            self._request(slow=False)

    def _shown_changed(self, event: param.parameterized.Event) -> None:
        if event.new and self._behind:
            self._behind = False
            self._request(slow=True)
