"""Errors reach Sentry when SENTRY_DSN is set: the SDK's own transport, to a loopback collector."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.conftest import free_port

SEND = """
from app.monitoring import sentry
import sentry_sdk
assert sentry.init()
sentry_sdk.capture_message("agentdash test event")
sentry_sdk.flush(timeout=10)
"""


def test_an_event_reaches_the_dsn_with_the_tornado_integration() -> None:
    received: list[bytes] = []

    class Collector(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            received.append(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "SENTRY_DSN": f"http://public@127.0.0.1:{port}/1"}
        subprocess.run([sys.executable, "-c", SEND], env=env, check=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    events = b"".join(received)
    assert b"agentdash test event" in events
    assert b"tornado" in events  # the integration is on


def test_without_a_dsn_nothing_starts() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from app.monitoring import sentry; print(sentry.init())"],
        env={k: v for k, v in os.environ.items() if k != "SENTRY_DSN"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "False"
