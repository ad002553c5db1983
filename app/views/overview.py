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

from app.cards import (
    KPIS,
    ROLLED_UP_NOTE,
    KpiCards,
    coverage_note,
    period_name,
    unpriced_text,
)
from app.charts.layers import Layer
from app.charts.live import Figures, LiveFigure
from app.charts.time import (
    LATENCY_BINS,
    FigureKit,
    add_glyph,
    bar_frame,
    bin_name,
    lines,
    on_time_range,
    series_layers,
    stacked_bars,
    stacked_layers,
)
from app.memo import answers, as_of, current, memo
from app.tables import agent_names
from app.tabulator import METRIC_TITLES, metric_formatters, sync_table, table
from app.theme import MUTED
from app.views.base import View, narrow_time
from pipelines import metrics
from pipelines.answers import Answers, FrameAnswers
from pipelines.errors import QueryError
from pipelines.pipeline import MessagesPipeline
from pipelines.schema import empty_frame
from pipelines.windows import Window, to_utc

STACK_BY = {"status": ("status", "by status"), "agent": ("agent_id", "by agent")}
"""Choice of ``by`` -> the column the volume is stacked by, and the button's label; then one
per breakdown of the pipeline (model, dimensions), by its column's name."""
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


def _top_bars(layers: Sequence[Layer], *, title: str, kit: FigureKit | None = None) -> Any:
    (layer,) = layers
    plot = bar_frame(title, layer.columns["agent"], "messages", kit)
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
        default="status", objects=list(STACK_BY), doc="Stack message volume by this."
    )
    breakdown: str = param.Selector(  # type: ignore[assignment]
        default="model", objects=["model", "user_id"], doc="One row per value of this."
    )

    links = {"by": "by", "breakdown": "breakdown"}

    def __init__(self, **params: Any) -> None:
        # The choices include the model and the dimensions the settings declared.
        chosen: dict[str, Any] = {n: params.pop(n) for n in ("by", "breakdown") if n in params}
        super().__init__(**params)
        self._stacks = offer_choices(self)
        self.param.update(chosen)
        self.cards = KpiCards(KPIS)
        # Model names come from documents: shown as text, never as HTML.
        self.unpriced = Div(
            text="", render_as_text=True, margin=(0, 10), styles={"color": MUTED}, visible=False
        )
        self.breakdown_note = Div(
            text="Numbers per user need the messages themselves: pick a window shorter than "
            "the rollups' (AGENTDASH_ROLLUP_FROM) to see them.",
            margin=(0, 10),
            styles={"color": MUTED},
            visible=False,
        )
        self.precision = Div(text=ROLLED_UP_NOTE, margin=(0, 10), styles={"color": MUTED})
        self._kit = FigureKit()  # shared by the page's figures
        select_time = on_time_range(self._select_time)
        self.volume = LiveFigure(
            self._draw_volume, title="Messages over time", link=select_time, height=300
        )
        self.latency = LiveFigure(
            self._draw_latency,
            title="Agent reply latency",
            empty="No agent reply with a latency matches these filters",
            link=select_time,
            height=260,
        )
        self.top_agents = LiveFigure(
            partial(_top_bars, kit=self._kit),
            title="Busiest agents (click one to filter, again to clear)",
            value_axis="x",
            link=self._link_top,
            slots=TOP_AGENTS,
            height=260,
        )
        self._top_ids: list[str] = []
        self.cost = LiveFigure(
            self._draw_cost,
            title="Cost by model (USD)",
            empty="No priced message matches these filters",
            link=select_time,
            height=260,
        )
        self.breakdowns = table(
            formatters=metric_formatters(),
            titles=dict(METRIC_TITLES),
            page_size=10,
            pagination="local",
            configuration={"placeholder": "No message matches these filters"},
        )
        self.layout.extend(
            [
                Figures(
                    [self.cards.div],
                    [self.unpriced],
                    [self.precision],
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
                self.breakdown_note,
                self.breakdowns,
            ]
        )
        self.param.watch(self._filters_changed, ["by", "breakdown"])
        self._first_refresh()

    def _stack_by(self) -> RadioButtonGroup:
        """The choice of ``by``, a Bokeh widget beside the figures it changes."""
        choices = list(self._stacks)
        buttons = RadioButtonGroup(
            labels=[label for _, label in self._stacks.values()],
            active=choices.index(self.by),
            width=100 * len(choices),
            margin=(5, 10),
            stylesheets=[BUTTONS_CSS],
        )
        buttons.on_change("active", lambda attr, old, new: setattr(self, "by", choices[new]))
        self.param.watch(lambda event: setattr(buttons, "active", choices.index(event.new)), "by")
        return buttons

    def _draw_volume(self, layers: Sequence[Layer], title: str) -> Any:
        return stacked_bars(layers, title=title, ylabel="messages", select=True, kit=self._kit)

    def _draw_latency(self, layers: Sequence[Layer], title: str) -> Any:
        return lines(
            layers,
            value="latency_ms",
            title=title,
            ylabel="ms",
            select=True,
            markers=True,
            kit=self._kit,
        )

    def _draw_cost(self, layers: Sequence[Layer], title: str) -> Any:
        return stacked_bars(
            layers,
            title=title,
            ylabel="USD",
            select=True,
            kit=self._kit,
            number="$0,0.00",
            counts=False,
        )

    def _select_time(self, x0: Any, x1: Any) -> None:
        tz = self.messages.tz
        narrow_time(self.messages, to_utc(x0, tz), to_utc(x1, tz))

    def _link_top(self, plot: Any) -> None:
        """A click on a bar filters to its agent, a click on the agent filtered to clears
        the filter.  The selection is cleared at once: a bar stays highlighted after no
        click, and the same bar can be clicked again."""
        (bars,) = plot.renderers
        selected = bars.data_source.selected

        def tapped(attr: str, old: list[int], index: list[int]) -> None:
            if not index:
                return
            agent = self._top_ids[index[0]]
            selected.indices = []
            self.messages.agents = [] if self.messages.agents == [agent] else [agent]

        selected.on_change("indices", tapped)

    def refresh(self) -> None:
        messages, tz = self.messages, self.messages.tz
        start, end = messages.bounds
        interval = metrics.choose_interval(pd.Timestamp(start), pd.Timestamp(end))
        coarse = metrics.choose_interval(pd.Timestamp(start), pd.Timestamp(end), LATENCY_BINS)
        # Sessions with the same filters show the same thing: drawn once per process.
        drawn = memo(
            _overview,
            answers(messages),
            answers(messages, "previous"),
            current(self.agents),
            interval=interval,
            latency_interval=coarse,
            by=self._stacks[self.by][0],
            tz=tz,
            spec=messages.window_spec,
            now=as_of(messages),
            breakdown=self.breakdown,
        )
        period = period_name(messages)
        note = coverage_note(*drawn.coverage, period)
        self.cards.update(drawn.values, drawn.changes, period, note)
        self.unpriced.text, self.unpriced.visible = drawn.unpriced, bool(drawn.unpriced)
        self.precision.visible = messages.rolled_up()
        self._kit.span(start, end, tz)
        self.volume.update(drawn.volume, title=f"Messages per {bin_name(interval)}")
        self.latency.update(
            drawn.latency, title=f"Agent reply latency per {bin_name(coarse)}, percentiles"
        )
        self.cost.update(drawn.cost, title=f"Cost per {bin_name(interval)} by model (USD)")
        sync_table(self.breakdowns, drawn.breakdown)
        self.breakdown_note.visible = messages.rolled_up() and self.breakdown == "user_id"
        self._top_ids = drawn.top_ids
        self.top_agents.update(drawn.top_agents)


@dataclass(frozen=True)
class _Drawn:
    """What the Overview shows of one window of messages."""

    values: dict[str, float | None]
    changes: dict[str, float | None]
    coverage: tuple[float, float]
    """Of the previous period and of the window (``metrics.coverage``)."""
    volume: list[Layer]
    latency: list[Layer]
    top_ids: list[str]
    top_agents: list[Layer]
    unpriced: str
    cost: list[Layer]
    breakdown: pd.DataFrame


def stacks() -> dict[str, tuple[str, str]]:
    """Choice of ``by`` -> (column, label): status, agent, then the pipeline's breakdowns."""
    return {**STACK_BY, **{column: (column, _by_name(column)) for column in _breakdowns()}}


def offer_choices(target: param.Parameterized) -> dict[str, tuple[str, str]]:
    """Offer the pipeline's breakdowns (the model, the dimensions declared from the
    settings) as choices of ``target``'s ``by`` and ``breakdown``; the stacks offered."""
    offered = stacks()
    target.param.by.objects = list(offered)
    target.param.breakdown.objects = [*_breakdowns(), "user_id"]
    return offered


def _by_name(column: str) -> str:
    return "by " + column.removesuffix("_id").replace("_", " ")


def _breakdowns() -> list[str]:
    """The columns of the pipeline's breakdowns: the model, the configured dimensions."""
    return [str(MessagesPipeline.columns[name]) for name in MessagesPipeline.breakdowns()]


def _breakdown(window: Answers, by: str) -> pd.DataFrame:
    """The breakdown table; empty where the rollups cannot answer it (by user: distinct
    users are kept per hour, not their numbers)."""
    try:
        return window.breakdown(by)
    except QueryError:
        return FrameAnswers(empty_frame("messages")).breakdown(by)


def _overview(
    window: Answers,
    before: Answers,
    agents: pd.DataFrame,
    *,
    interval: str,
    latency_interval: str,
    by: str,
    tz: str,
    spec: Window,
    now: pd.Timestamp,
    breakdown: str,
) -> _Drawn:
    kpis = window.kpis()
    cost = window.cost_series(interval, by="model", tz=tz)
    names = agent_names(agents)
    volume = window.volume_series(interval, by=by, tz=tz)
    latency = window.latency_series(latency_interval, tz=tz)
    percentiles = [f"p{p}" for p in metrics.LATENCY_PERCENTILES]
    table = window.per_agent(agents)
    # Least first: inverted bars draw the first row at the bottom.
    top = table[table["messages"] > 0].head(TOP_AGENTS).iloc[::-1]
    top_ids = list(top["agent_id"])
    columns = {
        "agent": np.array([names.get(agent, agent) for agent in top_ids], dtype=object),
        "messages": top["messages"].to_numpy(),
        "agent_id": top["agent_id"].to_numpy(dtype=object),
    }
    coverage = tuple(
        answered.coverage(*map(pd.Timestamp, bounds))
        for answered, bounds in ((before, spec.previous_bounds(now)), (window, spec.bounds(now)))
    )
    return _Drawn(
        values={name: getattr(kpis, name) for name in KPIS},
        changes=metrics.kpi_changes(kpis, before.kpis()),
        coverage=(coverage[0], coverage[1]),
        volume=stacked_layers(volume, interval, names),
        # A line of no reply at all would be an empty chart without a word.
        latency=series_layers(latency, "latency_ms", percentiles) if latency["count"].any() else [],
        top_ids=top_ids,
        top_agents=[Layer("agents", columns)],
        unpriced=unpriced_text(
            {str(model): int(n) for model, n in window.unpriced_models().items()}
        ),
        # No priced message: the chart says so rather than drawing zeros.
        cost=stacked_layers(cost, interval, {}) if cost.shape[1] else [],
        breakdown=_breakdown(window, breakdown),
    )
