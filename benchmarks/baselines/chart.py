"""Baseline: a bare Panel page with one HoloViews chart (bench_dashboard_load)."""

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

pn.extension(sizing_mode="stretch_width")
hv.extension("bokeh")

times = pd.date_range(end=pd.Timestamp.now(tz="UTC"), periods=300, freq="5min")
counts = np.random.default_rng(0).poisson(3000, len(times))
pn.pane.HoloViews(
    hv.Curve((times, counts), "Time", "Messages").opts(responsive=True, height=300)
).servable()
