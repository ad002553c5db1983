"""A rule's metric at one instant, and the state machine of an alert instance.

Pure functions of frames.  The window a rule's metric is computed on at an instant
``at`` is ``[at - over, at]``, both ends inclusive, as :func:`pipelines.metrics.trim_window`
cuts it, and its number the one :func:`pipelines.metrics.kpis` gives for it, computed by
:func:`pipelines.alerts.rolling.series` as the backtest computes it for every step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

import pandas as pd

from pipelines.alerts.rolling import series, series_by
from pipelines.alerts.rules import Rule
from pipelines.metrics import MISSING_LABEL

State = Literal["ok", "pending", "firing", "resolved"]
Event = Literal["firing", "resolved"]


def in_scope(rule: Rule, messages: pd.DataFrame, agents: pd.DataFrame) -> pd.DataFrame:
    """The messages a rule watches."""
    mask = rule.scope.mask(messages, agents)
    return messages if bool(mask.all()) else messages.loc[mask]


def group_keys(rule: Rule, messages: pd.DataFrame) -> pd.Series:
    """Each message's group (``MISSING_LABEL`` where it has none); the rule must group."""
    assert rule.group_by is not None
    return messages[rule.group_by].astype("str").fillna(MISSING_LABEL)


def values_at(
    rule: Rule, messages: pd.DataFrame, agents: pd.DataFrame, at: pd.Timestamp
) -> dict[str | None, float]:
    """The rule's metric over ``[at - over, at]``: one value, under the group None, or one
    per group that has messages in that window.  ``messages`` may hold more than the
    window (a live frame, or a longer window cut from it)."""
    scoped = in_scope(rule, messages, agents)
    instant = pd.DatetimeIndex([at])
    if rule.group_by is None:
        return {None: float(series(rule, scoped, instant)[0])}
    keys = group_keys(rule, scoped)
    inside = scoped["timestamp"].between(at - rule.over, at, inclusive="both").to_numpy(bool)
    present = set(keys[inside].unique())
    by_group = series_by(rule, scoped, keys, instant)
    return {group: float(values[0]) for group, values in by_group.items() if group in present}


def empty_value(rule: Rule, messages: pd.DataFrame) -> float:
    """The metric of no message: 0 for counts and sums, NaN for rates and latencies."""
    at = pd.DatetimeIndex([pd.Timestamp(0, tz="UTC")])
    return float(series(rule, messages.iloc[:0], at)[0])


@dataclass(frozen=True)
class Instance:
    """The state of one rule (and group): since when, the value last seen, and for a
    pending instance since when its condition holds."""

    state: State
    since: datetime
    value: float | None = None
    pending_since: datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "state": self.state,
            "since": self.since.isoformat(),
            "value": self.value,
            "pending_since": self.pending_since.isoformat() if self.pending_since else None,
        }

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> Instance:
        pending = doc.get("pending_since")
        value = doc.get("value")
        return cls(
            state=doc["state"],  # type: ignore[arg-type]
            since=datetime.fromisoformat(str(doc["since"])),
            value=None if value is None else float(value),  # type: ignore[arg-type]
            pending_since=datetime.fromisoformat(str(pending)) if pending else None,
        )


def advance(
    rule: Rule, instance: Instance | None, value: float, at: datetime
) -> tuple[Instance, Event | None]:
    """The instance after an evaluation at ``at`` that saw ``value``, and the notification
    it sends: ``firing`` when it starts firing (its condition held for ``for``),
    ``resolved`` when a firing instance's condition no longer holds."""
    holds = bool(rule.holds(value))
    shown = None if value != value else value  # NaN: no value
    state = instance.state if instance is not None else "ok"
    if state == "firing":
        if holds:
            assert instance is not None
            return replace(instance, value=shown), None
        return Instance("resolved", at, shown), "resolved"
    if not holds:
        since = instance.since if instance is not None and state == "ok" else at
        return Instance("ok", since, shown), None
    pending_since = (
        instance.pending_since if instance is not None and state == "pending" else None
    ) or at
    if at - pending_since >= rule.hold:
        return Instance("firing", at, shown), "firing"
    return Instance("pending", pending_since, shown, pending_since), None
