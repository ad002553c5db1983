"""Alerts: rules as data, backtested on the stored history, evaluated live, delivered once.

- ``rules``: the ``[[alerts]]`` and ``[notifiers.NAME]`` tables, checked when the settings
  are read;
- ``evaluate``: a rule's metric at an instant (:func:`pipelines.metrics.kpis` over
  ``[at - over, at]``) and the state machine of an instance (ok, pending, firing, resolved);
- ``backtest``: the same metric at every step of a period at once, and the intervals it
  would have fired;
- ``state``: instances, silences and schedules' runs in Redis or a SQLite file, changed
  under a lock so that one process sends;
- ``notifiers``: webhook, Slack, Teams and email, with retries;
- ``engine``: :class:`Alerting`, the live evaluation of the due rules.
"""

from pipelines.alerts.backtest import Firing, Replay, backtest
from pipelines.alerts.engine import Alerting, AlertStats
from pipelines.alerts.rules import NotifierConfig, Rule, Scope
from pipelines.alerts.state import AlertStore, open_store

__all__ = [
    "AlertStats",
    "AlertStore",
    "Alerting",
    "Firing",
    "NotifierConfig",
    "Replay",
    "Rule",
    "Scope",
    "backtest",
    "open_store",
]
