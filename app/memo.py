"""Metrics computed once per process, whatever the number of sessions asking.

Every session has its own pipelines, but sessions with the same filters ask the
same questions of the same live frame.  :func:`memo` answers each question once
per data version: the key is the function, its arguments and, for each frame
argument, the pipeline's question (its *lineage*, see
:meth:`~pipelines.pipeline.Pipeline.question`) and the version of the live frame
it reads.  A lineage keeps only its latest version, so the memo holds
what the open sessions look at now, bounded by entries and by bytes::

    kpis = memo(metrics.kpis, current(messages))
    volume = memo(metrics.volume_series, current(messages), "5min", by="status", tz="UTC")

Arguments read from a pipeline (:func:`current`, :func:`previous`, :func:`span`,
:func:`as_of`) are read only when the memo misses.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd

from pipelines.pipeline import MessagesPipeline, Pipeline

T = TypeVar("T")


@dataclass(frozen=True)
class Input:
    """Something read from a pipeline, as a memo argument: compared by lineage and
    version, read only on a miss."""

    lineage: tuple[Hashable, ...]
    version: tuple[Hashable, ...]
    read: Callable[[], Any] = field(compare=False, repr=False)


def _input(pipeline: Pipeline, part: str, read: Callable[[], Any]) -> Input:
    lineage = (part, pipeline.data.key(pipeline.spec()), pipeline.question())
    # as_of tells apart two live frames of one store whose version counters happen to agree.
    return Input(lineage, pipeline.data_version(), read)


def current(pipeline: Pipeline) -> Input:
    """The pipeline's frame (for messages: the window)."""
    return _input(pipeline, "current", lambda: pipeline.frame)


def previous(pipeline: MessagesPipeline) -> Input:
    """The period of the same length just before the window."""
    return _input(pipeline, "previous", lambda: pipeline.previous_frame)


def answers(pipeline: MessagesPipeline, period: str = "current") -> Input:
    """The metrics of the window or of the period before it (``"previous"``): from rows,
    or from the rollups for a long window (:meth:`MessagesPipeline.answers`)."""
    return _input(pipeline, f"answers-{period}", lambda: pipeline.answers(period))


def span(pipeline: MessagesPipeline) -> Input:
    """The previous period and the window together, oldest first."""
    return _input(
        pipeline,
        "span",
        lambda: pd.concat([pipeline.previous_frame, pipeline.frame], ignore_index=True),
    )


def as_of(pipeline: Pipeline) -> Input:
    """The time of the pipeline's data, as a ``pd.Timestamp``."""
    return _input(pipeline, "as_of", lambda: pd.Timestamp(pipeline.as_of))


def _size(value: Any) -> int:
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(index=True).sum())
    if isinstance(value, pd.Series):
        return int(value.memory_usage(index=True))
    return 0


@dataclass
class MemoStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0


class Memo:
    """A thread-safe LRU of computations, one entry per lineage, single flight per key."""

    def __init__(self, max_entries: int = 256, max_bytes: int = 512 * 2**20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.stats = MemoStats()
        self._entries: OrderedDict[Hashable, tuple[Hashable, Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _lookup(self, lineage: Hashable, version: Hashable) -> tuple[bool, Any]:
        with self._lock:
            entry = self._entries.get(lineage)
            if entry is None or entry[0] != version:
                return False, None
            self._entries.move_to_end(lineage)
            self.stats.hits += 1
            return True, entry[1]

    def get(self, lineage: Hashable, version: Hashable, compute: Callable[[], T]) -> T:
        """The value for ``lineage`` at ``version``; ``compute()`` once when missing."""
        found, value = self._lookup(lineage, version)
        if found:
            return value
        with self._lock:
            flight = self._computing.setdefault(lineage, threading.Lock())
        with flight:
            # Another thread may have computed it while this one waited.
            found, value = self._lookup(lineage, version)
            if found:
                return value
            value = compute()
            self._store(lineage, version, value)
        with self._lock:
            self._computing.pop(lineage, None)
        return value

    def _store(self, lineage: Hashable, version: Hashable, value: Any) -> None:
        size = _size(value)
        with self._lock:
            self.stats.misses += 1
            old = self._entries.pop(lineage, None)
            if old is not None:
                self._bytes -= old[2]
            self._entries[lineage] = (version, value, size)
            self._bytes += size
            while len(self._entries) > 1 and (
                len(self._entries) > self.max_entries or self._bytes > self.max_bytes
            ):
                _, (_, _, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted
                self.stats.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


MEMO = Memo()
"""The process-wide memo every view shares."""


def memo(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` computed once per process for these data and arguments.

    :class:`Input` arguments are read only on a miss; every other argument
    must be hashable and is part of the key.
    """
    inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, Input)]
    lineage = (
        fn.__module__,
        fn.__qualname__,
        tuple(a.lineage if isinstance(a, Input) else a for a in args),
        tuple(sorted((k, v.lineage if isinstance(v, Input) else v) for k, v in kwargs.items())),
    )
    version = tuple(i.version for i in inputs)

    def compute() -> T:
        return fn(
            *(a.read() if isinstance(a, Input) else a for a in args),
            **{k: v.read() if isinstance(v, Input) else v for k, v in kwargs.items()},
        )

    return MEMO.get(lineage, version, compute)
