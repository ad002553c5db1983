"""SQL over the embedded store's ``documents`` table for a :class:`~pipelines.query.Query`.

Values, and field paths too, travel as parameters and never as SQL text.
"""

from __future__ import annotations

from typing import Any

from pipelines.query import Query, epoch_ms


def _json_path(field: str) -> str:
    return "$." + field


# A document's time as epoch milliseconds, whatever form the field has: ISO 8601
# text, epoch seconds or epoch milliseconds, as numbers or numeric text (see
# schema.EPOCH_MS_THRESHOLD).  julianday() counts whole milliseconds internally
# but returns days as a float: round() gives the exact millisecond back.
_EPOCH_MS_SQL = (
    "(SELECT CASE "
    "WHEN t IN ('integer', 'real') OR (t = 'text' AND v GLOB '[0-9]*' "
    "AND v NOT GLOB '*[^0-9.]*') THEN (CASE WHEN abs(CAST(v AS REAL)) < 1e11 "
    "THEN CAST(v AS REAL) * 1000.0 ELSE CAST(v AS REAL) END) "
    "WHEN t = 'text' THEN round((julianday(v) - 2440587.5) * 86400000.0) END "
    "FROM (SELECT json_type(doc, ?) AS t, json_extract(doc, ?) AS v))"
)
_EPOCH_MS_PATHS = _EPOCH_MS_SQL.count("?")


# SQLite 3.40's json_extract ends a text at NUL, so "a\u0000b" would match a filter on "a".
# The document's own JSON text of the value tells: with its escaped backslashes taken out,
# a NUL is left as the escape \u0000.  Filter values never hold NUL (_check_value), so a
# value that does matches none of them.  Most documents hold no "\u0000" at all: the scan
# of the whole text comes first and spares them the extraction.
_NO_NUL_SQL = r"(instr(doc, '\u0000') = 0 OR instr(replace(doc -> ?, '\\', ''), '\u0000') = 0)"


def compile_where(query: Query) -> tuple[str, list[Any]]:
    """The WHERE clause of ``query`` over the ``documents`` table, and its parameters."""
    clauses = ["container = ?"]
    params: list[Any] = [query.container]
    if query.time_field is not None and (query.start is not None or query.end is not None):
        path = _json_path(query.time_field)
        for bound, op in ((query.start, ">="), (query.end, "<=")):
            if bound is not None:
                clauses.append(f"{_EPOCH_MS_SQL} {op} ?")
                params += [path] * _EPOCH_MS_PATHS + [epoch_ms(bound)]
    for field, values in query.filters:
        if not values:
            clauses.append("0")
            continue
        marks = ", ".join("?" for _ in values)
        path = _json_path(field)
        clauses.append(f"json_extract(doc, ?) IN ({marks})")
        # SQLite's json_extract gives 1/0 for JSON true/false.
        params += [path, *(int(v) if isinstance(v, bool) else v for v in values)]
        clauses.append(_NO_NUL_SQL)  # on every filter: the SQL text depends on the shape only
        params.append(path)
    return " AND ".join(clauses), params


def compile_select(query: Query) -> tuple[str, list[Any]]:
    """``SELECT`` for ``query``: ``seq`` then the whole document, or a JSON array of the
    projected fields in projection order."""
    where, where_params = compile_where(query)
    if query.projection is None:
        columns, params = "doc", []
    else:
        # ``->`` keeps JSON types (json_extract would turn true into 1, objects into text).
        columns = "json_array(" + ", ".join("doc -> ?" for _ in query.projection) + ")"
        params = [_json_path(f) for f in query.projection]
    sql = f"SELECT seq, {columns} FROM documents WHERE {where}"
    return sql, params + where_params
