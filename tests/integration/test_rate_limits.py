"""Rate limits answer 429 with Retry-After, then serve again; the log is one JSON object a line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.integration.test_sign_in import call
from tests.ui.conftest import ServedApp, make_served_app

SUMMARY = "/api/v1/metrics/summary"
PRINTED = ("store: ", "agentdash: serving")
"""What the command prints on its standard output, beside the log."""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    served = make_served_app(
        tmp_path_factory.mktemp("limits"),
        messages=500,
        days=1,
        AGENTDASH_RATE_LIMIT="5 per 2 seconds",
        AGENTDASH_LOG_FORMAT="json",
    )
    served.start()
    yield served
    served.stop()


def test_over_the_limit_a_client_is_told_when_to_retry_and_then_served(app: ServedApp) -> None:
    answers = [call(app.url + SUMMARY) for _ in range(12)]
    statuses = [status for status, _, _ in answers]
    # Five a window: the first are served (the server's start may have used one), then 429s.
    assert statuses[0] == 200 and 429 in statuses
    assert statuses.count(200) <= 5
    _, headers, body = next(answer for answer in answers if answer[0] == 429)
    assert 1 <= int(headers["Retry-After"]) <= 2
    assert json.loads(body)["error"] == "too many requests"
    # The limit is per client: its new pages wait too; probes are never counted.
    assert call(app.url + "/")[0] == 429
    assert call(app.url + "/health/live")[0] == 200
    wait_until(
        lambda: call(app.url + SUMMARY)[0] == 200,
        timeout=int(headers["Retry-After"]) + 10,
        message="the API to serve again",
    )


def records(app: ServedApp) -> list[dict[str, Any]]:
    lines = [line for line in app.log().splitlines() if line and not line.startswith(PRINTED)]
    return [json.loads(line) for line in lines]


def answered(app: ServedApp) -> list[dict[str, Any]]:
    """The log lines of requests for the summary that were answered 200."""
    return [
        r
        for r in records(app)
        if r["logger"] == "agentdash.access" and r["route"] == SUMMARY and r["status"] == 200
    ]


def test_each_log_line_is_a_json_object_and_each_request_has_one(app: ServedApp) -> None:
    before = len(answered(app))
    wait_until(lambda: call(app.url + SUMMARY)[0] == 200, message="a request within the limit")
    wait_until(lambda: len(answered(app)) == before + 1, message="its one log line")
    logged = records(app)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in logged)
    requests = [r for r in logged if r["logger"] == "agentdash.access"]
    for record in requests:
        assert {"user", "route", "duration", "status", "method"} <= set(record)
        assert isinstance(record["duration"], float)
    assert answered(app)[-1]["user"] == "anonymous"
    refused = [r for r in requests if r["status"] == 429]
    assert refused and {r["route"] for r in refused} == {"refused"}
    assert any(SUMMARY in r["message"] for r in refused)
