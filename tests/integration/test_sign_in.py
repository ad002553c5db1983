"""Sign-in over raw HTTP and websockets: what a client without good credentials gets.

A served app with ``AGENTDASH_AUTH=jwt`` (HS256, an audience and an issuer) and
one with ``basic`` (a users file): tokens that are missing, expired, forged or
meant for another audience are refused on the API, the pages, the websocket and
``/metrics``; probes answer anyone but tell details to admins only; a foreign
``Host`` or websocket ``Origin`` is refused.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.ui.conftest import ServedApp, add_user, jwt_token, make_signed_in_app

SUMMARY = "/api/v1/metrics/summary"
token = jwt_token


ADMIN = token(sub="root", roles=["admin"])


@pytest.fixture(scope="module")
def jwt_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    app = make_signed_in_app(tmp_path_factory.mktemp("jwt"), "jwt", messages=2000, days=1)
    app.start()
    yield app
    app.stop()


def call(url: str, headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
    """Status, headers (any case) and body of ``GET url``, redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.mark.parametrize(
    ("credentials", "status", "says"),
    [
        ({}, 401, "sign in"),
        (bearer(token(exp=time.time() - 5)), 401, "expired"),
        (bearer(token(key="another-key-entirely-0123456789abcdef")), 401, "refused"),
        (bearer(token(aud="someone-else")), 401, "audience"),
        (bearer(token(iss="https://elsewhere.test/")), 401, "issuer"),
        (bearer(token(exp=None)), 401, "exp"),
        (bearer("not.a.token"), 401, "refused"),
        (bearer(token(roles=["owner"])), 403, "no role"),
        ({"Cookie": f"agentdash_token={token(exp=time.time() - 5)}"}, 401, "expired"),
    ],
    ids=[
        "anonymous",
        "expired",
        "forged",
        "wrong-audience",
        "wrong-issuer",
        "no-exp",
        "garbage",
        "no-role",
        "expired-cookie",
    ],
)
def test_the_api_refuses_what_is_not_a_good_token(
    jwt_app: ServedApp, credentials: dict[str, str], status: int, says: str
) -> None:
    answered, headers, body = call(jwt_app.url + SUMMARY, credentials)
    assert answered == status
    assert headers["Content-Type"].startswith("application/json")
    assert says in body.decode()
    if status == 401:
        assert headers["WWW-Authenticate"].startswith("Bearer")


def test_a_good_token_reads_the_api_as_header_or_cookie(jwt_app: ServedApp) -> None:
    for credentials in (bearer(token()), {"Cookie": f"agentdash_token={token()}"}):
        status, _, body = call(jwt_app.url + SUMMARY + "?window=24h", credentials)
        assert status == 200
        assert b'"messages"' in body


def test_the_openapi_document_says_which_routes_need_sign_in(jwt_app: ServedApp) -> None:
    status, _, body = call(jwt_app.url + "/api/v1/openapi.json", bearer(token()))
    assert status == 200
    paths = json.loads(body)["paths"]
    assert paths["/api/v1/messages"]["get"]["security"]
    assert paths["/api/v1/quarantine"]["get"]["security"]
    assert paths["/health/ready"]["get"]["security"] == []


def test_quarantined_documents_are_for_admins(jwt_app: ServedApp) -> None:
    # They may hold raw data of any team.
    status, _, body = call(jwt_app.url + "/api/v1/quarantine", bearer(token()))
    assert status == 403 and b"admin" in body
    status, _, body = call(jwt_app.url + "/api/v1/quarantine", bearer(ADMIN))
    assert status == 200 and "count" in json.loads(body)


def test_pages_send_anonymous_callers_to_sign_in(jwt_app: ServedApp) -> None:
    status, headers, _ = call(jwt_app.url + "/?window=7d")
    assert status == 302
    assert headers["Location"].startswith("./login?next=")
    status, _, body = call(jwt_app.url + "/", {"Cookie": f"agentdash_token={token()}"})
    assert status == 200
    assert b"Bokeh" in body
    status, _, body = call(jwt_app.url + "/login")
    assert status == 200
    assert b"Access token" in body


def test_websockets_refuse_anonymous_callers_and_foreign_origins(jwt_app: ServedApp) -> None:
    origin = jwt_app.url
    cookie = f"agentdash_token={token()}"

    async def handshake(headers: dict[str, str]) -> int:
        request = HTTPRequest(f"ws://127.0.0.1:{jwt_app.port}/ws", headers=headers)
        try:
            connection = await websocket_connect(request, subprotocols=["bokeh", "x"])
        except HTTPClientError as exc:
            return exc.code
        connection.close()
        return 101

    async def all_three() -> list[int]:
        return [
            await handshake({"Origin": origin}),
            await handshake({"Origin": "http://evil.example", "Cookie": cookie}),
            await handshake({"Origin": origin, "Cookie": cookie}),
        ]

    # On a thread of its own: the browser tests' event loop may be running on this one.
    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(asyncio.run, all_three()).result() == [403, 403, 101]


def test_a_foreign_host_is_refused_on_pages_and_api(jwt_app: ServedApp) -> None:
    rebound = {"Host": "attacker.example:80", **bearer(token())}
    for path in ("/", SUMMARY, "/metrics"):
        status, _, body = call(jwt_app.url + path, rebound)
        assert status == 400
        assert b"AGENTDASH_ALLOWED_ORIGINS" in body


def test_probes_answer_anyone_and_tell_details_to_admins_only(jwt_app: ServedApp) -> None:
    status, _, body = call(jwt_app.url + "/health/live")
    assert (status, body) == (200, b'{"status": "ok"}')
    for credentials in ({}, bearer(token()), {"Host": "elsewhere:80", **bearer(ADMIN)}):
        for path in ("/health/ready", "/health"):
            status, _, body = call(jwt_app.url + path, credentials)
            assert status == 200
            assert set(json.loads(body)) == {"status", "age_seconds"}
    status, _, body = call(jwt_app.url + "/health/ready", bearer(ADMIN))
    details = json.loads(body)
    assert {"pid", "source", "frames", "refreshes", "error"} <= set(details)


def test_metrics_need_a_signed_in_caller(jwt_app: ServedApp) -> None:
    assert call(jwt_app.url + "/metrics")[0] == 401
    status, headers, body = call(jwt_app.url + "/metrics", bearer(token()))
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert {"agentdash_http_request_seconds", "agentdash_documents_read"} <= names


def test_every_answer_carries_the_security_headers(jwt_app: ServedApp) -> None:
    for path, credentials in (("/", {}), (SUMMARY, {}), (SUMMARY, bearer(token())), ("/login", {})):
        _, headers, _ = call(jwt_app.url + path, credentials)
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "same-origin"


@pytest.fixture(scope="module")
def basic_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    app = make_signed_in_app(tmp_path_factory.mktemp("basic"), "basic", messages=500, days=1)
    add_user(app, "bea", "viewer", "bea's password")
    app.start()
    yield app
    app.stop()


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def test_http_basic_takes_the_users_file_and_a_removed_user_is_refused(
    basic_app: ServedApp,
) -> None:
    assert call(basic_app.url + SUMMARY, basic("bea", "wrong"))[0] == 401
    assert call(basic_app.url + SUMMARY, basic("nobody", "bea's password"))[0] == 401
    assert call(basic_app.url + SUMMARY, basic("bea", "bea's password"))[0] == 200
    basic_app.command("users", "remove", "bea")
    status, _, body = call(basic_app.url + SUMMARY, basic("bea", "bea's password"))
    assert status == 401
    assert b"wrong user name or password" in body


def test_serving_with_sign_in_needs_a_cookie_secret(basic_app: ServedApp) -> None:
    env = {k: v for k, v in basic_app.env.items() if k != "AGENTDASH_COOKIE_SECRET"}
    result = ServedApp(basic_app.workdir, env=env).command("serve", "--port", "1", check=False)
    assert result.returncode == 2
    assert "needs AGENTDASH_COOKIE_SECRET" in result.stderr


def test_sign_in_off_serves_loopback_only_unless_allowed(basic_app: ServedApp) -> None:
    env = {k: v for k, v in basic_app.env.items() if not k.startswith("AGENTDASH_AUTH")}
    result = ServedApp(basic_app.workdir, env=env).command(
        "serve", "--address", "0.0.0.0", "--port", "1", check=False
    )
    assert result.returncode == 2
    assert "--allow-anonymous" in result.stderr
