"""Value axes of the time charts: counts tick whole numbers, amounts tick fractions too."""

from __future__ import annotations

import pandas as pd
from bokeh.models import LinearAxis

from app.charts.time import FigureKit, stacked_bars, stacked_layers


def value_ticker(plot: object) -> object:
    (axis,) = [a for a in plot.left if isinstance(a, LinearAxis)]  # type: ignore[attr-defined]
    return axis.ticker


def test_dollars_tick_fractions_and_messages_whole_numbers() -> None:
    index = pd.date_range("2026-12-01", periods=4, freq="h", tz="UTC")
    cents = pd.DataFrame({"gpt-4o": [0.01, 0.04, 0.02, 0.03]}, index=index)
    kit = FigureKit()
    layers = stacked_layers(cents, "1h", {})
    dollars = stacked_bars(layers, title="cost", ylabel="USD", kit=kit, counts=False)
    messages = stacked_bars(layers, title="messages", ylabel="messages", kit=kit)
    assert value_ticker(dollars) is not kit.count_ticker
    assert value_ticker(messages) is kit.count_ticker
