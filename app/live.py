"""Live updates: one refresher per process, fanned out to every open session.

A :class:`Refresher` thread runs ``frames.refresh_all()`` every
``AGENTDASH_REFRESH_SECONDS``; the live frames make each cycle single-flight
across processes (Redis lock) and tells its listeners what changed; then it
evaluates the alert rules that are due on the frames just refreshed
(:class:`pipelines.alerts.Alerting`) and starts the scheduled reports that are due.
Each open page holds a :class:`LiveSession`, a listener of the live frames that takes
the new data up on its own document's next tick, the only place where Bokeh models may
be changed.  So a refresh cycle costs one source query per frame whatever the
number of sessions, and a session that closes leaves nothing behind.

:class:`LiveControls` is what a page shows of it: how old the data is (counted
in the browser, so the server sends nothing between refreshes), a pause
button and a banner while the source is failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import panel as pn
import param
from bokeh.core.properties import Float, Nullable, String
from bokeh.document import Document
from bokeh.model import DataModel
from panel.custom import JSComponent

from pipelines.alerts import Alerting, open_store
from pipelines.errors import AgentdashError
from pipelines.live import LiveFrames
from pipelines.pipeline import Pipeline
from pipelines.settings import Settings, load_settings

log = logging.getLogger(__name__)


class Refresher:
    """Refreshes every live frame of a process each ``period`` seconds, on a daemon thread;
    then evaluates the due alert rules and starts the due scheduled reports of ``settings``."""

    def __init__(self, frames: LiveFrames, period: float, settings: Settings | None = None) -> None:
        self.frames = frames
        self.period = period
        # Processes sharing a Redis cache: whichever refreshes first in a period reads
        # the source, the others take its result (one source query per cycle in all).
        frames.min_refresh_seconds = period / 2
        self.cycles = 0
        self.settings = settings
        self.alerting: Alerting | None = None
        # Deliveries (retried with backoff) and reports (seconds each) run beside the
        # cycle, never in it: a slow webhook does not delay the data.
        self._duties = ThreadPoolExecutor(max_workers=4, thread_name_prefix="agentdash-notify")
        self._reports = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentdash-reports")
        self._scheduled: Future[None] | None = None
        if settings is not None and (settings.alerts or settings.schedules):
            store = open_store(settings.redis_url, settings.local_path)
            self.alerting = Alerting(
                settings.alerts, settings.notifiers, store, frames, executor=self._duties
            )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agentdash-refresher", daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.running:
            self._thread.join()
        self._duties.shutdown(wait=False)
        self._reports.shutdown(wait=False)

    def _run(self) -> None:
        next_cycle = time.monotonic() + self.period
        while not self._stop.wait(max(0.0, next_cycle - time.monotonic())):
            try:
                self.frames.refresh_all()
            except Exception:  # the next cycle may succeed: never let the thread die
                log.exception("refresh cycle failed")
            self._after_cycle()
            self.cycles += 1
            # A cycle that overran its period skips the missed ticks instead of bunching up.
            next_cycle = max(next_cycle + self.period, time.monotonic())

    def _after_cycle(self) -> None:
        if self.alerting is None:
            return
        try:
            self.alerting.run_due()
        except Exception:  # a store or a rule failing this time must not stop the refresher
            log.exception("alert evaluation failed")
        running = self._scheduled is not None and not self._scheduled.done()
        if self.settings is not None and self.settings.schedules and not running:
            self._scheduled = self._reports.submit(self._run_schedules)

    def _run_schedules(self) -> None:
        from app.scheduled import run_due

        assert self.settings is not None and self.alerting is not None
        try:
            run_due(self.settings, self.alerting.store)
        except Exception:
            log.exception("scheduled reports failed")


_refreshers: dict[LiveFrames, Refresher] = {}
_sessions: set[LiveSession] = set()
_lock = threading.Lock()


def _forget_after_fork() -> None:
    # `panel serve --num-procs N` forks: a child has its parent's objects but not its threads.
    global _lock
    _lock = threading.Lock()
    _refreshers.clear()
    _sessions.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def ensure_refresher(frames: LiveFrames | None = None) -> Refresher:
    """The refresher of ``frames`` (the process-wide default) in this process, started once."""
    frames = frames or LiveFrames.default()
    with _lock:
        refresher = _refreshers.get(frames)
        if refresher is None:
            settings = load_settings()
            refresher = Refresher(frames, settings.refresh_seconds, settings)
            refresher.start()
            _refreshers[frames] = refresher
        return refresher


def alert_stats(frames: LiveFrames) -> dict[str, int] | None:
    """What the alerting of ``frames`` did in this process (see
    :class:`pipelines.alerts.AlertStats`); None when no refresher evaluates rules here."""
    refresher = _refreshers.get(frames)
    if refresher is None or refresher.alerting is None:
        return None
    return refresher.alerting.stats.snapshot()


def session_count() -> int:
    """Open live sessions in this process."""
    return len(_sessions)


class LiveSession:
    """One served page's link to the refresher.

    The live frames announce new data on the refresher's thread; the session then
    schedules one callback on its document's next tick that syncs its pipelines
    (the views watching ``pipeline.version`` redraw) and calls ``on_update``.
    It closes itself when Bokeh destroys the session.
    """

    def __init__(
        self, doc: Document, pipelines: Iterable[Pipeline], on_update: Callable[[], None]
    ) -> None:
        self.doc = doc
        self.pipelines = list(pipelines)
        self.on_update = on_update
        self.paused = False
        self._pending = False
        self._closed = False
        self._guard = threading.Lock()
        shared = list({id(p.data): p.data for p in self.pipelines}.values())
        self._unsubscribe = [frames.subscribe(self._announce) for frames in shared]
        with _lock:
            _sessions.add(self)
        for frames in shared:
            ensure_refresher(frames)
        doc.on_session_destroyed(lambda _context: self.close())

    def _announce(self, *_: Any) -> None:
        # On the refresher's thread: only schedule, and at most one tick at a time.
        with self._guard:
            if self.paused or self._pending or self._closed or self._destroyed():
                return
            self._pending = True
        self.doc.add_next_tick_callback(self.take_up)

    def _destroyed(self) -> bool:
        # Bokeh destroys a session's document before it calls on_session_destroyed: in
        # between, a document without a session context takes no callback and no change.
        return self.doc.session_context is None

    def take_up(self) -> None:
        """Sync the pipelines with their live frames, tell ``on_update``; on the doc's thread."""
        with self._guard:
            self._pending = False
            if self.paused or self._closed or self._destroyed():
                return
        with pn.io.hold(self.doc):
            for pipeline in self.pipelines:
                try:
                    pipeline.sync()
                except Exception:  # one broken view must not freeze the others
                    log.exception("a view failed to take up new data")
            self.on_update()

    def pause(self) -> None:
        with self._guard:
            self.paused = True

    def resume(self) -> None:
        """Take up at once whatever arrived while paused."""
        with self._guard:
            self.paused = False
        self.take_up()

    def close(self) -> None:
        with self._guard:
            self._closed = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        with _lock:
            _sessions.discard(self)


class Clock(DataModel):
    """The time of the data a page shows, on a Bokeh model that the server sets directly."""

    as_of: float | None = Nullable(  # type: ignore[assignment]
        Float, help="Time of the data shown, in epoch milliseconds."
    )
    warning: str | None = Nullable(  # type: ignore[assignment]
        String, help="Why the data shown may be stale, while the source fails."
    )


class LiveStatus(JSComponent):
    """Shows "updated N s ago", counted in the browser from the time of the data,
    a button that pauses and resumes live updates, and a banner while the source fails;
    sets ``zone`` to the browser's time zone when drawn.

    The time and the warning are read from ``clock``, which a live page sets on
    every refresh in every session: a Bokeh property set directly costs the
    server a fraction of a Panel parameter change.  (One component for all three:
    each Panel object a page holds costs every session its memory.)
    """

    clock: Clock = param.ClassSelector(  # type: ignore[assignment]
        class_=Clock, constant=True, doc="Where the time is kept."
    )
    paused = param.Boolean(default=False, doc="Whether live updates are paused (the button).")
    theme: str | None = param.Selector(  # type: ignore[assignment]
        default=None,
        objects=[None, "default", "dark"],
        doc="The page's theme, to offer a button to the other one (None: no such button).",
    )
    zone = param.String(
        default=None, allow_None=True, doc="The browser's time zone, as the browser names it."
    )

    _esm = """
    function ago(seconds) {
      if (seconds < 120) return `${seconds} s`
      if (seconds < 7200) return `${Math.floor(seconds / 60)} min`
      return `${Math.floor(seconds / 3600)} h`
    }
    export function render({ model, el, view }) {
      if (model.zone == null) model.zone = Intl.DateTimeFormat().resolvedOptions().timeZone
      const label = document.createElement("span")
      label.className = "agentdash-age"
      const button = document.createElement("button")
      button.type = "button"
      button.className = "agentdash-pause"
      button.addEventListener("click", () => { model.paused = !model.paused })
      const banner = document.createElement("div")
      banner.className = "agentdash-banner"
      banner.setAttribute("role", "alert")
      const clock = model.clock
      const draw = () => {
        button.textContent = model.paused ? "Resume" : "Pause"
        banner.textContent = clock.warning ?? ""
        banner.hidden = clock.warning == null
        if (clock.as_of == null) {
          label.textContent = "no data yet"
          return
        }
        const seconds = Math.max(0, Math.round((Date.now() - clock.as_of) / 1000))
        label.textContent = `updated ${ago(seconds)} ago` + (model.paused ? " (paused)" : "")
      }
      const timer = setInterval(draw, 1000)
      view.connect(clock.change, draw)
      model.on("paused", draw)
      model.on("remove", () => clearInterval(timer))
      draw()
      const bar = document.createElement("div")
      bar.className = "agentdash-bar"
      bar.append(label, button)
      el.append(bar)
      if (model.theme != null) {
        const dark = model.theme === "dark"
        const theme = document.createElement("button")
        theme.type = "button"
        theme.className = "agentdash-theme"
        theme.textContent = dark ? "\u2600 Light theme" : "\u263e Dark theme"
        theme.addEventListener("click", () => {
          const url = new URL(window.location.href)
          url.searchParams.set("theme", dark ? "default" : "dark")
          window.location.href = url.toString()
        })
        bar.append(theme)
      }
      el.append(banner)
    }
    """

    _stylesheets = [
        """
        .agentdash-bar { display: flex; align-items: center; width: 100%; }
        .agentdash-theme { margin-left: auto; min-width: 130px; }
        .agentdash-pause { margin-left: 12px; }
        .agentdash-pause, .agentdash-theme {
          font: inherit;
          min-width: 90px;
          padding: 6px 12px;
          border-radius: 4px;
          border: 1px solid var(--panel-border-color, #ced4da);
          background: var(--panel-surface-color, #f8f9fa);
          color: var(--panel-on-surface-color, #212529);
          cursor: pointer;
        }
        .agentdash-pause:hover, .agentdash-theme:hover { filter: brightness(0.95); }
        .agentdash-banner {
          margin-top: 8px;
          padding: 8px 12px;
          border-radius: 4px;
          border: 1px solid #ffecb5;
          background: #fff3cd;
          color: #664d03;
        }
        .agentdash-banner[hidden] { display: none; }
        """
    ]

    def __init__(self, **params: Any) -> None:
        params.setdefault("clock", Clock())
        # Bokeh follows the references in tags (not those in component data): there the
        # clock joins the page's document, so that changes made to it reach the browser.
        params["tags"] = [*params.get("tags", []), params["clock"]]
        super().__init__(**params)


class LiveControls(pn.viewable.Viewer):
    """The age of the data, a pause button, a banner while the source fails and,
    given the page's ``theme`` ("default" or "dark"), a button to switch it to the
    other one (see :class:`LiveStatus`, which shows them all).  ``on_zone`` is told
    the browser's time zone once the page is drawn.

    In a served page it also keeps ``pipelines`` live (see :class:`LiveSession`);
    elsewhere (Jupyter, a saved report) it only shows how old the data is.
    """

    pipelines = param.List(
        default=[], item_type=Pipeline, doc="Pipelines to keep up to date with their live frames."
    )
    paused = param.Boolean(
        default=False, doc="Stop taking up new data; resuming catches up at once."
    )

    def __init__(
        self,
        theme: str | None = None,
        on_zone: Callable[[str], None] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self._status = LiveStatus(
            margin=(5, 10),
            paused=self.paused,
            theme=theme,
            sizing_mode="stretch_width",
            align="center",
        )
        self._status.param.watch(lambda event: setattr(self, "paused", event.new), "paused")
        if on_zone is not None:
            # The browser says its zone once the page is drawn, as a widget says a choice.
            self._status.param.watch(lambda event: event.new and on_zone(event.new), "zone")
        self._clock = self._status.clock
        doc = pn.state.curdoc
        self._session = None
        if doc is not None and doc.session_context is not None:
            self._session = LiveSession(doc, self.pipelines, self._show)
        if self._session is not None and not all(p.ready() for p in self.pipelines):
            pn.state.onload(self._show_when_read)
        self._show()

    async def _show_when_read(self) -> None:
        """The age of the data of a page sent before its data, once read (off the loop)."""

        def read() -> None:
            for pipeline in self.pipelines:
                with contextlib.suppress(AgentdashError):  # the views say so
                    pipeline.prefetch()

        await asyncio.to_thread(read)
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:  # the page is still open
            pn.state.execute(self._show, schedule=True)

    @param.depends("paused", watch=True)
    def _pause(self) -> None:
        self._status.paused = self.paused
        if self._session is not None:
            if self.paused:
                self._session.pause()
            else:
                self._session.resume()

    def _show(self) -> None:
        """Show the time and health of the data the pipelines hold now."""
        if not self.pipelines or not all(p.ready() for p in self.pipelines):
            return  # a page sent before its data: the first refresh after the read tells
        pipelines = self.pipelines
        self._clock.as_of = min(p.as_of for p in pipelines).timestamp() * 1000
        errors = sorted({p.error or "unknown error" for p in pipelines if p.stale})
        self._clock.warning = (
            "The data source is failing: the dashboard shows the last data it read "
            f"and updates again when the source recovers. ({'; '.join(errors)})"
            if errors
            else None
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._status
