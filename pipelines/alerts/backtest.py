"""Replay rules over stored history: when each would have fired, and how often.

Every step of a rule is an evaluation at an instant ``t`` (a multiple of ``every`` since
the epoch, in UTC) of its metric over ``[t - over, t]``, both ends inclusive, exactly as
:func:`pipelines.alerts.evaluate.values_at` computes it live, but for all steps at once:
the messages sorted by time, each window's first and last row found by ``searchsorted``,
counts and sums read off cumulative sums, percentiles and distinct counts computed on each
window's slice.  The instances then go through the live state machine's rules: a run of
steps where the condition holds fires at its first step at least ``for`` after the run
began, and resolves at the first step where it no longer holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.alerts.evaluate import group_keys, in_scope
from pipelines.alerts.rules import Rule
from pipelines.metrics import FAILED_STATUSES, LATENCY_PERCENTILES, REPLY_ROLE

_PERCENTILES = {f"latency_p{p}": p for p in LATENCY_PERCENTILES}


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


def series(rule: Rule, messages: pd.DataFrame, times: pd.DatetimeIndex) -> np.ndarray:
    """The rule's metric over ``[t - over, t]`` at each of ``times``, for ``messages``
    already scoped (and of one group), as :func:`pipelines.metrics.kpis` defines it."""
    frame = messages.sort_values("timestamp", kind="stable")
    stamps = _nanoseconds(frame["timestamp"])
    ends = times.asi8
    starts = ends - pd.Timedelta(rule.over).value
    lo = stamps.searchsorted(starts, side="left")
    hi = stamps.searchsorted(ends, side="right")
    metric = rule.metric
    if metric == "messages":
        return (hi - lo).astype("float64")
    if metric in ("tokens_in", "tokens_out", "cost_usd", "unpriced_messages"):
        if metric == "unpriced_messages":
            weights = (frame["model"].notna() & frame["cost_usd"].isna()).to_numpy(dtype="int64")
        else:
            weights = frame[metric].fillna(0).to_numpy(dtype="float64")
        return _window_sums(weights, lo, hi)
    is_reply = (frame["role"] == REPLY_ROLE).to_numpy(dtype=bool)
    if metric == "error_rate":
        failed = is_reply & frame["status"].isin(FAILED_STATUSES).to_numpy(dtype=bool)
        replies = _window_sums(is_reply.astype("int64"), lo, hi)
        errors = _window_sums(failed.astype("int64"), lo, hi)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(replies > 0, errors / replies, np.nan)
    if metric in _PERCENTILES:
        latency = frame["latency_ms"].to_numpy(dtype="float64", na_value=np.nan)
        kept = is_reply & ~np.isnan(latency)
        kept_stamps = stamps[kept]
        return _window_percentiles(
            latency[kept],
            kept_stamps.searchsorted(starts, side="left"),
            kept_stamps.searchsorted(ends, side="right"),
            _PERCENTILES[metric],
        )
    column = {"conversations": "conversation_id", "active_agents": "agent_id"}[metric]
    return _window_distinct(frame[column], lo, hi)


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
    for rule in rules:
        times = steps(rule, start, end)
        scoped = in_scope(rule, messages, agents)
        if len(times):
            scoped = scoped[scoped["timestamp"].between(times[0] - rule.over, times[-1])]
        if rule.group_by is None:
            groups: list[tuple[str | None, pd.DataFrame]] = [(None, scoped)]
        else:
            groups = [
                (str(group), rows)
                for group, rows in scoped.groupby(group_keys(rule, scoped), sort=True)
            ]
        for group, rows in groups:
            values = series(rule, rows, times)
            replays.append(Replay(rule, group, times, values, firings(rule, times, values)))
    return replays


def _nanoseconds(stamps: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(stamps).as_unit("ns").asi8


def _window_sums(weights: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    totals = np.concatenate([[0], np.cumsum(weights)])
    return (totals[hi] - totals[lo]).astype("float64")


def _window_percentiles(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, percentile: float
) -> np.ndarray:
    result = np.full(len(lo), np.nan)
    last: tuple[tuple[int, int], float] | None = None
    for i, bounds in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
        if bounds[1] <= bounds[0]:
            continue
        if last is None or bounds != last[0]:  # else nothing came in or went out
            last = bounds, float(np.percentile(values[bounds[0] : bounds[1]], percentile))
        result[i] = last[1]
    return result


def _window_distinct(keys: pd.Series, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Distinct non-missing keys in each window: the rows whose key was not seen earlier in
    the window, i.e. whose previous row of the same key lies before the window's start."""
    codes, _ = pd.factorize(keys)  # -1 for a missing key
    previous = np.full(len(codes), -1, dtype="int64")
    order = np.argsort(codes, kind="stable")
    same = codes[order][1:] == codes[order][:-1]
    previous[order[1:][same]] = order[:-1][same]
    first_seen = np.where(codes >= 0, previous, np.iinfo("int64").max)
    return np.array(
        [
            np.count_nonzero(first_seen[a:b] < a)
            for a, b in zip(lo.tolist(), hi.tolist(), strict=True)
        ],
        dtype="float64",
    )
