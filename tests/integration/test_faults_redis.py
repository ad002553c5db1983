"""Two served processes behind nginx sharing Redis, while Redis dies, hangs and comes back,
and while one of the processes is killed.

Pages and the API keep answering; once things recover both processes hold what a clean
load reads (nothing lost, nothing doubled), and the newest data a process serves never
goes back in time meanwhile.
"""

from __future__ import annotations

import os
import signal
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipelines.cache import MemoryFrameCache
from pipelines.live import LiveFrames
from pipelines.pipeline import MessagesPipeline
from pipelines.sources.local import LocalSource
from tests.conftest import RedisServer, repeating, wait_until
from tests.integration import test_multiprocess as multiprocess
from tests.integration.test_api import query
from tests.integration.test_locks import hung
from tests.integration.test_multiprocess import Cluster
from tests.ui.conftest import ServedApp, get_json, new_message

pytestmark = pytest.mark.redis

# The topology of test_multiprocess: two served processes, one Redis, nginx.
cluster = multiprocess.cluster


def health(app: ServedApp) -> dict[str, Any]:
    status, body = app.get_json("/health")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def newest(app: ServedApp) -> tuple[str, str]:
    """(timestamp, id) of the newest message a process serves."""
    status, body = app.get_json("/api/v1/messages?limit=1")
    assert status == 200, body
    item = body["items"][0]
    return item["timestamp"], item["id"]


def window_ids(app: ServedApp, start: datetime, end: datetime) -> list[str]:
    """Ids of an explicit window the process cuts from its live 24h frame."""
    params = {"start": start.isoformat(), "end": end.isoformat(), "limit": 1000}
    status, body = app.get_json(f"/api/v1/messages{query(**params)}")
    assert status == 200 and body["next_cursor"] is None, body
    return [item["id"] for item in body["items"]]


def never_back(seen: list[list[str]]) -> None:
    """Each process's newest message, as repeating, never went back in time."""
    assert seen
    for stamps in zip(*seen, strict=True):
        assert list(stamps) == sorted(stamps), "the data went back"


def write(cluster: Cluster, n: int = 2) -> list[dict[str, Any]]:
    docs = [new_message() for _ in range(n)]
    cluster.store.upsert("messages", docs)
    return docs


def both_serve(cluster: Cluster, docs: list[dict[str, Any]], timeout: float = 20) -> None:
    wanted = docs[-1]["id"]
    wait_until(
        lambda: all(newest(app)[1] == wanted for app in cluster.apps),
        timeout=timeout,
        message="both processes to serve the newest message",
    )


def same_as_a_clean_load(
    cluster: Cluster, since: datetime, apps: list[ServedApp] | None = None
) -> None:
    """The processes (all by default) hold the window since ``since`` as a fresh read does."""
    apps = apps or cluster.apps
    end = datetime.now(UTC).replace(microsecond=0)
    wait_until(
        lambda: all(
            datetime.fromisoformat(health(app)["frames"]["messages[24h]"]["as_of"])
            > end + timedelta(seconds=1)
            for app in apps
        ),
        message="the processes to hold data newer than the window's end",
    )
    clean = MessagesPipeline(
        frames=LiveFrames(LocalSource(cluster.store.path), MemoryFrameCache()), start=since, end=end
    )
    expected = sorted(clean.frame["id"])
    for app in apps:
        ids = window_ids(app, since, end)
        assert len(ids) == len(set(ids))  # nothing doubled
        assert sorted(ids) == expected  # nothing lost


def test_redis_killed_then_restarted(cluster: Cluster, redis_server: RedisServer) -> None:
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    with repeating(lambda: [newest(app)[0] for app in cluster.apps]) as seen:
        redis_server.stop()
        try:
            both_serve(cluster, write(cluster))  # each process reads the source itself
            assert not any(health(app)["cache_healthy"] for app in cluster.apps)
            status, _ = get_json(cluster.nginx.url + "/api/v1/metrics/summary")
            assert status == 200
        finally:
            redis_server.start()
        both_serve(cluster, write(cluster))
        wait_until(
            lambda: all(health(app)["cache_healthy"] for app in cluster.apps),
            message="both processes to use Redis again",
        )
    never_back(seen)
    same_as_a_clean_load(cluster, since)


def test_redis_hung_then_resumed(cluster: Cluster, redis_server: RedisServer) -> None:
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    with repeating(lambda: [newest(app)[0] for app in cluster.apps]) as seen:
        with hung(redis_server):
            both_serve(cluster, write(cluster), timeout=30)
            with urllib.request.urlopen(cluster.nginx.url + "/", timeout=30) as page:
                assert page.status == 200
        both_serve(cluster, write(cluster))
    never_back(seen)
    same_as_a_clean_load(cluster, since)


def test_a_process_killed_behind_nginx(cluster: Cluster) -> None:
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    dead, alive = cluster.apps
    assert dead.process is not None
    os.killpg(dead.process.pid, signal.SIGKILL)  # whatever locks it held, it holds no more
    dead.process.wait(10)
    dead.process = None
    for _ in range(6):  # nginx passes what the dead process would have answered to the other
        status, body = get_json(cluster.nginx.url + "/api/v1/metrics/summary")
        assert status == 200, body
    docs = write(cluster)
    wait_until(lambda: newest(alive)[1] == docs[-1]["id"], message="the survivor to refresh")
    with urllib.request.urlopen(cluster.nginx.url + "/", timeout=30) as page:
        assert page.status == 200
    same_as_a_clean_load(cluster, since, [alive])
