"""The OpenAPI 3 document of the REST API.

Parameters come from their declarations (:mod:`app.api.parameters`); the
schemas of the answers are written here, from the frames' columns where they
are rows of a frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.api.parameters import Parameter
from pipelines.schema import MESSAGE_DTYPES

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
            "error_rate": {
                "type": "number",
                "nullable": True,
                "description": "failed agent replies / replies; null without agent replies",
            },
            "latency_ms": {
                "type": "object",
                "properties": {"p50": _LATENCY, "p95": _LATENCY, "p99": _LATENCY},
            },
            "tokens": {
                "type": "object",
                "properties": {"in": {"type": "integer"}, "out": {"type": "integer"}},
            },
            "cost": {
                "type": "object",
                "properties": {
                    "usd": {
                        "type": "number",
                        "description": "cost of the priced messages, at today's prices",
                    },
                    "unpriced_messages": {
                        "type": "integer",
                        "description": "messages whose model has no price: left out of usd",
                    },
                },
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
            "cost_usd": "float64",
        }
    ),
    "Quarantine": {
        "type": "object",
        "properties": {
            "count": {"type": "integer", "description": "documents quarantined, each once"},
            "reasons": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "documents by kind of reason",
            },
            "documents": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "nullable": True},
                        "container": {"type": "string"},
                        "reason": {"type": "string"},
                        "seen_at": {"type": "string", "format": "date-time"},
                        "document": {
                            "nullable": True,
                            "description": "with raw=1: the document as read",
                        },
                    },
                },
            },
        },
    },
    "Message": _object(MESSAGE_DTYPES),
    "MessageWithContent": _object({**MESSAGE_DTYPES, "content": "str"}),
}


SECURITY: dict[str, dict[str, Any]] = {
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "AGENTDASH_AUTH=basic: a user of the users file",
    },
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "AGENTDASH_AUTH=jwt: claims sub, roles (viewer, admin), teams; exp required",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "user",
        "description": "the sign-in cookie of the browser's login page (any AGENTDASH_AUTH)",
    },
}
"""How a caller signs in, by ``AGENTDASH_AUTH``; with ``none`` nothing is asked."""


def operation(
    summary: str,
    parameters: tuple[Parameter, ...],
    response: Mapping[str, Any],
    errors: Mapping[str, str],
    path_parameter: str | None = None,
    secured: bool = True,
) -> dict[str, Any]:
    """One GET operation: its parameters, its answer and its error answers; ``secured``
    when it needs sign-in (any of :data:`SECURITY`; open probes are not)."""
    listed = [p.openapi() for p in parameters]
    if path_parameter is not None:
        listed.append(
            {"name": path_parameter, "in": "path", "required": True, "schema": {"type": "string"}}
        )
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": response}}},
        **{status: {"description": why, **error} for status, why in errors.items()},
    }
    security: list[dict[str, list[str]]] = [{name: []} for name in SECURITY] if secured else []
    return {
        "get": {
            "summary": summary,
            "parameters": listed,
            "responses": responses,
            "security": security,
        }
    }


def document(paths: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The OpenAPI 3 document of ``paths`` (path -> operation)."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "agentdash API",
            "version": "1",
            "description": "Metrics, agents and messages of the live dashboard, as JSON.",
        },
        "paths": dict(paths),
        "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY},
    }
