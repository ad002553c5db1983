"""Ops: how fresh the data are, what reading them costs, what could not be read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import pandas as pd
import panel as pn

from app import compute
from app.views.base import View
from app.views.cards import Card, KpiCards
from app.views.charts import Layer, LiveChart, lines, wall_time
from app.views.tables import sync_table, table
from pipelines.backend import Backend

REFRESH_COLUMNS = [
    "at",
    "spec",
    "documents",
    "rows_changed",
    "request_charge",
    "throttled",
    "requests",
    "seconds",
    "error",
]


def freshness(backend: Backend, tz: str) -> pd.DataFrame:
    """One row per live frame: rows, time of the data, staleness and the last error."""
    frames = backend.status()["frames"]
    table = pd.DataFrame(
        [{"frame": name, **state} for name, state in frames.items()],
        columns=["frame", "rows", "as_of", "stale", "error", "version"],
    )
    table["as_of"] = pd.to_datetime(table["as_of"], utc=True).dt.tz_convert(tz).dt.tz_localize(None)
    return table


def refresh_history(backend: Backend, tz: str) -> pd.DataFrame:
    """The recorded refreshes, oldest first, with local times."""
    history = pd.DataFrame([asdict(r) for r in list(backend.refreshes)], columns=REFRESH_COLUMNS)
    history["at"] = pd.to_datetime(history["at"], utc=True).dt.tz_convert(tz).dt.tz_localize(None)
    return history[REFRESH_COLUMNS]


class OpsView(View):
    """Freshness, source cost (request units, throttles, documents per refresh), cache hits
    and quarantined documents of the backend behind the pipelines."""

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
                self.quarantine,
            ]
        )
        self._refresh_now()

    def refresh(self) -> None:
        backend, tz = self.messages.data, self.messages.tz
        sync_table(self.freshness, freshness(backend, tz))
        stats: dict[str, Mapping[str, float]] = {
            "source": backend.source.stats.snapshot(),
            "cache": backend.cache.stats.snapshot(),
            "metrics memo": asdict(compute.MEMO.stats),
            "quarantined": {"documents": backend.quarantine.count},
        }
        self.counters.update(
            {
                f"{group}.{name}": stats[group][name]
                for group, names in self.COUNTERS.items()
                for name in names
            }
        )

        history = refresh_history(backend, tz)
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
            sorted(backend.quarantine.reasons().items()), columns=["reason", "documents"]
        )
        sync_table(self.reasons, reasons)
        sync_table(self.quarantine, backend.quarantine.frame())


def _per_refresh(value: str, title: str, ylabel: str) -> LiveChart:
    """A chart of one figure of each refresh, a line per frame, a dot per refresh."""
    return LiveChart(
        lambda layers: lines(layers, value=value, title=title, ylabel=ylabel, markers=True),
        height=240,
    )
