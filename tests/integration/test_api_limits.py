"""What a hostile or careless client may send the served API: every answer JSON, bounded work."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipelines import metrics
from pipelines.cache import MemoryFrameCache
from pipelines.live import LiveFrames
from pipelines.pipeline import MessagesPipeline
from pipelines.sources.local import LocalSource
from tests.integration.test_api import query
from tests.ui.conftest import ServedApp, serving

API = "/api/v1"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    with serving(tmp_path_factory.mktemp("limits"), messages=3000, days=10) as served:
        yield served


def request(app: ServedApp, path: str, method: str = "GET") -> tuple[int, Any, Any]:
    """Status, headers and JSON body of a request, error statuses included."""
    req = urllib.request.Request(
        app.url + path, method=method, data=b"" if method != "GET" else None
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.load(error)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z"),
        ("0001-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        ("0001-01-01T00:00:00+01:00", "2026-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59Z", "2026-01-01T00:00:00Z"),
    ],
)
def test_dates_out_of_range_are_400(app: ServedApp, start: str, end: str) -> None:
    for path in ("/metrics/summary", "/messages", "/agents"):
        status, _, body = request(app, f"{API}{path}{query(start=start, end=end)}")
        assert status == 400, path
        assert body["error"] == "invalid parameter" and "out of range" in body["detail"]


def test_a_cursor_of_thousands_of_nested_brackets_is_refused(app: ServedApp) -> None:
    cursor = base64.urlsafe_b64encode(b"[" * 5000).decode()
    status, _, body = request(app, f"{API}/messages{query(cursor=cursor)}")
    assert (status, body["error"]) == (422, "invalid query")


@pytest.mark.parametrize("path", ["/metrics/summary", "/quarantine", "/openapi.json", "/docs"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_with_allow(app: ServedApp, path: str, method: str) -> None:
    status, headers, body = request(app, API + path, method)
    assert (status, headers["Allow"]) == (405, "GET")
    assert body["error"] == "method not allowed"


def test_explicit_windows_are_answered_without_being_kept_live(app: ServedApp) -> None:
    reference = LiveFrames(LocalSource(app.store), MemoryFrameCache())
    now = datetime.now(UTC).replace(microsecond=0)
    windows = [(now - timedelta(hours=h + 2), now - timedelta(hours=h)) for h in range(0, 12, 2)]
    windows += [(now - timedelta(days=d + 1), now - timedelta(days=d)) for d in range(3, 9)]
    for start, end in windows:
        status, _, body = request(
            app, f"{API}/metrics/summary{query(start=start.isoformat(), end=end.isoformat())}"
        )
        assert status == 200
        expected = MessagesPipeline(frames=reference, start=start, end=end).frame
        assert body["messages"] == metrics.kpis(expected).to_dict()["messages"]
    _, _, health = request(app, "/health")
    # Twelve windows asked for: the process keeps what its pages and the API follow only.
    assert set(health["frames"]) <= {"agents", "messages[24h]"}
