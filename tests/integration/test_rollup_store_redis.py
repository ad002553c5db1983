"""Rollups kept in a real Redis, whatever their size: Redis refuses a value larger than
``proto-max-bulk-len`` (512 MB by default; ten million messages make larger rollups), so
they are written in parts.  Here the limit is lowered to Redis' least, 1 MB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pytest
import redis

from pipelines import demo
from pipelines.rollup_store import RedisRollupStore, StoredRollups
from pipelines.rollups import Rollups
from pipelines.schema import FieldMapping, normalise

_, MESSAGES = demo.generate(4, 20_000, days=3, seed=5)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    connection.config_set("proto-max-bulk-len", 2**20)
    yield connection
    connection.config_set("proto-max-bulk-len", 512 * 2**20)
    connection.close()


@pytest.fixture(scope="module")
def stored() -> StoredRollups:
    frame = normalise(MESSAGES, FieldMapping.for_container("messages")).frame
    data = Rollups.build(frame).to_bytes()
    assert len(data) > 2**20  # more than Redis takes in one value here
    return StoredRollups(data, "token-1", datetime(2026, 12, 1, tzinfo=UTC))


def parts(client: redis.Redis) -> list[bytes]:
    return sorted(client.scan_iter("agentdash:rollups:k:part:*"))


def test_rollups_larger_than_a_redis_value_are_kept_in_parts(
    client: redis.Redis, stored: StoredRollups
) -> None:
    with pytest.raises((redis.ResponseError, redis.ConnectionError)):
        client.set("one-value", stored.data)  # what a single SET of them meets
    store = RedisRollupStore(client, part_bytes=2**19)
    store.save("k", stored)
    assert len(parts(client)) >= 3
    loaded = store.load("k")
    assert loaded == stored
    restored = Rollups.from_bytes(loaded.data)
    assert restored.kpis().messages == len(MESSAGES)


def test_saving_again_leaves_only_the_parts_the_key_points_at(
    client: redis.Redis, stored: StoredRollups
) -> None:
    store = RedisRollupStore(client, part_bytes=2**19)
    store.save("k", stored)
    first = parts(client)
    later = StoredRollups(stored.data, "token-2", stored.as_of + pd.Timedelta(minutes=1))
    store.save("k", later)
    second = parts(client)
    assert len(second) == len(first) and not set(first) & set(second)
    assert store.load("k") == later


def test_a_key_whose_parts_are_gone_reads_as_nothing_kept(
    client: redis.Redis, stored: StoredRollups, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisRollupStore(client, part_bytes=2**19)
    store.save("k", stored)
    client.delete(parts(client)[0])
    assert store.load("k") is None  # the rollups are built again, never read half
    assert "changed twice while being read" in caplog.text
