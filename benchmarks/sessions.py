"""Open N Bokeh sessions on a served app and keep them live until stdin closes.

    python -m benchmarks.sessions http://127.0.0.1:5006/main?window=30d 50 [COOKIE]

The URL's query reaches the sessions as a page's does (``pn.state.location``).

With a ``COOKIE`` header (a signed-in user's), each session opens as a
browser's does: the page is read with the cookie, and its websocket connects
with the cookie and the page's own (signed) session token.

Each session speaks the Bokeh server protocol as a browser tab does: it opens
the session's websocket, pulls the document, says the document is ready
(Panel waits for that before it treats the session as loaded) and then reads
every update the server sends.  The updates are read, not applied: the server
does the same work either way, and one client process can hold many sessions.
(``bokeh.client`` sessions apply them, but recurse once per message and fail
after a thousand or so.)  Prints ``ready N`` once all are open, and when stdin closes
``done N sessions, M messages, E errors`` (a session the server closed or broke is an
error).
"""

from __future__ import annotations

import asyncio
import re
import sys
from urllib.parse import urlsplit, urlunsplit

from bokeh.client.util import websocket_url_for_server_url
from bokeh.client.websocket import WebSocketClientConnectionWrapper
from bokeh.document import Document
from bokeh.document.events import MessageSentEvent
from bokeh.events import DocumentReady
from bokeh.protocol import Protocol
from bokeh.protocol.receiver import Receiver
from bokeh.util.token import generate_jwt_token, generate_session_id
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

PROTOCOL = Protocol()


async def reply(connection: WebSocketClientConnectionWrapper, msgtype: str) -> None:
    """Read messages until one of type ``msgtype`` has arrived whole."""
    receiver = Receiver(PROTOCOL)
    while True:
        fragment = await connection.read_message()
        if fragment is None:
            raise RuntimeError(f"the server closed the session before {msgtype}")
        message = await receiver.consume(fragment)
        if message is not None and message.msgtype == msgtype:
            return


async def session_token(url: str, cookie: str) -> str:
    """The session token of the page at ``url``, read as the user of ``cookie``."""
    page = await AsyncHTTPClient().fetch(url, headers={"Cookie": cookie})
    found = re.search(r'"token"\s*:\s*"([^"]+)"', page.body.decode())
    if found is None:
        raise RuntimeError(f"no session token in the page at {url}")
    return found[1]


async def open_session(url: str, cookie: str | None = None) -> WebSocketClientConnectionWrapper:
    parts = urlsplit(url)
    if cookie is None:
        token, headers = generate_jwt_token(generate_session_id()), {}
    else:
        token = await session_token(url, cookie)
        headers = {"Cookie": cookie, "Origin": f"{parts.scheme}://{parts.netloc}"}
    # A session the websocket makes reads its arguments from the websocket's own URL.
    socket_url = websocket_url_for_server_url(urlunsplit(parts._replace(query="")))
    socket = await websocket_connect(
        HTTPRequest(socket_url + (f"?{parts.query}" if parts.query else ""), headers=headers),
        subprotocols=["bokeh", token],
        max_message_size=100 * 2**20,
    )
    connection = WebSocketClientConnectionWrapper(socket)
    await reply(connection, "ACK")
    await PROTOCOL.create("PULL-DOC-REQ").send(connection)
    await reply(connection, "PULL-DOC-REPLY")
    ready = MessageSentEvent(Document(), "bokeh_event", DocumentReady())
    await PROTOCOL.create("PATCH-DOC", [ready]).send(connection)
    return connection


RECEIVED = [0]  # messages read by all sessions


async def drain(connection: WebSocketClientConnectionWrapper) -> None:
    """Read what the server sends until it closes the session."""
    while await connection.read_message() is not None:
        RECEIVED[0] += 1


async def main() -> None:
    url, count = sys.argv[1], int(sys.argv[2])
    cookie = sys.argv[3] if len(sys.argv) > 3 else None
    readers = []
    for _ in range(count):  # one at a time: the server builds sessions one after another
        readers.append(asyncio.create_task(drain(await open_session(url, cookie))))
    print(f"ready {count}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    # A reader that ended before now lost its session: the server closed or broke it.
    errors = sum(reader.done() for reader in readers)
    for reader in readers:
        reader.cancel()
    print(f"done {count} sessions, {RECEIVED[0]} messages, {errors} errors", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
