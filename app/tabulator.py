"""Read-only Tabulator tables that later frames update cell by cell."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn
from bokeh.models.widgets.tables import NumberFormatter

# How the metrics' columns read in a table (pipelines.metrics per_agent and breakdown).
METRIC_FORMATS = {
    "error_rate": "0.0%",
    "latency_p50": "0,0",
    "latency_p95": "0,0",
    "tokens_in": "0,0",
    "tokens_out": "0,0",
    "cost_usd": "$0,0.00",
}
METRIC_TITLES = {
    "error_rate": "error rate",
    "latency_p50": "p50 (ms)",
    "latency_p95": "p95 (ms)",
    "tokens_in": "tokens in",
    "tokens_out": "tokens out",
    "cost_usd": "cost (USD)",
    "unpriced_messages": "unpriced",
    "user_id": "user",
}


def metric_formatters() -> dict[str, NumberFormatter]:
    """A formatter for each metric column (a table's models are its own: one set each)."""
    return {column: number(fmt) for column, fmt in METRIC_FORMATS.items()}


def table(value: pd.DataFrame | None = None, **params: Any) -> pn.widgets.Tabulator:
    """A read-only Tabulator with the dashboard's defaults (``params`` override them)."""
    defaults: dict[str, Any] = {
        "disabled": True,
        "show_index": False,
        "sizing_mode": "stretch_width",
        "layout": "fit_data_table",
        "selectable": False,
    }
    if pn.config.theme == "dark":
        # The Bootstrap table theme keeps a light footer on a dark page.
        defaults["theme"] = "midnight"
    return pn.widgets.Tabulator(value, **{**defaults, **params})


def number(fmt: str = "0,0") -> NumberFormatter:
    """Numbers in ``fmt`` (numbro), right-aligned as figures are read; missing ones "-"."""
    return NumberFormatter(format=fmt, text_align="right", nan_format="-")


def _changed(old: pd.Series, new: pd.Series) -> list[int]:
    """Positions where ``new`` differs from ``old``; missing equals missing."""
    old, new = old.reset_index(drop=True), new.reset_index(drop=True)
    same = old.eq(new).fillna(False).astype(bool) | (old.isna() & new.isna())
    return [int(i) for i in same.index[~same]]


def sync_table(table: pn.widgets.Tabulator, frame: pd.DataFrame) -> None:
    """Show ``frame`` in ``table`` by patching changed cells and streaming new rows.

    Rows are matched on the first column (a key, e.g. an id): when the table's
    rows are not the first rows of ``frame`` in the same order, or the columns
    differ, the value is replaced.
    """
    old = table.value
    frame = frame.reset_index(drop=True)
    rows = 0 if old is None else len(old)
    continues = (
        old is not None
        and list(old.columns) == list(frame.columns)
        and rows <= len(frame)
        and old.iloc[:, 0].reset_index(drop=True).equals(frame.iloc[:rows, 0])
    )
    if not continues:
        table.value = frame
        return
    head = frame.iloc[:rows]
    patch = {
        column: [(i, head[column].iloc[i]) for i in changed]
        for column in frame.columns
        if (changed := _changed(old[column], head[column]))
    }
    if patch:
        table.patch(patch, as_index=False)
    if len(frame) > rows:
        table.stream(frame.iloc[rows:], follow=False)
