"""Cosmos DB SQL for a :class:`~pipelines.query.Query`.

Values travel as ``@parameters`` only; field paths, checked by
:func:`~pipelines.query.check_field`, are written as ``c["a"]["b"]``.  The text
stays inside a small subset (a projection, ``WHERE`` with comparisons, ``AND``,
``OR`` and ``IN``, one ``ORDER BY``): cheap on Cosmos DB, and understood by the
gateway stand-in the tests run against.

Time windows compare by type, as Cosmos does (a string never compares with a
number), so one condition per form selects ISO 8601 strings, epoch seconds and
epoch milliseconds alike.  ISO strings compare as *text*: see :func:`iso_bounds`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipelines.query import Query, check_field, epoch_ms
from pipelines.schema import EPOCH_MS_THRESHOLD

# Cosmos DB SQL keywords: a projected field with one of these names cannot be its alias.
_KEYWORDS = """AND ARRAY AS ASC BETWEEN BY CASE CAST CONVERT CROSS DESC DISTINCT ELSE END
    ESCAPE EXISTS FALSE FOR FROM GROUP HAVING IN INNER INSERT INTO IS JOIN LEFT LIKE LIMIT NOT
    NULL OFFSET ON OR ORDER OUTER OVER RIGHT SELECT SET THEN TOP TRUE UDF UNDEFINED UPDATE
    VALUE WHEN WHERE WITH"""
RESERVED = frozenset(_KEYWORDS.split())
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Largest epoch number read as seconds; from EPOCH_MS_THRESHOLD up, numbers are milliseconds.
_LAST_SECOND = EPOCH_MS_THRESHOLD - 0.001


@dataclass(frozen=True)
class CosmosSql:
    """A query's text and parameters, and the aliases to rename to field paths afterwards."""

    text: str
    parameters: tuple[tuple[str, Any], ...] = ()
    renames: tuple[tuple[str, str], ...] = ()

    def parameter_list(self) -> list[dict[str, object]]:
        """The parameters in the SDK's shape."""
        return [{"name": name, "value": value} for name, value in self.parameters]


def field_ref(path: str) -> str:
    """``a.b`` as ``c["a"]["b"]``: bracket syntax works for any name, keywords included."""
    return "c" + "".join(f'["{part}"]' for part in check_field(path).split("."))


def iso_bounds(start: datetime | None, end: datetime | None) -> tuple[str | None, str | None]:
    """Text bounds under which UTC ISO 8601 strings of any precision sort inside the window.

    Strings compare character by character, so ``...:05Z`` sorts *after*
    ``...:05.5Z`` ('Z' > '.').  Bounds without a fraction avoid that: the start
    is floored to its second (``2024-05-01T12:00:05``, below every string of that
    second), the end is floored and followed by ``~`` (above every suffix: ``.``,
    digits, ``Z``, ``+00:00``).  The window may thus take in up to one second more
    at each end.  Strings with another offset, a space instead of ``T`` or no
    time compare as text, wrongly.
    """

    def second(value: datetime) -> str:
        return value.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat()

    return (
        None if start is None else second(start),
        None if end is None else second(end) + "~",
    )


class _Builder:
    """Collects parameters under readable, unique names."""

    def __init__(self) -> None:
        self.parameters: list[tuple[str, Any]] = []

    def param(self, hint: str, value: Any) -> str:
        name = f"@{hint}{len(self.parameters)}"
        self.parameters.append((name, value))
        return name


def _range(builder: _Builder, ref: str, hint: str, low: Any, high: Any) -> str:
    terms = []
    if low is not None:
        terms.append(f"{ref} >= {builder.param(hint, low)}")
    if high is not None:
        terms.append(f"{ref} <= {builder.param(hint, high)}")
    return "(" + " AND ".join(terms) + ")"


def _window(builder: _Builder, query: Query) -> str | None:
    if query.time_field is None or (query.start is None and query.end is None):
        return None
    ref = field_ref(query.time_field)
    start_ms = None if query.start is None else epoch_ms(query.start)
    end_ms = None if query.end is None else epoch_ms(query.end)
    start_iso, end_iso = iso_bounds(query.start, query.end)
    # Each number form keeps to its own range (see schema.EPOCH_MS_THRESHOLD), so an open
    # end still has a bound, and no seconds value passes for milliseconds or the reverse.
    seconds = (
        -_LAST_SECOND if start_ms is None else start_ms / 1000,
        _LAST_SECOND if end_ms is None else min(end_ms / 1000, _LAST_SECOND),
    )
    millis = (EPOCH_MS_THRESHOLD if start_ms is None else max(start_ms, EPOCH_MS_THRESHOLD), end_ms)
    forms = [
        _range(builder, ref, "iso", start_iso, end_iso),
        _range(builder, ref, "s", *seconds),
        _range(builder, ref, "ms", *millis),
    ]
    return "(" + " OR ".join(forms) + ")"


def _select(query: Query, extra: Iterable[str] = ()) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The ``SELECT`` list: each field aliased by its own name where Cosmos allows it."""
    if query.projection is None:
        return "*", ()
    fields = list(dict.fromkeys([*query.projection, *extra]))
    plain = {f for f in fields if _IDENTIFIER.match(f) and f.upper() not in RESERVED}
    taken = set(plain)
    columns, renames = [], []
    for index, path in enumerate(fields):
        alias = path
        if path not in plain:
            # Dotted paths and keywords cannot be aliases: a neutral alias, renamed on arrival.
            alias = f"f{index}"
            while alias in taken:
                alias += "_"
            taken.add(alias)
            renames.append((alias, path))
        columns.append(f"{field_ref(path)} AS {alias}")
    return ", ".join(columns), tuple(renames)


def compile_query(query: Query) -> CosmosSql | None:
    """The SQL for ``query``, or None when it cannot match anything (an empty ``IN`` list)."""
    builder = _Builder()
    where = []
    if (window := _window(builder, query)) is not None:
        where.append(window)
    for field, values in query.filters:
        if not values:
            return None
        marks = ", ".join(builder.param("v", v) for v in values)
        where.append(f"{field_ref(field)} IN ({marks})")
    columns, renames = _select(query)
    text = f"SELECT {columns} FROM c"
    if where:
        text += " WHERE " + " AND ".join(where)
    return CosmosSql(text, tuple(builder.parameters), renames)


def compile_since(query: Query, since: int) -> CosmosSql:
    """Documents of ``query``'s container written at or after ``_ts`` ``since``, with ``_ts``.

    Only the projection of ``query`` is used, as for a change feed.  ``>=``: a
    document written later in the second of the watermark must still come back.
    """
    builder = _Builder()
    condition = f'c["_ts"] >= {builder.param("since", since)}'
    columns, renames = _select(query, extra=("_ts",))
    return CosmosSql(
        f"SELECT {columns} FROM c WHERE {condition}", tuple(builder.parameters), renames
    )


NEWEST_TS = CosmosSql('SELECT c["_ts"] AS _ts FROM c ORDER BY c["_ts"] DESC')
"""The latest ``_ts`` of a container comes first (read one row): the start of a watermark."""


def lookup(doc: dict[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a whole document, or None."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def project(docs: Iterable[dict[str, Any]], projection: tuple[str, ...]) -> list[dict[str, Any]]:
    """Whole documents cut to ``projection`` and keyed by field path, as a query returns them.

    Fields that are missing (or null) are left out.
    """
    return [
        {path: value for path in projection if (value := lookup(doc, path)) is not None}
        for doc in docs
    ]
