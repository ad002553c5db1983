"""Log lines: plain text, or one JSON object a line (``AGENTDASH_LOG_FORMAT=json``).

Every HTTP request is logged once, when answered, by the ``agentdash.access``
logger with its user, route, status and duration (and timed in
``agentdash_http_request_seconds``): :func:`log_request` is the Tornado
application's ``log_function``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from tornado.web import RequestHandler

from app.monitoring.metrics import HTTP_SECONDS

access_log = logging.getLogger("agentdash.access")

FIELDS = ("user", "route", "duration")
"""What a request's line adds to every line's time, level, logger and message."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, user, route, duration."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **{name: getattr(record, name, None) for name in FIELDS},
        }
        for name in ("method", "status"):
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def use_format(log_format: str) -> None:
    """Give every handler of the root logger the chosen format (after Panel set them up)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    if log_format == "json":
        for handler in root.handlers:
            handler.setFormatter(JsonFormatter())
    access_log.setLevel(logging.INFO)


def route_of(handler: RequestHandler) -> str:
    """A bounded name for what answered: the API's declared path, else the handler's kind."""
    return str(getattr(handler, "route", None) or type(handler).__name__)


def _user(handler: RequestHandler) -> str | None:
    identity = getattr(handler, "identity", None)
    if identity is not None:
        return str(identity.name)
    try:
        user = handler.current_user
    except Exception:  # a handler whose sign-in fails has no user to log
        return None
    return None if user in (None, "default_user") else str(user)


def log_request(handler: RequestHandler) -> None:
    """Log and time one answered request (Tornado's ``log_function``)."""
    status = handler.get_status()
    seconds = handler.request.request_time()
    route = route_of(handler)
    HTTP_SECONDS.labels(route=route, status=str(status)).observe(seconds)
    user = _user(handler)
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    request = handler.request
    access_log.log(
        level,
        "%s %s %d %.1f ms user=%s",
        request.method,
        request.path,
        status,
        seconds * 1000,
        user or "-",
        extra={
            "user": user,
            "route": route,
            "duration": round(seconds, 6),
            "method": request.method,
            "status": status,
        },
    )
