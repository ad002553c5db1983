"""Alerts: each rule's metric over the window, its threshold, and when it would have fired.

The figures are the backtest's (:func:`pipelines.alerts.backtest`), over the messages the
page's filters keep (and the rule's own scope), so a threshold is tuned by looking: set
another one and the shaded intervals move to where that one would have fired.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models.annotations import BoxAnnotation, Span

from app.charts.layers import Layer, wall_time
from app.charts.live import empty_figure
from app.charts.time import FigureKit, lines
from app.tabulator import number, sync_table, table
from app.views.base import View
from pipelines.alerts import Replay, Rule, backtest
from pipelines.alerts.evaluate import in_scope
from pipelines.alerts.rules import describe_duration
from pipelines.parameters import Choice
from pipelines.settings import load_settings
from pipelines.windows import to_local

GROUPS_SHOWN = 8
"""Lines drawn at most: the groups that would have fired first, then the most extreme."""
FIRING_COLOR = "#dc3545"
CHART_HEIGHT = 320


def offer_rules(target: param.Parameterized, rules: Mapping[str, Rule] | None = None) -> None:
    """Offer the configured rules' names (``rules``, else the settings') as ``target``'s
    ``rule``: a link naming another rule is refused with a sentence naming them."""
    names = [r.name for r in load_settings().alerts] if rules is None else list(rules)
    target.param.rule.objects = names


def _nothing_to_draw(
    rule: Rule, window: pd.DataFrame, agents: pd.DataFrame, replays: list[Replay]
) -> str | None:
    """Why the rule's chart would show no line (None: it shows one), in plain words."""
    if not len(window):
        return "No message in this window matches the page's filters: nothing to replay"
    if not len(in_scope(rule, window, agents)):
        return f"No message in this window is in the rule's scope ({_scope_text(rule)})"
    if not any(np.isfinite(replay.values).any() for replay in replays):
        return f"{rule.metric} has no value in this window (no message it is computed from)"
    return None


def _scope_text(rule: Rule) -> str:
    """ "agents support-*; statuses error": the scope's filters that are set."""
    scope = rule.scope
    parts = [
        f"{name} {', '.join(values)}"
        for name, values in [
            ("agents", scope.agents),
            ("teams", scope.teams),
            ("statuses", scope.statuses),
            ("roles", scope.roles),
            ("models", scope.models),
            *scope.dimensions,
        ]
        if values
    ]
    return "; ".join(parts) or "every message"


def _title(rule: Rule) -> str:
    return f"{rule.name}: {rule.metric} {rule.condition}"


class AlertsView(View):
    """The configured rules replayed over the window: pick a rule, try a threshold."""

    data_refresh_seconds = 30.0  # the chart is drawn again, not streamed: a step is minutes

    rule: str | None = Choice(  # type: ignore[assignment]
        default=None,
        objects=[],
        allow_None=True,
        check_on_set=True,  # the objects are the settings' rules, offered later
        doc="The rule shown (None: the first one).",
    )
    threshold = param.Number(
        default=None, allow_None=True, doc="The threshold tried (None: the rule's own)."
    )

    links = {"rule": "rule", "threshold": "threshold"}
    unset = {"rule": "the first rule", "threshold": "the rule's own"}

    def __init__(self, rules: tuple[Rule, ...] | None = None, **params: Any) -> None:
        self.rules = {r.name: r for r in (load_settings().alerts if rules is None else rules)}
        offer_rules(self, self.rules)
        # A link's rule and threshold (None where it names none): the first rule, its own.
        if params.get("rule") is None:
            params["rule"] = next(iter(self.rules), None)
        if params.get("threshold") is None and params["rule"] is not None:
            params["threshold"] = self.rules[params["rule"]].threshold
        super().__init__(**params)
        self.picker = pn.widgets.Select.from_param(self.param.rule, name="Rule", width=300)
        self.tried = pn.widgets.FloatInput.from_param(
            self.param.threshold, name="Threshold", width=200
        )
        self.summary = pn.pane.Markdown()
        self.chart = pn.pane.Bokeh(sizing_mode="stretch_width", height=CHART_HEIGHT)
        self.firings = table(
            titles={"start": f"start ({self.messages.tz})", "end": f"end ({self.messages.tz})"},
            formatters={"peak": number("0,0.[000]")},
            configuration={"placeholder": "It would not have fired"},
        )
        if not self.rules:
            self.layout.append(
                pn.pane.Markdown(
                    "No alert rule is configured: add `[[alerts]]` tables to the "
                    "`AGENTDASH_CONFIG` file (see *Alerts* in the README), and try them here "
                    "on the history before they page anyone."
                )
            )
            return
        self.layout.extend(
            [pn.Row(self.picker, self.tried), self.summary, self.chart, self.firings]
        )
        self._refresh_now()

    @param.depends("rule", watch=True)
    def _picked(self) -> None:
        if self.rule is None:  # a link without a rule, after one was picked
            self.rule = next(iter(self.rules))
            return
        threshold = self.rules[self.rule].threshold
        if threshold == self.threshold:
            self._request(slow=True)  # the same threshold: setting it would not refresh
        else:
            self.threshold = threshold  # refreshes, through threshold

    @param.depends("threshold", watch=True)
    def _tried(self) -> None:
        self._request(slow=True)

    def refresh(self) -> None:
        if self.rule is None:
            return
        rule = self.rules[self.rule]
        if self.threshold is not None:
            rule = dataclasses.replace(rule, threshold=float(self.threshold))
        start, end = self.messages.bounds
        # The window's first steps look back ``over`` into the period before it.
        before = self.messages.previous_frame
        before = before[before["timestamp"] >= pd.Timestamp(start) - rule.over]
        messages = pd.concat([before, self.messages.frame], ignore_index=True)
        replays = backtest(
            [rule], messages, self.agents.frame, pd.Timestamp(start), pd.Timestamp(end)
        )
        shown = sorted(replays, key=lambda r: (not r.firings, -_extreme(r)))[:GROUPS_SHOWN]
        self.summary.object = _summary(rule, replays)
        why = _nothing_to_draw(rule, self.messages.frame, self.agents.frame, replays)
        self.chart.object = (
            _chart(rule, shown, self.messages.tz, (start, end))
            if why is None
            else empty_figure(_title(rule), why, CHART_HEIGHT)
        )
        sync_table(self.firings, _firings(replays, self.messages.tz))


def _extreme(replay: Replay) -> float:
    values = replay.values[~np.isnan(replay.values)]
    if not values.size:
        return -np.inf
    return float(replay.rule.worse(values)) * (1 if replay.rule.op in (">", ">=") else -1)


def _summary(rule: Rule, replays: list[Replay]) -> str:
    fired = [r for r in replays if r.firings]
    steps = sum(len(r.times) for r in replays)
    firing = sum(r.firing_share * len(r.times) for r in replays)
    hold = f", for {describe_duration(rule.hold)}" if rule.hold else ""
    where = f" per {rule.group_by}" if rule.group_by else ""
    return (
        f"**{rule.metric} {rule.condition}** over {describe_duration(rule.over)}, every "
        f"{describe_duration(rule.every)}{hold}{where}: over this window it would have fired "
        f"{sum(len(r.firings) for r in replays)} times"
        + (f" ({len(fired)} of {len(replays)} groups)" if rule.group_by else "")
        + f", sent {sum(r.notifications for r in replays)} notifications, and been firing "
        f"{firing / steps if steps else 0:.1%} of the time."
    )


def _chart(rule: Rule, replays: list[Replay], tz: str, bounds: tuple[datetime, datetime]) -> Any:
    """The metric of each group over the window, the threshold across, the firings shaded."""
    kit = FigureKit()
    kit.span(*bounds, tz)  # the time axis spans the window (in the page's zone)
    layers = [
        Layer(
            "all" if replay.group is None else replay.group,
            {"timestamp": wall_time(to_local(replay.times, tz)), "value": replay.values},
        )
        for replay in replays
        if len(replay.times)
    ]
    plot = lines(
        layers,
        value="value",
        title=_title(rule),
        ylabel=rule.metric,
        shared=False,
        kit=kit,
    )
    plot.add_layout(
        Span(
            location=rule.threshold,
            dimension="width",
            line_color=FIRING_COLOR,
            line_dash="dashed",
            line_width=2,
        )
    )
    for replay in replays:
        for firing in replay.firings:
            right = firing.end if firing.end is not None else replay.times[-1]
            plot.add_layout(
                BoxAnnotation(
                    left=_wall_ms(firing.start, tz),
                    right=_wall_ms(right, tz),
                    fill_color=FIRING_COLOR,
                    fill_alpha=0.15,
                    line_alpha=0,
                )
            )
    return plot


def _wall_ms(moment: pd.Timestamp, tz: str) -> float:
    """An instant as the milliseconds of its wall time in ``tz`` (the chart's time axis)."""
    return float(to_local(moment, tz).value / 1e6)


def _firings(replays: list[Replay], tz: str) -> pd.DataFrame:
    rows = [
        {
            "group": replay.group or "",
            "start": to_local(firing.start, tz),
            "end": None if firing.end is None else to_local(firing.end, tz),
            "peak": firing.peak,
        }
        for replay in replays
        for firing in replay.firings
    ]
    frame = pd.DataFrame(rows, columns=["group", "start", "end", "peak"])
    return frame.sort_values("start", ignore_index=True)
