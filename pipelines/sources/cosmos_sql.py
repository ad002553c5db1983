"""Cosmos DB SQL for a :class:`~pipelines.query.Query`.

Values travel as ``@parameters`` only; field paths, checked by
:func:`~pipelines.query.check_field`, are written as ``c["a"]["b"]``.  The text
stays inside a small subset (a projection, ``WHERE`` with comparisons, ``AND``,
``OR`` and ``IN``, one ``ORDER BY``): cheap on Cosmos DB, and understood by the
gateway stand-in the tests run against.

A projection comes back as one JSON array per document, ``SELECT VALUE [...]``:
property names do not travel (two fifths of the bytes of the same row as an object),
and the source zips each array with the field paths.  Cosmos DB leaves undefined
values out of an array it builds, so each element reads ``IS_DEFINED(x) ? x : null``:
a missing field is null and every value keeps its position.

Time windows compare by type, as Cosmos does (a string never compares with a
number), so one condition per form selects ISO 8601 strings, epoch seconds and
epoch milliseconds alike.  ISO strings compare as *text*: see :func:`iso_bounds`.
A window also returns every document whose time can never be read, for
normalisation to quarantine (see :func:`_window`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipelines.query import Query, check_field, epoch_ms
from pipelines.schema import EARLIEST_EPOCH_MS, EPOCH_MS_THRESHOLD, LATEST_EPOCH_MS, lookup

# Largest epoch number read as seconds; from EPOCH_MS_THRESHOLD up, numbers are milliseconds.
_LAST_SECOND = EPOCH_MS_THRESHOLD - 0.001


@dataclass(frozen=True)
class CosmosSql:
    """A query's text and parameters, and the field paths of its rows.

    With ``fields`` each row is an array of those fields' values in that order
    (null where missing); without, each row is a whole document.
    """

    text: str
    parameters: tuple[tuple[str, Any], ...] = ()
    fields: tuple[str, ...] | None = None

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
    """The window's condition: the times inside it, and the values that are no time.

    Those come back from every window, as from the embedded store, so that they are
    quarantined rather than unseen: a time field undefined, null, a boolean, an object
    or an array, and a number outside the times a document can hold (before 2000, or
    past the end of datetime64[ns]).  What Cosmos SQL cannot tell, and so is not pushed
    down, is text that reads as no time: it compares as text like an ISO string, and is
    returned only when it sorts inside the window's text bounds (any text from a letter
    on does for a window without an end; ``""`` never does).  Numeric text compares as
    text too, and is only returned when it sorts there.
    """
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
    earliest_s, latest_s = EARLIEST_EPOCH_MS / 1000, LATEST_EPOCH_MS / 1000
    forms = [
        _range(builder, ref, "iso", start_iso, end_iso),
        _range(builder, ref, "s", *seconds),
        _range(builder, ref, "ms", *millis),
        f"NOT (IS_STRING({ref}) OR IS_NUMBER({ref}))",
        # Numbers read as no time: seconds before 2000, seconds past the range up to
        # milliseconds before 2000, milliseconds past the range (a string compares false).
        f"{ref} < {builder.param('none', earliest_s)}",
        _range(builder, ref, "none", latest_s, EARLIEST_EPOCH_MS - 0.001),
        f"{ref} >= {builder.param('none', LATEST_EPOCH_MS)}",
    ]
    return "(" + " OR ".join(forms) + ")"


def _select(query: Query, extra: Iterable[str] = ()) -> tuple[str, tuple[str, ...] | None]:
    """What follows ``SELECT``, and the field paths of each row (None: whole documents)."""
    if query.projection is None:
        return "*", None
    fields = tuple(dict.fromkeys([*query.projection, *extra]))
    return _values(fields), fields


def _values(fields: Iterable[str]) -> str:
    """``VALUE [...]``: the values of ``fields`` as one array, null where undefined."""
    refs = [field_ref(path) for path in fields]
    return "VALUE [" + ", ".join(f"IS_DEFINED({ref}) ? {ref} : null" for ref in refs) + "]"


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
    select, fields = _select(query)
    text = f"SELECT {select} FROM c"
    if where:
        text += " WHERE " + " AND ".join(where)
    return CosmosSql(text, tuple(builder.parameters), fields)


def compile_since(query: Query, since: int) -> CosmosSql:
    """Documents of ``query``'s container written at or after ``_ts`` ``since``, with ``_ts``.

    Only the projection of ``query`` is used, as for a change feed.  ``>=``: a
    document written later in the second of the watermark must still come back.
    """
    builder = _Builder()
    condition = f'c["_ts"] >= {builder.param("since", since)}'
    select, fields = _select(query, extra=("_ts",))
    return CosmosSql(f"SELECT {select} FROM c WHERE {condition}", tuple(builder.parameters), fields)


NEWEST_TS = CosmosSql(f'SELECT {_values(["_ts"])} FROM c ORDER BY c["_ts"] DESC', fields=("_ts",))
"""The latest ``_ts`` of a container comes first (read one row): the start of a watermark."""


def project(docs: Iterable[dict[str, Any]], projection: tuple[str, ...]) -> list[dict[str, Any]]:
    """Whole documents cut to ``projection`` and keyed by field path, as a query returns them.

    Missing fields are null.
    """
    return [{path: lookup(doc, path) for path in projection} for doc in docs]
