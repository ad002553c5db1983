"""Containers of real agent libraries, read through their preset on the embedded store and on
Cosmos DB (the real SDK over HTTP to the stand-in): the canonical frame equals that of the same
messages stored one agentdash document each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines import FrameSpec, LiveFrames
from pipelines.query import Query
from pipelines.settings import load_settings
from pipelines.sources.cosmos import CosmosSource
from pipelines.sources.local import LocalSource
from pipelines.windows import Window
from tests import shaped
from tests.cosmos_standin import CosmosStandin

DAY = FrameSpec("messages", Window.parse("24h"))
DATABASE = "apps"


@pytest.fixture(scope="module")
def standin() -> Iterator[CosmosStandin]:
    with CosmosStandin() as server:
        yield server


@dataclass
class Store:
    """One store of a test: the embedded one or a stand-in database; writes, reads raw, opens."""

    kind: str
    tmp: Path
    standin: CosmosStandin

    def settings(self, name: str, toml: str) -> Any:
        config = self.tmp / f"{name}.toml"
        config.write_text(toml)
        env = {"AGENTDASH_CONFIG": str(config)}
        if self.kind == "local":
            env["AGENTDASH_LOCAL_PATH"] = str(self.tmp / f"{name}.db")
        else:
            env |= {
                "AGENTDASH_SOURCE": "cosmos",
                "AGENTDASH_COSMOS_ENDPOINT": self.standin.url,
                "AGENTDASH_COSMOS_KEY": self.standin.key,
                "AGENTDASH_COSMOS_DATABASE": DATABASE,
                "AGENTDASH_COSMOS_MESSAGES_CONTAINER": name,
            }
        return load_settings(env)

    def write(self, settings: Any, docs: list[dict[str, Any]], pk: str) -> None:
        if self.kind == "local":
            LocalSource.from_settings(settings).upsert("messages", docs)
        else:
            self.standin.create_container(DATABASE, settings.cosmos_messages_container, "/" + pk)
            self.standin.create_container(DATABASE, "agents", "/id")
            self.standin.upsert(DATABASE, settings.cosmos_messages_container, docs)

    def raw(self, settings: Any) -> list[dict[str, Any]]:
        """The documents as stored, with the ``_ts`` the store gave them."""
        source = (
            LocalSource.from_settings(settings)
            if self.kind == "local"
            else CosmosSource.from_settings(settings)
        )
        return [doc for page in source.fetch(Query.build("messages")) for doc in page]


@pytest.fixture(params=["local", "standin"])
def store(request: pytest.FixtureRequest, tmp_path: Path, standin: CosmosStandin) -> Store:
    return Store(request.param, tmp_path, standin)


def frame_of(settings: Any) -> pd.DataFrame:
    frames = LiveFrames.from_settings(settings)
    frame = frames.get(DAY).frame
    assert frames.quarantine.count == 0, frames.quarantine.entries()
    return frame.sort_values("id", ignore_index=True)


def same_as_per_message(store: Store, name: str, shaped_settings: Any, docs: list[Any]) -> None:
    """The frame of ``name`` read through its preset equals the frame of ``docs`` stored one
    agentdash document each under the default mapping."""
    plain = store.settings(f"{name}-plain", "")
    store.write(plain, docs, "conversationId")
    expected = frame_of(plain)
    actual = frame_of(shaped_settings)
    assert len(actual) == len(docs)
    pd.testing.assert_frame_equal(actual, expected)


def test_langchain_sessions(store: Store) -> None:
    chats = shaped.conversations(5)
    settings = store.settings("lc-history", '[containers.messages]\npreset = "langchain"\n')
    store.write(settings, shaped.langchain(chats), "user_id")
    stored = {doc["id"]: doc for doc in store.raw(settings)}
    sessions = [stored[c.id] for c in chats]
    # No LangChain message records a time: each takes its session document's last write.
    times = [[s["_ts"]] * len(s["messages"]) for s in sessions]
    ids = [shaped.langchain_ids(s) for s in sessions]
    agent = settings.messages_container  # single-assistant: the container's name
    same_as_per_message(store, "lc-history", settings, shaped.per_message(chats, ids, times, agent))


def test_aoai_chat_messages_beside_conversations(store: Store) -> None:
    chats = shaped.conversations(4)
    settings = store.settings("conversations", '[containers.messages]\npreset = "aoai-chat"\n')
    docs = shaped.aoai_chat(chats, datetime.now(UTC) - timedelta(hours=2))
    store.write(settings, docs, "userId")
    messages = [d for d in docs if d["type"] == "message"]
    ids = [[d["id"] for d in messages if d["conversationId"] == c.id] for c in chats]
    times = [[d["createdAt"] for d in messages if d["conversationId"] == c.id] for c in chats]
    agent = settings.messages_container
    expected = shaped.per_message(chats, ids, times, agent, usage=False)
    # The "conversation" documents are no messages: skipped, not quarantined (frame_of).
    same_as_per_message(store, "conversations", settings, expected)


def test_agent_framework_history(store: Store) -> None:
    chats = shaped.conversations(4)
    settings = store.settings("af-history", '[containers.messages]\npreset = "agent-framework"\n')
    docs = shaped.agent_framework(chats, source_id="support-agent")
    store.write(settings, docs, "session_id")
    ids = [[d["id"] for d in docs if d["session_id"] == c.id] for c in chats]
    # sort_key is time.time_ns(): read to the nanosecond, in the order it was written.
    times = [[d["sort_key"] for d in docs if d["session_id"] == c.id] for c in chats]
    expected = shaped.per_message(chats, ids, times, "support-agent", usage=False, users=False)
    same_as_per_message(store, "af-history", settings, expected)


def test_explicit_keys_override_the_preset(store: Store) -> None:
    chats = shaped.conversations(2)
    toml = (
        '[containers.messages]\npreset = "aoai-chat"\ndefault_agent = "helpdesk"\n'
        '[fields.messages]\nuser_id = "conversationId"\n'
    )
    settings = store.settings("overridden", toml)
    store.write(settings, shaped.aoai_chat(chats, datetime.now(UTC) - timedelta(hours=1)), "userId")
    frame = frame_of(settings)
    assert set(frame["agent_id"]) == {"helpdesk"}
    assert (frame["user_id"] == frame["conversation_id"]).all()


def test_a_session_that_gains_a_turn_is_refreshed_from_that_document_alone(store: Store) -> None:
    chats = shaped.conversations(6)
    settings = store.settings("growing", '[containers.messages]\npreset = "langchain"\n')
    sessions = shaped.langchain(chats)
    store.write(settings, sessions, "user_id")
    frames = LiveFrames.from_settings(settings)
    before = frames.get(DAY).frame
    grown = dict(sessions[1])
    grown["messages"] = [
        *grown["messages"],
        shaped.langchain_message(shaped.Turn("user", "one more thing")),
    ]
    store.write(settings, [grown], "user_id")
    read: Callable[[], int] = (
        (lambda: int(frames.source.stats.snapshot()["documents"]))
        if store.kind == "local"
        else (lambda: store.standin.counters().documents_returned)
    )
    if store.kind == "standin":
        store.standin.reset_counters()
    start = read()
    frames.refresh(DAY)
    assert read() - start == 1  # the one session document changed, not the container
    after = frames.get(DAY).frame
    mine = after[after["conversation_id"] == chats[1].id].sort_values("id")
    assert len(mine) == len(chats[1].turns) + 1
    assert f"{chats[1].id}:{len(chats[1].turns)}" in set(mine["id"])
    assert len(after) == len(before) + 1
    # Replaced, not added to: every message of the session is there once.
    assert not after["id"].duplicated().any()
