"""The dashboard served by ``agentdash serve`` (or ``panel serve app/main.py``): one session.

The session is built for the identity its page was signed in with (in its
signed Bokeh session token); with sign-in off, for everyone.
"""

import contextlib

import panel as pn

from app.auth import access
from app.auth.provider import session_identity
from app.dashboard import Dashboard
from app.monitoring.metrics import count_session, watch
from pipelines import LiveFrames

pn.extension("tabulator", sizing_mode="stretch_width")

identity = session_identity(anonymous_allowed=not access().on)
doc = pn.state.curdoc
if identity is None:
    # Served without the sign-in of `agentdash serve` while the settings ask for one.
    pn.pane.Markdown(
        "Sign-in is on (AGENTDASH_AUTH): open the dashboard through `agentdash serve`."
    ).servable()
else:
    frames = LiveFrames.default()
    watch(frames)
    if doc is not None and doc.session_context is not None:
        count_session(doc)
    # Bokeh walks every model of the page each time one is added, unless frozen: building
    # the page frozen walks them once, which takes a fifth off the time to open a page.
    with doc.models.freeze() if doc is not None else contextlib.nullcontext():
        dashboard = Dashboard(frames, location=pn.state.location, identity=identity)
        dashboard.template().servable()
