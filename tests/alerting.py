"""What the alert tests share: a history with planted incidents, and a webhook receiver.

The history: three agents each replying once a minute, at half past the minute (so no
message lies on a five-minute step, where a window's inclusive ends would matter), with a
latency of 1 s and status ok, except

- an error burst: every reply of ``support-1`` fails from ``error_start`` to ``error_end``;
- a latency step: every reply of ``billing-1`` takes 6 s from ``slow_start`` to ``slow_end``.

All four instants are multiples of five minutes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

AGENTS = [
    {"id": "a-sup1", "name": "support-1", "kind": "support", "team": "care", "status": "active"},
    {"id": "a-sup2", "name": "support-2", "kind": "support", "team": "care", "status": "active"},
    {"id": "a-bill", "name": "billing-1", "kind": "billing", "team": "money", "status": "active"},
]


@dataclass(frozen=True)
class Planted:
    """A planted history: its end and the bounds of its incidents."""

    end: datetime
    error_start: datetime
    error_end: datetime
    slow_start: datetime
    slow_end: datetime
    messages: list[dict[str, Any]] = field(repr=False)


def planted(now: datetime | None = None, hours: int = 12) -> Planted:
    """``hours`` of history ending at the last five-minute step before ``now``."""
    now = now or datetime.now(UTC)
    end = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 5)
    start = end - timedelta(hours=hours)
    error_start, error_end = start + timedelta(hours=2), start + timedelta(hours=3)
    slow_start, slow_end = start + timedelta(hours=5), start + timedelta(hours=5, minutes=40)
    messages = []
    minute = start
    while minute < end:
        at = minute + timedelta(seconds=30)
        for agent in AGENTS:
            failing = agent["id"] == "a-sup1" and error_start <= at < error_end
            slow = agent["id"] == "a-bill" and slow_start <= at < slow_end
            messages.append(
                reply(
                    agent["id"],
                    at,
                    status="error" if failing else "ok",
                    latency=6000.0 if slow else 1000.0,
                )
            )
        minute += timedelta(minutes=1)
    return Planted(end, error_start, error_end, slow_start, slow_end, messages)


def reply(
    agent_id: str, at: datetime, status: str = "ok", latency: float = 1000.0
) -> dict[str, Any]:
    """An agent's reply document, in the default source field names."""
    stamp = at.isoformat()
    return {
        "id": f"m-{agent_id}-{stamp}",
        "conversationId": f"c-{agent_id}-{at:%Y%m%d%H}",
        "agentId": agent_id,
        "role": "agent",
        "timestamp": stamp,
        "latencyMs": latency,
        "tokensIn": 10,
        "tokensOut": 20,
        "status": status,
        "userId": "u-1",
    }


class Receiver:
    """A webhook on 127.0.0.1 (a thread running http.server): the JSON bodies it was sent,
    answering ``status`` (500 makes a failing notifier)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                with receiver._lock:
                    receiver.attempts += 1
                    if receiver.status < 400:
                        receiver.bodies.append(body)
                        receiver.headers.append(dict(self.headers))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def states(self) -> list[tuple[str, str | None, str]]:
        """(rule, group, state) of each alert notification received, in order."""
        with self._lock:
            return [
                (b["rule"], b["group"], b["state"]) for b in self.bodies if b.get("kind") == "alert"
            ]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def receiving(status: int = 200) -> Iterator[Receiver]:
    with Receiver(status) as receiver:
        yield receiver
