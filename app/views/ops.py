"""Ops: how fresh the data are, what reading them costs, what could not be read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import pandas as pd
import panel as pn
import param

from app import memo
from app.cards import Card, KpiCards
from app.charts.layers import Layer, wall_time
from app.charts.live import LiveFigure
from app.charts.time import lines
from app.tables import frames_table, refreshes_table
from app.tabulator import sync_table, table
from app.views.base import View


class OpsView(View):
    """Freshness, source cost (request units, throttles, documents per refresh), cache hits
    and quarantined documents of the live frames behind the pipelines.

    The quarantined documents themselves (they may hold raw data of any team) are shown
    to admins only; others see how many there are and why.
    """

    admin = param.Boolean(default=False, doc="Whether the user may see quarantined documents.")

    COUNTERS = {
        "source": ("requests", "documents", "request_charge", "throttled"),
        "cache": ("hits", "misses", "writes", "errors"),
        "metrics memo": ("hits", "misses", "evictions"),
        "quarantined": ("documents",),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.freshness = table()
        self.counters = KpiCards(
            {
                f"{group}.{name}": Card(
                    f"{group} {name.replace('_', ' ')}",
                    "{value:,.1f}" if name == "request_charge" else "{value:,.0f}",
                )
                for group, names in self.COUNTERS.items()
                for name in names
            }
        )
        self.costs = _per_refresh("request_charge", "Request units per refresh", "RU")
        self.documents = _per_refresh("documents", "Documents read per refresh", "documents")
        self.history = table(pagination="local", page_size=10)
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
                self.quarantine
                if self.admin
                else pn.pane.Markdown("Only admins see the quarantined documents themselves."),
            ]
        )
        self._refresh_now()

    def refresh(self) -> None:
        status, tz = self.messages.data.status(), self.messages.tz
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
        if self.admin:
            sync_table(self.quarantine, self.messages.data.quarantine.frame())


def _per_refresh(value: str, title: str, ylabel: str) -> LiveFigure:
    """A chart of one figure of each refresh, a line per frame, a dot per refresh."""
    return LiveFigure(
        lambda layers: lines(
            layers, value=value, title=title, ylabel=ylabel, markers=True, shared=False
        ),
        height=240,
    )
