"""A report: the dashboard's figures for one window, in one file that opens anywhere.

::

    report = Report(MessagesPipeline(window="7d"), title="Agents, last week")
    report.add("Tokens per conversation", chart)  # anything pn.panel can show
    report.save("weekly.html")  # or .pdf / .png, drawn by headless Chromium

Built from the dashboard's building blocks (KPI cards, charts, tables) over the
same metrics, without the dashboard's drill-down (box selection, clicks), which
needs a server.  The file holds aggregates only: binned series and tables per
agent, per error and per conversation, never messages, so a month of messages
makes a file about the size of a day's.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
import param
from bokeh.model import Model
from bokeh.models.widgets.tables import DateFormatter
from bokeh.resources import INLINE
from panel.viewable import Viewable

from app.cards import (
    KPIS,
    ROLLED_UP_NOTE,
    KpiCards,
    coverage_note,
    period_name,
    unpriced_text,
)
from app.charts.analytic import bins_text, histogram, histogram_layer
from app.charts.time import (
    LATENCY_BINS,
    FigureKit,
    bin_name,
    lines,
    series_layers,
    stacked_bars,
    stacked_layers,
)
from app.report import chromium, page
from app.report.errors import NoDataError, ReportError
from app.tables import agent_names, agent_table, local_times, named
from app.tabulator import number, table
from app.views.notice import plain
from pipelines import metrics
from pipelines.answers import Answers
from pipelines.errors import ConfigError, SourceUnavailableError
from pipelines.live import LiveFrames
from pipelines.pipeline import AgentsPipeline, MessagesPipeline
from pipelines.settings import Settings
from pipelines.windows import to_local

FORMATS = ("html", "pdf", "png")
METADATA_ID = "agentdash-report"
"""Id of the ``<script type="application/json">`` holding the :class:`Provenance` of a file."""
TOP = 10
SECONDS = "%Y-%m-%d %H:%M:%S"
CHART_HEIGHT = 300
HELP = (
    "Drag across a chart to zoom into that box, hover for values; the reset button of its "
    "toolbar restores it. Click a column heading to sort a table. This file needs no network."
)


@dataclass(frozen=True)
class Provenance:
    """When, from what data and by what a report was built."""

    title: str
    built_at: datetime
    agentdash_version: str
    source: str
    window: str
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime
    tz: str
    read_at: datetime
    """When the source was read: the end of a relative window."""
    latest_message: datetime | None
    filters: dict[str, Any]
    rows: dict[str, int]
    """Messages in the window and in the previous period, agents, unreadable documents."""
    rolled_up: bool = False
    """True when the numbers come from the hourly rollups (a window of at least
    ``AGENTDASH_ROLLUP_FROM``), with the precision :data:`ROLLED_UP_NOTE` states."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; times in ISO 8601, UTC."""
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


class Report(pn.viewable.Viewer):
    """KPIs against the previous period, volume and latency charts, per-agent table, top
    errors and slowest conversations of a messages pipeline, then any sections added.

    The figures are read from the pipelines each time the report is shown or saved.
    """

    title = param.String(default="", doc="Heading and page title; names the window when empty.")
    messages: MessagesPipeline = param.ClassSelector(  # type: ignore[assignment]
        class_=MessagesPipeline, doc="The messages reported on: window, filters and time zone."
    )
    agents: AgentsPipeline = param.ClassSelector(  # type: ignore[assignment]
        class_=AgentsPipeline,
        doc="The agents listed and named; by default those of the messages' agent filter.",
    )

    def __init__(
        self, messages: MessagesPipeline, agents: AgentsPipeline | None = None, **params: Any
    ) -> None:
        super().__init__(messages=messages, agents=agents or _agents_of(messages), **params)
        self._added: list[tuple[str, Any]] = []

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        window: str = "7d",
        start: datetime | None = None,
        end: datetime | None = None,
        agents: Sequence[str] = (),
        tz: str = "UTC",
        teams: list[str] | None = None,
        **params: Any,
    ) -> Report:
        """A report on a fresh read of the configured source.

        ``agents`` are ids or names; ``teams`` keeps only those teams' agents and their
        messages (the pipelines' scope).  Unlike the dashboard, this never writes demo
        data into an empty store: a report of made-up data would mislead.
        """
        if settings.source == "local" and not settings.local_path.is_file():
            raise ConfigError(
                f"there is no local store at {settings.local_path}: point AGENTDASH_LOCAL_PATH "
                "at one, or fill it with `agentdash import` (or `agentdash demo`)"
            )
        frames = LiveFrames.from_settings(settings)
        known = AgentsPipeline(frames=frames, teams=teams)
        _read(known)
        listed = known.frame
        unknown = [a for a in agents if a not in set(listed["id"]) | set(listed["name"].dropna())]
        if unknown:
            raise ConfigError(
                f"unknown agent: {', '.join(unknown)} (give ids or names of the "
                f"{len(listed)} agents in {known.data.source.identity})"
            )
        chosen = known.agent_ids(agents)
        known.agents = chosen
        span = {"window": window} if start is None and end is None else {"start": start, "end": end}
        messages = MessagesPipeline(frames=frames, agents=chosen, tz=tz, teams=teams, **span)
        _read(messages)
        return cls(messages, known, **params)

    def add(self, title: str, viewable: Any) -> Report:
        """Add a section after the standard ones (anything ``pn.panel`` shows); returns self."""
        if "holoviews" in sys.modules:
            # A HoloViews element (alone or in a pane) needs its plotting backend to be
            # saved (hv.extension would also print notebook output); the report's own charts
            # are Bokeh models, and a report without HoloViews does not load it.
            import holoviews.plotting.bokeh  # noqa: F401
        self._added.append((title, viewable))
        return self

    def provenance(self) -> Provenance:
        """What the report is built from, now."""
        messages = self.messages
        # From the answers: for a long window, its rollups (no message is read).
        window = messages.answers()
        start, end = messages.bounds
        previous_start, previous_end = messages.previous_bounds
        latest = window.last_message()
        return Provenance(
            title=self.title or f"Agent report, {_window_name(messages)}",
            built_at=datetime.now(UTC),
            agentdash_version=version("agentdash"),
            source=messages.data.source.identity,
            window=messages.window,
            start=start,
            end=end,
            previous_start=previous_start,
            previous_end=previous_end,
            tz=messages.tz,
            read_at=messages.as_of,
            latest_message=None if latest is None else latest.to_pydatetime(),
            filters=messages.filters(),
            rows={
                "messages": window.kpis().messages,
                "previous_messages": messages.answers("previous").kpis().messages,
                "agents": len(self.agents.frame),
                # Of this report's reads: the store counts those of every process too.
                "quarantined": messages.data.quarantine.read,
            },
            rolled_up=messages.rolled_up(),
        )

    def layout(self, printed: bool = False) -> pn.Column:
        """The report as Panel components; raises :class:`NoDataError` for an empty window.

        ``printed``: for paper (PDF, PNG), without the toolbars, sort arrows and hints
        that only a browser can use.
        """
        return self._layout(self.provenance(), printed)

    def __panel__(self) -> pn.Column:
        return self.layout()

    def html(self, printed: bool = False) -> str:
        """The report as one HTML page that needs no network, its provenance as JSON inside
        (``printed``: as :meth:`layout` says)."""
        provenance = self.provenance()
        buffer = io.StringIO()
        self._layout(provenance, printed).save(
            buffer, resources=INLINE, embed=False, title=provenance.title
        )
        return page.add_to_head(
            page.self_contained(buffer.getvalue()),
            page.json_script(METADATA_ID, provenance.to_json()),
        )

    def save(
        self,
        path: str | Path,
        fmt: str | None = None,
        chromium_path: str | None = None,
        paper: str = "a4",
    ) -> Path:
        """Write the report as HTML, PDF (on ``paper``: ``a4`` or ``letter``) or PNG
        (``fmt``, else the suffix of ``path``).

        The file appears complete or not at all: a reader never sees half of it.
        """
        path = Path(path)
        fmt = (fmt or path.suffix.removeprefix(".") or "html").lower()
        if fmt not in FORMATS:
            raise ReportError(f"cannot write {path.name} as {fmt!r}: use {', '.join(FORMATS)}")
        partial = path.with_name(f".{path.stem}.partial{path.suffix}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "html":
                partial.write_text(self.html(), encoding="utf-8")
            else:
                kind: chromium.Format = "pdf" if fmt == "pdf" else "png"
                chromium.render(self.html(printed=True), partial, kind, chromium_path, paper)
            os.replace(partial, path)
        except OSError as exc:
            raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from exc
        finally:
            partial.unlink(missing_ok=True)
        return path

    # -- building ---------------------------------------------------------------------
    def _layout(self, provenance: Provenance, printed: bool = False) -> pn.Column:
        messages, tz = self.messages, self.messages.tz
        agents = self.agents.frame
        names = agent_names(agents)
        if not provenance.rows["messages"]:
            raise NoDataError(
                f"no messages from {provenance.start:%Y-%m-%d %H:%M} to "
                f"{provenance.end:%Y-%m-%d %H:%M} UTC{_filters_text(provenance.filters, names)} "
                f"in {provenance.source}: nothing to report"
            )
        # Numbers, charts and tables from the rollups for a long window.
        window, previous = messages.answers(), messages.answers("previous")
        now = window.kpis()
        cards = KpiCards(KPIS)
        changes = metrics.kpi_changes(now, previous.kpis())
        start, end = pd.Timestamp(provenance.start), pd.Timestamp(provenance.end)
        before = pd.Timestamp(provenance.previous_start), pd.Timestamp(provenance.previous_end)
        period = period_name(messages)
        note = coverage_note(previous.coverage(*before), window.coverage(start, end), period)
        cards.update({name: getattr(now, name) for name in KPIS}, changes, period, note)
        kit = FigureKit()
        kit.span(provenance.start, provenance.end, tz)
        sections = [
            ("Headline numbers", cards),
            *_charts(window, (start, end), tz, kit, printed).items(),
            *(
                (title, _table(rows, tz, printed))
                for title, rows in _tables(messages, window, agents, names, tz).items()
            ),
            *self._added,
        ]
        return pn.Column(
            pn.pane.Markdown(_heading(provenance, names), sizing_mode="stretch_width"),
            *(_section(title, content) for title, content in sections),
            _section("About this report", pn.pane.Markdown(_about(provenance, printed))),
            sizing_mode="stretch_width",
            styles={"max-width": "1400px", "margin": "0 auto"},
        )


def _charts(
    window: Answers,
    bounds: tuple[pd.Timestamp, pd.Timestamp],
    tz: str,
    kit: FigureKit,
    printed: bool,
) -> dict[str, Viewable]:
    """Message volume and latency, binned as the dashboard bins them, over the window."""
    interval = metrics.choose_interval(*bounds)
    coarse = metrics.choose_interval(*bounds, max_bins=LATENCY_BINS)
    volume = window.volume_series(interval, by="status", tz=tz)
    latency = window.latency_series(coarse, tz=tz)
    distribution = window.latency_distribution()
    percentiles = [f"p{p}" for p in metrics.LATENCY_PERCENTILES]
    cost = window.cost_series(interval, by="model", tz=tz)
    unpriced = {str(m): int(n) for m, n in window.unpriced_models().items()}
    return {
        "Message volume": _chart(
            stacked_bars(
                stacked_layers(volume, interval, {}),
                title=f"Messages per {bin_name(interval)} by status",
                ylabel="messages",
                kit=kit,
            ),
            printed,
        ),
        "Latency": pn.Row(
            _chart(
                lines(
                    series_layers(latency, "latency_ms", percentiles),
                    value="latency_ms",
                    title=f"Agent reply latency per {bin_name(coarse)}, percentiles",
                    ylabel="ms",
                    markers=True,
                    kit=kit,
                ),
                printed,
            ),
            _chart(
                histogram(
                    [histogram_layer(distribution, "replies")],
                    title=f"Reply latency distribution ({bins_text(distribution)})",
                    xlabel="latency (ms)",
                    kit=kit,
                ),
                printed,
            ),
        ),
        "Cost": pn.Column(
            _chart(
                stacked_bars(
                    stacked_layers(cost, interval, {}),
                    title=f"Cost per {bin_name(interval)} by model (USD)",
                    ylabel="USD",
                    number="$0,0.00",
                    counts=False,
                    kit=kit,
                ),
                printed,
            ),
            pn.pane.Markdown(
                plain(unpriced_text(unpriced) or "Every model of the window has a price.")
            ),
            sizing_mode="stretch_width",
        ),
    }


def _tables(
    messages: MessagesPipeline,
    window: Answers,
    agents: pd.DataFrame,
    names: dict[str, str],
    tz: str,
) -> dict[str, pd.DataFrame]:
    """One row per agent, per frequent failure and per slow conversation: no message."""
    errors = named(window.top_errors(TOP), names, "agent_id")
    slowest = messages.slowest_conversations(TOP)
    return {
        # As in the dashboard's agents table: team and kind would crowd out the numbers.
        "Agents": agent_table(window, agents, tz).drop(columns=["agent_id", "team", "kind"]),
        "Models": window.breakdown("model"),
        f"Top {TOP} errors": local_times(errors.rename(columns={"agent_id": "agent"}), tz),
        f"Slowest {TOP} conversations": local_times(
            slowest.drop(columns=["ended", "unanswered"]), tz
        ),
    }


def _agents_of(messages: MessagesPipeline) -> AgentsPipeline:
    """The agents that ``messages`` is filtered to (all when none), following its filter."""
    return AgentsPipeline().follow(messages)


def _read(pipeline: AgentsPipeline | MessagesPipeline) -> None:
    """Bring ``pipeline`` up to date with its source (a shared cache may hold an older frame)."""
    pipeline.refresh()
    if pipeline.stale:
        raise SourceUnavailableError(
            f"reading {pipeline.spec().describe()} failed: {pipeline.live.error}"
        )


def _chart(chart: Model, printed: bool) -> pn.pane.Bokeh:
    """A chart in a pane of the report's height; a drag zooms into a box (readers of a
    file look closer).  Printed, without its toolbar."""
    if printed:
        chart.update(toolbar_location=None)
    return pn.pane.Bokeh(chart, height=CHART_HEIGHT, sizing_mode="stretch_width")


def _section(title: str, content: Any) -> pn.Column:
    return pn.Column(
        pn.pane.Markdown(f"## {title}", margin=(20, 10, 0, 10)),
        pn.panel(content),
        sizing_mode="stretch_width",
        # Printed, a section starts on the next page rather than being cut in two.
        styles={"break-inside": "avoid"},
    )


def _table(frame: pd.DataFrame, tz: str, printed: bool) -> pn.widgets.Tabulator:
    """A read-only table as the dashboard draws one; rates as percentages, times in ``tz``.
    Printed, its headings have no sort arrows."""
    numbers = frame.select_dtypes("number").columns
    times = frame.select_dtypes("datetime").columns
    formats = {"rate": "0.0%", "usd": "$0,0.00"}
    formatters: dict[str, Any] = {
        column: number(formats.get(column.rsplit("_", 1)[-1], "0,0")) for column in numbers
    }
    formatters.update({column: DateFormatter(format="%Y-%m-%d %H:%M") for column in times})
    titles = {
        column: column.replace("_", " ") + (f" ({tz})" if column in times else "")
        for column in frame.columns
    }
    return table(frame, formatters=formatters, titles=titles, sortable=not printed)


def _window_name(messages: MessagesPipeline) -> str:
    if messages.window != "custom":
        return f"last {messages.window}"
    start, end = messages.bounds
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


def _when(moment: datetime, tz: str) -> str:
    return to_local(pd.Timestamp(moment), tz).strftime("%a %d %b %Y %H:%M")


def _filters_text(filters: dict[str, Any], names: dict[str, str]) -> str:
    """ ", agents atlas-router, rigel-retrieval, search 'c-12'": the filters set, agents named."""
    parts = []
    for name, value in filters.items():
        if name == "agents":
            value = [names.get(agent, agent) for agent in value]
        parts.append(f", {name} {', '.join(value) if isinstance(value, list) else repr(value)}")
    return "".join(parts)


# Titles, filters and the source's name come from settings and documents: shown as text.


def _heading(p: Provenance, names: dict[str, str]) -> str:
    return (
        f"# {plain(p.title)}\n\n{_when(p.start, p.tz)} to {_when(p.end, p.tz)} ({p.tz})"
        f"{plain(_filters_text(p.filters, names))}. Changes are against "
        f"{_when(p.previous_start, p.tz)} to {_when(p.previous_end, p.tz)}."
    )


def _about(p: Provenance, printed: bool) -> str:
    latest = "none" if p.latest_message is None else _when(p.latest_message, p.tz)
    rows = p.rows
    return "\n".join(
        [
            f"- **Built** {_when(p.built_at, p.tz)} ({p.tz}) by agentdash {p.agentdash_version}",
            f"- **Source** {plain(p.source)}, read {_when(p.read_at, p.tz)}; "
            f"latest message {latest}",
            f"- **Window** {p.window}: {p.start:{SECONDS}} to {p.end:{SECONDS}} UTC",
            f"- **Rows** {rows['messages']:,} messages in the window, "
            f"{rows['previous_messages']:,} in the period before, {rows['agents']:,} agents, "
            f"{rows['quarantined']:,} unreadable documents left out",
            *([f"- **Precision** {ROLLED_UP_NOTE}"] if p.rolled_up else []),
            *([] if printed else [f"- {HELP}"]),
        ]
    )
