"""Overview: headline numbers, message volume, latency, the busiest agents and cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import HBar, HoverTool, TapTool
from bokeh.models.widgets import Div, RadioButtonGroup

from app.cards import KPIS, KpiCards, period_name, unpriced_text
from app.charts.layers import Layer
from app.charts.live import Figures, LiveFigure
from app.charts.time import (
    FigureKit,
    add_glyph,
    bar_frame,
    lines,
    on_time_range,
    series_layers,
    stacked_bars,
    stacked_layers,
)
from app.memo import current, memo, previous
from app.tables import agent_names
from app.tabulator import METRIC_TITLES, metric_formatters, sync_table, table
from app.theme import MUTED
from app.views.base import View, narrow_time
from pipelines import metrics
from pipelines.pipeline import MessagesPipeline
from pipelines.windows import to_utc

STACK_BY = {"status": "by status", "agent_id": "by agent"}
"""Stacks of the volume chart, then one per breakdown of the pipeline (model, dimensions)."""
BUTTONS_CSS = """
.bk-btn { border-color: var(--panel-border-color, #ced4da); }
.bk-btn-default {
  background: var(--panel-surface-color, #f8f9fa);
  color: var(--panel-on-surface-color, #212529);
}
.bk-btn-default.bk-active {
  background: var(--panel-primary-color, #0072b5);
  color: var(--panel-on-primary-color, #ffffff);
}
"""
TOP_AGENTS = 10
BAR = "#4e79a7"


def _top_bars(layers: Sequence[Layer], kit: FigureKit | None = None) -> Any:
    (layer,) = layers
    plot = bar_frame("Busiest agents (click to filter)", layer.columns["agent"], "messages", kit)
    bar = HBar(y="agent", right="messages", height=0.8, fill_color=BAR, line_color=BAR)
    bars = add_glyph(plot, bar, layer, kit)
    plot.add_tools(
        HoverTool(renderers=[bars], tooltips=[("agent", "@agent"), ("messages", "@messages{0,0}")]),
        TapTool(renderers=[bars]),
    )
    return plot


class OverviewView(View):
    """KPI cards with their change, message volume, latency percentiles and top agents.

    Box-select a time range on a chart or click an agent's bar to narrow the
    messages pipeline (and with it every view that shares it)::

        OverviewView(messages=MessagesPipeline(window="24h"))
    """

    by: str = param.Selector(  # type: ignore[assignment]
        default="status", objects=["status", "agent_id"], doc="Stack message volume by this."
    )
    breakdown: str = param.Selector(  # type: ignore[assignment]
        default="model", objects=["model", "user_id"], doc="One row per value of this."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._stacks = {**STACK_BY, **{c: _by_name(c) for c in _breakdowns()}}
        self.param.by.objects = list(self._stacks)
        self.param.breakdown.objects = [*_breakdowns(), "user_id"]
        self.cards = KpiCards(KPIS)
        self.unpriced = Div(text="", margin=(0, 10), styles={"color": MUTED}, visible=False)
        self._kit = FigureKit()  # shared by the page's figures
        select_time = on_time_range(self._select_time)
        self.volume = LiveFigure(self._draw_volume, link=select_time, height=300)
        self.latency = LiveFigure(self._draw_latency, link=select_time, height=260)
        self.top_agents = LiveFigure(
            partial(_top_bars, kit=self._kit),
            value_axis="x",
            link=self._link_top,
            height=260,
        )
        self._top_ids: list[str] = []
        self.cost = LiveFigure(self._draw_cost, link=select_time, height=260)
        self.breakdowns = table(
            formatters=metric_formatters(),
            titles=dict(METRIC_TITLES),
            page_size=10,
            pagination="local",
        )
        self.layout.extend(
            [
                Figures(
                    [self.cards.div],
                    [self.unpriced],
                    [self._stack_by()],
                    [self.volume],
                    [self.latency, self.top_agents],
                    [self.cost],
                ),
                pn.widgets.RadioButtonGroup.from_param(
                    self.param.breakdown,
                    options={_by_name(c): c for c in self.param.breakdown.objects},
                    button_type="primary",
                    button_style="outline",
                    sizing_mode="fixed",
                    width=110 * len(self.param.breakdown.objects),
                    description=None,
                ),
                self.breakdowns,
            ]
        )
        self.param.watch(self._filters_changed, ["by", "breakdown"])
        self._refresh_now()

    def _stack_by(self) -> RadioButtonGroup:
        """The choice of ``by``, a Bokeh widget beside the figures it changes."""
        choices = list(self._stacks)
        buttons = RadioButtonGroup(
            labels=list(self._stacks.values()),
            active=choices.index(self.by),
            width=100 * len(choices),
            margin=(5, 10),
            stylesheets=[BUTTONS_CSS],
        )
        buttons.on_change("active", lambda attr, old, new: setattr(self, "by", choices[new]))
        self.param.watch(lambda event: setattr(buttons, "active", choices.index(event.new)), "by")
        return buttons

    def _draw_volume(self, layers: Sequence[Layer]) -> Any:
        return stacked_bars(
            layers,
            title="Messages over time",
            ylabel="messages",
            select=True,
            kit=self._kit,
        )

    def _draw_latency(self, layers: Sequence[Layer]) -> Any:
        return lines(
            layers,
            value="latency_ms",
            title="Agent reply latency",
            ylabel="ms",
            select=True,
            kit=self._kit,
        )

    def _draw_cost(self, layers: Sequence[Layer]) -> Any:
        return stacked_bars(
            layers,
            title="Cost over time by model (USD)",
            ylabel="USD",
            select=True,
            kit=self._kit,
            number="$0,0.00",
        )

    def _select_time(self, x0: Any, x1: Any) -> None:
        tz = self.messages.tz
        narrow_time(self.messages, to_utc(x0, tz), to_utc(x1, tz))

    def _link_top(self, plot: Any) -> None:
        def tapped(attr: str, old: list[int], index: list[int]) -> None:
            if index:
                self.messages.agents = [self._top_ids[index[0]]]

        for bars in plot.renderers:
            bars.data_source.selected.on_change("indices", tapped)

    def refresh(self) -> None:
        messages = self.messages
        start, end = messages.bounds
        interval = metrics.choose_interval(pd.Timestamp(start), pd.Timestamp(end))
        # Sessions with the same filters show the same thing: drawn once per process.
        drawn = memo(
            _overview,
            current(messages),
            previous(messages),
            current(self.agents),
            interval=interval,
            by=self.by,
            tz=messages.tz,
            breakdown=self.breakdown,
        )
        self.cards.update(drawn.values, drawn.changes, period_name(messages))
        self.unpriced.text, self.unpriced.visible = drawn.unpriced, bool(drawn.unpriced)
        self.cost.update(drawn.cost)
        sync_table(self.breakdowns, drawn.breakdown)
        self.volume.update(drawn.volume)
        self.latency.update(drawn.latency)
        self._top_ids = drawn.top_ids
        self.top_agents.update(drawn.top_agents)


@dataclass(frozen=True)
class _Drawn:
    """What the Overview shows of one window of messages."""

    values: dict[str, float | None]
    changes: dict[str, float | None]
    volume: list[Layer]
    latency: list[Layer]
    top_ids: list[str]
    top_agents: list[Layer]
    unpriced: str
    cost: list[Layer]
    breakdown: pd.DataFrame


def _by_name(column: str) -> str:
    return "by " + column.removesuffix("_id").replace("_", " ")


def _breakdowns() -> list[str]:
    """The columns of the pipeline's breakdowns: the model, the configured dimensions."""
    return [str(MessagesPipeline.columns[name]) for name in MessagesPipeline.breakdowns()]


def _overview(
    window: pd.DataFrame,
    before: pd.DataFrame,
    agents: pd.DataFrame,
    *,
    interval: str,
    by: str,
    tz: str,
    breakdown: str,
) -> _Drawn:
    now = metrics.kpis(window)
    cost = metrics.cost_series(window, interval, by="model", tz=tz)
    names = agent_names(agents)
    volume = metrics.volume_series(window, interval, by=by, tz=tz)
    latency = metrics.latency_series(window, interval, tz=tz)
    percentiles = [f"p{p}" for p in metrics.LATENCY_PERCENTILES]
    table = metrics.per_agent(window, agents)
    # Least first: inverted bars draw the first row at the bottom.
    top = table[table["messages"] > 0].head(TOP_AGENTS).iloc[::-1]
    top_ids = list(top["agent_id"])
    columns = {
        "agent": np.array([names.get(agent, agent) for agent in top_ids], dtype=object),
        "messages": top["messages"].to_numpy(),
        "agent_id": top["agent_id"].to_numpy(dtype=object),
    }
    return _Drawn(
        values={name: getattr(now, name) for name in KPIS},
        changes=metrics.kpi_changes(now, metrics.kpis(before)),
        volume=stacked_layers(volume, interval, names),
        latency=series_layers(latency, "latency_ms", percentiles),
        top_ids=top_ids,
        top_agents=[Layer("agents", columns)],
        unpriced=unpriced_text(
            {str(model): int(n) for model, n in metrics.unpriced_models(window).items()}
        ),
        cost=stacked_layers(cost, interval, {}),
        breakdown=metrics.breakdown(window, breakdown),
    )
