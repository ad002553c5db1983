"""A small immutable query value: which documents of a container, and which fields.

A :class:`Query` speaks in *source* field names (after the field mapping).  It
is what a Source receives; each source compiles it beside itself into
parameterized SQL (``sources/local_sql.py``, ``sources/cosmos_sql.py``), where
values, and field paths too, travel as parameters and never as SQL text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.errors import QueryError

Scalar = str | int | float | bool
FIELD_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
CONTAINERS = ("messages", "agents")


def check_field(name: str) -> str:
    if not isinstance(name, str) or not FIELD_PATTERN.fullmatch(name):
        raise QueryError(
            f"field name {name!r} is not allowed: use letters, digits and '_', "
            "with '.' between the parts of a nested field"
        )
    return name


def _check_value(field: str, value: Any) -> Scalar:
    # Values must be JSON (no NaN or infinity), integers fit 64-bit parameters.
    if isinstance(value, str) and "\x00" in value:
        # The embedded store's SQLite ends a text at NUL: it could not match such a value,
        # and no id, status or role holds one.
        raise QueryError(f"filter on {field!r}: {value!r} holds a NUL character")
    if (
        isinstance(value, bool | str)
        or (isinstance(value, float) and math.isfinite(value))
        or (isinstance(value, int) and -(2**63) <= value < 2**63)
    ):
        return value
    raise QueryError(f"filter on {field!r}: {value!r} is not a string, number or boolean")


def _value_order(value: Scalar) -> tuple[str, Scalar]:
    # Values of one type compare; a list mixing types is ordered by type first.
    return (type(value).__name__, value)


def _utc(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise QueryError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)  # equal instants give equal canonical JSON


@dataclass(frozen=True)
class Query:
    """Which documents of one container to read, and which of their fields."""

    container: str
    time_field: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    filters: tuple[tuple[str, tuple[Scalar, ...]], ...] = ()
    projection: tuple[str, ...] | None = None

    @classmethod
    def build(
        cls,
        container: str,
        *,
        time_field: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        filters: Mapping[str, Scalar | Iterable[Scalar]] | None = None,
        projection: Iterable[str] | None = None,
    ) -> Query:
        """Validate and normalise the parts (filters sorted, IN lists de-duplicated and sorted:
        a list's order does not change what it matches, nor should it change the query)."""
        if container not in CONTAINERS:
            raise QueryError(f"container {container!r} is not one of {', '.join(CONTAINERS)}")
        if (start is not None or end is not None) and time_field is None:
            raise QueryError("a time window needs the time field it applies to")
        if time_field is not None:
            check_field(time_field)
        start, end = _utc("start", start), _utc("end", end)
        if start is not None and end is not None and start > end:
            raise QueryError(f"window start {start.isoformat()} is after its end {end.isoformat()}")
        compiled: list[tuple[str, tuple[Scalar, ...]]] = []
        for field, given in sorted((filters or {}).items()):
            check_field(field)
            # One value unless an iterable of them; anything but a scalar is refused below.
            values: Iterable[Any] = (
                given
                if isinstance(given, Iterable) and not isinstance(given, str | bytes | Mapping)
                else (given,)
            )
            checked = dict.fromkeys(_check_value(field, v) for v in values)
            compiled.append((field, tuple(sorted(checked, key=_value_order))))
        proj = None
        if projection is not None:
            proj = tuple(dict.fromkeys(check_field(f) for f in projection))
            if not proj:
                raise QueryError("a projection needs at least one field")
        return cls(container, time_field, start, end, tuple(compiled), proj)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(value: datetime) -> float:
    # Whole microseconds then one division: value.timestamp() * 1000 can miss by 1 ulp,
    # enough to drop a document lying exactly on a window bound.
    return (value - _EPOCH) // timedelta(microseconds=1) / 1000
