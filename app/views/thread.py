"""One conversation as a chat: who said what, when, how fast, at what cost.

Drawn with plain HTML panes: Panel's ChatMessage fetches its icon font from a CDN.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import pandas as pd
import panel as pn
import param

from app.theme import BAD, MUTED, ROLE_COLORS
from app.views.notice import plain
from pipelines.errors import AgentdashError
from pipelines.metrics import FAILED_STATUSES
from pipelines.pipeline import MessagesPipeline
from pipelines.windows import to_local


def speaker(turn: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """Who wrote a message: the user's id, the agent's name, or the role."""
    role = str(turn["role"])
    if role == "user":
        return f"user {turn['user_id']}" if pd.notna(turn["user_id"]) else "user"
    agent = turn["agent_id"]
    if role == "agent" and pd.notna(agent):
        return names.get(agent, agent)
    return role if pd.isna(agent) else f"{role} · {names.get(agent, agent)}"


def cost_line(turn: Mapping[str, Any]) -> str:
    """Latency, tokens and status of a message, the parts it has."""
    parts = []
    if pd.notna(turn["latency_ms"]):
        parts.append(f"{turn['latency_ms']:,.0f} ms")
    tokens = [
        f"{turn[column]:,} {label}"
        for column, label in (("tokens_in", "in"), ("tokens_out", "out"))
        if pd.notna(turn[column])
    ]
    if tokens:
        parts.append("tokens " + " / ".join(tokens))
    if turn["status"] != "ok":
        parts.append(f"status: {turn['status']}")
    return " · ".join(parts)


BUBBLE = {
    "border-radius": "8px",
    "padding": "2px 10px",
    "border": "1px solid rgba(128, 128, 128, 0.3)",
}
TINT = {"user": "rgba(78, 121, 167, 0.14)", "agent": "rgba(128, 128, 128, 0.08)"}


def chat_turn(turn: Mapping[str, Any], names: Mapping[str, str], tz: str) -> pn.pane.HTML:
    """One message as a chat bubble: who, when, what, at what cost; failed ones edged red.

    Message text comes from users and models: it is escaped, never rendered as markup.
    """
    role = str(turn["role"])
    failed = turn["status"] in FAILED_STATUSES
    when = to_local(pd.Timestamp(turn["timestamp"]), tz)
    content = "" if pd.isna(turn["content"]) else str(turn["content"])
    body = (
        f'<div><b><span style="color: {ROLE_COLORS.get(role, MUTED)}">●</span> '
        f"{html.escape(speaker(turn, names))}</b>"
        f' <span style="opacity: 0.7">{when:%Y-%m-%d %H:%M:%S}</span></div>'
        f'<div style="white-space: pre-wrap">{html.escape(content)}</div>'
        f'<div style="font-size: 8.5pt; opacity: 0.8; color: {BAD if failed else "inherit"}">'
        f"{html.escape(cost_line(turn))}</div>"
    )
    style = {**BUBBLE, "background": TINT.get(role, "transparent")}
    if failed:
        style["border-left"] = f"4px solid {BAD}"
    return pn.pane.HTML(body, css_classes=["chat-turn"], styles=style, sizing_mode="stretch_width")


class ConversationThread(pn.viewable.Viewer):
    """The conversation ``conversation`` of ``messages``, read with its text when it changes."""

    messages: MessagesPipeline = param.ClassSelector(  # type: ignore[assignment]
        class_=MessagesPipeline, doc="Where to read conversations."
    )
    conversation = param.String(default=None, allow_None=True, doc="Id of the conversation shown.")
    names = param.Dict(default={}, doc="Agent id -> display name.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.title = pn.pane.Markdown()
        self.turns = pn.Column(sizing_mode="stretch_width", scroll=True, max_height=700)
        self.layout = pn.Column(self.title, self.turns, sizing_mode="stretch_width")
        self._show()

    def __panel__(self) -> pn.Column:
        return self.layout

    @param.depends("conversation", "messages.tz", watch=True)
    def _show(self) -> None:
        if not self.conversation:
            self.title.object = "Select a row to read its conversation."
            self.turns.objects = []
            return
        # The id may come from a link: shown as text, never as markup.
        shown = plain(self.conversation)
        try:
            turns = self.messages.conversation(self.conversation)
        except AgentdashError as exc:
            self.title.object = f"Could not read conversation {shown}: {plain(exc)}"
            self.turns.objects = []
            return
        if turns.empty:
            self.title.object = f"#### Conversation {shown}\nNo message has this conversation id."
            self.turns.objects = []
            return
        failed = int(turns["status"].isin(FAILED_STATUSES).sum())
        self.title.object = f"#### Conversation {shown}\n{len(turns)} messages" + (
            f", **{failed} failed**" if failed else ""
        )
        tz = self.messages.tz
        self.turns.objects = [
            chat_turn({str(k): v for k, v in turn.items()}, self.names, tz)
            for turn in turns.to_dict("records")
        ]
