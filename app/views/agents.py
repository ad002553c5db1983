"""Agents: a table of every agent, and the page of the one selected."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import pandas as pd
import panel as pn
import param

from app.charts.analytic import bins_text, histogram, histogram_layer
from app.charts.layers import Layer
from app.charts.live import LiveFigure
from app.charts.time import FigureKit, bin_name, stacked_bars, stacked_layers
from app.memo import answers, current, memo
from app.tables import agent_conversations, agent_table
from app.tabulator import METRIC_TITLES, metric_formatters, number, sync_table, table
from app.views.base import View
from app.views.notice import plain
from app.views.thread import ConversationThread
from pipelines import metrics
from pipelines.answers import ask
from pipelines.pipeline import MessagesPipeline


class AgentPage(View):
    """One agent: its messages over time, its latency distribution, its conversations.

    The latency histogram is drawn again on new data, so the page follows it every 10 s.
    """

    data_refresh_seconds = 10.0

    agent = param.String(default="", doc="Id of the agent shown.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.mine = MessagesPipeline().follow(self.messages, agents=[self.agent])
        self.header = pn.pane.Markdown("")
        self._kit = FigureKit()
        self.timeline = LiveFigure(
            self._draw_timeline,
            title="Messages over time",
            empty="No message of this agent matches these filters",
            height=260,
        )
        self.latency = LiveFigure(
            partial(histogram, xlabel="latency (ms)", kit=self._kit),
            title="Reply latency",
            empty="No reply of this agent with a latency matches these filters",
            height=260,
        )
        self.conversations = table(
            page_size=10,
            pagination="local",
            selectable=1,
            titles={
                "started": "started",
                "conversation_id": "conversation",
                "user_id": "user",
                "duration_s": "duration (s)",
            },
            formatters={"duration_s": number("0,0.0")},
            configuration={"placeholder": "No conversation of this agent matches these filters"},
        )
        self.conversations.param.watch(self._selected, "selection")
        self.thread = ConversationThread(messages=self.messages)
        self.layout.extend(
            [
                self.header,
                pn.Row(self.timeline, self.latency),
                self.conversations,
                self.thread,
            ]
        )
        self._first_refresh()

    @param.depends("agent", watch=True)
    def _agent_changed(self) -> None:
        self.mine.agents = [self.agent]
        self.thread.conversation = None
        self._request(slow=True)

    def _draw_timeline(self, layers: Sequence[Layer], title: str) -> Any:
        return stacked_bars(layers, title=title, ylabel="messages", kit=self._kit)

    def _selected(self, event: param.parameterized.Event) -> None:
        rows = self.conversations.selected_dataframe
        if len(rows):
            self.thread.conversation = str(rows["conversation_id"].iloc[0])

    def refresh(self) -> None:
        mine, tz = self.mine, self.messages.tz
        info = memo(agent_table, answers(self.messages), current(self.agents), tz)
        info = info.set_index("agent_id")
        # Names, kinds, teams and statuses come from the documents: text, never markup.
        if self.agent in info.index:
            row = info.loc[self.agent]
            seen = row["last_seen"]
            self.header.object = (
                f"### {plain(row['name'])}\n{plain(row['kind'])} · {plain(row['team'])} · "
                f"**{plain(row['status'])}** · "
                + ("never seen" if pd.isna(seen) else f"last seen {seen:%Y-%m-%d %H:%M} ({tz})")
            )
        else:
            self.header.object = f"### {plain(self.agent)}\nNot in the agents list."
        self.thread.names = {agent: str(name) for agent, name in info["name"].items()}
        start, end = mine.bounds
        interval = metrics.choose_interval(pd.Timestamp(start), pd.Timestamp(end))
        volume = memo(ask, answers(mine), "volume_series", interval, by="status", tz=tz)
        self._kit.span(start, end, tz)
        self.timeline.update(
            stacked_layers(volume, interval, {}), title=f"Messages per {bin_name(interval)}"
        )
        latency = memo(ask, answers(mine), "latency_distribution")
        self.latency.update(
            [histogram_layer(latency, "latency")], title=f"Reply latency ({bins_text(latency)})"
        )
        sync_table(
            self.conversations,
            memo(agent_conversations, current(self.messages), self.agent, tz),
        )


class AgentsView(View):
    """Every agent with its activity in the window; selecting one opens its page.

    ``agent`` is the agent whose page is open (None: none), by id or name.
    """

    agent = param.String(
        default=None, allow_None=True, doc="Id (or name) of the agent whose page is open."
    )

    links = {"agent": "agent_page"}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.table = table(
            selectable=1,
            formatters=metric_formatters(),
            titles={**METRIC_TITLES, "name": "agent"},
            # Team and kind head the agent's page; the table keeps to numbers.
            hidden_columns=["agent_id", "team", "kind"],
            widths={
                "name": 150,
                "status": 90,
                "last_seen": 150,
                "messages": 90,
                "conversations": 110,
                "error_rate": 90,
                "latency_p50": 80,
                "latency_p95": 80,
                "tokens_in": 90,
                "tokens_out": 90,
                "cost_usd": 90,
            },
            configuration={"placeholder": "No agent matches these filters"},
        )
        self.table.param.watch(self._selected, "selection")
        self.page: AgentPage | None = None
        self._page_slot = pn.Column(sizing_mode="stretch_width")
        self.layout.extend(
            [pn.pane.Markdown("Select an agent to open its page."), self.table, self._page_slot]
        )
        self._first_refresh()
        self._open()

    def _selected(self, event: param.parameterized.Event) -> None:
        rows = self.table.selected_dataframe
        if len(rows):
            self.agent = str(rows["agent_id"].iloc[0])

    @param.depends("agent", watch=True)
    def _open(self) -> None:
        agent = self._id(self.agent) if self.agent else ""
        if self.page is None and agent:
            self.page = AgentPage(
                messages=self.messages, agents=self.agents, agent=agent, shown=self.shown
            )
            self._page_slot.objects = [self.page]
        elif self.page is not None:
            self.page.agent = agent
        self._page_slot.visible = bool(agent)

    def _id(self, agent: str) -> str:
        """The id of ``agent`` (an id or a name, as a link may give it)."""
        ids = self.agents.agent_ids([agent])
        return ids[0] if len(ids) == 1 else agent

    @param.depends("shown", watch=True)
    def _show_page(self) -> None:
        if self.page is not None:
            self.page.shown = self.shown

    def refresh(self) -> None:
        frame = memo(agent_table, answers(self.messages), current(self.agents), self.messages.tz)
        self.table.titles = {**self.table.titles, "last_seen": f"last seen ({self.messages.tz})"}
        sync_table(self.table, frame)
