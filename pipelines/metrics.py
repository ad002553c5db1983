"""Metrics over canonical message and agent frames: KPIs, time series and tables.

Pure functions of pandas frames (no I/O, no Panel), shared by the views, the
REST API and the reports. The KPI definitions are a public contract:

- an *agent reply* is a message whose ``role`` is ``"agent"``;
- a *failed* reply is one whose ``status`` is ``"error"`` or ``"timeout"``;
- the error rate is the share of failed replies, undefined (NaN, null in JSON)
  where there is no reply;
- latency statistics use agent replies that have a latency, with linear
  interpolation between order statistics (numpy's and pandas' default);
- token totals count missing values as 0;
- ``cost_usd`` sums the cost of the messages that have one (see :mod:`pipelines.prices`):
  a message whose model has no price is left out and counted in ``unpriced_messages``; one
  without a model has no cost and is not counted.

Time series (``*_series``) label each bin by its left edge, in the requested
IANA time zone, so daily bins start at local midnight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TypedDict

import numpy as np
import pandas as pd

REPLY_ROLE = "agent"
FAILED_STATUSES = ("error", "timeout")
LATENCY_PERCENTILES = (50, 95, 99)
MISSING_LABEL = "(none)"
"""Column label that time series give to rows whose ``by`` value is missing."""
MAX_BINS = 300

# Candidate bin widths, each at most 5x the previous one, so that the first one
# giving at most MAX_BINS bins also gives at least MAX_BINS / 5.
_INTERVALS = (
    "10s", "30s", "1min", "5min", "15min", "30min", "1h", "3h", "6h", "12h", "1D", "2D", "7D",
)  # fmt: skip


class LatencyDict(TypedDict):
    """Latency percentiles in ms; None when there is no agent reply with a latency."""

    p50: float | None
    p95: float | None
    p99: float | None


TokensDict = TypedDict("TokensDict", {"in": int, "out": int})


class CostDict(TypedDict):
    """USD of the priced messages, and how many messages have a model without a price."""

    usd: float
    unpriced_messages: int


class KpiDict(TypedDict):
    """JSON form of `Kpis`, as served by the REST API and written in reports."""

    messages: int
    conversations: int
    active_agents: int
    error_rate: float | None
    latency_ms: LatencyDict
    tokens: TokensDict
    cost: CostDict


@dataclass(frozen=True)
class Kpis:
    """Headline numbers for a window of messages (see the module docstring)."""

    messages: int
    conversations: int
    active_agents: int
    error_rate: float
    latency_p50: float
    latency_p95: float
    latency_p99: float
    tokens_in: int
    tokens_out: int
    cost_usd: float
    unpriced_messages: int

    def to_dict(self) -> KpiDict:
        """The JSON shape used by the REST API and reports; NaN (no reply) becomes None."""
        return {
            "messages": self.messages,
            "conversations": self.conversations,
            "active_agents": self.active_agents,
            "error_rate": _none_if_nan(self.error_rate),
            "latency_ms": {
                "p50": _none_if_nan(self.latency_p50),
                "p95": _none_if_nan(self.latency_p95),
                "p99": _none_if_nan(self.latency_p99),
            },
            "tokens": {"in": self.tokens_in, "out": self.tokens_out},
            "cost": {"usd": self.cost_usd, "unpriced_messages": self.unpriced_messages},
        }


def kpis(messages: pd.DataFrame) -> Kpis:
    """KPIs of all messages in the frame (the caller trims it to the window)."""
    is_reply = reply_mask(messages)
    latency = messages["latency_ms"].to_numpy()[is_reply]
    latency = latency[~np.isnan(latency)]
    if latency.size:
        p50, p95, p99 = (float(p) for p in np.percentile(latency, LATENCY_PERCENTILES))
    else:
        p50 = p95 = p99 = math.nan
    replies = int(is_reply.sum())
    failed = int((is_reply & failed_mask(messages)).sum())
    return Kpis(
        messages=len(messages),
        conversations=int(messages["conversation_id"].nunique()),
        active_agents=int(messages["agent_id"].nunique()),
        error_rate=failed / replies if replies else math.nan,
        latency_p50=p50,
        latency_p95=p95,
        latency_p99=p99,
        tokens_in=int(messages["tokens_in"].sum()),
        tokens_out=int(messages["tokens_out"].sum()),
        cost_usd=float(messages["cost_usd"].sum()),
        unpriced_messages=int(unpriced_mask(messages).sum()),
    )


def kpi_changes(current: Kpis, previous: Kpis) -> dict[str, float | None]:
    """Relative change of each KPI field, ``(current - previous) / previous``.

    None where the previous value is 0 or NaN, or the current one is NaN.
    """
    changes: dict[str, float | None] = {}
    for field in fields(Kpis):
        now, before = getattr(current, field.name), getattr(previous, field.name)
        undefined = before == 0 or math.isnan(before) or math.isnan(now)
        changes[field.name] = None if undefined else (now - before) / before
    return changes


def choose_interval(start: pd.Timestamp, end: pd.Timestamp, max_bins: int = MAX_BINS) -> str:
    """The finest pandas offset alias that splits ``[start, end]`` into at most ``max_bins``.

    Spans from about ``max_bins`` / 30 minutes to ``max_bins`` / 50 years get
    ``max_bins`` / 5 to ``max_bins`` bins.
    """
    span = end - start
    return next(
        (alias for alias in _INTERVALS if span <= max_bins * pd.Timedelta(alias)),
        _INTERVALS[-1],
    )


def coverage(messages: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> float:
    """The share of ``[start, end]`` from its first message to its end: 1.0 when the
    messages begin at the start, 0.0 when there is none.

    A period that the data reach only late in (a store younger than the period)
    has a low coverage, and comparisons with it say little.
    """
    if not len(messages):
        return 0.0
    first = max(messages["timestamp"].min(), start)
    return float(min(1.0, max(0.0, (end - first) / (end - start))))


def trim_window(messages: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Rows with ``start <= timestamp <= end`` (both ends inclusive)."""
    return messages[messages["timestamp"].between(start, end, inclusive="both")]


def volume_series(
    messages: pd.DataFrame, interval: str, by: str | None = "status", tz: str = "UTC"
) -> pd.DataFrame:
    """Message counts per time bin, one column per value of ``by``.

    Index ``timestamp``: bin left edges in ``tz``, every bin from the first
    message to the last (empty bins count 0). Columns are the sorted values of
    ``by`` (missing values under ``MISSING_LABEL``), or a single ``messages``
    column when ``by`` is None; each message is counted exactly once.
    """
    labels, bins = time_bins(messages["timestamp"], interval, tz)
    categories, columns = categorise(messages, by, "messages")
    return tabulate(labels, bins, categories, columns)


def cost_series(
    messages: pd.DataFrame, interval: str, by: str | None = "model", tz: str = "UTC"
) -> pd.DataFrame:
    """USD per time bin, one column per value of ``by`` (as ``volume_series``): the sum of
    ``cost_usd`` of the messages that have one; a single ``cost_usd`` column when ``by``
    is None.  Values of ``by`` whose messages have no cost get no column."""
    costed = messages[messages["cost_usd"].notna().to_numpy()]
    labels, bins = time_bins(messages["timestamp"], interval, tz)
    costed_bins = bins[messages["cost_usd"].notna().to_numpy()]
    categories, columns = categorise(costed, by, "cost_usd")
    weights = costed["cost_usd"].to_numpy(dtype="float64")
    return tabulate(labels, costed_bins, categories, columns, weights=weights)


def unpriced_models(messages: pd.DataFrame) -> pd.Series:
    """Messages per model that has no price, most first (index ``model``)."""
    counts = messages.loc[unpriced_mask(messages), "model"].value_counts()
    return counts.sort_index().sort_values(ascending=False, kind="stable").rename("messages")


def error_rate_series(
    messages: pd.DataFrame, interval: str, by: str | None = "agent_id", tz: str = "UTC"
) -> pd.DataFrame:
    """Share of failed agent replies per time bin, one column per value of ``by``.

    Same index as ``volume_series`` for the same messages. NaN where a bin has
    no agent reply for that column (unlike the KPI's 0.0), so that a chart
    shows a gap rather than a spurious zero; a single ``error_rate`` column
    when ``by`` is None.
    """
    labels, bins = time_bins(messages["timestamp"], interval, tz)
    is_reply = reply_mask(messages)
    categories, columns = categorise(messages[is_reply], by, "error_rate")
    failed = failed_mask(messages).to_numpy()[is_reply]
    replies = tabulate(labels, bins[is_reply], categories, columns)
    errors = tabulate(labels, bins[is_reply], categories, columns, weights=failed)
    return errors / replies.where(replies > 0)


def latency_series(
    messages: pd.DataFrame,
    interval: str,
    percentiles: Sequence[float] = LATENCY_PERCENTILES,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Latency percentiles of agent replies per time bin.

    Same index as ``volume_series`` for the same messages. Columns ``p50``,
    ``p95``, ``p99`` (one per requested percentile, NaN where the bin has no
    latency) and ``count``, the number of agent replies with a latency.
    """
    labels, bins = time_bins(messages["timestamp"], interval, tz)
    has_latency = reply_mask(messages) & messages["latency_ms"].notna().to_numpy()
    latency = pd.Series(messages["latency_ms"].to_numpy()[has_latency])
    grouped = latency.groupby(bins[has_latency])
    quantiles = [p / 100 for p in percentiles]
    table = (
        grouped.quantile(np.array(quantiles))
        .unstack()
        .reindex(index=range(len(labels)), columns=quantiles)
    )
    table.columns = pd.Index([f"p{p:g}" for p in percentiles])
    table["count"] = grouped.size().reindex(table.index, fill_value=0)
    return table.set_axis(labels)


def week_over_week(messages: pd.DataFrame, interval: str, now: pd.Timestamp) -> pd.DataFrame:
    """Message counts of the trailing week and of the week before, bin by bin.

    "This week" is ``[now - 7 days, now]``, "last week" ``[now - 14 days, now - 7 days)``;
    both are cut into bins of the fixed width ``interval`` counted from their
    start, so a row compares the same weekday and hour. Columns: ``offset``
    (Timedelta from the start of each week), ``this_week``, ``last_week``.
    The messages must cover the last 14 days.
    """
    step, week = pd.Timedelta(interval), pd.Timedelta(days=7)
    n_bins = math.ceil(week / step)
    timestamps = messages["timestamp"]
    start = now - week
    this_week = timestamps.between(start, now, inclusive="both")
    last_week = timestamps.between(start - week, start, inclusive="left")
    return pd.DataFrame(
        {
            "offset": pd.timedelta_range(0, periods=n_bins, freq=step),
            "this_week": _count_slots(timestamps[this_week] - start, step, n_bins),
            "last_week": _count_slots(timestamps[last_week] - (start - week), step, n_bins),
        }
    )


def per_agent(messages: pd.DataFrame, agents: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per agent: every agent of ``agents``, plus agent ids seen only in messages.

    Columns ``agent_id, name, kind, team, status`` (from ``agents``, NA when
    unknown), ``last_seen`` (the later of the agent's ``last_seen`` and its
    last message here), then ``messages, conversations, error_rate,
    latency_p50, latency_p95, tokens_in, tokens_out, cost_usd`` over the messages
    with that agent id, defined as in ``kpis`` (an agent without messages has
    zeros, and NaN for the rates and latencies of replies it has none of).
    Sorted by messages, most first.
    """
    attributed = messages[messages["agent_id"].notna()]
    grouped = attributed.groupby("agent_id")
    replies = attributed[reply_mask(attributed)]
    reply_latency = replies.groupby("agent_id")["latency_ms"]
    stats = pd.DataFrame(
        {
            "messages": grouped.size(),
            "conversations": grouped["conversation_id"].nunique(),
            "error_rate": failed_mask(replies).groupby(replies["agent_id"]).mean(),
            "latency_p50": reply_latency.quantile(0.5),
            "latency_p95": reply_latency.quantile(0.95),
            "tokens_in": grouped["tokens_in"].sum(),
            "tokens_out": grouped["tokens_out"].sum(),
            "cost_usd": grouped["cost_usd"].sum(),
            "last_message": grouped["timestamp"].max(),
        }
    )
    return agent_table(stats, agents)


def agent_table(stats: pd.DataFrame, agents: pd.DataFrame | None = None) -> pd.DataFrame:
    """``per_agent``'s table from per-agent ``stats`` (indexed by agent id, with its
    message columns and ``last_message``): joined with ``agents``, gaps filled, sorted."""
    info = _AGENT_INFO if agents is None else agents.set_index("id")[list(_AGENT_INFO.columns)]
    table = info.join(stats, how="outer").rename_axis("agent_id").reset_index()
    counts = ["messages", "conversations", "tokens_in", "tokens_out"]
    table[counts] = table[counts].fillna(0).astype("int64")
    table["cost_usd"] = table["cost_usd"].fillna(0.0)
    # A time column whatever the rows (the max of columns of no time is an object column).
    table["last_seen"] = pd.to_datetime(
        table[["last_seen", "last_message"]].max(axis=1), utc=True
    ).astype("datetime64[ns, UTC]")
    columns = ["agent_id", *_AGENT_INFO.columns, *stats.columns.drop("last_message")]
    return table[columns].sort_values(
        ["messages", "agent_id"], ascending=[False, True], ignore_index=True
    )


def breakdown(messages: pd.DataFrame, by: str) -> pd.DataFrame:
    """One row per value of ``by`` (a model, a user, a dimension; missing values under
    ``MISSING_LABEL``), most messages first.

    Columns ``by``, ``messages, conversations, error_rate, tokens_in, tokens_out, cost_usd,
    unpriced_messages``, each defined as in ``kpis`` over that value's messages.
    """
    keys = messages[by].fillna(MISSING_LABEL)
    grouped = messages.groupby(keys)
    replies = reply_mask(messages)
    table = pd.DataFrame(
        {
            "messages": grouped.size(),
            "conversations": grouped["conversation_id"].nunique(),
            "error_rate": (failed_mask(messages) & replies).groupby(keys).sum()
            / pd.Series(replies, index=messages.index).groupby(keys).sum().where(lambda n: n > 0),
            "tokens_in": grouped["tokens_in"].sum(),
            "tokens_out": grouped["tokens_out"].sum(),
            "cost_usd": grouped["cost_usd"].sum(),
            "unpriced_messages": unpriced_mask(messages).groupby(keys).sum(),
        }
    )
    return breakdown_table(table, by)


def breakdown_table(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """``breakdown``'s table from its columns indexed by the values of ``by``: an error rate
    of 0.0 where a value has no reply, counts as int64, most messages first."""
    table = table.assign(error_rate=table["error_rate"].fillna(0.0))
    counts = ["messages", "conversations", "tokens_in", "tokens_out", "unpriced_messages"]
    table[counts] = table[counts].astype("int64")
    table = table.rename_axis(by).reset_index()
    return table.sort_values(["messages", by], ascending=[False, True], ignore_index=True)


def conversation_stats(messages: pd.DataFrame) -> pd.DataFrame:
    """One row per conversation, ordered by start time.

    Columns: ``conversation_id``; ``user_id`` (of its first message that has
    one); ``started``, ``ended`` (first and last message) and ``duration_s``
    between them; ``turns`` (messages); ``agents`` (distinct agent ids);
    ``errors`` (failed agent replies); ``unanswered`` (its last user message
    has no strictly later agent reply; False without user messages);
    ``latency_total_ms`` (sum of agent-reply latencies, 0.0 when none).
    """
    is_reply = reply_mask(messages)
    timestamps = messages["timestamp"]
    frame = pd.DataFrame(
        {
            "conversation_id": messages["conversation_id"],
            "user_id": messages["user_id"],
            "timestamp": timestamps,
            "agent_id": messages["agent_id"],
            "error": is_reply & failed_mask(messages),
            "reply_latency": messages["latency_ms"].where(is_reply),
            "last_user": timestamps.where(messages["role"] == "user"),
            "last_reply": timestamps.where(is_reply),
        }
    )
    # Sorting by time makes "first" the earliest user id, not the first in storage order.
    stats = (
        frame.sort_values("timestamp", kind="stable")
        .groupby("conversation_id")
        .agg(
            user_id=("user_id", "first"),
            started=("timestamp", "min"),
            ended=("timestamp", "max"),
            turns=("timestamp", "size"),
            agents=("agent_id", "nunique"),
            errors=("error", "sum"),
            last_user=("last_user", "max"),
            last_reply=("last_reply", "max"),
            latency_total_ms=("reply_latency", "sum"),
        )
    )
    stats["duration_s"] = (stats["ended"] - stats["started"]).dt.total_seconds()
    # NaT compares False, so a conversation with no reply after its user stays unanswered.
    stats["unanswered"] = stats["last_user"].notna() & ~(stats["last_reply"] > stats["last_user"])
    columns = ["user_id", "started", "ended", "duration_s", "turns", "agents", "errors"]
    return (
        stats[[*columns, "unanswered", "latency_total_ms"]]
        .reset_index()
        .sort_values(["started", "conversation_id"], ignore_index=True)
    )


def slowest_conversations(messages: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` conversations with the largest total agent-reply latency.

    Rows of ``conversation_stats`` ranked by ``latency_total_ms``, descending;
    conversations without any latency are left out.
    """
    stats = conversation_stats(messages)
    return (
        stats[stats["latency_total_ms"] > 0]
        .sort_values(["latency_total_ms", "conversation_id"], ascending=[False, True])
        .head(n)
        .reset_index(drop=True)
    )


def handoffs(messages: pd.DataFrame) -> pd.DataFrame:
    """Agent hand-offs: columns ``source, target, count``, most frequent first.

    Within each conversation, agent replies in time order; each change of
    replying agent from A to B counts one hand-off A -> B. Replies without an
    agent id are skipped.
    """
    replies = messages.loc[
        reply_mask(messages) & messages["agent_id"].notna().to_numpy(),
        ["conversation_id", "timestamp", "agent_id"],
    ].sort_values(["conversation_id", "timestamp"], kind="stable")
    source = replies["agent_id"].shift()
    same_conversation = replies["conversation_id"].eq(replies["conversation_id"].shift())
    changed = same_conversation & replies["agent_id"].ne(source)
    pairs = pd.DataFrame({"source": source[changed], "target": replies["agent_id"][changed]})
    return handoff_table(pairs)


def handoff_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """``handoffs``' table from one row per hand-off (columns ``source, target``)."""
    return (
        pairs.groupby(["source", "target"])
        .size()
        .reset_index(name="count")
        .sort_values(
            ["count", "source", "target"], ascending=[False, True, True], ignore_index=True
        )
    )


def latency_distribution(messages: pd.DataFrame, bins: int = 50, log: bool = False) -> pd.DataFrame:
    """Histogram of agent-reply latencies: columns ``left, right, count`` (ms).

    ``bins`` bins from the smallest to the largest latency, the last one closed
    on the right: of equal width, or with ``log`` of equal width in log (each
    edge a constant factor above the one before, from the smallest latency above
    zero, zeros counted in the first bin); no rows when no reply has a latency.
    """
    return latency_histogram(_reply_latency(messages)["latency_ms"].to_numpy(), bins, log)


def latency_histogram(
    latency: np.ndarray, bins: int = 50, log: bool = False, weights: np.ndarray | None = None
) -> pd.DataFrame:
    """``latency_distribution``'s table over ``latency`` values, each counted ``weights``
    times (once without; weighted counts are rounded)."""
    if not latency.size:
        empty = pd.DataFrame({"left": [], "right": [], "count": []})
        return empty.astype({"left": "float64", "right": "float64", "count": "int64"})
    if log:
        positive = latency[latency > 0]
        low = positive.min() if positive.size else 1.0
        high = max(latency.max(), low)
        edges = np.geomspace(low, high, bins + 1) if high > low else np.array([low, low * 2])
        counts, _ = np.histogram(latency.clip(min=low), bins=edges, weights=weights)
    else:
        counts, edges = np.histogram(latency, bins=bins, weights=weights)
    counts = np.rint(counts).astype("int64")
    return pd.DataFrame({"left": edges[:-1], "right": edges[1:], "count": counts})


def latency_ecdf(messages: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Empirical CDF of agent-reply latencies: columns ``latency_ms, fraction``.

    One row per distinct latency, ``fraction`` being the share of latencies
    at or below it; with ``by`` (e.g. ``"agent_id"``), one CDF per value of
    that column, which comes first. Rows with a missing ``by`` value are
    left out.
    """
    keys = [] if by is None else [by]
    frame = _reply_latency(messages, keys).dropna(subset=keys)
    return ecdf_table(frame, keys, np.ones(len(frame)))


def ecdf_table(frame: pd.DataFrame, keys: Sequence[str], weights: np.ndarray) -> pd.DataFrame:
    """``latency_ecdf``'s table from ``keys`` and ``latency_ms`` columns, each row standing
    for ``weights`` latencies."""
    frame = frame.assign(weight=weights).sort_values([*keys, "latency_ms"], ignore_index=True)
    # groupby needs a key: without `by`, a constant one makes a single group.
    grouped = frame.groupby(list(keys)) if keys else frame.groupby(np.zeros(len(frame)))
    frame["fraction"] = grouped["weight"].cumsum() / grouped["weight"].transform("sum")
    # The last of equal latencies carries the share of everything up to and including them.
    frame = frame.drop(columns="weight")
    return frame.drop_duplicates([*keys, "latency_ms"], keep="last", ignore_index=True)


def top_errors(messages: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` most frequent failures of agent replies by agent and status.

    Columns ``agent_id`` (NA for replies without one), ``status``, ``count``,
    ``last_seen`` (time of the latest such reply); most frequent first, then
    most recent.
    """
    failed = messages.loc[
        reply_mask(messages) & failed_mask(messages).to_numpy(), ["agent_id", "status", "timestamp"]
    ]
    table = (
        failed.groupby(["agent_id", "status"], dropna=False)
        .agg(count=("timestamp", "size"), last_seen=("timestamp", "max"))
        .reset_index()
    )
    return table.sort_values(
        ["count", "last_seen"], ascending=[False, False], ignore_index=True
    ).head(n)


_AGENT_INFO = pd.DataFrame(
    {
        "name": pd.Series(dtype="str"),
        "kind": pd.Series(dtype="str"),
        "team": pd.Series(dtype="str"),
        "status": pd.Series(dtype="str"),
        "last_seen": pd.Series(dtype="datetime64[ns, UTC]"),
    },
    index=pd.Index([], dtype="str", name="id"),
)
"""Agent attributes that ``per_agent`` carries over, as an empty frame for when none are given."""


def reply_mask(messages: pd.DataFrame) -> np.ndarray:
    """Agent replies, as a boolean array."""
    return (messages["role"] == REPLY_ROLE).to_numpy(dtype=bool)


def failed_mask(messages: pd.DataFrame) -> pd.Series:
    """Messages whose status is a failure (a failed reply when it is also a reply)."""
    return messages["status"].isin(FAILED_STATUSES)


def unpriced_mask(messages: pd.DataFrame) -> pd.Series:
    """Messages that name a model and have no cost: their model has no price."""
    return messages["model"].notna() & messages["cost_usd"].isna()


def _reply_latency(messages: pd.DataFrame, keys: Sequence[str] = ()) -> pd.DataFrame:
    """``keys`` and ``latency_ms`` of the agent replies that have a latency."""
    mask = reply_mask(messages) & messages["latency_ms"].notna().to_numpy()
    return messages.loc[mask, [*keys, "latency_ms"]]


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def time_bins(timestamps: pd.Series, interval: str, tz: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The bins ``resample(interval)`` makes over ``timestamps`` in ``tz``, and each row's bin."""
    local = pd.DatetimeIndex(timestamps).tz_convert(tz).as_unit("ns")
    if local.empty:
        empty = pd.DatetimeIndex([], dtype=f"datetime64[ns, {tz}]", name="timestamp")
        return empty, np.empty(0, dtype=np.intp)
    # Resampling the two extremes gives the same bins (origin, DST handling) as
    # resampling every row, without grouping a million rows.
    ends = pd.Series(0, index=pd.DatetimeIndex([local.min(), local.max()]))
    labels = pd.DatetimeIndex(ends.resample(interval).size().index, name="timestamp").as_unit("ns")
    return labels, labels.asi8.searchsorted(local.asi8, side="right") - 1


def categorise(messages: pd.DataFrame, by: str | None, single: str) -> tuple[np.ndarray, pd.Index]:
    """Each row's column number and the column labels for a table split by ``by``."""
    if by is None:
        return np.zeros(len(messages), dtype=np.intp), pd.Index([single])
    codes, uniques = pd.factorize(messages[by].fillna(MISSING_LABEL), sort=True)
    return codes, pd.Index(uniques, name=by)


def tabulate(
    labels: pd.DatetimeIndex,
    bins: np.ndarray,
    categories: np.ndarray,
    columns: pd.Index,
    weights: np.ndarray | None = None,
) -> pd.DataFrame:
    """Counts (or sums of ``weights``) per (bin, category) as a bins x columns frame."""
    cells = np.bincount(
        bins * len(columns) + categories, weights=weights, minlength=len(labels) * len(columns)
    )
    return pd.DataFrame(cells.reshape(len(labels), len(columns)), index=labels, columns=columns)


def _count_slots(since: pd.Series[pd.Timedelta], step: pd.Timedelta, n_bins: int) -> np.ndarray:
    # The week's closing instant falls one slot past the end: count it in the last one.
    slots = (since // step).clip(upper=n_bins - 1).to_numpy(dtype=np.intp)
    return np.bincount(slots, minlength=n_bins)
