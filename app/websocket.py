"""The dashboard's websocket handler: Panel's, with a tab closed while it opens handled.

A browser may close a page's websocket after Bokeh made its connection and before it
gave the connection a session (a tab closed, or a link followed, while the page
opened). Bokeh's ``on_close`` then fails an assertion and Tornado logs an uncaught
exception for what is an ordinary end of a page.  Here such a connection is only
dropped.  Installed in place of Panel's handler, as Panel installs its own in place of
Bokeh's (the ``/ws`` entry of ``bokeh.server.urls.per_app_patterns``).

A page closed while the server writes to it is the same ordinary end.  Tornado hands
each write back as a task, and Panel drops the tasks of a session it destroys without
reading their outcome, so asyncio logs "Task exception was never retrieved" with a
``WebSocketClosedError`` traceback.  Here every write's outcome is read when it ends: a
closed socket is noted at debug level; whoever awaits the write still sees the error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bokeh.server.urls import per_app_patterns
from panel.io.server import WSHandler as PanelWSHandler
from tornado.websocket import WebSocketClosedError, WebSocketProtocol, WebSocketProtocol13

log = logging.getLogger("agentdash")


def _read_outcome(write: asyncio.Future[None]) -> None:
    """Read a finished write's outcome (so asyncio has nothing to report); a socket
    closed under it is only noted."""
    if write.cancelled():
        return
    error = write.exception()
    if isinstance(error, WebSocketClosedError):
        log.debug("a write to a closed websocket was dropped")
    elif error is not None:
        log.warning("a websocket write failed: %r", error)


class _Protocol(WebSocketProtocol13):
    def write_message(self, message: Any, binary: bool = False) -> Any:
        write = super().write_message(message, binary=binary)
        write.add_done_callback(_read_outcome)
        return write


class WSHandler(PanelWSHandler):
    def get_websocket_protocol(self) -> WebSocketProtocol | None:
        protocol = super().get_websocket_protocol()
        if isinstance(protocol, WebSocketProtocol13):  # Tornado's, with its writes' outcomes read
            return _Protocol(self, protocol.mask_outgoing, protocol.params)
        return protocol

    def on_close(self) -> None:
        connection = self.connection
        if connection is not None and getattr(connection, "_session", None) is None:
            log.info("websocket closed before its session opened: code=%s", self.close_code)
            bokeh: Any = self.application  # Bokeh's Tornado application
            bokeh.client_lost(connection)
            return
        super().on_close()


def install() -> None:
    """Serve ``/ws`` with :class:`WSHandler` (servers made afterwards)."""
    for index, entry in enumerate(per_app_patterns):
        if entry[0] == r"/ws" and entry[1] is not WSHandler:
            per_app_patterns[index] = (entry[0], WSHandler)
