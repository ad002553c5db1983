"""Baseline: a bare Panel template session (bench_dashboard_memory).

What the issue calls "a bare Panel template session": a BootstrapTemplate with
a widget in its sidebar and one HoloViews chart in its main area, nothing live.
"""

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

pn.extension(sizing_mode="stretch_width")
hv.extension("bokeh")

times = pd.date_range(end=pd.Timestamp.now(tz="UTC"), periods=300, freq="5min")
counts = np.random.default_rng(0).poisson(3000, len(times))
pn.template.BootstrapTemplate(
    title="Baseline",
    sidebar=[pn.widgets.RadioButtonGroup(options=["15m", "1h", "24h", "7d"], value="24h")],
    main=[
        pn.pane.HoloViews(
            hv.Curve((times, counts), "Time", "Messages").opts(responsive=True, height=300)
        )
    ],
).servable()
