"""A websocket closed before its session opened is dropped without an uncaught exception."""

from __future__ import annotations

from typing import Any

from bokeh.server.urls import per_app_patterns

from app import websocket


class Connection:
    _session = None


class Application:
    def __init__(self) -> None:
        self.lost: list[Any] = []

    def client_lost(self, connection: Any) -> None:
        self.lost.append(connection)


def test_a_connection_without_a_session_is_only_dropped() -> None:
    handler = websocket.WSHandler.__new__(websocket.WSHandler)  # no request: on_close only
    handler.connection = Connection()  # type: ignore[assignment]
    handler.application = Application()  # type: ignore[assignment]
    handler.close_code = 1001
    handler.on_close()  # Bokeh's own asserts the session
    assert handler.application.lost == [handler.connection]  # type: ignore[attr-defined]


def test_the_server_serves_websockets_with_it() -> None:
    websocket.install()
    assert dict(per_app_patterns)[r"/ws"] is websocket.WSHandler
