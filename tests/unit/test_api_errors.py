"""Errors of the API's own making are JSON too: a handler that fails, a refused method."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.ioloop import IOLoop
from tornado.web import Application

from app.api.handlers import JsonHandler, NotFoundHandler
from tests.conftest import free_port


class Failing(JsonHandler):
    """A handler with a bug (no product route fails on purpose)."""

    def _compute(self, values: dict[str, Any], path: tuple[str, ...]) -> tuple[int, Any]:
        raise RuntimeError("secret detail of a bug")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """The handlers on a Tornado server of their own, on a thread with its own loop."""
    port, started = free_port(), threading.Event()
    loops: list[IOLoop] = []

    def serve() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        Application([("/fails", Failing), ("/.*", NotFoundHandler)]).listen(port, "127.0.0.1")
        loops.append(IOLoop.current())
        started.set()
        loops[0].start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    yield f"http://127.0.0.1:{port}"
    loops[0].add_callback(loops[0].stop)
    thread.join(10)


def fetch(url: str, method: str = "GET") -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, method=method, data=None if method == "GET" else b"x")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_a_failing_handler_answers_json_500_without_its_traceback(url: str) -> None:
    status, headers, body = fetch(url + "/fails")
    assert status == 500
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"] == "internal server error"
    assert b"secret" not in body


def test_a_refused_method_is_405_with_allow(url: str) -> None:
    status, headers, body = fetch(url + "/fails", "POST")
    assert (status, headers["Allow"]) == (405, "GET")
    assert json.loads(body)["detail"] == "POST is not answered here: use GET"


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_an_unknown_path_is_404_whatever_the_method(url: str, method: str) -> None:
    status, _, body = fetch(url + "/nothing", method)
    assert status == 404
    assert json.loads(body)["error"] == "not found"
