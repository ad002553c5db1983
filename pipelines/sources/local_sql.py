"""SQL over the embedded store's ``documents`` table for a :class:`~pipelines.query.Query`.

Values, and field paths too, travel as parameters and never as SQL text.

Every query names the index it reads (``INDEXED BY``), so that what it costs does
not hang on the planner's guess:

- a time window reads ``documents_time`` over ``time_ns``, the document's time in
  epoch nanoseconds computed when it was written (see :func:`pipelines.schema.epoch_ns`):
  a window costs what it holds, not what the store holds.  Documents whose time
  could not be read (NULL) come back with every window, for normalisation to
  quarantine them;
- a filter on the partition key (see :data:`PARTITION_KEYS`), as a conversation read
  is, reads ``documents_pk``;
- anything else reads the documents in sequence order through ``documents_seq``.

Pages are keyed by the order of the index they read (see :func:`compile_page`), so a
page costs what it holds, however many pages come before it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.query import Query

# The field each container is partitioned by, as in Cosmos DB; stored in the ``pk`` column.
PARTITION_KEYS = {"messages": "conversationId", "agents": "id"}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64 = (-(2**63), 2**63 - 1)


def _json_path(field: str) -> str:
    return "$." + field


def _epoch_ns(value: datetime) -> int:
    ns = (value - _EPOCH) // timedelta(microseconds=1) * 1000
    return min(max(ns, _INT64[0]), _INT64[1])  # a bound past the years a time can have


# SQLite 3.40's json_extract ends a text at NUL, so "a\u0000b" would match a filter on "a".
# The document's own JSON text of the value tells: with its escaped backslashes taken out,
# a NUL is left as the escape \u0000.  Filter values never hold NUL (_check_value), so a
# value that does matches none of them.  Most documents hold no "\u0000" at all: the scan
# of the whole text comes first and spares them the extraction.
_NO_NUL_SQL = r"(instr(doc, '\u0000') = 0 OR instr(replace(doc -> ?, '\\', ''), '\u0000') = 0)"


def _filters(query: Query) -> tuple[list[str], list[Any], bool]:
    """The filters' conditions and parameters, and whether one reads the partition key."""
    clauses: list[str] = []
    params: list[Any] = []
    by_pk = False
    for field, values in query.filters:
        if not values:
            clauses.append("0")
            continue
        marks = ", ".join("?" for _ in values)
        if field == PARTITION_KEYS[query.container] and all(isinstance(v, str) for v in values):
            # The pk column holds the key's text: it finds the candidates through its index,
            # the condition on the document below keeps those of the right JSON type.
            clauses.append(f"pk IN ({marks})")
            params += values
            by_pk = True
        path = _json_path(field)
        clauses.append(f"json_extract(doc, ?) IN ({marks})")
        # SQLite's json_extract gives 1/0 for JSON true/false.
        params += [path, *(int(v) if isinstance(v, bool) else v for v in values)]
        clauses.append(_NO_NUL_SQL)  # on every filter: the SQL text depends on the shape only
        params.append(path)
    return clauses, params, by_pk


Cursor = int | tuple[int, int]
"""Where a page starts: after a change sequence, or, in a window's time order, after a
(time_ns, seq) pair."""


def window_start(query: Query) -> tuple[int, int]:
    """The cursor before the first document of ``query``'s window in time order."""
    low = _INT64[0] if query.start is None else _epoch_ns(query.start)
    return low, -1


def windowed(query: Query) -> bool:
    return query.time_field is not None and (query.start is not None or query.end is not None)


def compile_page(
    query: Query, after: Cursor, size: int, until: int | None = None
) -> tuple[str, list[Any]]:
    """One page of ``query``: up to ``size`` documents after the cursor, and the parameters.

    Each row is ``seq``, ``time_ns``, then the whole document or a JSON array of the
    projected fields in projection order.  Without a window, pages follow the change
    sequence (at most ``until``).  A window is read in two parts, each in the order of
    its index so that a page costs what it holds: first the documents whose time is
    NULL, after a sequence (``after`` an int), then the window in time order, after a
    (time_ns, seq) pair (see :func:`window_start`).
    """
    filters, filter_params, by_pk = _filters(query)
    conditions: list[str] = ["container = ?"]
    params: list[Any] = [query.container]
    if not windowed(query):
        index, order = ("documents_pk" if by_pk else "documents_seq"), "seq"
    elif isinstance(after, int):
        index, order = "documents_time", "seq"
        conditions.append("time_ns IS NULL")
    else:
        index, order = "documents_time", "time_ns, seq"
        conditions.append("(time_ns, seq) > (?, ?)")
        params += list(after)
        if query.end is not None:
            conditions.append("time_ns <= ?")
            params.append(_epoch_ns(query.end))
    if isinstance(after, int):
        conditions.append("seq > ?")
        params.append(after)
    if until is not None:
        conditions.append("seq <= ?")
        params.append(until)
    if query.projection is None:
        columns, column_params = "doc", []
    else:
        # ``->`` keeps JSON types (json_extract would turn true into 1, objects into text).
        columns = "json_array(" + ", ".join("doc -> ?" for _ in query.projection) + ")"
        column_params = [_json_path(f) for f in query.projection]
    where = " AND ".join([*conditions, *filters])
    sql = (
        f"SELECT seq, time_ns, {columns} FROM documents INDEXED BY {index} "
        f"WHERE {where} ORDER BY {order} LIMIT ?"
    )
    return sql, [*column_params, *params, *filter_params, size]
