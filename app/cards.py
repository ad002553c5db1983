"""KPI cards: headline numbers and their change against the previous period."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass

import panel as pn
from bokeh.models.widgets import Div

from app.theme import BAD, CARD_STYLE, GOOD, MUTED
from pipelines import rollups
from pipelines.pipeline import MessagesPipeline

ROLLED_UP_NOTE = (
    "From hourly rollups (a window of AGENTDASH_ROLLUP_FROM or longer): counts, sums, rates "
    "and distinct counts are exact for the window widened to whole hours; latency "
    f"percentiles are within ±{rollups.RANK_ERROR:.1%} in rank."
)
"""Said wherever numbers come from the rollups: the Overview, reports."""


@dataclass(frozen=True)
class Card:
    """How to show one number: its title, its format and whether a rise is good (None: neither)."""

    title: str
    fmt: str = "{value:,.0f}"
    higher_is_better: bool | None = None


# Field of metrics.Kpis -> its card.
KPIS = {
    "messages": Card("Messages"),
    "conversations": Card("Conversations"),
    "active_agents": Card("Active agents"),
    "error_rate": Card("Error rate", "{value:.1%}", higher_is_better=False),
    "latency_p50": Card("Latency p50", "{value:,.0f} ms", higher_is_better=False),
    "latency_p95": Card("Latency p95", "{value:,.0f} ms", higher_is_better=False),
    "tokens_in": Card("Tokens in"),
    "tokens_out": Card("Tokens out"),
    "cost_usd": Card("Cost", "${value:,.2f}"),
}


def unpriced_text(models: Mapping[str, int]) -> str:
    """ "3 models unpriced: a, b, c (40 messages left out of the cost)", or "" when none."""
    if not models:
        return ""
    count = len(models)
    names = ", ".join(models)
    messages = sum(models.values())
    return (
        f"{count} model{'s' if count > 1 else ''} unpriced: {names} ({messages:,} "
        f"message{'s' if messages > 1 else ''} left out of the cost; price them under "
        "[prices] or [model_aliases] of the AGENTDASH_CONFIG file)"
    )


def period_name(pipeline: MessagesPipeline) -> str:
    """How to name the window in "vs previous ...": its label, or its length."""
    if pipeline.window != "custom":
        return str(pipeline.window)
    start, end = pipeline.bounds
    hours = (end - start).total_seconds() / 3600
    return f"{hours:.3g} h" if hours < 48 else f"{hours / 24:.3g} days"


def coverage_note(previous: float, current: float, period: str) -> str | None:
    """A warning when the previous period holds data for less than half the time the
    window does (shares of their length, see ``metrics.coverage``): its changes say little."""
    if previous >= current / 2:
        return None
    return (
        f"The previous {period} holds data for {previous:.0%} of its time, this one for "
        f"{current:.0%}: the changes compare unequal spans of data."
    )


def _style(styles: Mapping[str, str]) -> str:
    return "; ".join(f"{key}: {value}" for key, value in styles.items())


class KpiCards(pn.viewable.Viewer):
    """A row of cards, each a number with, optionally, its relative change.

    Drawn as one Bokeh ``Div`` rather than an indicator per number: an update is
    then one property change, sent as one small message, and set on the Bokeh
    model directly (a live page updates it every refresh, in every session).
    ``values`` and ``changes`` hold what is shown.
    """

    def __init__(self, cards: Mapping[str, Card]) -> None:
        super().__init__()
        self.cards = dict(cards)
        self.values: dict[str, float | None] = dict.fromkeys(cards)
        self.changes: dict[str, float | None] = dict.fromkeys(cards)
        self.note: str | None = None
        self.div = Div(text="", sizing_mode="stretch_width", margin=(5, 8, 5, 8))
        self._pane: pn.pane.Bokeh | None = None

    def __panel__(self) -> pn.pane.Bokeh:
        return self.pane

    @property
    def pane(self) -> pn.pane.Bokeh:
        """A pane showing the cards, made when first asked for (:class:`Figures` needs none)."""
        if self._pane is None:
            self._pane = pn.pane.Bokeh(self.div, sizing_mode="stretch_width")
        return self._pane

    def update(
        self,
        values: Mapping[str, float | None],
        changes: Mapping[str, float | None] | None = None,
        period: str = "",
        note: str | None = None,
    ) -> None:
        """Show ``values``; ``changes`` (relative, None when undefined) are against ``period``,
        and ``note`` (see :func:`coverage_note`) under the cards says what they are worth."""
        self.values = {name: values[name] for name in self.cards}
        self.changes = {name: (changes or {}).get(name) for name in self.cards}
        self.note = note
        shown = period if changes else None
        marked = None if shown is None else f"{shown}*" if note else shown
        cards = "".join(
            self._card(card, self.values[name], self.changes[name], marked)
            for name, card in self.cards.items()
        )
        text = f'<div style="display: flex; flex-wrap: wrap; gap: 10px">{cards}</div>'
        if note:
            text += f'<div style="font-size: 9pt; color: {MUTED}; margin-top: 4px">* {note}</div>'
        if text != self.div.text:
            self.div.text = text

    @staticmethod
    def _card(card: Card, value: float | None, change: float | None, period: str | None) -> str:
        shown = "-" if value is None or math.isnan(value) else card.fmt.format(value=value)
        box = {**CARD_STYLE, "padding": "6px 12px", "min-width": "190px", "flex": "1 1 190px"}
        parts = [
            f'<div style="font-size: 10pt">{html.escape(card.title)}</div>',
            f'<div style="font-size: 20pt">{shown}</div>',
        ]
        if period is not None:
            parts.append(f'<div style="font-size: 9pt">{_change(card, change, period)}</div>')
        return f'<div style="{_style(box)}">{"".join(parts)}</div>'


def _change(card: Card, change: float | None, period: str) -> str:
    if change is None:
        return f'<span style="color: {MUTED}">no change to show vs previous {period}</span>'
    arrow = "▲" if change > 0 else "▼" if change < 0 else "■"
    better = change > 0 if card.higher_is_better else change < 0
    neutral = card.higher_is_better is None or change == 0
    colour = MUTED if neutral else GOOD if better else BAD
    return (
        f'<span style="color: {colour}">{arrow} {change:+.1%}</span>'
        f'<span style="color: {MUTED}"> vs previous {period}</span>'
    )
