"""The dashboard's websocket handler: Panel's, with a tab closed while it opens handled.

A browser may close a page's websocket after Bokeh made its connection and before it
gave the connection a session (a tab closed, or a link followed, while the page
opened). Bokeh's ``on_close`` then fails an assertion and Tornado logs an uncaught
exception for what is an ordinary end of a page.  Here such a connection is only
dropped.  Installed in place of Panel's handler, as Panel installs its own in place of
Bokeh's (the ``/ws`` entry of ``bokeh.server.urls.per_app_patterns``).
"""

from __future__ import annotations

import logging
from typing import Any

from bokeh.server.urls import per_app_patterns
from panel.io.server import WSHandler as PanelWSHandler

log = logging.getLogger("agentdash")


class WSHandler(PanelWSHandler):
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
