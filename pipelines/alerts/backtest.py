"""Replay rules over stored history: when each would have fired, and how often.

Every step of a rule is an evaluation at an instant ``t`` (a multiple of ``every`` since
the epoch, in UTC) of its metric over ``[t - over, t]``, both ends inclusive, computed
for all steps at once by :func:`pipelines.alerts.rolling.series`, as the live evaluation
computes it for one.  The instances then go through the live state machine's rules: a run of
steps where the condition holds fires at its first step at least ``for`` after the run
began, and resolves at the first step where it no longer holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.alerts.evaluate import group_keys, in_scope
from pipelines.alerts.rolling import series, series_by
from pipelines.alerts.rules import Rule


@dataclass(frozen=True)
class Firing:
    """One interval a rule's instance would have fired: from the step it started firing to
    the step it resolved (None: still firing at the end), and its most extreme value."""

    start: pd.Timestamp
    end: pd.Timestamp | None
    peak: float

    def to_json(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "peak": self.peak,
        }


@dataclass(frozen=True)
class Replay:
    """A rule's instance over the replayed steps: its metric at each, and its firings."""

    rule: Rule
    group: str | None
    times: pd.DatetimeIndex
    values: np.ndarray
    firings: tuple[Firing, ...]

    @property
    def notifications(self) -> int:
        """What it would have sent: one when each firing starts, one when it resolves
        (whichever notifiers the rule names, or none)."""
        return sum(1 + (firing.end is not None) for firing in self.firings)

    @property
    def firing_share(self) -> float:
        """The share of the steps at which it was firing."""
        if not len(self.times):
            return 0.0
        firing = np.zeros(len(self.times), dtype=bool)
        for each in self.firings:
            upto = self.times.size if each.end is None else self.times.searchsorted(each.end)
            firing[self.times.searchsorted(each.start) : upto] = True
        return float(firing.mean())

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.rule.name,
            "group": self.group,
            "firings": [firing.to_json() for firing in self.firings],
            "notifications": self.notifications,
        }


def steps(rule: Rule, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """The rule's evaluation instants in ``(start, end]``: multiples of ``every`` (UTC)."""
    every = pd.Timedelta(rule.every).value
    first = (pd.Timestamp(start).value // every + 1) * every
    last = pd.Timestamp(end).value // every * every
    return pd.DatetimeIndex(np.arange(first, last + 1, every, dtype="int64"), tz="UTC").as_unit(
        "ns"
    )


def firings(rule: Rule, times: pd.DatetimeIndex, values: np.ndarray) -> tuple[Firing, ...]:
    """The intervals an instance with these values at these steps would have fired."""
    holds = np.asarray(rule.holds(values), dtype=bool)
    if not holds.any():
        return ()
    edges = np.diff(np.concatenate([[False], holds, [False]]).astype("int8"))
    run_starts, run_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    stamps = times.asi8
    hold = pd.Timedelta(rule.hold).value
    found: list[Firing] = []
    for first, after in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
        fires = first + int(stamps[first:after].searchsorted(stamps[first] + hold, side="left"))
        if fires >= after:  # resolved while pending
            continue
        end = times[after] if after < len(times) else None
        found.append(Firing(times[fires], end, rule.worse(values[fires:after])))
    return tuple(found)


def backtest(
    rules: Sequence[Rule],
    messages: pd.DataFrame,
    agents: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> list[Replay]:
    """Each rule replayed at its steps in ``(start, end]``: one replay per rule, or per
    group that has messages in the replayed windows for a rule with ``group_by``."""
    replays: list[Replay] = []
    # Sorted once: each rule's period, then each group, is a slice or a take of it.
    ordered = messages.sort_values("timestamp", kind="stable", ignore_index=True)
    stamps = ordered["timestamp"]
    for rule in rules:
        times = steps(rule, start, end)
        if not len(times):
            continue
        lo = stamps.searchsorted(times[0] - rule.over, side="left")
        hi = stamps.searchsorted(times[-1], side="right")
        scoped = in_scope(rule, ordered.iloc[lo:hi], agents)
        by_group: list[tuple[str | None, np.ndarray]] = (
            [(None, series(rule, scoped, times))]
            if rule.group_by is None
            else [*series_by(rule, scoped, group_keys(rule, scoped), times).items()]
        )
        for group, values in by_group:
            replays.append(Replay(rule, group, times, values, firings(rule, times, values)))
    return replays
