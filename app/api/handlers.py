"""The REST API's Tornado handlers: sign-in, the query, an answer on a worker thread, JSON out.

Every API route asks the server's sign-in (:func:`app.auth.access`) who is
calling: no credentials or refused ones get 401, a user without the role a
route needs 403, and what a user reads is cut to their teams (the pipelines'
``teams``).  The health probes are open but tell only status and age to
anyone but admins; ``/metrics`` needs a signed-in user.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tornado.httputil import HTTPServerRequest
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
from app.auth import Identity, access
from app.edge import host_allowed
from app.monitoring.metrics import exposition, watch
from pipelines.errors import (
    AgentdashError,
    AuthError,
    ConfigError,
    QueryError,
    RoleError,
    SourceError,
)
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


def _loopback(request: HTTPServerRequest) -> bool:
    address = request.remote_ip or ""
    return address == "::1" or address.startswith("127.")


class Refused(Exception):
    """A request the sign-in refuses: its status, error and the detail a caller can act on."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.error = {401: "unauthorized", 403: "forbidden"}.get(status, "sign-in unavailable")


def identify(request: HTTPServerRequest, admin: bool = False) -> Identity:
    """The signed-in caller of ``request``; :class:`Refused` (401/403) otherwise."""
    sign_in = access()
    try:
        identity = sign_in.identify(request)
    except RoleError as exc:
        raise Refused(403, str(exc)) from None
    except AuthError as exc:
        raise Refused(401, str(exc)) from None
    except ConfigError as exc:  # e.g. a users file made unreadable: refuse, and say why
        raise Refused(503, str(exc)) from None
    if identity is None:
        how = {"basic": "HTTP Basic credentials", "jwt": "Authorization: Bearer <token>"}
        raise Refused(401, f"sign in: send {how.get(sign_in.mode, 'the sign-in cookie')}")
    if admin and not identity.admin:
        raise Refused(403, f"{identity.name} is a {identity.role}: this needs the admin role")
    return identity


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
    """Signs the caller in, checks the query, answers on a worker thread, reports errors as
    JSON.

    Subclasses give ``parameters``, the OpenAPI ``response`` schema and the
    ``errors`` they may answer (status -> why), a docstring (the operation's
    summary) and ``answer``; ``admin`` when only admins may ask; a ``probe`` (health)
    answers on a pool of its own.  ``route`` is the declared path, for logs and metrics.
    """

    parameters: tuple[Parameter, ...] = ()
    response: Mapping[str, Any] = {"type": "object"}
    errors: Mapping[str, str] = {
        "400": "an unknown parameter, or one that breaks what this document says of it",
        "401": "no credentials, or credentials refused (wrong, expired, forged)",
        "403": "signed in without the role this needs",
        "429": "over the rate limit: retry after the Retry-After seconds",
        "503": "the source fails and no data is held",
    }
    admin = False
    probe = False
    secured = True  # documented as needing sign-in
    route = "api"
    identity: Identity | None = None

    def prepare(self) -> None:
        try:
            self.identity = identify(self.request, admin=self.admin)
        except Refused as exc:
            if exc.status == 401 and access().mode in ("basic", "jwt"):
                scheme = "Basic" if access().mode == "basic" else "Bearer"
                self.set_header("WWW-Authenticate", f'{scheme} realm="agentdash"')
            self.write_json(exc.status, {"error": exc.error, "detail": exc.detail})

    @property
    def scope(self) -> list[str] | None:
        """The teams the caller may read (the pipelines' ``teams``)."""
        assert self.identity is not None  # set by prepare, or the request was refused
        return self.identity.scope

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        raise NotImplementedError

    def _compute(self, values: dict[str, Any], path: tuple[str, ...]) -> tuple[int, Any]:
        frames = LiveFrames.default()
        live.ensure_refresher(frames)  # keeps the frames this process serves up to date
        watch(frames)
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
    "422": "a window or filter the pipelines refuse",
}


class SummaryHandler(JsonHandler):
    """KPIs of a window of messages."""

    route = "/api/v1/metrics/summary"

    parameters = FILTERS
    response = {"$ref": "#/components/schemas/Summary"}
    errors = _WINDOWED_ERRORS

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        return 200, answers.summary(messages_pipeline({**values, "teams": self.scope}))


class AgentsHandler(JsonHandler):
    """One row per agent: its attributes and the metrics of its messages in the window."""

    route = "/api/v1/agents"

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
        messages = messages_pipeline({**values, "teams": self.scope})
        return 200, answers.agents(messages, AgentsPipeline().follow(messages))


class MessagesHandler(JsonHandler):
    """Messages of a window, newest first, a page at a time (their text: see conversations)."""

    route = "/api/v1/messages"

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
        pipeline = messages_pipeline({**values, "teams": self.scope})
        return 200, answers.messages(pipeline, page.get("limit", 100), page.get("cursor"))


class ConversationHandler(JsonHandler):
    """Every message of one conversation with its text, oldest first."""

    route = "/api/v1/conversations/{id}"

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
    errors = {**JsonHandler.errors, "404": "no such conversation (or none of the caller's teams)"}

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        (conversation_id,) = path
        # Another team's conversation has no message in the scope: 404, as if there were none.
        turns = MessagesPipeline(teams=self.scope).conversation(conversation_id)
        return 200, answers.conversation(conversation_id, turns)


class QuarantineHandler(JsonHandler):
    """Documents that could not be read: how many, why, and the latest of them (admins)."""

    route = "/api/v1/quarantine"

    parameters = QUARANTINE
    response = {"$ref": "#/components/schemas/Quarantine"}
    errors = {
        "400": "an unknown or malformed parameter",
        "401": "no credentials, or credentials refused (wrong, expired, forged)",
        "403": "signed in without the admin role",
        "503": "where quarantined documents are kept does not answer",
    }
    admin = True

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        documents = LiveFrames.default().quarantine
        return 200, documents.listing(values.get("limit", 100), bool(values.get("raw")))


OPEN_HEALTH = ("status", "age_seconds")
"""What the probes tell anyone; the rest (paths, endpoints, process ids, errors) is for admins."""


class ReadyHandler(JsonHandler):
    """Ready: data can be served (``ok``, or ``stale`` while the source fails), with its age;
    503 with ``no data`` when none can. Admins also get the source, cache, frames, refreshes
    and errors."""

    route = "/health/ready"
    errors = {
        "400": "an unknown or malformed parameter",
        "503": "no data can be served: the source fails and nothing is held",
    }
    secured = False
    probe = True

    def prepare(self) -> None:
        # Open to probes: credentials only decide how much the answer tells.
        self.details = False
        hosts = sorted(getattr(self.application, "websocket_origins", ()))
        if not host_allowed(self.request, hosts):
            return
        if not access().on:
            self.details = _loopback(self.request)
            return
        with contextlib.suppress(Refused):
            self.details = identify(self.request, admin=True) is not None

    def answer(self, values: dict[str, Any], *path: str) -> tuple[int, Any]:
        frames = LiveFrames.default()
        refresher = live.ensure_refresher(frames)
        error = None
        try:
            for pipeline in (MessagesPipeline(), AgentsPipeline()):
                frames.get(pipeline.spec())  # a process that served nothing yet loads them now
        except SourceError as exc:
            error = str(exc)
        status, body = answers.health(
            frames.status(),
            error=error,
            refresher={
                "period_seconds": refresher.period,
                "cycles": refresher.cycles,
                "running": refresher.running,
            },
            extra={
                "pid": os.getpid(),
                "sessions": live.session_count(),
                "alerts": live.alert_stats(frames),
            },
        )
        return status, body if self.details else {k: body[k] for k in OPEN_HEALTH}


class LiveHandler(RequestHandler):
    """The process is up and its event loop answers (nothing is read)."""

    route = "/health/live"

    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"status": "ok"}))


class MetricsHandler(RequestHandler):
    """The server's metrics in the Prometheus text format, for a signed-in caller."""

    route = "/metrics"

    def get(self) -> None:
        try:
            identify(self.request)
        except Refused as exc:
            self.set_status(exc.status)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps({"error": exc.error, "detail": exc.detail}))
            return
        watch(LiveFrames.default())
        body, content_type = exposition()
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)


class NotFoundHandler(JsonHandler):
    """Any other path under the API prefix, whatever the method (to a signed-in caller)."""

    route = "/api/v1/*"

    def prepare(self) -> None:
        super().prepare()
        if not self._finished:
            self.write_json(404, {"error": "not found", "detail": f"no API at {self.request.path}"})


API_ROUTES: list[tuple[str, type[JsonHandler]]] = [
    (f"{PREFIX}/metrics/summary", SummaryHandler),
    (f"{PREFIX}/agents", AgentsHandler),
    (f"{PREFIX}/messages", MessagesHandler),
    (f"{PREFIX}/conversations/{{id}}", ConversationHandler),
    (f"{PREFIX}/quarantine", QuarantineHandler),
    ("/health/ready", ReadyHandler),
    ("/health", ReadyHandler),
]


def document() -> dict[str, Any]:
    """The OpenAPI 3 document of the JSON routes, as this server answers them: with
    ``AGENTDASH_AUTH=none`` no route asks for credentials."""
    signed_in = access().on
    return openapi.document(
        {
            path: openapi.operation(
                (handler.__doc__ or "").strip(),
                handler.parameters,
                handler.response,
                handler.errors,
                path_parameter="id" if "{id}" in path else None,
                secured=handler.secured and signed_in,
            )
            for path, handler in API_ROUTES
        }
    )


class OpenApiHandler(JsonHandler):
    route = f"{PREFIX}/openapi.json"

    async def get(self, *path: str) -> None:
        self.write_json(200, document())


class DocsHandler(JsonHandler):
    route = f"{PREFIX}/docs"

    async def get(self, *path: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(DOCS_PAGE.read_bytes())


ROUTES: list[tuple[str, type[RequestHandler]]] = [
    *((path.replace("{id}", "([^/]+)"), handler) for path, handler in API_ROUTES),
    ("/health/live", LiveHandler),
    ("/metrics", MetricsHandler),
    (f"{PREFIX}/openapi.json", OpenApiHandler),
    (f"{PREFIX}/docs/?", DocsHandler),
    (f"{PREFIX}/.*", NotFoundHandler),
]
"""Tornado routes, for ``panel serve --plugins app.api`` or ``pn.serve(extra_patterns=...)``."""
