"""The dashboard served by ``agentdash serve`` (or ``panel serve app/main.py``): one session."""

import contextlib

import panel as pn

from app.dashboard import Dashboard
from pipelines import LiveFrames

pn.extension("tabulator", sizing_mode="stretch_width")

# Bokeh walks every model of the page each time one is added, unless frozen: building
# the page frozen walks them once, which takes a fifth off the time to open a page.
doc = pn.state.curdoc
with doc.models.freeze() if doc is not None else contextlib.nullcontext():
    dashboard = Dashboard(LiveFrames.default(), location=pn.state.location)
    dashboard.template().servable()
