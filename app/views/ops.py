"""Ops: how fresh the data are, what reading them costs, what could not be read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from functools import partial
from typing import Any

import pandas as pd
import panel as pn
from bokeh.models import DataRange1d

from app import memo
from app.cards import Card, KpiCards
from app.charts.layers import Layer, wall_time
from app.charts.live import LiveFigure
from app.charts.time import FigureKit, lines
from app.tables import frames_table, refreshes_table
from app.tabulator import number, sync_table, table
from app.views.base import View

COUNTER_NAMES = {"request_charge": "request units"}
"""Counters whose field name is not what a person calls them."""


class OpsView(View):
    """Freshness, source cost (request units, throttles, documents per refresh), cache hits
    and quarantined documents of the live frames behind the pipelines."""

    COUNTERS = {
        "source": ("requests", "documents", "request_charge", "throttled"),
        "cache": ("hits", "misses", "writes", "errors"),
        "metrics memo": ("hits", "misses", "evictions"),
        "quarantined": ("documents",),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.freshness = table(
            titles={"as_of": f"data as of ({self.messages.tz})", "error": "last error"}
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
        self.history = table(
            pagination="local",
            page_size=10,
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
        self.reasons = table()
        self.quarantine = table(pagination="local", page_size=10)
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
                self.quarantine,
            ]
        )
        self._refresh_now()

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
        sync_table(self.history, history.iloc[::-1])
        reasons = pd.DataFrame(
            sorted(status.quarantine_reasons.items()), columns=["reason", "documents"]
        )
        sync_table(self.reasons, reasons)
        sync_table(self.quarantine, self.messages.data.quarantine.frame())


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
