"""Time windows: relative (``24h``) or explicit (start, end), both ends inclusive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from pipelines.errors import QueryError

Times = TypeVar("Times", pd.Series, pd.DatetimeIndex, pd.Timestamp)

WINDOWS: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""Bounds of an explicit window: its period and the one before it stay within the times a
frame can hold (pandas' nanoseconds reach 1677 to 2262)."""


def check_tz(name: str) -> str:
    try:
        ZoneInfo(name)
    # OSError: a name that is a folder of the tz database, or too long to be a file name.
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise QueryError(
            f"time zone {name!r} is unknown: use an IANA name such as UTC or Europe/Paris"
        ) from None
    return name


def as_utc(value: datetime | date | str, name: str = "time") -> datetime:
    """A timezone-aware UTC datetime; naive values are taken as UTC, a date as its midnight."""
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise QueryError(f"{name} {value!r} is not an ISO 8601 date or time") from None
    if not isinstance(value, datetime):
        raise QueryError(f"{name} {value!r} is not a date or time")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it
        raise QueryError(f"{name} {value.isoformat()} is out of range") from None


def check_range(moment: datetime, name: str = "time") -> datetime:
    """``moment`` (aware) when it lies in [EARLIEST, LATEST); QueryError otherwise."""
    if not EARLIEST <= moment < LATEST:
        raise QueryError(
            f"{name} {moment.isoformat()} is out of range: give a time from "
            f"{EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}"
        )
    return moment


def to_local(times: Times, tz: str) -> Times:
    """Aware times (a column, an index or one instant) as naive wall times in ``tz``.

    What tables, chart axes and labels show: Bokeh and Tabulator display a naive
    time as it is, where an aware one would be shown in UTC or the browser's zone.
    """
    if isinstance(times, pd.Series):
        return times.dt.tz_convert(tz).dt.tz_localize(None)
    return times.tz_convert(tz).tz_localize(None)


def to_utc(wall: Any, tz: str) -> datetime:
    """A wall time in ``tz`` (a chart axis' or a picker's) back to an aware UTC datetime.

    Of an hour that occurs twice when the clocks go back, the first is taken; a time
    that does not exist when they go forward moves forward to one that does.
    """
    stamp = pd.Timestamp(wall)
    if stamp.tzinfo is not None:
        return stamp.tz_convert("UTC").to_pydatetime()
    local = stamp.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
    return local.tz_convert("UTC").to_pydatetime()


@dataclass(frozen=True)
class Window:
    """A relative window ending at the time of the data, or fixed bounds."""

    label: str | None = "24h"
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def parse(
        cls,
        label: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> Window:
        if start is not None or end is not None:
            if start is None or end is None:
                raise QueryError("an explicit window needs both start and end")
            s, e = as_utc(start, "start"), as_utc(end, "end")
            for name, moment in (("start", s), ("end", e)):
                check_range(moment, name)
            if s >= e:
                raise QueryError(f"window start {s.isoformat()} is not before end {e.isoformat()}")
            return cls(None, s, e)
        label = label or "24h"
        if label not in WINDOWS:
            raise QueryError(
                f"window {label!r} is not one of {', '.join(WINDOWS)} (or give start and end)"
            )
        return cls(label)

    @property
    def length(self) -> timedelta:
        if self.label is not None:
            return WINDOWS[self.label]
        assert self.start is not None and self.end is not None
        return self.end - self.start

    def bounds(self, as_of: datetime) -> tuple[datetime, datetime]:
        """[start, end] of the window when the data is as of ``as_of``."""
        if self.label is None:
            assert self.start is not None and self.end is not None
            return self.start, self.end
        return as_of - self.length, as_of

    def previous_bounds(self, as_of: datetime) -> tuple[datetime, datetime]:
        """The period of the same length just before the window."""
        start, _ = self.bounds(as_of)
        return start - self.length, start

    def describe(self) -> str:
        if self.label is not None:
            return self.label
        assert self.start is not None and self.end is not None
        return f"{self.start.isoformat()}/{self.end.isoformat()}"
