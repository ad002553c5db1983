"""Hourly rollups of canonical messages: long windows answered without their rows.

A :class:`Rollups` holds one *bucket* per hour and key. The key is the values of
``agent_id, status, role, model`` and of each dimension column it was built with; a missing
value is a key value of its own (``MISSING_LABEL`` in series columns, as in
:mod:`pipelines.metrics`). Hours are UTC hours shifted by ``offset_minutes`` (30 for
Asia/Kolkata): hour ``h`` holds ``[h * 3600 + offset_minutes * 60, + 3600)`` seconds.

Each bucket keeps, over its messages, with the definitions of :mod:`pipelines.metrics`:

- exact counts and sums: messages, agent replies, failed replies, tokens in and out
  (missing counted as 0), messages with a cost and their ``cost_usd``, unpriced messages,
  replies with a latency, and the times of the first and last message;
- the exact sets of its conversation ids and user ids as 64-bit hashes
  (``pandas.util.hash_array``): among ``n`` distinct ids two share a hash with odds of
  about ``n**2 / 2**65`` (3e-6 for ten million), and such a pair is counted once;
- its replies' latencies: as they are while there are at most ``SKETCH_K`` of them, which
  is all that a KLL sketch with ``k = SKETCH_K`` holds before it first compacts (8 bytes a
  latency, no object per bucket), and a KLL sketch (Apache DataSketches) beyond.

Every answer has the shape (columns, index, dtypes) of the :mod:`pipelines.metrics` function
of the same name over the raw rows of the selected hours, and the same values: exactly for
counts, sums (up to the order in which floats are added), rates, distinct counts and series;
approximately for what sketches give (latency percentiles, histogram, ECDF), each answer
from one sketch of the latencies it covers. Such a sketch is exact up to ``SKETCH_K``
latencies; past that, a percentile is off by at most ``RANK_ERROR`` in rank (0.68% at
k = 400, with 99% confidence; k = 200 would give 1.33%) and a histogram bin or ECDF fraction
by at most ``PMF_RANK_ERROR`` (0.86%). Percentiles are the sketch's items at the rank asked
for, not interpolated between two. Sketches merge with random compactions: two merges of
the same buckets may differ within these bounds.

Hand-offs (one row each, in the hour of the later reply) differ from ``metrics.handoffs``
over a window's rows in three ways: a hand-off whose earlier reply lies before the window is
counted here and not there (the window's rows do not show that reply); replies of one
conversation at the same instant are ordered by the hash of their id (metrics keeps storage
order); and key filters other than ``agents`` do not apply to them (filtered rows would link
the replies that remain), while ``agents`` keeps the hand-offs between two of those agents.

Beside the buckets, per bucket and conversation, the total latency of its replies (hashes and
a sum, 32 bytes a row): the slowest conversations of a long window are found from them
(:meth:`Rollups.latency_ranking`) without reading its rows.

Beside these, the rollups built from rows (not a :meth:`Rollups.select`\\ ion) keep
what :meth:`Rollups.apply` needs to take a change feed in: the hour and conversation of each
message id (by hash, 24 bytes a message) and the first and last reply of each conversation.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from datasketches import kll_doubles_sketch

from pipelines import metrics
from pipelines.errors import QueryError, RollupsFormatError

__all__ = [
    "FORMAT_VERSION", "KEY_COLUMNS", "PMF_RANK_ERROR", "RANK_ERROR", "SKETCH_K", "Rollups",
    "conversation_hashes",
]  # fmt: skip

SKETCH_K = 400
RANK_ERROR: float = kll_doubles_sketch.get_normalized_rank_error(SKETCH_K, False)
"""Largest rank error of one percentile, with 99% confidence (0.0068 at k = 400)."""
PMF_RANK_ERROR: float = kll_doubles_sketch.get_normalized_rank_error(SKETCH_K, True)
"""Largest error of a share of latencies (histogram bin, ECDF), with 99% confidence."""
KEY_COLUMNS = ("agent_id", "status", "role", "model")
FORMAT_VERSION = 2
"""Version of the :meth:`Rollups.to_bytes` layout; other versions are refused."""

_MAGIC = b"agentdash-rollups"
_HOUR = 3_600_000_000_000
_SUMS = (
    "messages", "replies", "failed", "tokens_in", "tokens_out",
    "priced", "cost_usd", "unpriced", "latency_count",
)  # fmt: skip
_RUNS = ("latencies", "conversations", "users")
_Reread = Callable[[pd.Timestamp, pd.Timestamp], pd.DataFrame]
_Totals = pd.DataFrame | Callable[[], pd.DataFrame]
"""Latency totals (``_latency_rows``), or, for a selection, what works them out once asked."""
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it keeps every bit in play
_MISSING_HASH = np.array([0x5A17], dtype=np.uint64)  # a missing key value's hash
_TOTALS_DTYPES = {
    "cell": "uint64", "first": "int64", "conversation": "uint64", "latency_ms": "float64",
}  # fmt: skip


@dataclass(frozen=True)
class _Ragged:
    """One run of values per bucket: ``values[offsets[i]:offsets[i + 1]]``."""

    offsets: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, groups: np.ndarray, values: np.ndarray, n: int, distinct: bool = False) -> _Ragged:
        """The ``values`` of each of the ``n`` groups, in their order; with ``distinct``,
        each value once, sorted (a set)."""
        order = np.lexsort((values, groups)) if distinct else np.argsort(groups, kind="stable")
        groups, values = groups[order], values[order]
        if distinct:
            new = np.ones(len(groups), dtype=bool)
            new[1:] = (groups[1:] != groups[:-1]) | (values[1:] != values[:-1])
            groups, values = groups[new], values[new]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(groups, minlength=n), out=offsets[1:])
        return cls(offsets, values)

    @classmethod
    def concat(cls, parts: Sequence[_Ragged]) -> _Ragged:
        sizes = np.concatenate([p.sizes for p in parts])
        offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        return cls(offsets, np.concatenate([p.values for p in parts]))

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, index: np.ndarray) -> _Ragged:
        sizes = self.sizes[index]
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        shift = np.repeat(self.offsets[:-1][index] - offsets[:-1], sizes)
        return _Ragged(offsets, self.values[shift + np.arange(offsets[-1])])

    def regroup(self, groups: np.ndarray, n: int, distinct: bool = False) -> _Ragged:
        """The values of each group's buckets (bucket ``i`` in ``groups[i]``), together."""
        return _Ragged.of(np.repeat(groups, self.sizes), self.values, n, distinct)

    def emptied(self, buckets: np.ndarray) -> _Ragged:
        """The same runs, but none for ``buckets`` (a boolean mask)."""
        offsets = np.zeros(len(self.offsets), dtype=np.int64)
        np.cumsum(np.where(buckets, 0, self.sizes), out=offsets[1:])
        return _Ragged(offsets, self.values[np.repeat(~buckets, self.sizes)])

    def run(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def distinct(self) -> int:
        return len(np.unique(self.values))


@dataclass(frozen=True)
class _Buckets:
    """The buckets: a frame of keys and sums, and per bucket its latencies, two sets of hashes.

    ``cells`` has ``hour`` (ns), the key columns (str), the ``_SUMS`` and ``first``/``last``
    (ns); rows are sorted by hour, then by key with missing values first. A bucket keeps its
    latencies as they are (``latencies``) while it has at most ``SKETCH_K`` of them, which is
    all a KLL sketch would hold so far, and a sketch (``sketches``, else None) beyond. Sketches
    are never changed once made, so buckets may share them.
    """

    cells: pd.DataFrame
    latencies: _Ragged
    sketches: np.ndarray
    conversations: _Ragged
    users: _Ragged

    def take(self, index: np.ndarray) -> _Buckets:
        return _Buckets(
            self.cells.iloc[index].reset_index(drop=True),
            self.latencies.take(index),
            self.sketches[index],
            self.conversations.take(index),
            self.users.take(index),
        )

    @classmethod
    def concat(cls, parts: Sequence[_Buckets]) -> _Buckets:
        return cls(
            pd.concat([p.cells for p in parts], ignore_index=True),
            _Ragged.concat([p.latencies for p in parts]),
            np.concatenate([p.sketches for p in parts]),
            _Ragged.concat([p.conversations for p in parts]),
            _Ragged.concat([p.users for p in parts]),
        )

    def by_hour(self) -> _Buckets:
        """The same buckets sorted by hour, keeping the order within each hour."""
        return self.take(np.argsort(self.cells["hour"].to_numpy(), kind="stable"))


@dataclass(frozen=True)
class _Rows:
    """Canonical messages with what the rollups read of them worked out once: times and
    hours (ns), and the hashes of ids, conversation ids and user ids (``has_user`` where
    there is one)."""

    frame: pd.DataFrame
    time: np.ndarray
    hour: np.ndarray
    id: np.ndarray
    conversation: np.ndarray
    user: np.ndarray
    has_user: np.ndarray

    @classmethod
    def of(cls, messages: pd.DataFrame, offset: int) -> _Rows:
        time = _nanoseconds(messages["timestamp"])
        return cls(
            messages.reset_index(drop=True),
            time,
            _floor_hour(time, offset),
            _hash(messages["id"]),
            _hash(messages["conversation_id"]),
            _hash(messages["user_id"]),
            messages["user_id"].notna().to_numpy(),
        )

    def __getitem__(self, mask: np.ndarray) -> _Rows:
        frame = self.frame[mask].reset_index(drop=True)
        arrays = (self.time, self.hour, self.id, self.conversation, self.user, self.has_user)
        return _Rows(frame, *(a[mask] for a in arrays))

    def __len__(self) -> int:
        return len(self.frame)


def _rows_to_buckets(rows: _Rows, keys: Sequence[str]) -> _Buckets:
    """Buckets of ``rows`` (with the ``keys`` columns)."""
    messages = rows.frame
    frame = pd.DataFrame({"hour": rows.hour} | {k: messages[k].astype("str") for k in keys})
    groups, first = _group(frame)
    n = len(first)
    reply = metrics.reply_mask(messages)
    cost = messages["cost_usd"].to_numpy(dtype="float64")
    latency = messages["latency_ms"].to_numpy(dtype="float64")
    timed = reply & ~np.isnan(latency)
    columns: dict[str, np.ndarray] = {
        "messages": np.ones(len(messages), dtype=np.int64),
        "replies": reply,
        "failed": reply & metrics.failed_mask(messages).to_numpy(dtype=bool),
        "tokens_in": messages["tokens_in"].fillna(0).to_numpy(dtype="int64"),
        "tokens_out": messages["tokens_out"].fillna(0).to_numpy(dtype="int64"),
        "priced": ~np.isnan(cost),
        "cost_usd": np.nan_to_num(cost, nan=0.0),
        "unpriced": metrics.unpriced_mask(messages).to_numpy(dtype=bool),
        "latency_count": timed,
    }
    order, starts = _runs(groups, n)
    cells = frame.iloc[first].reset_index(drop=True)
    for name, values in columns.items():
        dtype = "float64" if name == "cost_usd" else "int64"
        cells[name] = _reduce(np.add, values.astype(dtype)[order], starts)
    cells["first"] = _reduce(np.minimum, rows.time[order], starts)
    cells["last"] = _reduce(np.maximum, rows.time[order], starts)
    latencies, sketches = _settled(
        _Ragged.of(groups[timed], latency[timed], n), np.full(n, None, dtype=object)
    )
    return _Buckets(
        cells,
        latencies,
        sketches,
        _Ragged.of(groups, rows.conversation, n, distinct=True),
        _Ragged.of(groups[rows.has_user], rows.user[rows.has_user], n, distinct=True),
    )


def _combine(parts: Sequence[_Buckets], keys: Sequence[str]) -> _Buckets:
    """One bucket per hour and key of ``parts``: sums added, latencies put together, sets
    united."""
    whole = _Buckets.concat(parts)
    cells = whole.cells
    groups, first = _group(cells[["hour", *keys]])
    n = len(first)
    order, starts = _runs(groups, n)
    combined = cells.iloc[first][["hour", *keys]].reset_index(drop=True)
    for name in _SUMS:
        combined[name] = _reduce(np.add, cells[name].to_numpy()[order], starts)
    combined["first"] = _reduce(np.minimum, cells["first"].to_numpy()[order], starts)
    combined["last"] = _reduce(np.maximum, cells["last"].to_numpy()[order], starts)
    latencies, sketches = _settled(
        whole.latencies.regroup(groups, n), _merge_sketches(whole.sketches, groups, n)
    )
    return _Buckets(
        combined,
        latencies,
        sketches,
        whole.conversations.regroup(groups, n, distinct=True),
        whole.users.regroup(groups, n, distinct=True),
    )


def _group(keys: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group, groups numbered in key order (missing values first), and the first
    row of each group."""
    combined = np.zeros(len(keys), dtype=np.int64)
    span = 1
    for name in keys:
        codes, uniques = pd.factorize(keys[name], sort=True)
        width = len(uniques) + 1
        if span * width >= 2**62:
            # Renumbering the groups so far keeps their order and bounds the span by the rows.
            combined = np.unique(combined, return_inverse=True)[1].astype(np.int64)
            span = int(combined.max()) + 1
        combined = combined * width + codes + 1
        span *= width
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    return inverse.reshape(-1), first


def _runs(groups: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The order that sorts rows by group, and where each of the ``n`` groups starts in it."""
    order = np.argsort(groups, kind="stable")
    return order, np.searchsorted(groups[order], np.arange(n))


def _reduce(ufunc: np.ufunc, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``ufunc`` over each run of ``values`` beginning at ``starts`` (none empty)."""
    return ufunc.reduceat(values, starts) if len(starts) else values[:0]


def _settled(latencies: _Ragged, sketches: np.ndarray) -> tuple[_Ragged, np.ndarray]:
    """Latencies and sketches where a bucket with more than ``SKETCH_K`` latencies, or with a
    sketch, has them all in its sketch."""
    sizes = latencies.sizes
    folded = np.flatnonzero((sizes > SKETCH_K) | ((sizes > 0) & pd.notna(sketches)))
    if not len(folded):
        return latencies, sketches
    sketches = sketches.copy()
    for bucket in folded.tolist():
        sketches[bucket] = _sketch(latencies.run(bucket), sketches[bucket])
    emptied = np.zeros(len(sizes), dtype=bool)
    emptied[folded] = True
    return latencies.emptied(emptied), sketches


def _sketch(latency: np.ndarray, merged: kll_doubles_sketch | None = None) -> kll_doubles_sketch:
    """A new sketch of ``latency`` and of the latencies of ``merged``."""
    sketch = kll_doubles_sketch(SKETCH_K)
    if merged is not None:
        sketch.merge(merged)
    sketch.update(latency)
    return sketch


def _group_items(buckets: _Buckets, groups: np.ndarray, n: int) -> list[_Items]:
    """Per group of buckets, every latency they hold as it is (weight 1) and every item
    their sketches retain with the weight it stands for.

    Pooled rather than merged into one sketch: a KLL merge compacts at random, so the
    same question asked twice could get two answers; pooling answers it the same way
    every time, within the sketches' own error.
    """
    latencies = buckets.latencies.regroup(groups, n)
    pooled: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(n)]
    for group, sketch in zip(groups.tolist(), buckets.sketches.tolist(), strict=True):
        if sketch is not None and not sketch.is_empty():
            pooled[group].append(_items(sketch))
    items: list[_Items] = []
    for group in range(n):
        raw = latencies.run(group)
        parts = [(raw, np.ones(len(raw))), *pooled[group]]
        items.append((np.concatenate([v for v, _ in parts]), np.concatenate([w for _, w in parts])))
    return items


def _weighted_quantiles(items: _Items, ranks: Sequence[float]) -> list[float]:
    """The smallest latency whose share of the weight at or below it reaches each rank (the
    sketches' inclusive quantile); NaN without latencies."""
    values, weights = items
    if not len(values) or not weights.sum():
        return [np.nan] * len(ranks)
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    at = np.searchsorted(cumulative, np.asarray(ranks, dtype="float64") * cumulative[-1])
    return [float(v) for v in values[order][np.minimum(at, len(values) - 1)]]


def _merge_sketches(sketches: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    """Per group, the sketch of the latencies of all its sketches (None when none)."""
    merged = np.full(n, None, dtype=object)
    fresh = np.zeros(n, dtype=bool)
    for group, sketch in zip(groups.tolist(), sketches.tolist(), strict=True):
        if sketch is None:
            continue
        held = merged[group]
        if held is None:
            merged[group] = sketch
            continue
        if not fresh[group]:
            # A sketch may be shared with other rollups: merge into a new one.
            held = kll_doubles_sketch(SKETCH_K)
            held.merge(merged[group])
            merged[group], fresh[group] = held, True
        held.merge(sketch)
    return merged


def _total(values: pd.Series, groups: np.ndarray, n: int) -> np.ndarray:
    """The sum of ``values`` in each of the ``n`` groups, as float64 (even with no rows)."""
    return np.bincount(groups, weights=values.to_numpy(), minlength=n).astype("float64")


_Items = tuple[np.ndarray, np.ndarray]
"""Latencies and the weight of each."""


def _items(sketch: kll_doubles_sketch | None) -> tuple[np.ndarray, np.ndarray]:
    """The latencies a sketch retains and the weight of each; its exact extremes weigh 0."""
    if sketch is None or sketch.is_empty():
        return np.empty(0), np.empty(0)
    items = [(sketch.get_min_value(), 0), (sketch.get_max_value(), 0), *sketch]
    values, weights = np.array(items, dtype="float64").reshape(-1, 2).T
    return values, weights


def _replies(rows: _Rows) -> pd.DataFrame:
    """Agent replies with an agent id: ``conversation`` (hash), ``time`` (ns), ``tie`` (id
    hash, the order of replies at the same instant), ``agent``."""
    messages = rows.frame
    mask = metrics.reply_mask(messages) & messages["agent_id"].notna().to_numpy()
    return pd.DataFrame(
        {
            "conversation": rows.conversation[mask],
            "time": rows.time[mask],
            "tie": rows.id[mask],
            "agent": messages["agent_id"][mask].astype("str").to_numpy(),
        }
    )


def _handoff_rows(replies: pd.DataFrame, offset: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The hand-offs between ``replies`` (``_replies`` rows), and each conversation's thread.

    Hand-offs: ``hour`` (of the later reply), ``conversation``, ``source``, ``target``.
    Threads: ``conversation`` (sorted), ``first`` and ``last`` reply time, ``agent`` of the last.
    """
    replies = replies.sort_values(["conversation", "time", "tie"], kind="stable")
    conversation = replies["conversation"].to_numpy()
    time = replies["time"].to_numpy()
    codes, agents = pd.factorize(replies["agent"])
    same = conversation[1:] == conversation[:-1]
    changed = np.flatnonzero(same & (codes[1:] != codes[:-1])) + 1
    handoffs = pd.DataFrame(
        {
            "hour": _floor_hour(time[changed], offset),
            "conversation": conversation[changed],
            "source": pd.Series(agents.take(codes[changed - 1]), dtype="str"),
            "target": pd.Series(agents.take(codes[changed]), dtype="str"),
        }
    )
    starts = np.flatnonzero(np.r_[True, ~same])[: len(replies)]
    ends = np.r_[starts[1:] - 1, len(replies) - 1][: len(starts)]
    threads = pd.DataFrame(
        {
            "conversation": conversation[starts],
            "first": time[starts],
            "last": time[ends],
            "agent": pd.Series(agents.take(codes[ends]), dtype="str"),
        }
    )
    return handoffs, threads


def _id_rows(rows: _Rows) -> pd.DataFrame:
    """``id`` (hash, sorted), ``hour`` and ``conversation`` (hash) of each message."""
    index = pd.DataFrame({"id": rows.id, "hour": rows.hour, "conversation": rows.conversation})
    return index.sort_values("id", kind="stable", ignore_index=True)


def _cell_hashes(hour: np.ndarray, keys: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each bucket's hour and key values (missing values alike)."""
    mixed = np.asarray(pd.util.hash_array(np.asarray(hour, dtype=np.int64)), dtype=np.uint64)
    for name in keys:
        # Each distinct value hashed once: the same hash whatever else the column holds.
        codes, values = pd.factorize(keys[name])
        hashes = np.r_[_hash(pd.Series(values, dtype=object)), _MISSING_HASH]
        mixed = (mixed ^ hashes[codes]) * _MIX
    return mixed


def _latency_rows(rows: _Rows, keys: Sequence[str]) -> pd.DataFrame:
    """Per bucket and conversation, the total latency of its replies that have one:
    ``cell`` (``_cell_hashes`` of the bucket), ``first`` (the first of those replies' time,
    ns), ``conversation`` (hash), ``latency_ms``."""
    messages = rows.frame
    latency = messages["latency_ms"].to_numpy(dtype="float64")
    timed = metrics.reply_mask(messages) & ~np.isnan(latency)
    key_values = pd.DataFrame({k: messages[k].astype("str")[timed] for k in keys})
    table = pd.DataFrame(
        {
            "cell": _cell_hashes(rows.hour[timed], key_values),
            "first": rows.time[timed],
            "conversation": rows.conversation[timed],
            "latency_ms": latency[timed],
        }
    )
    return _summed_totals(table)


def _summed_totals(table: pd.DataFrame) -> pd.DataFrame:
    """One row per bucket and conversation of latency totals, their latencies added."""
    summed = table.groupby(["cell", "conversation"], sort=False, as_index=False).agg(
        first=("first", "min"), latency_ms=("latency_ms", "sum")
    )
    return summed[list(_TOTALS_DTYPES)].astype(_TOTALS_DTYPES)


def conversation_hashes(conversation_ids: pd.Series) -> np.ndarray:
    """The hashes by which rollups know conversations (see :meth:`Rollups.latency_ranking`)."""
    return _hash(conversation_ids)


def _hash(values: pd.Series) -> np.ndarray:
    """A stable 64-bit hash of each value (the same in every process and release)."""
    # Without categorize: the same hashes, and no factorizing of unique ids first.
    hashes = pd.util.hash_array(values.to_numpy(dtype=object), categorize=False)
    return np.asarray(hashes, dtype=np.uint64)


def _nanoseconds(timestamps: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(timestamps).as_unit("ns").asi8


def _floor_hour(time: np.ndarray, offset: int) -> np.ndarray:
    return (time - offset) // _HOUR * _HOUR + offset


def _instant(moment: pd.Timestamp | str) -> int:
    """Nanoseconds since the epoch of ``moment`` (naive means UTC)."""
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return int(stamp.as_unit("ns").value)


def _utc(time: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(time, unit="ns", utc=True), name="timestamp")


def _find(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each of ``keys`` is in ``sorted_keys``, and its position there (0 if not)."""
    position = np.searchsorted(sorted_keys, keys).clip(max=max(len(sorted_keys) - 1, 0))
    found = sorted_keys[position] == keys if len(sorted_keys) else np.zeros(len(keys), bool)
    return found, position


def _isin(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    return _find(np.unique(keys), values)[0]


def _among(column: pd.Series, wanted: Sequence[Any]) -> np.ndarray:
    """Rows whose value is one of ``wanted``, where None or NaN stands for a missing value."""
    present = [value for value in wanted if not pd.isna(value)]
    mask = column.isin(present).to_numpy(dtype=bool)
    return mask | column.isna().to_numpy() if len(present) < len(wanted) else mask


def _insert(index: pd.DataFrame, rows: pd.DataFrame, key: str) -> pd.DataFrame:
    """``index`` and ``rows`` (both sorted by ``key``) as one frame sorted by ``key``."""
    rows = rows.sort_values(key, kind="stable")
    at = np.searchsorted(index[key].to_numpy(), rows[key].to_numpy())
    return pd.DataFrame(
        {name: np.insert(index[name].to_numpy(), at, rows[name].to_numpy()) for name in index}
    ).astype(index.dtypes.to_dict())


def _hours_between(first: np.ndarray, last: np.ndarray, offset: int) -> np.ndarray:
    """Every hour from the hour of each ``first`` to the hour of its ``last``."""
    low, high = _floor_hour(first, offset), _floor_hour(last, offset)
    counts = (high - low) // _HOUR + 1
    steps = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(low, counts) + steps * _HOUR


def _stretches(hours: np.ndarray) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Sorted distinct ``hours`` as few half-open ``[start, end)`` ranges as possible."""
    if not len(hours):
        return []
    breaks = np.flatnonzero(np.diff(hours) != _HOUR) + 1
    starts, ends = hours[np.r_[0, breaks]], hours[np.r_[breaks - 1, len(hours) - 1]] + _HOUR
    stamp = pd.Timestamp
    return [(stamp(s, tz="UTC"), stamp(e, tz="UTC")) for s, e in zip(starts, ends, strict=True)]


class Rollups:
    """Hourly buckets of messages, merged and filtered without the raw rows (module doc).

    Values are immutable: ``merge``, ``apply`` and ``select`` return new rollups (sharing
    what did not change) and leave this one as it was.
    """

    def __init__(
        self,
        buckets: _Buckets,
        handoffs: pd.DataFrame,
        ids: pd.DataFrame | None,
        threads: pd.DataFrame | None,
        totals: _Totals,
        dimensions: tuple[str, ...],
        offset_minutes: int,
    ) -> None:
        """Use :meth:`build` or :meth:`from_bytes`."""
        self._buckets = buckets
        self._handoffs = handoffs
        self._ids = ids
        self._threads = threads
        self._totals = totals
        self._dimensions = dimensions
        self._offset_minutes = offset_minutes

    @classmethod
    def build(
        cls, messages: pd.DataFrame, dimensions: Sequence[str] = (), offset_minutes: int = 0
    ) -> Rollups:
        """Rollups of every message of a canonical frame (one row per id), keyed also by
        the ``dimensions`` columns, hours starting ``offset_minutes`` past UTC hours."""
        missing = [d for d in dimensions if d not in messages.columns]
        if missing:
            raise QueryError(f"no dimension column {missing} in the messages frame")
        if not 0 <= offset_minutes < 60:
            raise QueryError(f"offset_minutes is {offset_minutes}: give 0 to 59")
        dimensions, offset = tuple(dimensions), offset_minutes * 60_000_000_000
        rows = _Rows.of(messages, offset)
        handoffs, threads = _handoff_rows(_replies(rows), offset)
        keys = (*KEY_COLUMNS, *dimensions)
        return cls(
            _rows_to_buckets(rows, keys),
            handoffs,
            _id_rows(rows),
            threads,
            _latency_rows(rows, keys),
            dimensions,
            offset_minutes,
        )

    @property
    def dimensions(self) -> tuple[str, ...]:
        """The dimension columns that key the buckets besides ``KEY_COLUMNS``."""
        return self._dimensions

    @property
    def offset_minutes(self) -> int:
        """Minutes past each UTC hour at which the buckets start."""
        return self._offset_minutes

    @property
    def hours(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """Start of the first and of the last hour that has a message; None when empty."""
        hour = self._buckets.cells["hour"]
        if hour.empty:
            return None
        return pd.Timestamp(hour.min(), tz="UTC"), pd.Timestamp(hour.max(), tz="UTC")

    @property
    def nbytes(self) -> int:
        """Approximate memory held, in bytes."""
        frames = [self._buckets.cells, self._handoffs, self._ids, self._threads]
        if isinstance(self._totals, pd.DataFrame):
            frames.append(self._totals)
        held = sum(int(f.memory_usage(deep=True).sum()) for f in frames if f is not None)
        buckets = self._buckets
        runs = (buckets.latencies, buckets.conversations, buckets.users)
        held += sum(r.offsets.nbytes + r.values.nbytes for r in runs)
        # A KLL sketch holds its retained items as doubles and a few dozen bytes besides.
        sketches = [s for s in buckets.sketches if s is not None]
        return held + sum(8 * s.num_retained + 64 for s in sketches)

    @property
    def table(self) -> pd.DataFrame:
        """One row per bucket: ``hour``, the key columns, ``messages, replies, failed,
        tokens_in, tokens_out, priced, cost_usd, unpriced, latency_count``, ``first`` and
        ``last`` message time, and the distinct ``conversations`` and ``users``."""
        table = self._buckets.cells.copy()
        for name in ("hour", "first", "last"):
            table[name] = pd.to_datetime(table[name].to_numpy(), unit="ns", utc=True)
        table["conversations"] = self._buckets.conversations.sizes
        table["users"] = self._buckets.users.sizes
        return table

    def merge(self, other: Rollups) -> Rollups:
        """Rollups of the messages of both, which must be different messages (other
        partitions or other times) keyed alike.

        A hand-off between a reply of one and a later reply of the other is in neither.
        """
        if (self._dimensions, self._offset_minutes) != (other._dimensions, other._offset_minutes):
            raise QueryError(
                "rollups keyed differently cannot be merged: dimensions "
                f"{self._dimensions} / {other._dimensions}, offset_minutes "
                f"{self._offset_minutes} / {other._offset_minutes}"
            )
        buckets = _combine([self._buckets, other._buckets], self._keys)
        handoffs = pd.concat([self._handoffs, other._handoffs], ignore_index=True)
        ids = threads = None
        if self._ids is not None and other._ids is not None:
            if _isin(other._ids["id"].to_numpy(), self._ids["id"].to_numpy()).any():
                raise QueryError("both rollups count some of the same messages: merge others")
            ids = _insert(self._ids, other._ids, "id")
            threads = self._merged_threads(other)
        totals = pd.concat([self._latency_totals(), other._latency_totals()], ignore_index=True)
        return Rollups(
            buckets, handoffs, ids, threads, totals, self._dimensions, self._offset_minutes
        )

    def apply(self, changed: pd.DataFrame, gone: Sequence[str], reread: _Reread) -> Rollups:
        """These rollups after a batch of the change feed; equal to ``build`` of the source's
        rows afterwards (sketches made of the same latencies).

        ``changed``: canonical rows upserted since (a later row of the same id replaces an
        earlier one); ``gone``: ids removed (an id both changed and gone is gone).
        ``reread(start, end)`` returns the source's rows, as they are now, with ``start <=
        timestamp < end``. New messages are counted directly. Read again and rebuilt: the
        hours where a message counted already was or now is, and every hour from the first
        to the last reply of each conversation where such a message was, or where a new
        reply arrived no later than its last one (hand-offs depend on the order of replies).
        """
        ids, threads = self._index()
        offset = self._offset
        gone_ids = _hash(pd.Series(list(gone), dtype=object))
        rows = _Rows.of(changed, offset)
        latest = ~pd.Series(rows.id).duplicated(keep="last").to_numpy()
        rows = rows[latest & ~_isin(rows.id, gone_ids)]

        known, at = _find(ids["id"].to_numpy(), rows.id)
        found_gone, at_gone = _find(ids["id"].to_numpy(), gone_ids)
        before = np.r_[at[known], at_gone[found_gone]]
        dirty = np.r_[ids["hour"].to_numpy()[before], rows.hour[known]]
        affected = np.r_[ids["conversation"].to_numpy()[before], rows.conversation[known]]

        new = rows[~known]
        new_replies = _replies(new)
        found, at = _find(
            threads["conversation"].to_numpy(), new_replies["conversation"].to_numpy()
        )
        last_reply = np.full(len(new_replies), np.iinfo(np.int64).min)
        last_reply[found] = threads["last"].to_numpy()[at[found]]
        late = new_replies["time"].to_numpy() <= last_reply
        affected = np.unique(np.r_[affected, new_replies["conversation"].to_numpy()[late]])
        span_found, span_at = _find(threads["conversation"].to_numpy(), affected)
        spans = threads.iloc[span_at[span_found]]
        hours = np.unique(
            np.r_[
                dirty,
                _hours_between(spans["first"].to_numpy(), spans["last"].to_numpy(), offset),
                rows.hour[_isin(rows.conversation, affected)],
            ]
        )
        reread_frames = [reread(start, end) for start, end in _stretches(hours)]
        read = _Rows.of(pd.concat([changed.iloc[:0], *reread_frames], ignore_index=True), offset)
        # Only rows of the hours asked for, whatever the reader's bounds.
        read = read[_isin(read.hour, hours)]

        new = new[~_isin(new.hour, hours)]
        buckets = self._rebuilt(hours, read, new)
        ids = self._reindexed(ids, np.r_[rows.id, gone_ids], read, new)
        handoffs, threads = self._rethreaded(threads, affected, read, new_replies)
        totals = self._retotalled(hours, read, new)
        return Rollups(
            buckets, handoffs, ids, threads, totals, self._dimensions, self._offset_minutes
        )

    def select(
        self,
        start: pd.Timestamp | str,
        end: pd.Timestamp | str,
        *,
        agents: Sequence[str | None] | None = None,
        statuses: Sequence[str | None] | None = None,
        roles: Sequence[str | None] | None = None,
        models: Sequence[str | None] | None = None,
        dimensions: Mapping[str, Sequence[str | None]] | None = None,
    ) -> Rollups:
        """The buckets whose hour starts in ``[start's hour, end)`` and whose key values are
        among those given (None: any; a None or NaN in a list: missing). A selection
        answers questions; it cannot ``apply`` changes."""
        unknown = sorted(set(dimensions or {}) - set(self._dimensions))
        if unknown:
            raise QueryError(f"no dimension {unknown} in these rollups: {self._dimensions}")
        low, high = int(_floor_hour(np.array(_instant(start)), self._offset)), _instant(end)
        cells = self._buckets.cells
        hour = cells["hour"].to_numpy()
        mask = (hour >= low) & (hour < high)
        wanted = {"agent_id": agents, "status": statuses, "role": roles, "model": models}
        for column, values in (wanted | dict(dimensions or {})).items():
            if values is not None:
                mask &= _among(cells[column], values)
        handoffs = self._handoffs
        kept = handoffs["hour"].between(low, high, inclusive="left").to_numpy()
        if agents is not None:
            kept = kept & _among(handoffs["source"], agents) & _among(handoffs["target"], agents)
        buckets = self._buckets.take(np.flatnonzero(mask))
        # Worked out when first asked for (reports ask; the dashboard's views do not), from
        # the totals alone: a selection kept does not keep the rollups it came from.
        parent, keys = self._totals, list(self._keys)

        @functools.cache
        def totals() -> pd.DataFrame:
            table = parent if isinstance(parent, pd.DataFrame) else parent()
            selected = buckets.cells
            wanted = _cell_hashes(selected["hour"].to_numpy(), selected[keys])
            return table[_isin(table["cell"].to_numpy(), wanted)].reset_index(drop=True)

        return Rollups(
            buckets,
            handoffs[kept].reset_index(drop=True),
            None,
            None,
            totals,
            self._dimensions,
            self._offset_minutes,
        )

    def to_bytes(self) -> bytes:
        """Everything these rollups hold, as bytes for :meth:`from_bytes` (Arrow IPC)."""
        buckets = self._buckets
        cells = _arrow(buckets.cells)
        for name in _RUNS:
            held = getattr(buckets, name)
            cells = cells.append_column(
                name, pa.LargeListArray.from_arrays(pa.array(held.offsets), pa.array(held.values))
            )
        serialized = [None if s is None else s.serialize() for s in buckets.sketches]
        cells = cells.append_column("sketch", pa.array(serialized, type=pa.large_binary()))
        frames = [self._handoffs, self._ids, self._threads, self._latency_totals()]
        tables = [cells, *(None if f is None else _arrow(f) for f in frames)]
        header = {
            "dimensions": list(self._dimensions),
            "offset_minutes": self._offset_minutes,
            "tables": [t is not None for t in tables],
        }
        chunks = [json.dumps(header).encode(), *(_ipc(t) for t in tables if t is not None)]
        # One copy of the IPC buffers, into the bytes returned.
        sized = [part for chunk in chunks for part in (struct.pack("<Q", len(chunk)), chunk)]
        return b"".join([_MAGIC, struct.pack("<I", FORMAT_VERSION), *sized])

    @classmethod
    def from_bytes(cls, data: bytes) -> Rollups:
        """The rollups :meth:`to_bytes` wrote; RollupsFormatError for bytes of another
        format version or not rollups at all."""
        view = memoryview(data)
        if bytes(view[: len(_MAGIC)]) != _MAGIC:
            raise RollupsFormatError("these bytes are not rollups: rebuild them from messages")
        (version,) = struct.unpack_from("<I", view, len(_MAGIC))
        if version != FORMAT_VERSION:
            raise RollupsFormatError(
                f"rollups stored in format {version}, this release reads format "
                f"{FORMAT_VERSION}: rebuild them from messages"
            )
        chunks = _unsized(view[len(_MAGIC) + 4 :])
        header = json.loads(bytes(next(chunks)))
        tables = [
            pa.ipc.open_stream(pa.py_buffer(next(chunks))).read_all() if held else None
            for held in header["tables"]
        ]
        cells_table = tables[0]
        assert cells_table is not None
        runs = [_list_to_runs(cells_table.column(n)) for n in _RUNS]
        serialized = cells_table.column("sketch").to_pylist()
        sketches = np.empty(len(serialized), dtype=object)
        sketches[:] = [None if b is None else kll_doubles_sketch.deserialize(b) for b in serialized]
        cells = cells_table.drop_columns([*_RUNS, "sketch"]).to_pandas()
        frames = [None if t is None else t.to_pandas() for t in tables[1:]]
        handoffs, ids, threads, totals = frames
        assert handoffs is not None and totals is not None
        return cls(
            _Buckets(cells, runs[0], sketches, *runs[1:]),
            handoffs,
            ids,
            threads,
            totals.astype(_TOTALS_DTYPES),
            tuple(header["dimensions"]),
            header["offset_minutes"],
        )

    def kpis(self) -> metrics.Kpis:
        """``metrics.kpis`` of the messages counted; percentiles from all their latencies and
        sketches pooled (the same answer every time)."""
        cells = self._buckets.cells
        (items,) = _group_items(self._buckets, np.zeros(len(cells), np.intp), 1)
        p50, p95, p99 = _weighted_quantiles(items, [p / 100 for p in metrics.LATENCY_PERCENTILES])
        replies, failed = int(cells["replies"].sum()), int(cells["failed"].sum())
        return metrics.Kpis(
            messages=int(cells["messages"].sum()),
            conversations=self._buckets.conversations.distinct(),
            active_agents=int(cells["agent_id"].nunique()),
            error_rate=failed / replies if replies else np.nan,
            latency_p50=p50,
            latency_p95=p95,
            latency_p99=p99,
            tokens_in=int(cells["tokens_in"].sum()),
            tokens_out=int(cells["tokens_out"].sum()),
            cost_usd=float(cells["cost_usd"].sum()),
            unpriced_messages=int(cells["unpriced"].sum()),
        )

    def coverage(self, start: pd.Timestamp, end: pd.Timestamp) -> float:
        """``metrics.coverage``, from the time of the first message counted."""
        first = self._buckets.cells["first"].to_numpy()
        return metrics.coverage(pd.DataFrame({"timestamp": _utc(first)}), start, end)

    def volume_series(
        self, interval: str, by: str | None = "status", tz: str = "UTC"
    ) -> pd.DataFrame:
        """``metrics.volume_series``; ``by`` a key column (or None)."""
        cells = self._buckets.cells
        labels, bins = self._bins(interval, tz)
        categories, columns = metrics.categorise(cells, self._key(by), "messages")
        weights = cells["messages"].to_numpy(dtype="float64")
        table = metrics.tabulate(labels, bins, categories, columns, weights=weights)
        return table.astype("int64")

    def cost_series(self, interval: str, by: str | None = "model", tz: str = "UTC") -> pd.DataFrame:
        """``metrics.cost_series``; ``by`` a key column (or None)."""
        cells = self._buckets.cells
        labels, bins = self._bins(interval, tz)
        priced = cells["priced"].to_numpy() > 0
        categories, columns = metrics.categorise(cells[priced], self._key(by), "cost_usd")
        weights = cells["cost_usd"].to_numpy()[priced]
        return metrics.tabulate(labels, bins[priced], categories, columns, weights=weights)

    def error_rate_series(
        self, interval: str, by: str | None = "agent_id", tz: str = "UTC"
    ) -> pd.DataFrame:
        """``metrics.error_rate_series``; ``by`` a key column (or None)."""
        cells = self._buckets.cells
        labels, bins = self._bins(interval, tz)
        replied = cells["replies"].to_numpy() > 0
        categories, columns = metrics.categorise(cells[replied], self._key(by), "error_rate")
        tables = [
            metrics.tabulate(
                labels, bins[replied], categories, columns, weights=cells[name].to_numpy()[replied]
            )
            for name in ("failed", "replies")
        ]
        errors, replies = tables
        return errors / replies.where(replies > 0)

    def latency_series(
        self,
        interval: str,
        percentiles: Sequence[float] = metrics.LATENCY_PERCENTILES,
        tz: str = "UTC",
    ) -> pd.DataFrame:
        """``metrics.latency_series``: percentiles from each bin's latencies and sketches pooled
        (module doc), exact ``count``."""
        labels, bins = self._bins(interval, tz)
        pooled = _group_items(self._buckets, bins, len(labels))
        ranks = [p / 100 for p in percentiles]
        values = np.array([_weighted_quantiles(i, ranks) for i in pooled]).reshape(-1, len(ranks))
        table = pd.DataFrame(values, columns=pd.Index([f"p{p:g}" for p in percentiles]))
        counts = self._buckets.cells["latency_count"].to_numpy()
        table["count"] = np.bincount(bins, weights=counts, minlength=len(labels)).astype("int64")
        return table.set_axis(labels)

    def per_agent(self, agents: pd.DataFrame | None = None) -> pd.DataFrame:
        """``metrics.per_agent``; ``latency_p50`` and ``latency_p95`` from sketches."""
        attributed = np.flatnonzero(self._buckets.cells["agent_id"].notna().to_numpy())
        buckets = self._buckets.take(attributed)
        cells = buckets.cells
        groups, names = pd.factorize(cells["agent_id"], sort=True)
        n = len(names)

        def total(name: str) -> np.ndarray:
            return _total(cells[name], groups, n)

        pooled = _group_items(buckets, groups, n)
        p50, p95 = np.array([_weighted_quantiles(i, [0.5, 0.95]) for i in pooled]).reshape(-1, 2).T
        last = pd.Series(cells["last"].to_numpy()).groupby(groups).max()
        replies = total("replies")
        stats = pd.DataFrame(
            {
                "messages": total("messages"),
                "conversations": buckets.conversations.regroup(groups, n, distinct=True).sizes,
                "error_rate": total("failed") / np.where(replies > 0, replies, np.nan),
                "latency_p50": p50,
                "latency_p95": p95,
                "tokens_in": total("tokens_in"),
                "tokens_out": total("tokens_out"),
                "cost_usd": total("cost_usd"),
                "last_message": pd.to_datetime(last.reindex(range(n)).to_numpy(), utc=True),
            },
            index=pd.Index(names, name="agent_id"),
        )
        return metrics.agent_table(stats, agents)

    def breakdown(self, by: str) -> pd.DataFrame:
        """``metrics.breakdown`` by a key column."""
        buckets = self._buckets
        cells = buckets.cells
        groups, values = pd.factorize(cells[self._key(by)].fillna(metrics.MISSING_LABEL), sort=True)
        n = len(values)

        def total(name: str) -> np.ndarray:
            return _total(cells[name], groups, n)

        replies = total("replies")
        table = pd.DataFrame(
            {
                "messages": total("messages"),
                "conversations": buckets.conversations.regroup(groups, n, distinct=True).sizes,
                "error_rate": total("failed") / np.where(replies > 0, replies, np.nan),
                "tokens_in": total("tokens_in"),
                "tokens_out": total("tokens_out"),
                "cost_usd": total("cost_usd"),
                "unpriced_messages": total("unpriced"),
            },
            index=pd.Index(values, name=by),
        )
        return metrics.breakdown_table(table, by)

    def top_errors(self, n: int = 10) -> pd.DataFrame:
        """``metrics.top_errors``, exactly: a bucket's messages share agent, status and role,
        so a bucket of failed replies holds nothing else and its ``last`` is theirs."""
        table = self.table
        failed = table[table["failed"].to_numpy() > 0]
        grouped = (
            failed.groupby(["agent_id", "status"], dropna=False)
            .agg(count=("failed", "sum"), last_seen=("last", "max"))
            .reset_index()
        )
        grouped["count"] = grouped["count"].astype("int64")
        return grouped.sort_values(
            ["count", "last_seen"], ascending=[False, False], ignore_index=True
        ).head(n)

    def last_message(self) -> pd.Timestamp | None:
        """The time of the latest message counted (None: there is none)."""
        last = self._buckets.cells["last"]
        return pd.Timestamp(int(last.max()), tz="UTC") if len(last) else None

    def latency_ranking(self) -> pd.DataFrame:
        """The conversations by the total latency of the replies counted here, largest
        first (ties by hash): ``conversation`` (its :func:`conversation_hashes`),
        ``latency_total_ms``, and ``first``, the time of the first of those replies (where
        to find the conversation's id).  Conversations without latency are left out.

        Sums are exact for the hours counted; as latencies are not negative, a
        conversation's total over a part of them (a window not of whole hours) is at most
        this, which bounds a search for the slowest conversations of such a window.
        """
        table = self._latency_totals()
        ranked = table.groupby("conversation", as_index=False).agg(
            latency_total_ms=("latency_ms", "sum"), first=("first", "min")
        )
        ranked = ranked[ranked["latency_total_ms"].to_numpy() > 0]
        ranked = ranked.sort_values(
            ["latency_total_ms", "conversation"], ascending=[False, True], ignore_index=True
        )
        ranked["first"] = pd.to_datetime(ranked["first"].to_numpy(), unit="ns", utc=True)
        return ranked

    def unpriced_models(self) -> pd.Series:
        """``metrics.unpriced_models``."""
        cells = self._buckets.cells
        unpriced = cells[cells["unpriced"].to_numpy() > 0]
        counts = unpriced.groupby("model")["unpriced"].sum().astype("int64")
        return counts.sort_values(ascending=False, kind="stable").rename("messages")

    def handoffs(self) -> pd.DataFrame:
        """``metrics.handoffs`` of the hand-offs whose later reply is counted (module doc)."""
        return metrics.handoff_table(self._handoffs[["source", "target"]])

    def latency_distribution(self, bins: int = 50, log: bool = False) -> pd.DataFrame:
        """``metrics.latency_distribution`` of the latencies one sketch of them all retains,
        each weighing what it stands for: approximate past ``SKETCH_K`` latencies."""
        buckets = self._buckets
        ((values, weights),) = _group_items(buckets, np.zeros(len(buckets.sketches), np.intp), 1)
        return metrics.latency_histogram(values, bins, log, weights=weights)

    def latency_ecdf(self, by: str | None = None) -> pd.DataFrame:
        """``metrics.latency_ecdf`` from the latencies a sketch of each value of ``by`` (a key
        column) retains: approximate past ``SKETCH_K`` latencies a value."""
        cells = self._buckets.cells
        if by is None:
            groups, names = np.zeros(len(cells), np.intp), pd.Index([None])
        else:
            groups, names = pd.factorize(cells[self._key(by)], sort=True)
        valued = np.flatnonzero(groups >= 0)
        items = _group_items(self._buckets.take(valued), groups[valued], len(names))
        latency = np.concatenate([values for values, _ in items] or [np.empty(0)])
        weights = np.concatenate([w for _, w in items] or [np.empty(0)])
        frame = pd.DataFrame({"latency_ms": latency})
        keys = [] if by is None else [by]
        if by is not None:
            label = np.repeat(np.arange(len(names)), [len(v) for v, _ in items])
            frame.insert(0, by, pd.Series(names.take(label), dtype="str"))
        # The exact extremes weigh nothing: they bound a histogram, they are no latencies.
        counted = weights > 0
        return metrics.ecdf_table(frame[counted], keys, weights[counted])

    @property
    def _keys(self) -> tuple[str, ...]:
        return (*KEY_COLUMNS, *self._dimensions)

    @property
    def _offset(self) -> int:
        return self._offset_minutes * 60_000_000_000

    def _key(self, by: str | None) -> str | None:
        if by is not None and by not in self._keys:
            raise QueryError(
                f"rollups are keyed by {', '.join(self._keys)}; {by!r} is not one of them: "
                "read the rows for it, or build the rollups with it as a dimension"
            )
        return by

    def _bins(self, interval: str, tz: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
        """``metrics.time_bins`` of the buckets' hours, refusing bins that would cut one."""
        width = pd.Timedelta(interval)
        if width < pd.Timedelta(hours=1) or width % pd.Timedelta(hours=1):
            raise QueryError(
                f"interval {interval!r} is not a whole number of hours: rollups answer 1h or "
                "coarser; read the rows for finer bins"
            )
        hours = _utc(self._buckets.cells["hour"].to_numpy())
        labels, bins = metrics.time_bins(hours, interval, tz)
        if ((labels.asi8 - self._offset) % _HOUR).any():
            raise QueryError(
                f"time zone {tz!r} does not start its hours {self._offset_minutes} minutes "
                "past UTC hours as these rollups do: build them with offset_minutes set to "
                "the zone's minutes past the hour"
            )
        return labels, bins

    def _latency_totals(self) -> pd.DataFrame:
        return self._totals if isinstance(self._totals, pd.DataFrame) else self._totals()

    def _retotalled(self, hours: np.ndarray, read: _Rows, new: _Rows) -> pd.DataFrame:
        """The latency totals with ``hours`` made again from ``read`` and ``new`` rows
        (outside ``hours``) added."""
        totals, keys = self._latency_totals(), self._keys
        totals = totals[~_isin(_floor_hour(totals["first"].to_numpy(), self._offset), hours)]
        touched = _isin(_floor_hour(totals["first"].to_numpy(), self._offset), new.hour)
        added = _summed_totals(pd.concat([totals[touched], _latency_rows(new, keys)]))
        return pd.concat([totals[~touched], added, _latency_rows(read, keys)], ignore_index=True)

    def _index(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self._ids is None or self._threads is None:
            raise QueryError("a selection of rollups cannot apply changes: apply them first")
        return self._ids, self._threads

    def _rebuilt(self, hours: np.ndarray, read: _Rows, new: _Rows) -> _Buckets:
        """The buckets with ``hours`` made again from ``read`` and ``new`` rows (outside
        ``hours``) added."""
        buckets, keys = self._buckets, self._keys
        hour = buckets.cells["hour"].to_numpy()
        kept = ~_isin(hour, hours)
        touched = kept & _isin(hour, new.hour)
        added = _combine([buckets.take(np.flatnonzero(touched)), _rows_to_buckets(new, keys)], keys)
        parts = [buckets.take(np.flatnonzero(kept & ~touched)), added]
        return _Buckets.concat([*parts, _rows_to_buckets(read, keys)]).by_hour()

    def _reindexed(
        self, ids: pd.DataFrame, dropped: np.ndarray, read: _Rows, new: _Rows
    ) -> pd.DataFrame:
        """The id index without ``dropped`` and ``read`` ids, then with ``read`` and ``new``."""
        found, at = _find(ids["id"].to_numpy(), np.r_[dropped, read.id])
        keep = np.ones(len(ids), dtype=bool)
        keep[at[found]] = False
        rows = pd.concat([_id_rows(read), _id_rows(new)])
        return _insert(ids[keep].reset_index(drop=True), rows, "id")

    def _rethreaded(
        self,
        threads: pd.DataFrame,
        affected: np.ndarray,
        read: _Rows,
        new_replies: pd.DataFrame,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Hand-offs and threads with the ``affected`` conversations made again from ``read``
        and new replies of the others following on from their last reply."""
        offset = self._offset
        handoffs = self._handoffs
        handoffs = handoffs[~_isin(handoffs["conversation"].to_numpy(), affected)]
        replies = _replies(read)
        redone, redone_threads = _handoff_rows(
            replies[_isin(replies["conversation"].to_numpy(), affected)], offset
        )
        following = new_replies[~_isin(new_replies["conversation"].to_numpy(), affected)]
        conversations = np.unique(following["conversation"].to_numpy())
        found, at = _find(threads["conversation"].to_numpy(), conversations)
        previous = threads.iloc[at[found]]
        lead = pd.DataFrame(
            {
                "conversation": previous["conversation"].to_numpy(),
                "time": previous["last"].to_numpy(),
                "tie": np.zeros(len(previous), dtype=np.uint64),
                "agent": previous["agent"].to_numpy(),
            }
        )
        added, added_threads = _handoff_rows(pd.concat([lead, following]), offset)
        # A thread that goes on began where it began, not at the last reply it went on from.
        began, at_began = _find(
            previous["conversation"].to_numpy(), added_threads["conversation"].to_numpy()
        )
        added_threads.loc[began, "first"] = previous["first"].to_numpy()[at_began[began]]
        replaced = np.r_[affected, conversations]
        threads = threads[~_isin(threads["conversation"].to_numpy(), replaced)]
        threads = _insert(
            threads.reset_index(drop=True),
            pd.concat([redone_threads, added_threads]),
            "conversation",
        )
        handoffs = pd.concat([handoffs, redone, added], ignore_index=True)
        return handoffs, threads

    def _merged_threads(self, other: Rollups) -> pd.DataFrame:
        """Threads of both: a conversation in both runs from the earlier first reply to the
        later last one."""
        assert self._threads is not None and other._threads is not None
        both = pd.concat([self._threads, other._threads], ignore_index=True)
        both = both.sort_values(["conversation", "last"], kind="stable")
        first = both.groupby("conversation")["first"].min()
        merged = both.drop_duplicates("conversation", keep="last").reset_index(drop=True)
        merged["first"] = first.to_numpy()
        return merged


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _unsized(view: memoryview) -> Iterator[memoryview]:
    while len(view):
        (size,) = struct.unpack_from("<Q", view)
        yield view[8 : 8 + size]
        view = view[8 + size :]


def _ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _list_to_runs(column: pa.ChunkedArray) -> _Ragged:
    lists = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    offsets = lists.offsets.to_numpy()
    values = lists.values.to_numpy()
    return _Ragged(offsets - offsets[0], values[offsets[0] : offsets[-1]])
