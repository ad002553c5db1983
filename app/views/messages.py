"""Messages: a server-paginated table, the conversation of the selected row, downloads."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from app.memo import current, memo
from app.tables import MESSAGE_KEPT, agent_names, message_table
from app.tabulator import table
from app.views.base import View
from app.views.thread import ConversationThread
from pipelines.schema import ROLES, STATUSES


def _text_filter() -> dict[str, str]:
    return {"type": "input", "func": "like", "placeholder": "contains…"}


def _choice_filter(values: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "list", "func": "=", "valuesLookup": False, "values": list(values)}


class MessagesView(View):
    """Every message of the window, newest first, one page at a time from the server.

    Selecting a row opens its conversation (``conversation``). New data do not
    move the rows under the reader: a button offers the latest ones instead.
    The buttons download what the table shows (filters included) as CSV or Parquet.
    """

    conversation = param.String(
        default=None, allow_None=True, doc="Id of the conversation opened beside the table."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.table = table(
            pagination="remote",
            page_size=15,
            selectable=1,
            hidden_columns=MESSAGE_KEPT,
            header_filters={
                "conversation_id": _text_filter(),
                "agent": _text_filter(),
                "role": _choice_filter(ROLES),
                "status": _choice_filter(STATUSES),
            },
            formatters={"latency_ms": NumberFormatter(format="0,0")},
            titles={
                "time": f"time ({self.messages.tz})",
                "conversation_id": "conversation",
                "latency_ms": "latency (ms)",
                "tokens_in": "tokens in",
                "tokens_out": "tokens out",
            },
            widths={
                "time": 190,
                "conversation_id": 190,
                "agent": 150,
                "role": 90,
                "status": 90,
                "latency_ms": 110,
                "tokens_in": 100,
                "tokens_out": 100,
            },
        )
        self.table.param.watch(self._selected, "selection")
        self.thread = ConversationThread(messages=self.messages)
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
        self._refresh_now()

    def _data_changed(self) -> None:
        # Rows jumping between pages while someone reads them is worse than a button.
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

    def refresh(self) -> None:
        messages = self.messages
        frame = memo(message_table, current(messages), current(self.agents), messages.tz)
        self.thread.names = memo(agent_names, current(self.agents))
        self.table.titles = {**self.table.titles, "time": f"time ({messages.tz})"}
        self.table.value = frame
        self.latest.visible = False
        self.count.value = f"<b>{len(frame):,}</b> messages"

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
