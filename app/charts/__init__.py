"""Charts of the dashboard and the reports, split by what they hold.

- :mod:`app.charts.layers`: chart data as layers, and the smallest source update;
- :mod:`app.charts.live`: charts that new data update in place;
- :mod:`app.charts.time`: Bokeh figures over a time axis (every view, the report);
- :mod:`app.charts.analytic`: Bokeh figures of distributions and breakdowns.
"""
