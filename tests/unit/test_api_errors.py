"""Errors of the API's own making are JSON too: a handler that fails, a refused method."""

from __future__ import annotations

import json
from typing import Any

from tornado.testing import AsyncHTTPTestCase
from tornado.web import Application

from app.api.handlers import JsonHandler, NotFoundHandler


class Failing(JsonHandler):
    """A handler with a bug (no product route fails on purpose)."""

    def _compute(self, values: dict[str, Any], path: tuple[str, ...]) -> tuple[int, Any]:
        raise RuntimeError("secret detail of a bug")


class ErrorsTest(AsyncHTTPTestCase):
    def get_app(self) -> Application:
        return Application([("/fails", Failing), ("/.*", NotFoundHandler)])

    def test_a_failing_handler_answers_json_500_without_its_traceback(self) -> None:
        with self.assertLogs("tornado.application", "ERROR"):
            response = self.fetch("/fails")
        assert response.code == 500
        assert response.headers["Content-Type"].startswith("application/json")
        body = json.loads(response.body)
        assert body["error"] == "internal server error"
        assert "secret" not in response.body.decode()

    def test_a_refused_method_is_405_with_allow(self) -> None:
        response = self.fetch("/fails", method="POST", body="{}")
        assert response.code == 405
        assert response.headers["Allow"] == "GET"
        assert json.loads(response.body)["detail"] == "POST is not answered here: use GET"

    def test_an_unknown_path_is_404_whatever_the_method(self) -> None:
        for method, body in (("GET", None), ("DELETE", None), ("PUT", "x")):
            response = self.fetch("/nothing", method=method, body=body)
            assert response.code == 404, method
            assert json.loads(response.body)["error"] == "not found"
