"""Ops: how fresh the data are, what reading them costs, what could not be read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from functools import partial
from typing import Any

import pandas as pd
import panel as pn
import param
from bokeh.models import DataRange1d

from app import memo
from app.cards import Card, KpiCards
from app.charts.layers import Layer, wall_time
from app.charts.live import LiveFigure
from app.charts.time import FigureKit, lines
from app.live import alert_stats
from app.tables import frames_table, refreshes_table
from app.tabulator import number, sync_table, table
from app.views.base import View
from pipelines.quarantine import Entry
from pipelines.windows import to_local

COUNTER_NAMES = {
    "request_charge": "request units",
    "evaluations": "rule evaluations",
    "firing": "instances firing",
    "sent": "notifications sent",
    "failed": "notifications failed",
}
"""Counters whose field name is not what a person calls them."""


class OpsView(View):
    """Freshness, source cost (request units, throttles, documents per refresh), cache hits,
    quarantined documents and alerting (rule evaluations, instances firing, notifications
    sent and failed) of the live frames behind the pipelines.

    The quarantined documents themselves (they may hold raw data of any team) are shown
    to admins only; others see how many there are and why.
    """

    admin = param.Boolean(default=False, doc="Whether the user may see quarantined documents.")

    COUNTERS = {
        "source": ("requests", "documents", "request_charge", "throttled"),
        "cache": ("hits", "misses", "writes", "errors"),
        "metrics memo": ("hits", "misses", "evictions"),
        "quarantined": ("documents",),
        "alerts": ("evaluations", "firing", "sent", "failed"),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.freshness = table(
            titles={
                "as_of": f"data as of ({self.messages.tz})",
                "memory_mb": "memory (MB)",
                "error": "last error",
            },
            formatters={"memory_mb": number("0,0.0")},
        )
        self.counters = KpiCards(
            {
                f"{group}.{name}": Card(
                    f"{group} {COUNTER_NAMES.get(name, name)}".capitalize(),
                    "{value:,.1f}" if name == "request_charge" else "{value:,.0f}",
                )
                for group, names in self.COUNTERS.items()
                for name in names
            }
        )
        # The refreshes recorded, not the window: their own time axis, fitted to them.
        kit, times = FigureKit(), DataRange1d(range_padding=0.05)
        self.costs = _per_refresh(
            "request_charge", "Request units per refresh", "request units", kit, times
        )
        self.documents = _per_refresh(
            "documents", "Documents read per refresh", "documents", kit, times
        )
        # Oldest first, as the refreshes come: new ones are streamed in and the oldest rolled
        # out; the browser sorts them newest first.
        self.history = table(
            pagination="local",
            page_size=10,
            sorters=[{"field": "at", "dir": "desc"}],
            titles={
                "at": f"time ({self.messages.tz})",
                "spec": "frame",
                "rows_changed": "rows changed",
                "request_charge": "request units",
                "took_ms": "took (ms)",
            },
            formatters={
                "request_charge": number("0,0.0"),
                "took_ms": number("0,0"),
            },
        )
        self._history_shown: tuple[str, pd.Timestamp] | None = None  # (zone, latest at)
        self.reasons = table(configuration={"placeholder": "No document quarantined"})
        # Reasons and documents are long: they wrap in columns of their own width (the
        # textarea formatter shows text as text, never as HTML).
        wrapped = {"type": "textarea"}
        self.quarantine = table(
            pagination="local",
            page_size=10,
            layout="fit_columns",
            widths={"seen_at": 190, "container": 100, "reason": "28%", "document": "36%"},
            formatters={"id": wrapped, "reason": wrapped, "document": wrapped},
            configuration={"placeholder": "No document quarantined"},
        )
        # (count, time zone) of the documents listed: the store is read again when it moves.
        self._listed: tuple[int, str] | None = None
        self.layout.extend(
            [
                pn.pane.Markdown("#### Data freshness"),
                self.freshness,
                self.counters,
                pn.Row(self.costs, self.documents),
                pn.pane.Markdown("#### Refreshes, newest first"),
                self.history,
                pn.pane.Markdown("#### Quarantined documents"),
                self.reasons,
                self.quarantine
                if self.admin
                else pn.pane.Markdown("Only admins see the quarantined documents themselves."),
            ]
        )
        self._first_refresh()

    def _show_history(self, history: pd.DataFrame, tz: str) -> None:
        """Stream the refreshes recorded since the last shown into the table, rolling the
        oldest out: one refresh costs a row, not the whole table (sent again only when the
        zone changes)."""
        shown = self._history_shown
        if shown is None or shown[0] != tz:
            self.history.value = history.tail(HISTORY_SHOWN).reset_index(drop=True)
        else:
            new = history[history["at"] > shown[1]]
            if len(new):
                self.history.stream(
                    new.reset_index(drop=True), rollover=HISTORY_SHOWN, follow=False
                )
        if len(history):
            self._history_shown = (tz, history["at"].iloc[-1])

    def refresh(self) -> None:
        status, tz = self.messages.data.status(), self.messages.tz
        self.freshness.titles = {**self.freshness.titles, "as_of": f"data as of ({tz})"}
        self.history.titles = {**self.history.titles, "at": f"time ({tz})"}
        sync_table(self.freshness, frames_table(status, tz))
        stats: dict[str, Mapping[str, float]] = {
            "source": status.source_stats,
            "cache": status.cache_stats,
            "metrics memo": asdict(memo.MEMO.stats),
            "quarantined": {"documents": status.quarantined},
            "alerts": alert_stats(self.messages.data) or dict.fromkeys(self.COUNTERS["alerts"], 0),
        }
        self.counters.update(
            {
                f"{group}.{name}": stats[group][name]
                for group, names in self.COUNTERS.items()
                for name in names
            }
        )

        history = refreshes_table(status, tz)
        by_spec = [(str(spec), rows) for spec, rows in history.groupby("spec", sort=True)]
        for chart, value in ((self.costs, "request_charge"), (self.documents, "documents")):
            chart.update(
                [
                    Layer(spec, {"timestamp": wall_time(rows["at"]), value: rows[value].to_numpy()})
                    for spec, rows in by_spec
                ]
            )
        self._show_history(history, tz)
        reasons = pd.DataFrame(
            sorted(status.quarantine_reasons.items()), columns=["reason", "documents"]
        )
        sync_table(self.reasons, reasons)
        if self.admin and self._listed != (status.quarantined, tz):
            # A store that does not answer raises: the view says so and keeps the last list.
            entries = self.messages.data.quarantine.entries(QUARANTINE_LISTED)
            sync_table(self.quarantine, quarantine_table(entries, tz))
            self._listed = (status.quarantined, tz)


HISTORY_SHOWN = 100
"""Refreshes listed, the latest (the charts draw all those recorded)."""
QUARANTINE_LISTED = 100
"""Quarantined documents listed, the latest first (the API lists up to its ``limit``)."""
DOCUMENT_SHOWN = 300
"""Characters of a quarantined document's JSON shown in its row."""


def quarantine_table(entries: list[Entry], tz: str) -> pd.DataFrame:
    """The latest quarantined documents as the API lists them, at local times, with the
    start of each document's JSON."""
    rows = [
        {**entry.to_json(), "document": json.dumps(entry.document)[:DOCUMENT_SHOWN]}
        for entry in entries
    ]
    table = pd.DataFrame(rows, columns=["id", "container", "reason", "seen_at", "document"])
    table["seen_at"] = to_local(pd.to_datetime(table["seen_at"], utc=True), tz)
    return table[["seen_at", "container", "id", "reason", "document"]]


def _per_refresh(
    value: str, title: str, ylabel: str, kit: FigureKit, times: DataRange1d
) -> LiveFigure:
    """A chart of one figure of each refresh, a line per frame, a dot per refresh."""
    return LiveFigure(
        partial(
            lines,
            value=value,
            ylabel=ylabel,
            markers=True,
            shared=False,
            counts=value == "documents",
            time_range=times,
            kit=kit,
        ),
        title=title,
        empty="No refresh recorded yet",
        height=240,
    )
