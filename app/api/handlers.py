"""The REST API's Tornado handlers: read the query, answer on a worker thread, JSON out."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tornado.ioloop import IOLoop
from tornado.web import RequestHandler

from app import live
from app.api import answers, openapi
from app.api.parameters import (
    FILTERS,
    PAGE,
    QUARANTINE,
    ApiError,
    Parameter,
    messages_pipeline,
    read_arguments,
)
from pipelines.errors import AgentdashError, QueryError, SourceError
from pipelines.live import LiveFrames
from pipelines.pipeline import AgentsPipeline, MessagesPipeline

PREFIX = "/api/v1"
DOCS_PAGE = Path(__file__).parents[1] / "static" / "api_docs.html"

_executors: dict[str, ThreadPoolExecutor] = {}
# Answers read frames and may wait on a cold load; probes only look at the process's state, on
# a pool of their own, so that slow reads never hold them up.
_POOLS = {"agentdash-api": 2, "agentdash-probe": 1}


def _pool(name: str) -> ThreadPoolExecutor:
    # Made on first use, in the serving process: a pool made before a fork has no threads.
    if name not in _executors:
        _executors[name] = ThreadPoolExecutor(_POOLS[name], thread_name_prefix=name)
    return _executors[name]


class ApiHandler(RequestHandler):
    """Answers in JSON, errors included (a failure of the server's own, a refused method);
    a refused method is answered with the ``Allow`` header naming those that are not."""

    def write_json(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body, allow_nan=False))

    def allowed(self) -> list[str]:
        """The HTTP methods this handler answers."""
        return [
            method
            for method in self.SUPPORTED_METHODS
            if getattr(type(self), method.lower()) is not getattr(RequestHandler, method.lower())
        ]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:
            allowed = self.allowed()
            self.set_header("Allow", ", ".join(allowed))
            detail = f"{self.request.method} is not answered here: use {' or '.join(allowed)}"
        elif status_code >= 500:
            # Tornado has logged the exception; its text is not for the client.
            detail = "the server failed to answer this request; its log says why"
        else:
            detail = self._reason
        self.write_json(status_code, {"error": self._reason.lower(), "detail": detail})


class JsonHandler(ApiHandler):
    """Checks the query, answers on a worker thread, reports errors as JSON.

    Subclasses give ``parameters``, the OpenAPI ``response`` schema and the
    ``errors`` they may answer (status -> why), a docstring (the operation's
    summary) and ``answer``; a ``probe`` (health) answers on a pool of its own.
    """

    parameters: tuple[Parameter, ...] = ()
    response: Mapping[str, Any] = {"type": "object"}
    errors: Mapping[str, str] = {
        "400": "an unknown parameter, or one that breaks what this document says of it",
        "503": "the source fails and no data is held",
    }
    probe = False

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        raise NotImplementedError

    def _compute(self, values: dict[str, Any], path: tuple[str, ...]) -> tuple[int, Any]:
        frames = LiveFrames.default()
        live.ensure_refresher(frames)  # keeps the frames this process serves up to date
        with frames.once():  # an explicit window is read for this request, not kept live
            return self.answer(values, *path)

    async def get(self, *path: str) -> None:
        try:
            values = read_arguments(self.parameters, self.request.query_arguments)
            pool = _pool("agentdash-probe" if self.probe else "agentdash-api")
            status, body = await IOLoop.current().run_in_executor(pool, self._compute, values, path)
        except ApiError as exc:
            status, body = exc.status, {"error": exc.error, "detail": exc.detail}
        except QueryError as exc:
            status, body = 422, {"error": "invalid query", "detail": str(exc)}
        except AgentdashError as exc:  # the source fails, or its settings cannot work
            status, body = 503, {"error": "source unavailable", "detail": str(exc)}
        self.write_json(status, body)


_WINDOWED_ERRORS = {
    **JsonHandler.errors,
    "422": "parameters that together ask for no window (start not before end, start without "
    "end, window with start) or a cursor this API did not return",
}


class SummaryHandler(JsonHandler):
    """KPIs of a window of messages."""

    parameters = FILTERS
    response = {"$ref": "#/components/schemas/Summary"}
    errors = _WINDOWED_ERRORS

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        return 200, answers.summary(messages_pipeline(values))


class AgentsHandler(JsonHandler):
    """One row per agent: its attributes and the metrics of its messages in the window."""

    parameters = FILTERS
    response = {
        "type": "object",
        "properties": {
            "window": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Agent"}},
        },
    }
    errors = _WINDOWED_ERRORS

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        messages = messages_pipeline(values)
        return 200, answers.agents(messages, AgentsPipeline().follow(messages))


class MessagesHandler(JsonHandler):
    """Messages of a window, newest first, a page at a time (their text: see conversations)."""

    parameters = (*FILTERS, *PAGE)
    response = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
            "next_cursor": {"type": "string", "nullable": True},
        },
    }
    errors = _WINDOWED_ERRORS

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        page = {name: values.pop(name) for name in ("limit", "cursor") if name in values}
        pipeline = messages_pipeline(values)
        return 200, answers.messages(pipeline, page.get("limit", 100), page.get("cursor"))


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
    errors = {**JsonHandler.errors, "404": "no such conversation"}

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        (conversation_id,) = path
        turns = LiveFrames.default().conversation(conversation_id)
        return 200, answers.conversation(conversation_id, turns)


class QuarantineHandler(JsonHandler):
    """Documents that could not be read: how many, why, and the latest of them."""

    parameters = QUARANTINE
    response = {"$ref": "#/components/schemas/Quarantine"}
    errors = {
        "400": "an unknown or malformed parameter",
        "503": "where quarantined documents are kept does not answer",
    }

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        documents = LiveFrames.default().quarantine
        return 200, documents.listing(values.get("limit", 100), bool(values.get("raw")))


class HealthHandler(JsonHandler):
    """Source, cache, freshness and live sessions of the answering process; 503 without data."""

    probe = True

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        frames = LiveFrames.default()
        refresher = live.ensure_refresher(frames)
        error = None
        try:
            for pipeline in (MessagesPipeline(), AgentsPipeline()):
                frames.get(pipeline.spec())  # a process that served nothing yet loads them now
        except SourceError as exc:
            error = str(exc)
        return answers.health(
            frames.status(),
            error=error,
            refresher={
                "period_seconds": refresher.period,
                "cycles": refresher.cycles,
                "running": refresher.running,
            },
            extra={"pid": os.getpid(), "sessions": live.session_count()},
        )


class NotFoundHandler(ApiHandler):
    """Any other path under the API prefix, whatever the method."""

    def prepare(self) -> None:
        self.write_json(404, {"error": "not found", "detail": f"no API at {self.request.path}"})


API_ROUTES: list[tuple[str, type[JsonHandler]]] = [
    (f"{PREFIX}/metrics/summary", SummaryHandler),
    (f"{PREFIX}/agents", AgentsHandler),
    (f"{PREFIX}/messages", MessagesHandler),
    (f"{PREFIX}/conversations/{{id}}", ConversationHandler),
    (f"{PREFIX}/quarantine", QuarantineHandler),
    ("/health", HealthHandler),
]


def document() -> dict[str, Any]:
    """The OpenAPI 3 document of the JSON routes."""
    return openapi.document(
        {
            path: openapi.operation(
                (handler.__doc__ or "").strip(),
                handler.parameters,
                handler.response,
                handler.errors,
                path_parameter="id" if "{id}" in path else None,
            )
            for path, handler in API_ROUTES
        }
    )


class OpenApiHandler(ApiHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(document()))


class DocsHandler(ApiHandler):
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
