"""The dashboard served by ``agentdash serve`` (or ``panel serve app/main.py``): one session."""

import holoviews as hv
import panel as pn

from app.dashboard import Dashboard
from pipelines import Backend

pn.extension("tabulator", sizing_mode="stretch_width")
hv.extension("bokeh")

dashboard = Dashboard(Backend.default(), location=pn.state.location)
dashboard.template().servable()
