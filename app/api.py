"""The REST API: the JSON face of the pipelines and metrics, in the dashboard's process.

``panel serve app/main.py --plugins app.api`` (what ``agentdash serve`` runs)
adds :data:`ROUTES` to the Bokeh server's Tornado application (in Python:
``pn.serve(..., extra_patterns=ROUTES)``):

- ``GET /api/v1/metrics/summary``: the KPIs of a window (``metrics.kpis``);
- ``GET /api/v1/agents``: one row per agent (``metrics.per_agent``);
- ``GET /api/v1/messages``: messages, newest first, by pages with a cursor;
- ``GET /api/v1/conversations/{id}``: every message of a conversation, with text;
- ``GET /api/v1/openapi.json`` and ``GET /api/v1/docs``: the OpenAPI document
  and a page that renders it (no CDN);
- ``GET /health``: source, cache and freshness; 503 when there is no data.

Every answer is computed from the process's shared :class:`Backend` on a
worker thread, so a slow query never blocks the sessions' event loop.
Nothing here runs at import: Panel imports plugins before it forks
``--num-procs`` workers.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tornado.ioloop import IOLoop
from tornado.web import RequestHandler

from app import live
from pipelines import metrics
from pipelines.backend import Backend
from pipelines.errors import QueryError, SourceError
from pipelines.pipeline import AgentsPipeline, MessagesPipeline
from pipelines.schema import MESSAGE_DTYPES, ROLES, STATUSES
from pipelines.windows import WINDOWS, as_utc

PREFIX = "/api/v1"
DOCS_PAGE = Path(__file__).with_name("static") / "api_docs.html"
MAX_LIMIT = 1000


class ApiError(Exception):
    """A request the API refuses, with its HTTP status."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


# -- parameters ---------------------------------------------------------------------------


def _time(name: str, raw: str) -> datetime:
    try:
        return as_utc(raw, name)
    except QueryError as exc:
        raise ApiError(400, "invalid parameter", str(exc)) from None


def _integer(name: str, raw: str, low: int, high: int) -> int:
    try:
        value: int | None = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ApiError(400, "invalid parameter", f"{name}={raw!r}: give an integer {low}..{high}")
    return value


@dataclass(frozen=True)
class Parameter:
    """One query parameter: its OpenAPI schema is also what a request is checked against."""

    name: str
    doc: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    repeat: bool = False

    def parse(self, raw: str) -> Any:
        schema = self.schema
        if "enum" in schema and raw not in schema["enum"]:
            raise ApiError(
                400,
                "invalid parameter",
                f"{self.name}={raw!r} is not one of {', '.join(schema['enum'])}",
            )
        if schema.get("format") == "date-time":
            return _time(self.name, raw)
        if schema["type"] == "integer":
            return _integer(self.name, raw, schema["minimum"], schema["maximum"])
        return raw

    def openapi(self) -> dict[str, Any]:
        schema: Mapping[str, Any] = self.schema
        if self.repeat:
            schema = {"type": "array", "items": schema}
        return {
            "name": self.name,
            "in": "query",
            "description": self.doc,
            "schema": schema,
            "explode": True,
        }


WINDOW = Parameter(
    "window",
    "Relative window ending at the time of the data. Not with start and end.",
    {"type": "string", "enum": list(WINDOWS), "default": "24h"},
)
START = Parameter(
    "start",
    "Start of an explicit window, ISO 8601 (UTC when it has no offset); needs end.",
    {"type": "string", "format": "date-time"},
)
END = Parameter("end", "End of an explicit window, ISO 8601; needs start.", START.schema)
AGENT = Parameter("agent", "Keep this agent id; repeat for several.", repeat=True)
STATUS = Parameter(
    "status",
    "Keep messages with this status; repeat for several.",
    {"type": "string", "enum": list(STATUSES)},
    repeat=True,
)
ROLE = Parameter(
    "role",
    "Keep messages with this role; repeat for several.",
    {"type": "string", "enum": list(ROLES)},
    repeat=True,
)
SEARCH = Parameter("q", "Keep conversations or users whose id contains this text (any case).")
LIMIT = Parameter(
    "limit",
    "Messages per page.",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100},
)
CURSOR = Parameter("cursor", "Where the next page starts: the next_cursor of the previous page.")
WINDOWED = (WINDOW, START, END, AGENT)
FILTERS = (*WINDOWED, STATUS, ROLE, SEARCH)


def read_arguments(
    parameters: tuple[Parameter, ...], arguments: Mapping[str, list[bytes]]
) -> dict[str, Any]:
    """Checked values of the query ``arguments``; unknown or repeated names are refused."""
    known = {p.name: p for p in parameters}
    values: dict[str, Any] = {}
    for name, raws in arguments.items():
        parameter = known.get(name)
        if parameter is None:
            raise ApiError(
                400,
                "unknown parameter",
                f"{name!r} is not a parameter here; use {', '.join(known) or 'none'}",
            )
        if len(raws) > 1 and not parameter.repeat:
            raise ApiError(400, "invalid parameter", f"give {name} once")
        try:
            parsed = [parameter.parse(raw.decode()) for raw in raws]
        except UnicodeDecodeError:
            raise ApiError(400, "invalid parameter", f"{name}: not UTF-8 text") from None
        values[name] = parsed if parameter.repeat else parsed[0]
    return values


def messages_pipeline(values: Mapping[str, Any]) -> MessagesPipeline:
    """The pipeline answering a request's window and filters."""
    explicit = "start" in values or "end" in values
    if explicit and "window" in values:
        raise ApiError(400, "invalid parameter", "give either window or start and end")
    if explicit and not ("start" in values and "end" in values):
        raise ApiError(400, "invalid parameter", "an explicit window needs both start and end")
    window = (
        {"start": values["start"], "end": values["end"]}
        if explicit
        else {"window": values.get("window", "24h")}
    )
    return MessagesPipeline(
        **window,
        agents=values.get("agent", []),
        statuses=values.get("status", []),
        roles=values.get("role", []),
        search=values.get("q", ""),
    )


# -- answers ------------------------------------------------------------------------------


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON objects: ISO 8601 UTC times, null for missing values."""
    return list(json.loads(frame.to_json(orient="records", date_format="iso", date_unit="ms")))


def summary(values: Mapping[str, Any]) -> dict[str, Any]:
    pipeline = messages_pipeline(values)
    return {"window": pipeline.window_spec.describe(), **metrics.kpis(pipeline.frame).to_dict()}


def agents(values: Mapping[str, Any]) -> dict[str, Any]:
    pipeline = messages_pipeline(values)
    known = AgentsPipeline(agents=values.get("agent", [])).frame
    table = metrics.per_agent(pipeline.frame, known)
    return {"window": pipeline.window_spec.describe(), "items": records(table)}


def _encode_cursor(timestamp: int, message_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([timestamp, message_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        timestamp, message_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if isinstance(timestamp, int) and isinstance(message_id, str):
            return timestamp, message_id
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        pass
    raise ApiError(400, "invalid parameter", "cursor: give a next_cursor this API returned")


def page(frame: pd.DataFrame, limit: int, cursor: str | None) -> tuple[pd.DataFrame, str | None]:
    """The ``limit`` newest messages older than ``cursor`` and the cursor after them.

    Keyset pagination on (timestamp, id): a page never repeats or skips a
    message, even while new ones arrive, and costs one pass over the frame.
    """
    stamps = pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").asi8
    if cursor is None:
        older = np.ones(len(frame), dtype=bool)
    else:
        after_stamp, after_id = _decode_cursor(cursor)
        older = stamps < after_stamp
        tied = np.flatnonzero(stamps == after_stamp)
        older[tied] = frame["id"].iloc[tied].to_numpy(dtype=object) < after_id
    rows = np.flatnonzero(older)
    more = len(rows) > limit
    if more:
        # Partition instead of sorting everything: only the newest `limit` are ordered.
        cut = np.partition(stamps[rows], len(rows) - limit)[len(rows) - limit]
        rows = rows[stamps[rows] >= cut]
    chosen = frame.iloc[rows].sort_values(["timestamp", "id"], ascending=False).head(limit)
    if not more:
        return chosen, None
    return chosen, _encode_cursor(chosen["timestamp"].iloc[-1].value, str(chosen["id"].iloc[-1]))


def messages(values: Mapping[str, Any]) -> dict[str, Any]:
    pipeline = messages_pipeline(values)
    chosen, next_cursor = page(pipeline.frame, values.get("limit", 100), values.get("cursor"))
    return {"items": records(chosen), "next_cursor": next_cursor}


def conversation(conversation_id: str) -> dict[str, Any]:
    frame = Backend.default().conversation(conversation_id)
    if frame.empty:
        raise ApiError(404, "not found", f"no conversation has the id {conversation_id!r}")
    return {"id": conversation_id, "messages": records(frame)}


def health() -> tuple[int, dict[str, Any]]:
    """Source, cache, freshness and live sessions of this process; 503 without any data."""
    backend = Backend.default()
    refresher = live.ensure_refresher(backend)
    error = None
    try:
        for pipeline in (MessagesPipeline(), AgentsPipeline()):
            backend.get(pipeline.spec())  # a process that served nothing yet loads them now
    except SourceError as exc:
        error = str(exc)
    status = backend.status()
    frames = status["frames"]
    if not frames:
        state = "no data"
    elif any(frame["stale"] for frame in frames.values()):
        state = "stale"
    else:
        state = "ok"
    oldest = min((datetime.fromisoformat(f["as_of"]) for f in frames.values()), default=None)
    body = {
        "status": state,
        "error": error,
        "pid": os.getpid(),
        **status,
        "age_seconds": (datetime.now(UTC) - oldest).total_seconds() if oldest else None,
        "refresher": {
            "period_seconds": refresher.period,
            "cycles": refresher.cycles,
            "running": refresher.running,
        },
        "sessions": live.session_count(),
        "listeners": backend.listener_count,
        "refreshes": [
            {**asdict(record), "at": record.at.isoformat()} for record in backend.refreshes
        ],
    }
    return (200 if frames else 503), body


# -- HTTP ---------------------------------------------------------------------------------

_executor: ThreadPoolExecutor | None = None


def _worker() -> ThreadPoolExecutor:
    # Made on first use, in the serving process: a pool made before a fork has no threads.
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="agentdash-api")
    return _executor


class JsonHandler(RequestHandler):
    """Checks the query, answers on a worker thread, reports errors as JSON.

    Subclasses give ``parameters``, the OpenAPI ``response`` schema, a docstring
    (the operation's summary) and ``answer``.
    """

    parameters: tuple[Parameter, ...] = ()
    response: Mapping[str, Any] = {"type": "object"}

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        raise NotImplementedError

    def _compute(self, values: dict[str, Any], path: tuple[str, ...]) -> tuple[int, Any]:
        live.ensure_refresher()  # keeps the frames this process serves up to date
        return self.answer(values, *path)

    async def get(self, *path: str) -> None:
        try:
            values = read_arguments(self.parameters, self.request.query_arguments)
            status, body = await IOLoop.current().run_in_executor(
                _worker(), self._compute, values, path
            )
        except ApiError as exc:
            status, body = exc.status, {"error": exc.error, "detail": exc.detail}
        except QueryError as exc:
            status, body = 422, {"error": "invalid query", "detail": str(exc)}
        except SourceError as exc:
            status, body = 503, {"error": "source unavailable", "detail": str(exc)}
        self.write_json(status, body)

    def write_json(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body, allow_nan=False))


class SummaryHandler(JsonHandler):
    """KPIs of a window of messages."""

    parameters = WINDOWED
    response = {"$ref": "#/components/schemas/Summary"}

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        return 200, summary(values)


class AgentsHandler(JsonHandler):
    """One row per agent: its attributes and the metrics of its messages in the window."""

    parameters = WINDOWED
    response = {
        "type": "object",
        "properties": {
            "window": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Agent"}},
        },
    }

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        return 200, agents(values)


class MessagesHandler(JsonHandler):
    """Messages of a window, newest first, a page at a time (their text: see conversations)."""

    parameters = (*FILTERS, LIMIT, CURSOR)
    response = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
            "next_cursor": {"type": "string", "nullable": True},
        },
    }

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        return 200, messages(values)


class ConversationHandler(JsonHandler):
    """Every message of one conversation with its text, oldest first."""

    response = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "messages": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/MessageWithContent"},
            },
        },
    }

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        return 200, conversation(*path)


class HealthHandler(JsonHandler):
    """Source, cache, freshness and live sessions of the answering process; 503 without data."""

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        return health()


class NotFoundHandler(JsonHandler):
    """Any other path under the API prefix."""

    async def get(self, *path: str) -> None:
        self.write_json(404, {"error": "not found", "detail": f"no API at {self.request.path}"})


# -- OpenAPI --------------------------------------------------------------------------------

_JSON_TYPES = {
    "str": {"type": "string"},
    "float64": {"type": "number"},
    "Int64": {"type": "integer"},
    "int64": {"type": "integer"},
    "datetime64[ns, UTC]": {"type": "string", "format": "date-time"},
}


def _object(columns: Mapping[str, str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            name: {**_JSON_TYPES[dtype], "nullable": True} for name, dtype in columns.items()
        },
    }


_LATENCY = {"type": "number", "nullable": True, "description": "null without agent replies"}
SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    },
    "Summary": {
        "type": "object",
        "properties": {
            "window": {"type": "string", "description": "its label, or start/end in ISO 8601"},
            "messages": {"type": "integer"},
            "conversations": {"type": "integer"},
            "active_agents": {"type": "integer"},
            "error_rate": {"type": "number", "description": "failed agent replies / replies"},
            "latency_ms": {
                "type": "object",
                "properties": {"p50": _LATENCY, "p95": _LATENCY, "p99": _LATENCY},
            },
            "tokens": {
                "type": "object",
                "properties": {"in": {"type": "integer"}, "out": {"type": "integer"}},
            },
        },
    },
    "Agent": _object(
        {
            "agent_id": "str",
            "name": "str",
            "kind": "str",
            "team": "str",
            "status": "str",
            "last_seen": "datetime64[ns, UTC]",
            "messages": "int64",
            "conversations": "int64",
            "error_rate": "float64",
            "latency_p50": "float64",
            "latency_p95": "float64",
            "tokens_in": "int64",
            "tokens_out": "int64",
        }
    ),
    "Message": _object(MESSAGE_DTYPES),
    "MessageWithContent": _object({**MESSAGE_DTYPES, "content": "str"}),
}

API_ROUTES: list[tuple[str, type[JsonHandler]]] = [
    (f"{PREFIX}/metrics/summary", SummaryHandler),
    (f"{PREFIX}/agents", AgentsHandler),
    (f"{PREFIX}/messages", MessagesHandler),
    (f"{PREFIX}/conversations/{{id}}", ConversationHandler),
    ("/health", HealthHandler),
]


def _operation(path: str, handler: type[JsonHandler]) -> dict[str, Any]:
    parameters = [p.openapi() for p in handler.parameters]
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": handler.response}}},
        "400": {"description": "an unknown or malformed parameter", **error},
    }
    if "{id}" in path:
        parameters.append(
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
        )
        responses["404"] = {"description": "no such conversation", **error}
    if WINDOW in handler.parameters:
        responses["422"] = {"description": "a window or filter the pipelines refuse", **error}
    responses["503"] = {"description": "the source fails and no data is held", **error}
    return {
        "get": {
            "summary": (handler.__doc__ or "").strip(),
            "parameters": parameters,
            "responses": responses,
        }
    }


def openapi() -> dict[str, Any]:
    """The OpenAPI 3 document of the JSON routes."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "agentdash API",
            "version": "1",
            "description": "Metrics, agents and messages of the live dashboard, as JSON.",
        },
        "paths": {path: _operation(path, handler) for path, handler in API_ROUTES},
        "components": {"schemas": SCHEMAS},
    }


class OpenApiHandler(RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(openapi()))


class DocsHandler(RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(DOCS_PAGE.read_bytes())


ROUTES: list[tuple[str, type[RequestHandler]]] = [
    *((path.replace("{id}", "([^/]+)"), handler) for path, handler in API_ROUTES),
    (f"{PREFIX}/openapi.json", OpenApiHandler),
    (f"{PREFIX}/docs/?", DocsHandler),
    (f"{PREFIX}/.*", NotFoundHandler),
]
"""Tornado routes, for ``panel serve --plugins app.api`` or ``pn.serve(extra_patterns=...)``."""
