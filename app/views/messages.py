"""Messages: a server-paginated table, the conversation of the selected row, downloads."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import panel as pn
import param

from app.memo import current, memo
from app.tables import MESSAGE_KEPT, agent_names, message_table
from app.tabulator import number, table
from app.views.base import View
from app.views.thread import ConversationThread
from pipelines.parameters import Names
from pipelines.schema import ROLES, STATUSES


def _text_filter() -> dict[str, str]:
    return {"type": "input", "func": "like", "placeholder": "contains…"}


def _choice_filter(values: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "list", "func": "=", "values": list(values)}


HEADER_FILTERS = {
    "conversation_id": _text_filter(),
    "agent": _text_filter(),
    "role": _choice_filter(ROLES),
    "status": _choice_filter(STATUSES),
}
"""The table's header filters; a link names them ``column:value``."""
SORTED = ("asc", "desc")


class MessagesView(View):
    """Every message of the window, newest first, one page at a time from the server.

    Selecting a row opens its conversation (``conversation``); the table's sort
    (``sort``) and header filters (``table_filters``) are in the page's link too.
    New messages do not move the rows under the reader: a button offers them
    instead.  The buttons download what the table shows (filters included) as CSV
    or Parquet.
    """

    conversation = param.String(
        default=None, allow_None=True, doc="Id of the conversation opened beside the table."
    )
    sort = param.String(
        default="", doc="The column the table is sorted by, and how: latency_ms:desc or :asc."
    )
    table_filters = Names(
        doc="The table's header filters as column:value, e.g. status:error,agent:nova."
    )

    links = {"conversation": "conversation", "sort": "sort", "table_filters": "filters"}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.table = table(
            pagination="remote",
            page_size=15,
            selectable=1,
            hidden_columns=MESSAGE_KEPT,
            header_filters=HEADER_FILTERS,
            formatters={"latency_ms": number("0,0")},
            titles={
                "time": f"time ({self.messages.tz})",
                "conversation_id": "conversation",
                "latency_ms": "latency (ms)",
                "tokens_in": "tokens in",
                "tokens_out": "tokens out",
            },
            configuration={
                "placeholder": "No message matches these filters",
                # Tabulator shows header filters given when it builds the table, not later.
                "initialHeaderFilter": [
                    {"field": f["field"], "value": f["value"]} for f in self._header_filters()
                ],
            },
        )
        self._sort_table()
        self._filter_table()
        self.table.param.watch(self._selected, "selection")
        self.table.param.watch(self._table_sorted, "sorters")
        self.table.param.watch(self._table_filtered, "filters")
        self.thread = ConversationThread(messages=self.messages, conversation=self.conversation)
        self.thread.param.watch(self._opened, "conversation")
        self.count = pn.widgets.StaticText(value="")
        self.latest = pn.widgets.Button(
            label="New messages: show the latest", color="primary", visible=False
        )
        self.latest.on_click(lambda event: self._request(slow=True))
        downloads = [
            pn.widgets.FileDownload(
                callback=lambda kind=kind: self.download(kind),
                filename=f"messages.{kind}",
                label=f"Download {label}",
                color="default",
                width=170,
            )
            for kind, label in (("csv", "CSV"), ("parquet", "Parquet"))
        ]
        self.layout.extend(
            [
                pn.Row(self.count, self.latest, pn.HSpacer(), *downloads),
                self.table,
                self.thread,
            ]
        )
        self._first_refresh()

    def _data_changed(self) -> None:
        # Rows jumping between pages while someone reads them is worse than a button; a
        # window that only slid on, or a table with no row to read, needs neither.
        shown = self.table.value
        if shown is None or not len(shown):
            super()._data_changed()
            return
        newest = shown["timestamp"].max()
        if bool((self.messages.frame["timestamp"] > newest).any()):
            self.latest.visible = True

    @param.depends("conversation", watch=True)
    def _open(self) -> None:
        self.thread.conversation = self.conversation

    def _opened(self, event: param.parameterized.Event) -> None:
        self.conversation = event.new

    def _selected(self, event: param.parameterized.Event) -> None:
        rows = self.table.selected_dataframe
        if len(rows):
            self.conversation = str(rows["conversation_id"].iloc[0])

    # -- the table's state, as the link says it ------------------------------------------
    @param.depends("sort", watch=True)
    def _sort_table(self) -> None:
        field, _, direction = self.sort.partition(":")
        sorters = [{"field": field, "dir": direction}] if field and direction in SORTED else []
        if sorters != self.table.sorters:
            self.table.sorters = sorters

    def _table_sorted(self, event: param.parameterized.Event) -> None:
        self.sort = ",".join(f"{s['field']}:{s['dir']}" for s in event.new[:1])

    def _header_filters(self) -> list[dict[str, str]]:
        """``table_filters`` as Tabulator's header filters (those of known columns)."""
        filters = []
        for item in self.table_filters:
            field, _, value = item.partition(":")
            if field in HEADER_FILTERS and value:
                func = HEADER_FILTERS[field]["func"]
                filters.append({"field": field, "type": func, "value": value})
        return filters

    @param.depends("table_filters", watch=True)
    def _filter_table(self) -> None:
        filters = self._header_filters()
        if filters != self.table.filters:
            self.table.filters = filters

    def _table_filtered(self, event: param.parameterized.Event) -> None:
        self.table_filters = [f"{f['field']}:{f['value']}" for f in event.new if f.get("value")]
        self._count()

    def _count(self) -> None:
        shown, every = self.table.current_view, self.table.value
        total = 0 if every is None else len(every)
        count = total if shown is None else len(shown)
        self.count.value = (
            f"<b>{count:,}</b> messages"
            if count == total
            else f"<b>{count:,}</b> of {total:,} messages (the table's filters)"
        )

    def refresh(self) -> None:
        messages = self.messages
        frame = memo(message_table, current(messages), current(self.agents), messages.tz)
        self.thread.names = memo(agent_names, current(self.agents))
        self.table.titles = {**self.table.titles, "time": f"time ({messages.tz})"}
        self.table.value = frame
        self.latest.visible = False
        self._count()

    def selection(self) -> pd.DataFrame:
        """What the table shows, header filters included, with UTC timestamps."""
        return self.table.current_view.drop(columns=["time"])

    def download(self, kind: str) -> io.BytesIO:
        """The current selection as a ``csv`` or ``parquet`` file."""
        frame, buffer = self.selection(), io.BytesIO()
        if kind == "csv":
            frame.to_csv(buffer, index=False)
        else:
            frame.to_parquet(buffer, index=False)
        buffer.seek(0)
        return buffer
