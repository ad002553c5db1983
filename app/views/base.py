"""What every view shares: pipelines in, a stable layout out, refreshed in place."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar

import pandas as pd
import panel as pn
import param

from app.views.notice import Notice, plain
from pipelines.errors import AgentdashError
from pipelines.pipeline import AgentsPipeline, MessagesPipeline


def narrow_time(pipeline: MessagesPipeline, start: datetime, end: datetime) -> None:
    """Show only ``[start, end]`` (UTC), widened to whole minutes: the drill-down of a box
    selection on a time axis (whose ends are milliseconds nobody chose)."""
    minute = timedelta(minutes=1)
    start, end = pd.Timestamp(start).floor(minute), pd.Timestamp(end).ceil(minute)
    if start < end:
        pipeline.param.update(window="custom", start=start.to_pydatetime(), end=end.to_pydatetime())


def on_the_page(callback: Callable[[], None]) -> None:
    """Run ``callback`` on the page's next turn, unless the page closed meanwhile (a read
    off the event loop can outlast the page that asked for it)."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return
    pn.state.execute(callback, schedule=True)


def _served() -> bool:
    """True inside a server session (a page), False in a notebook or a script."""
    doc = pn.state.curdoc
    return doc is not None and doc.session_context is not None


def _period(messages: MessagesPipeline) -> str:
    """The window in words: "the last 30d", or its dates."""
    if messages.window != "custom":
        return f"the last {messages.window}"
    return f"{messages.start:%Y-%m-%d %H:%M} to {messages.end:%Y-%m-%d %H:%M} UTC"


class View(pn.viewable.Viewer):
    """Base of the views: a layout built once and refreshed in place.

    A view follows one parameter of each pipeline, ``version``.  When the
    question changed (a filter, the window, the time zone) it refreshes behind
    a loading indicator; when only the data did, silently.  Subclasses build
    their panes in ``__init__`` and implement :meth:`refresh`, which reads
    metrics through :func:`app.memo.memo` and updates those panes.
    """

    messages: MessagesPipeline = param.ClassSelector(  # type: ignore[assignment]
        class_=MessagesPipeline, doc="The messages shown (and narrowed by drill-down)."
    )
    agents: AgentsPipeline = param.ClassSelector(  # type: ignore[assignment]
        class_=AgentsPipeline,
        default=None,
        allow_None=True,
        doc="The agents named in the view; one following the messages' agents when None.",
    )
    shown = param.Boolean(
        default=True, doc="Refresh on new data while True; when hidden, catch up on being shown."
    )

    links: ClassVar[dict[str, str]] = {}
    """Parameter -> its name in the page's URL, for the state of the view a link keeps
    (an open conversation, the sort of a table...)."""

    unset: ClassVar[dict[str, str]] = {}
    """Parameter -> what the view shows while a link leaves it None, where that is not
    "(none)" (the first rule, say): the words a refused link value says it kept."""

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
            self.agents = AgentsPipeline().follow(self.messages)
        self._behind = False
        self._scheduled = False
        self._shown_data = False
        self._refreshed_at = -float("inf")
        self._reading: pn.indicators.LoadingSpinner | None = None  # while first read
        self.layout = pn.Column(sizing_mode="stretch_width")
        self.problem = Notice(self.layout, "danger")
        self._asked = self._question()
        for pipeline in (self.messages, self.agents):
            pipeline.param.watch(self._version_changed, "version")
        self.param.watch(self._shown_changed, "shown")

    def _question(self) -> tuple[Any, ...]:
        """What the pipelines are asked, the time zone included."""
        return tuple((p.question(), p.tz) for p in (self.messages, self.agents))

    def __panel__(self) -> pn.Column:
        return self.layout

    def refresh(self) -> None:
        """Read the metrics for the current filters and data into the panes."""
        raise NotImplementedError

    def _refresh_now(self) -> None:
        self._scheduled = False
        if self._reading is not None and self._reading in self.layout:
            self.layout.remove(self._reading)
        self._reading = None
        self._refreshed_at = time.monotonic()
        self._asked = self._question()
        with pn.io.hold():  # whatever the refresh changes leaves in one message
            try:
                self.refresh()
            except AgentdashError as exc:
                # Keep the last figures on screen: a failing source must not blank the view.
                self.problem.notify(
                    f"**Could not update this view; it shows the last data read.** {plain(exc)}"
                    if self._shown_data
                    else f"### The data could not be read\n\n{plain(exc)}\n\n"
                    "Reload the page once the source answers again."
                )
            else:
                self._shown_data = True
                self.problem.clear()
            finally:
                self.layout.loading = False

    def _first_refresh(self) -> None:
        """Fill the panes the first time: at once when the data is in memory (or outside a
        server); otherwise the page goes out with the layout under a loading indicator and
        fills in once the page has loaded and the data is read."""
        if self._ready() or not _served():
            self._refresh_now()
            return
        self.layout.loading = True
        self._scheduled = True
        self._reading = pn.indicators.LoadingSpinner(
            value=True,
            size=24,
            name=f"Reading the messages of {_period(self.messages)} from the source…",
            margin=(10, 10),
        )
        self.layout.insert(0, self._reading)
        pn.state.onload(self._read_then_refresh)

    def _ready(self) -> bool:
        return self.messages.ready() and self.agents.ready()

    async def _read_then_refresh(self) -> None:
        """Read what the views read off the server's event loop (other pages stay live
        meanwhile), then refresh on the page's own turn."""
        if not self._ready():

            def read() -> None:
                with contextlib.suppress(AgentdashError):  # the refresh reports it
                    self.messages.prefetch()
                    self.agents.prefetch()

            await asyncio.to_thread(read)
        on_the_page(self._refresh_now)

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
        if self._ready() or not _served():
            pn.state.execute(self._refresh_now, schedule=True)
        else:  # a window not in memory: read off the event loop first
            pn.state.execute(self._read_then_refresh)

    def _version_changed(self, *events: param.parameterized.Event) -> None:
        if self._question() != self._asked:
            self._filters_changed()
        else:
            self._data_changed()

    def _filters_changed(self, *events: param.parameterized.Event) -> None:
        self._request(slow=True)

    def _data_changed(self) -> None:
        if time.monotonic() - self._refreshed_at >= self.data_refresh_seconds:
            self._request(slow=False)

    def _shown_changed(self, event: param.parameterized.Event) -> None:
        if event.new and self._behind:
            self._behind = False
            self._request(slow=True)
