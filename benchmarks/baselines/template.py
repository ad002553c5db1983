"""Baseline: a bare Panel template session (bench_dashboard_memory)."""

import panel as pn

pn.extension(sizing_mode="stretch_width")

pn.template.BootstrapTemplate(
    title="Baseline", main=[pn.pane.Markdown("A page with nothing live.")]
).servable()
