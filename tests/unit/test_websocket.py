"""A websocket closed before its session opened is dropped without an uncaught exception."""

from __future__ import annotations

import asyncio
import gc
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bokeh.server.urls import per_app_patterns
from tornado.websocket import WebSocketClosedError

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


def reported_after_a_closed_write(read: bool) -> list[Any]:
    """The exceptions asyncio reports once a write to a closed socket has ended and been
    collected: its outcome read by :func:`websocket._read_outcome` or not."""

    async def written() -> None:
        raise WebSocketClosedError()

    async def main() -> list[Any]:
        reported: list[Any] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: reported.append(context.get("exception")))
        task = asyncio.ensure_future(written())
        if read:
            task.add_done_callback(websocket._read_outcome)
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the task ran and its callbacks too
        del task
        gc.collect()  # a task's unretrieved exception is reported when it is collected
        return reported

    # A loop of its own, in a thread of its own: the suite's thread may be running one.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, main()).result()


def test_a_write_to_a_closed_socket_leaves_nothing_unretrieved() -> None:
    """A page closed while the server writes to it: nothing for asyncio to report."""
    assert reported_after_a_closed_write(read=True) == []


def test_an_unread_closed_write_is_what_asyncio_reports() -> None:
    """The check above can fail: the same write, its outcome unread, is reported."""
    reported = reported_after_a_closed_write(read=False)
    assert [type(error) for error in reported] == [WebSocketClosedError]
