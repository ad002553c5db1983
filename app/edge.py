"""What the server does to every request before its handler, and to every answer.

- :class:`Gate`, the first rule of the Tornado router: refuses a request whose
  ``Host`` is not one this server answers to (DNS rebinding: a foreign page
  that renamed itself to this server's address is refused, since its ``Host``
  is its own name), and counts new pages, sign-ins and API requests against
  the rate limits, per client address and per user (429 with ``Retry-After``);
- :class:`SecurityHeaders`, an output transform: ``X-Content-Type-Options``,
  ``Referrer-Policy``, ``X-Frame-Options`` and CSP ``frame-ancestors`` on
  every answer.

Allowed hosts are the websocket origins (``AGENTDASH_ALLOWED_ORIGINS`` and the
server's own address), so a page is served exactly where its websocket may
connect from.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from bokeh.server.util import check_allowlist
from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.routing import Matcher
from tornado.web import OutputTransform, RequestHandler

from app.auth.access import Access
from app.rate_limits import RateLimits
from pipelines.errors import AuthError

PROBES = frozenset({"/health", "/health/live", "/health/ready"})
"""Open to any caller and any Host (orchestrators probe by address); they tell status only."""

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


def host_allowed(request: HTTPServerRequest, hosts: Sequence[str]) -> bool:
    return check_allowlist((request.host or "").lower(), hosts)


class Gate(Matcher):
    """Matches (and so refuses, through :class:`Refusal`) the requests not to be served."""

    def __init__(
        self,
        hosts: Sequence[str],
        access: Access,
        limits: RateLimits | None,
        pages: Collection[str],
    ) -> None:
        self.hosts = list(hosts)
        self.access = access
        self.limits = limits
        self.pages = frozenset(pages)

    def counted(self, request: HTTPServerRequest) -> bool:
        """Whether a request counts against the rate limits: API calls, /metrics,
        sign-ins and new pages (not their websockets, static files or probes)."""
        path = request.path
        if path.startswith("/api/") or path == "/metrics":
            return True
        return (request.method == "POST" and path == "/login") or (
            request.method == "GET" and path in self.pages
        )

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        if request.path in PROBES:
            return None
        if not host_allowed(request, self.hosts):
            return _refuse(
                400,
                "host not allowed",
                f"this server does not answer to Host {request.host!r}: "
                "add it to AGENTDASH_ALLOWED_ORIGINS",
            )
        if self.limits is None or not self.counted(request):
            return None
        keys = [f"ip:{request.remote_ip}"]
        wait = self.limits.hit(*keys)
        if wait is None:
            try:
                identity = self.access.identify(request)
            except AuthError:
                identity = None  # the handler refuses it; the address was counted
            if identity is not None and self.access.on:
                wait = self.limits.hit(f"user:{identity.name}")
        if wait is None:
            return None
        return _refuse(
            429,
            "too many requests",
            f"over the rate limit: retry in {wait:.0f} s",
            {"Retry-After": f"{wait:.0f}"},
        )


def _refuse(
    status: int, error: str, detail: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    refusal = {"status": status, "error": error, "detail": detail, "headers": headers or {}}
    # Tornado hands path arguments to the handler as text.
    return {"path_args": [], "path_kwargs": {"refusal": json.dumps(refusal)}}


class Refusal(RequestHandler):
    """Answers what :class:`Gate` refused: JSON to API clients, a line of text to browsers."""

    route = "refused"  # in logs and metrics: the paths refused are any a client makes up

    def prepare(self) -> None:
        refusal = json.loads(self.path_kwargs["refusal"])
        self.set_status(refusal["status"])
        for name, value in refusal["headers"].items():
            self.set_header(name, value)
        if self.request.path.startswith("/api/") or self.request.path == "/metrics":
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps({"error": refusal["error"], "detail": refusal["detail"]}))
        else:
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(f"{refusal['error']}: {refusal['detail']}\n")


class SecurityHeaders(OutputTransform):
    """Adds :data:`HEADERS` to every answer that does not set them itself."""

    def transform_first_chunk(
        self, status_code: int, headers: HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, HTTPHeaders, bytes]:
        for name, value in HEADERS.items():
            if name not in headers:
                headers[name] = value
        return status_code, headers, chunk
