"""Baseline: each session streams one row a second into a Bokeh line (bench_dashboard_cpu)."""

import time

import panel as pn
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

pn.extension(sizing_mode="stretch_width")

source = ColumnDataSource({"t": [time.time() * 1000], "y": [0.0]})
plot = figure(x_axis_type="datetime", height=300, sizing_mode="stretch_width")
plot.line("t", "y", source=source)


def add_row() -> None:
    source.stream({"t": [time.time() * 1000], "y": [source.data["y"][-1] + 1]}, rollover=3600)


pn.state.add_periodic_callback(add_row, period=1000)
pn.pane.Bokeh(plot).servable()
