"""``agentdash check`` and ``agentdash import --from-cosmos``, against the Cosmos DB stand-in."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline, demo
from pipelines.cache import MemoryFrameCache
from pipelines.query import Query
from pipelines.sources.base import Document
from pipelines.sources.local import PARTITION_KEYS, LocalSource
from tests.cosmos_standin import CosmosStandin

DATABASE = "agentdash"
AGENTS, MESSAGES = demo.generate(6, 400, days=3, seed=11)
# Older than any window the tests import.
OLD = [
    m | {"id": f"old-{i}", "timestamp": (datetime.now(UTC) - timedelta(days=10)).isoformat()}
    for i, m in enumerate(MESSAGES[:5])
]


@pytest.fixture(scope="module")
def standin() -> Iterator[CosmosStandin]:
    with CosmosStandin() as server:
        yield server


@pytest.fixture
def env(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No AGENTDASH_* setting from outside the test; the embedded store in tmp_path."""
    monkeypatch = clean_env
    monkeypatch.setenv("AGENTDASH_LOCAL_PATH", str(tmp_path / "store.db"))
    return monkeypatch


def load(standin: CosmosStandin, container: str, docs: list[Document]) -> str:
    name = f"{container}-{uuid.uuid4().hex[:8]}"
    standin.create_container(DATABASE, name, pk_path="/" + PARTITION_KEYS[container])
    standin.upsert(DATABASE, name, docs)
    return name


@pytest.fixture
def cosmos(
    standin: CosmosStandin, env: pytest.MonkeyPatch
) -> Iterator[tuple[CosmosStandin, pytest.MonkeyPatch]]:
    """Settings pointing at stand-in containers holding the demo agents and messages."""
    names = {
        "agents": load(standin, "agents", AGENTS),
        "messages": load(standin, "messages", MESSAGES + OLD),
    }
    env.setenv("AGENTDASH_SOURCE", "cosmos")
    env.setenv("AGENTDASH_COSMOS_ENDPOINT", standin.url)
    env.setenv("AGENTDASH_COSMOS_KEY", standin.key)
    env.setenv("AGENTDASH_COSMOS_DATABASE", DATABASE)
    env.setenv("AGENTDASH_COSMOS_AGENTS_CONTAINER", names["agents"])
    env.setenv("AGENTDASH_COSMOS_MESSAGES_CONTAINER", names["messages"])
    standin.reset_counters()
    yield standin, env
    for name in names.values():
        standin.delete_container(DATABASE, name)


def row(out: str, column: str) -> list[str]:
    """The words of the mapping row of ``column`` in the last container printed."""
    return [line.split() for line in out.splitlines() if line.split()[:1] == [column]][-1]


def test_check_prints_the_mapping_and_the_shares_and_reads_one_page(
    cosmos: tuple[CosmosStandin, pytest.MonkeyPatch], capsys: pytest.CaptureFixture[str]
) -> None:
    standin, _ = cosmos

    assert main(["check"]) == 0

    out = capsys.readouterr().out
    assert "6 documents sampled, 6 normalise (100.0%)" in out
    assert "200 documents sampled, 200 normalise (100.0%)" in out
    assert row(out, "timestamp") == ["timestamp", "timestamp", "100.0%"]
    assert row(out, "conversation_id") == ["conversation_id", "conversationId", "100.0%"]
    assert "RU" in out and out.rstrip().endswith("ok: the dashboard can read this source")
    assert standin.counters().requests["query"] == 2  # one page of 200 per container


def test_check_with_a_wrong_key_fails_with_the_actionable_message(
    cosmos: tuple[CosmosStandin, pytest.MonkeyPatch], capsys: pytest.CaptureFixture[str]
) -> None:
    _, env = cosmos
    env.setenv("AGENTDASH_COSMOS_KEY", base64.b64encode(b"wrong".ljust(64, b"!")).decode())

    assert main(["check"]) == 2

    err = capsys.readouterr().err
    assert "Cosmos DB rejected the key (401): check AGENTDASH_COSMOS_KEY" in err


def test_check_uses_the_field_mapping_of_the_config_file(
    cosmos: tuple[CosmosStandin, pytest.MonkeyPatch],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    standin, env = cosmos
    renamed = [{"createdAt" if k == "timestamp" else k: v for k, v in m.items()} for m in MESSAGES]
    env.setenv("AGENTDASH_COSMOS_MESSAGES_CONTAINER", load(standin, "messages", renamed))

    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "200 documents sampled, 0 normalise (0.0%)" in out
    assert "quarantined 200: missing field: 'timestamp'" in out
    assert "hint: no document has 'timestamp'" in out

    config = tmp_path / "agentdash.toml"
    config.write_text('[fields.messages]\ntimestamp = "createdAt"\n')
    env.setenv("AGENTDASH_CONFIG", str(config))

    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert row(out, "timestamp") == ["timestamp", "createdAt", "100.0%"]
    assert "200 documents sampled, 200 normalise (100.0%)" in out


def test_check_reads_the_local_store_too(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--agents", "4", "--messages", "300", "--days", "2"]) == 0

    assert main(["check", "--sample", "50"]) == 0

    out = capsys.readouterr().out
    assert "source: local:" in out
    assert "50 documents sampled, 50 normalise (100.0%)" in out
    assert "0.00 RU" in out


def test_import_from_cosmos_fills_a_store_that_a_pipeline_reads(
    cosmos: tuple[CosmosStandin, pytest.MonkeyPatch],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    assert main(["import", "--from-cosmos", "--window", "7d"]) == 0

    out = capsys.readouterr().out
    assert f"imported {len(AGENTS)} agents and {len(MESSAGES)} messages" in out
    assert "read them with AGENTDASH_SOURCE=local" in out
    store = LocalSource(tmp_path / "store.db")
    backend = LiveFrames(store, MemoryFrameCache())
    messages = MessagesPipeline(frames=backend, window="7d").frame
    assert sorted(messages["id"]) == sorted(m["id"] for m in MESSAGES)
    assert len(AgentsPipeline(frames=backend).frame) == len(AGENTS)
    stored = next(store.fetch(Query.build("messages")))[0]
    assert "_rid" not in stored and "_etag" not in stored  # Cosmos DB's own properties


def test_import_from_cosmos_skips_what_the_store_cannot_hold_and_copies_the_rest(
    cosmos: tuple[CosmosStandin, pytest.MonkeyPatch],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    standin, env = cosmos
    nested: Any = 0
    for _ in range(200):
        nested = [nested]
    refused = [
        MESSAGES[0] | {"id": "deep", "trace": nested},
        MESSAGES[0] | {"id": "lone", "content": "half an emoji \ud83d"},
    ]
    env.setenv("AGENTDASH_COSMOS_MESSAGES_CONTAINER", load(standin, "messages", MESSAGES + refused))

    assert main(["import", "--from-cosmos", "--window", "7d"]) == 0

    out = capsys.readouterr().out
    assert f"imported {len(AGENTS)} agents and {len(MESSAGES)} messages" in out
    assert "skipped 2 messages the store cannot hold:" in out
    assert "  id 'deep': nested deeper than 128 levels" in out
    assert "  id 'lone': holds text that is not Unicode (a lone surrogate)" in out
    stored = LocalSource(tmp_path / "store.db").fetch(Query.build("messages", projection=["id"]))
    assert sorted(d["id"] for page in stored for d in page) == sorted(m["id"] for m in MESSAGES)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["import", "--from-cosmos", "export.json"], "give no FILE"),
        (["import", "export.json", "--container", "messages", "--window", "7d"], "--from-cosmos"),
        (["import", "--from-cosmos", "--window", "7x"], "90m, 24h, 7d or 4w"),
        (["import", "--from-cosmos", "--window", "7d", "--start", "2026-01-01"], "not both"),
        (["import", "export.json"], "--container"),
    ],
)
def test_import_refuses_arguments_that_do_not_go_together(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2

    assert message in capsys.readouterr().err
