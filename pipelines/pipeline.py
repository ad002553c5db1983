"""Param-driven pipelines: the user's question as parameters, frames as answers.

Usable anywhere Python runs::

    from pipelines import MessagesPipeline
    MessagesPipeline(window="24h").frame
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pandas as pd
import param

from pipelines.backend import Backend, FrameSpec, LiveFrame
from pipelines.errors import QueryError
from pipelines.schema import ROLES, STATUSES, TIME_FIELD
from pipelines.windows import WINDOWS, Window, check_tz


def _datetime(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day)


class Slices:
    """Frames cut from live frames, shared by every pipeline of the process.

    Sessions asking the same question (same filters, same window) get the same
    frame object instead of a copy each; bounded, least recently used out.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], tuple[pd.DataFrame, pd.DataFrame]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(
        self, source: pd.DataFrame, key: tuple[Any, ...], cut: Callable[[], pd.DataFrame]
    ) -> pd.DataFrame:
        # The entry keeps its source alive, so the source's id cannot be reused meanwhile.
        full_key = (id(source), *key)
        with self._lock:
            entry = self._entries.get(full_key)
            if entry is not None and entry[0] is source:
                self._entries.move_to_end(full_key)
                return entry[1]
        result = cut()
        with self._lock:
            self._entries[full_key] = (source, result)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return result


SLICES = Slices()


class TimeZone(param.String):
    """An IANA time zone name, refused when unknown."""

    def _validate_value(self, val: Any, allow_None: bool) -> None:
        super()._validate_value(val, allow_None)
        if val is not None:
            check_tz(val)


class Pipeline(param.Parameterized):
    """What every pipeline shares: the backend it reads and the display time zone."""

    backend = param.ClassSelector(
        class_=Backend,
        default=None,
        allow_None=True,
        precedence=-1,
        doc="Source, cache and live frames to read; the process-wide default when None.",
    )
    tz = TimeZone(
        default="UTC",
        doc="IANA time zone for time bins and display. Frames always hold UTC timestamps.",
    )
    version = param.Integer(
        default=0,
        bounds=(0, None),
        precedence=-1,
        constant=True,
        doc="Increases each time new data reaches this pipeline (watch it to redraw).",
    )

    _container = "messages"

    @property
    def data(self) -> Backend:
        if self.backend is None:
            with param.edit_constant(self):
                self.backend = Backend.default()
        return self.backend

    def spec(self) -> FrameSpec:
        return FrameSpec(self._container)

    @property
    def live(self) -> LiveFrame:
        return self.data.get(self.spec())

    @property
    def as_of(self) -> datetime:
        """The time the data was read at (the end of a relative window)."""
        return self.live.as_of

    @property
    def stale(self) -> bool:
        """True when the last refresh failed and the frame is the last good one."""
        return self.live.stale

    def refresh(self) -> int:
        """Read the changes since the last read; returns the number of changed rows."""
        before = self.live.version
        changed = 0

        def count(spec: FrameSpec, rows: pd.DataFrame, live: LiveFrame) -> None:
            nonlocal changed
            if spec == self.spec():
                changed += len(rows)

        unsubscribe = self.data.subscribe(count)
        try:
            self.data.refresh(self.spec())
        finally:
            unsubscribe()
        if self.live.version != before:
            self.sync()
        return changed

    def sync(self) -> int:
        """Take up data that another refresher already read; returns the new version."""
        live = self.live
        if live.version != self.version:
            with param.edit_constant(self):
                self.version = live.version
        return live.version

    def _select(self, frame: pd.DataFrame) -> pd.Series:
        return pd.Series(True, index=frame.index)

    def _filtered(self, frame: pd.DataFrame) -> pd.DataFrame:
        def cut() -> pd.DataFrame:
            mask = self._select(frame)
            return frame if bool(mask.all()) else frame.loc[mask].reset_index(drop=True)

        return SLICES.get(frame, (type(self).__name__, *self._key()), cut)

    def _key(self) -> tuple[Any, ...]:
        return ()

    @property
    def frame(self) -> pd.DataFrame:
        """The canonical frame for the current parameters."""
        return self._filtered(self.live.frame)


class MessagesPipeline(Pipeline):
    """Messages in a time window, filtered by agent, status, role and id search."""

    window: str = param.Selector(  # type: ignore[assignment]
        default="24h",
        objects=[*WINDOWS, "custom"],
        doc="Relative window ending at the time of the data; 'custom' uses start and end.",
    )
    start = param.Date(
        default=None, allow_None=True, doc="Start of a custom window (UTC if naive)."
    )
    end = param.Date(default=None, allow_None=True, doc="End of a custom window (UTC if naive).")
    agents = param.List(default=[], item_type=str, doc="Keep these agent ids (all when empty).")
    statuses = param.ListSelector(
        default=[], objects=list(STATUSES), doc="Keep these statuses (all when empty)."
    )
    roles = param.ListSelector(
        default=[], objects=list(ROLES), doc="Keep these roles (all when empty)."
    )
    search = param.String(
        default="", doc="Keep conversations or users whose id contains this text (any case)."
    )

    _container = "messages"

    def __init__(self, **params: Any) -> None:
        if ("start" in params or "end" in params) and "window" not in params:
            params["window"] = "custom"
        super().__init__(**params)
        self.window_spec.describe()  # refuse a bad custom window at once

    @property
    def window_spec(self) -> Window:
        if self.window == "custom":
            if self.start is None or self.end is None:
                raise QueryError("window='custom' needs both start and end")
            return Window.parse(start=_datetime(self.start), end=_datetime(self.end))
        return Window.parse(self.window)

    def spec(self) -> FrameSpec:
        return FrameSpec("messages", self.window_spec)

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end] of the window in UTC."""
        return self.window_spec.bounds(self.as_of)

    @property
    def previous_bounds(self) -> tuple[datetime, datetime]:
        return self.window_spec.previous_bounds(self.as_of)

    def _key(self) -> tuple[Any, ...]:
        return (tuple(self.agents), tuple(self.statuses), tuple(self.roles), self.search)

    def _select(self, frame: pd.DataFrame) -> pd.Series:
        mask = pd.Series(True, index=frame.index)
        if self.agents:
            mask &= frame["agent_id"].isin(self.agents)
        if self.statuses:
            mask &= frame["status"].isin(self.statuses)
        if self.roles:
            mask &= frame["role"].isin(self.roles)
        if self.search:
            needle = self.search.lower()
            mask &= frame["conversation_id"].str.lower().str.contains(needle, regex=False) | (
                frame["user_id"].str.lower().str.contains(needle, regex=False).fillna(False)
            )
        return mask

    def _between(self, bounds: tuple[datetime, datetime]) -> pd.DataFrame:
        start, end = bounds
        everything = self._filtered(self.live.frame)

        def cut() -> pd.DataFrame:
            ts = everything[TIME_FIELD["messages"]]
            return everything.loc[(ts >= start) & (ts <= end)].reset_index(drop=True)

        return SLICES.get(everything, ("between", start, end), cut)

    @property
    def frame(self) -> pd.DataFrame:
        """Messages in the window, as the canonical frame."""
        return self._between(self.bounds)

    @property
    def previous_frame(self) -> pd.DataFrame:
        """Messages in the period of the same length just before the window."""
        return self._between(self.previous_bounds)

    def conversation(self, conversation_id: str) -> pd.DataFrame:
        """Every message of one conversation with its text (``content``), oldest first."""
        return self.data.conversation(conversation_id)


class AgentsPipeline(Pipeline):
    """The agents, filtered by id and status."""

    agents = param.List(default=[], item_type=str, doc="Keep these agent ids (all when empty).")
    statuses = param.List(
        default=[], item_type=str, doc="Keep agents with these statuses (all when empty)."
    )

    _container = "agents"

    def _key(self) -> tuple[Any, ...]:
        return (tuple(self.agents), tuple(self.statuses))

    def _select(self, frame: pd.DataFrame) -> pd.Series:
        mask = pd.Series(True, index=frame.index)
        if self.agents:
            mask &= frame["id"].isin(self.agents)
        if self.statuses:
            mask &= frame["status"].isin(self.statuses)
        return mask
