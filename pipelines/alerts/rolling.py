"""A rule's metric over rolling windows ``[t - over, t]`` (both ends inclusive, as
:func:`pipelines.metrics.trim_window` cuts them) ending at given instants ``t``.

One definition serves the live evaluation (one instant) and the backtest (every step of a
month): the messages sorted by time, each window's first and last row found by
``searchsorted``; counts and sums read off cumulative sums; percentiles and distinct
counts computed on every window's rows at once, laid out as the rows of a matrix (in
chunks of bounded size).  Each number is the one :func:`pipelines.metrics.kpis` gives
for the messages of that window (the tests hold it to that).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from pipelines.alerts.rules import Rule
from pipelines.metrics import FAILED_STATUSES, LATENCY_PERCENTILES, REPLY_ROLE

_PERCENTILES = {f"latency_p{p}": p for p in LATENCY_PERCENTILES}
_DISTINCT = {"conversations": "conversation_id", "active_agents": "agent_id"}
CELLS = 1 << 22
"""Cells of a chunk of windows laid out as rows (about 32 MB of floats)."""
WIDE = 256
"""Windows of more rows than this get a percentile each: sorting rows of a matrix costs
more than numpy's selection on each, and the call's overhead no longer counts."""


def series(rule: Rule, messages: pd.DataFrame, times: pd.DatetimeIndex) -> np.ndarray:
    """The rule's metric over ``[t - over, t]`` for each ``t`` of ``times``, for
    ``messages`` already scoped, as :func:`pipelines.metrics.kpis` defines it: NaN where
    it is undefined (no reply, no latency)."""
    no_groups = np.zeros(len(messages), dtype="int64")
    return _series(rule, messages, no_groups, 1, times)[0]


def series_by(
    rule: Rule, messages: pd.DataFrame, keys: pd.Series, times: pd.DatetimeIndex
) -> dict[str, np.ndarray]:
    """:func:`series` for the messages of each value of ``keys`` (their group), at once."""
    codes, groups = pd.factorize(keys, sort=True)
    values = _series(rule, messages, codes.astype("int64"), len(groups), times)
    return {str(group): values[i] for i, group in enumerate(groups)}


def _series(
    rule: Rule, messages: pd.DataFrame, codes: np.ndarray, groups: int, times: pd.DatetimeIndex
) -> np.ndarray:
    """The metric for each group (``codes`` numbers each row's) and time, as a
    groups x times array.  The rows sorted by group then time, each group's windows are
    found in its own block of rows; every computation after that runs on all of them."""
    inputs = _inputs(rule.metric, messages)
    stamps = pd.DatetimeIndex(messages["timestamp"]).as_unit("ns").asi8
    in_order = (codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & (stamps[1:] >= stamps[:-1]))
    if not bool(in_order.all()):  # a live frame, or several groups
        order = np.lexsort((stamps, codes))
        stamps, codes = stamps[order], codes[order]
        inputs = {name: values[order] for name, values in inputs.items()}
    ends = times.as_unit("ns").asi8
    starts = ends - pd.Timedelta(rule.over).value
    blocks = codes.searchsorted(np.arange(groups + 1))
    lo = np.empty((groups, len(ends)), dtype="int64")
    hi = np.empty((groups, len(ends)), dtype="int64")
    for group in range(groups):
        block = stamps[blocks[group] : blocks[group + 1]]
        lo[group] = blocks[group] + block.searchsorted(starts, side="left")
        hi[group] = blocks[group] + block.searchsorted(ends, side="right")
    return _metric(rule.metric, inputs, lo.ravel(), hi.ravel()).reshape(groups, len(ends))


def _inputs(metric: str, messages: pd.DataFrame) -> dict[str, np.ndarray]:
    """What the metric is computed from, one value a message, as numpy arrays."""
    if metric == "messages":
        return {}
    if metric == "unpriced_messages":
        unpriced = messages["model"].notna() & messages["cost_usd"].isna()
        return {"weights": unpriced.to_numpy(dtype="int64")}
    if metric in ("tokens_in", "tokens_out", "cost_usd"):
        return {"weights": messages[metric].fillna(0).to_numpy(dtype="float64")}
    if metric in _DISTINCT:
        return {"codes": pd.factorize(messages[_DISTINCT[metric]])[0]}  # -1: missing
    is_reply = (messages["role"] == REPLY_ROLE).to_numpy(dtype=bool)
    if metric == "error_rate":
        failed = is_reply & messages["status"].isin(FAILED_STATUSES).to_numpy(dtype=bool)
        return {"replies": is_reply.astype("int64"), "failed": failed.astype("int64")}
    latency = messages["latency_ms"].to_numpy(dtype="float64", na_value=np.nan)
    return {"kept": is_reply & ~np.isnan(latency), "latency": latency}


def _metric(
    metric: str, inputs: dict[str, np.ndarray], lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """The metric of each window: rows ``lo[i]`` to ``hi[i]`` (excluded) of the inputs."""
    if metric == "messages":
        return (hi - lo).astype("float64")
    if "weights" in inputs:
        return _sums(inputs["weights"], lo, hi)
    if metric in _DISTINCT:
        return _distinct(inputs["codes"], lo, hi)
    if metric == "error_rate":
        replies = _sums(inputs["replies"], lo, hi)
        errors = _sums(inputs["failed"], lo, hi)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(replies > 0, errors / replies, np.nan)
    kept = inputs["kept"]
    before = np.concatenate([[0], np.cumsum(kept)])  # kept rows before each row
    latency = inputs["latency"][kept]
    return _percentiles(latency, before[lo], before[hi], _PERCENTILES[metric] / 100)


def _sums(weights: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    totals = np.concatenate([[0], np.cumsum(weights)])
    return (totals[hi] - totals[lo]).astype("float64")


def _chunks(counts: np.ndarray) -> list[tuple[slice, int]]:
    """Windows in chunks of at most about ``CELLS`` cells once laid out as rows, each with
    the width of its widest window."""
    per = max(1, CELLS // max(int(counts.max(initial=0)), 1))
    return [
        (slice(first, first + per), max(int(counts[first : first + per].max()), 1))
        for first in range(0, len(counts), per)
    ]


def _rows(values: np.ndarray, lo: np.ndarray, width: int, fill: float) -> np.ndarray:
    """``values[lo[i] : lo[i] + width]`` as row i, ``fill`` past the end of the values."""
    padded = np.concatenate([values, np.full(width, fill, dtype=values.dtype)])
    return sliding_window_view(padded, width)[lo]


def _percentiles(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, q: float) -> np.ndarray:
    """The ``q`` quantile of each window's values, by linear interpolation between order
    statistics as :func:`numpy.quantile` computes it; NaN for an empty window."""
    result = np.full(len(lo), np.nan)
    counts = hi - lo
    for i in np.flatnonzero(counts > WIDE).tolist():
        result[i] = np.quantile(values[lo[i] : hi[i]], q)
    narrow = np.flatnonzero((counts > 0) & (counts <= WIDE))
    for chunk, width in _chunks(counts[narrow]):
        where = narrow[chunk]
        n = counts[where]
        rows = _rows(values, lo[where], width, np.inf)
        # Past its window, a row holds other windows' values: they must sort after its own.
        rows[np.arange(width)[None, :] >= n[:, None]] = np.inf
        rows.sort(axis=1)
        index = (n - 1) * q
        below = np.floor(index).astype("int64")
        above = np.minimum(below + 1, n - 1)
        gamma = index - below
        a = rows[np.arange(len(n)), below]
        b = rows[np.arange(len(n)), above]
        # numpy's own lerp, from the nearer end: the same float as np.quantile gives.
        diff = b - a
        result[where] = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return result


def _distinct(codes: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Distinct keys in each window (``codes`` numbers each row's, -1 for a missing one):
    the rows whose previous row of the same key lies before the window's start (or that
    have none)."""
    previous = np.full(len(codes), -1, dtype="int64")
    order = np.argsort(codes, kind="stable")
    same = codes[order][1:] == codes[order][:-1]
    previous[order[1:][same]] = order[:-1][same]
    # A missing key counts for none: as if seen just before, in every window.
    seen_before = np.where(codes >= 0, previous, np.iinfo("int64").max).astype("float64")
    result = np.zeros(len(lo))
    counts = hi - lo
    for chunk, width in _chunks(counts):
        rows = _rows(seen_before, lo[chunk], width, np.inf)
        inside = np.arange(width)[None, :] < counts[chunk][:, None]
        result[chunk] = ((rows < lo[chunk][:, None]) & inside).sum(axis=1)
    return result
