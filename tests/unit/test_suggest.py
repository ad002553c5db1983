"""Proposals of ``agentdash check --suggest``: presets recognised from samples, and mappings
proposed for containers whose fields are named otherwise, tried by reading with them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines import demo
from pipelines.schema import FieldMapping, normalise
from pipelines.settings import load_settings
from pipelines.shapes import Shape
from pipelines.suggest import propose
from tests import shaped

NOW = datetime.now(UTC)


def sessions_with_ts() -> list[dict[str, object]]:
    # As Cosmos DB returns them: with the _ts of their last write.
    return [{**doc, "_ts": int(time.time())} for doc in shaped.langchain(shaped.conversations(6))]


@pytest.mark.parametrize(
    ("preset", "docs"),
    [
        ("langchain", sessions_with_ts()),
        ("aoai-chat", shaped.aoai_chat(shaped.conversations(6), NOW - timedelta(hours=1))),
        ("agent-framework", shaped.agent_framework(shaped.conversations(6), "bot")),
        ("agentdash", demo.generate(4, 200, 1.0, seed=3)[1]),
    ],
)
def test_each_preset_is_recognised_and_reads_the_whole_sample(preset: str, docs: list) -> None:
    proposal = propose(docs)
    assert proposal.preset == preset
    assert proposal.toml() == f'[containers.messages]\npreset = "{preset}"'
    assert proposal.share == 1.0
    # Records that are no messages (the chat app's conversations) are not in the count.
    assert proposal.sampled == sum(len(d.get("messages", [d])) for d in docs) - sum(
        d.get("type") == "conversation" for d in docs
    )


def renamed(count: int = 30) -> list[dict[str, object]]:
    """A team's own names for everything, and OpenAI's usage object as it returns it."""
    docs = []
    for i in range(count):
        reply = i % 2 == 1
        doc: dict[str, object] = {
            "id": f"m-{i}",
            "threadId": f"t-{i // 4}",
            "bot": "helper",
            "speaker": "assistant" if reply else "user",
            "createdOn": (NOW - timedelta(minutes=count - i)).isoformat(),
            "customer": f"c-{i % 3}",
            "text": f"message {i}",
            "elapsedMs": 420.5 + i if reply else None,
        }
        if reply:
            doc["modelName"] = "gpt-4o-mini-2024-07-18"
            doc["usage"] = {
                "prompt_tokens": 900 + i,
                "completion_tokens": 100 + i,
                "total_tokens": 1000 + 2 * i,
                "prompt_tokens_details": {"cached_tokens": 128},
            }
        docs.append(doc)
    return docs


def test_a_mapping_is_proposed_for_renamed_fields_and_reads_every_document() -> None:
    proposal = propose(renamed())
    assert proposal.preset is None
    assert proposal.fields == {
        "conversation_id": "threadId",
        "agent_id": "bot",
        "role": "speaker",
        "timestamp": "createdOn",
        "latency_ms": "elapsedMs",
        "tokens_in": "usage.prompt_tokens",
        "tokens_out": "usage.completion_tokens",
        "tokens_cached_in": "usage.prompt_tokens_details.cached_tokens",
        "user_id": "customer",
        "model": "modelName",
        "content": "text",
    }
    assert (proposal.readable, proposal.sampled, proposal.share) == (30, 30, 1.0)


def test_the_proposed_block_pastes_into_a_working_configuration(tmp_path: Path) -> None:
    docs = renamed()
    config = tmp_path / "agentdash.toml"
    config.write_text(propose(docs).toml() + "\n")
    settings = load_settings({"AGENTDASH_CONFIG": str(config)})
    frame = normalise(docs, FieldMapping.for_container("messages", settings.fields)).frame
    assert len(frame) == 30
    assert frame["tokens_cached_in"].dropna().unique().tolist() == [128]


def test_a_session_layout_of_its_own_is_proposed() -> None:
    docs = [
        {
            "id": f"chat-{n}",
            "owner": f"u-{n}",
            "turns": [
                {"speaker": "user", "text": "hi", "at": (NOW - timedelta(minutes=9)).isoformat()},
                {"speaker": "bot", "text": "hello", "at": (NOW - timedelta(minutes=8)).isoformat()},
            ],
        }
        for n in range(5)
    ]
    proposal = propose(docs, "support")
    assert proposal.section == {"layout": "session", "messages_path": "turns"}
    assert proposal.fields["role"] == "speaker" and proposal.fields["timestamp"] == "at"
    assert any("default_agent" in note for note in proposal.why)
    assert (proposal.readable, proposal.unit) == (10, "messages")
    mapping = FieldMapping.for_container("messages", {"messages": proposal.fields})
    messages, _ = Shape.from_section(proposal.section, "support").messages(docs, mapping)
    frame = normalise(messages, mapping).frame
    assert set(frame["agent_id"]) == {"support"}
    assert set(frame["conversation_id"]) == {d["id"] for d in docs}
