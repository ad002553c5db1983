"""Containers written the way agent libraries write them, and the same messages per message.

Each writer follows the library's own source (named in its docstring) field by field, so that
a preset is tested against the documents that library really stores, not against a guess.
:class:`Turn` is one message as a person would describe it; each writer lays a list of
conversations of turns out in its library's shape, and :func:`per_message` lays the same
turns out as one agentdash document each (the default field names), for comparison.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Document = dict[str, Any]


@dataclass(frozen=True)
class Turn:
    role: str  # "user", "assistant", "system" or "tool", as the library names them
    text: str
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cached_in: int | None = None


@dataclass(frozen=True)
class Conversation:
    id: str
    user: str
    turns: tuple[Turn, ...]


def conversations(count: int = 4, *, seed: int = 0) -> list[Conversation]:
    """A few conversations of a user question and a model's answer, some with a follow-up."""
    out = []
    for c in range(count):
        model = ("gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "acme-large")[c % 3]
        turns = [
            Turn("user", f"question {c}"),
            Turn("assistant", f"answer {c}", model, 1200 + c, 300 + c, 256 if c % 2 else 0),
        ]
        if c % 2 == 0:
            turns += [
                Turn("user", f"follow-up {c}"),
                Turn("assistant", f"more {c}", model, 1600 + c, 120, 1024),
            ]
        out.append(Conversation(f"session-{seed}-{c}", f"user-{c % 2}", tuple(turns)))
    return out


# --- LangChain -------------------------------------------------------------------------------

_LANGCHAIN_TYPE = {"user": "human", "assistant": "ai", "system": "system", "tool": "tool"}


def langchain_message(turn: Turn) -> Document:
    """``langchain_core.messages.message_to_dict``: ``{"type", "data": model_dump()}`` of a
    HumanMessage or of an AIMessage as langchain_openai's ChatOpenAI returns it."""
    kind = _LANGCHAIN_TYPE[turn.role]
    data: Document = {
        "content": turn.text,
        "additional_kwargs": {},
        "response_metadata": {},
        "type": kind,
        "name": None,
        "id": None,
    }
    if kind == "ai":
        data["additional_kwargs"] = {"refusal": None}
        data["response_metadata"] = {
            "token_usage": {
                "completion_tokens": turn.tokens_out,
                "prompt_tokens": turn.tokens_in,
                "total_tokens": (turn.tokens_in or 0) + (turn.tokens_out or 0),
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
                "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": turn.cached_in},
            },
            "model_provider": "openai",
            "model_name": turn.model,
            "system_fingerprint": "fp_a1b2c3d4e5",
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "service_tier": "default",
            "finish_reason": "stop",
            "logprobs": None,
        }
        data["id"] = f"run--{uuid.uuid4()}-0"
        data["tool_calls"] = []
        data["invalid_tool_calls"] = []
        data["usage_metadata"] = {
            "input_tokens": turn.tokens_in,
            "output_tokens": turn.tokens_out,
            "total_tokens": (turn.tokens_in or 0) + (turn.tokens_out or 0),
            "input_token_details": {"audio": 0, "cache_read": turn.cached_in},
            "output_token_details": {"audio": 0, "reasoning": 0},
        }
    return {"type": kind, "data": data}


def langchain(chats: Sequence[Conversation]) -> list[Document]:
    """``CosmosDBChatMessageHistory.upsert_messages`` (langchain_community and
    langchain_azure_ai ``chat_message_histories/cosmos_db.py``): one document per session,
    ``{"id": session_id, "user_id": user_id, "messages": messages_to_dict(messages)}``, in a
    container partitioned by ``/user_id``."""
    return [
        {"id": c.id, "user_id": c.user, "messages": [langchain_message(t) for t in c.turns]}
        for c in chats
    ]


def langchain_ids(session: Document) -> list[str]:
    """The message ids agentdash gives a LangChain session: the message's own, else
    ``<session id>:<index>``."""
    return [m["data"]["id"] or f"{session['id']}:{i}" for i, m in enumerate(session["messages"])]


# --- Azure OpenAI chat sample app ------------------------------------------------------------


def aoai_chat(chats: Sequence[Conversation], start: datetime) -> list[Document]:
    """sample-app-aoai-chatGPT ``backend/history/cosmosdbservice.py``: ``create_conversation``
    writes a ``type: "conversation"`` document, ``create_message`` one ``type: "message"``
    document per message (times from ``datetime.utcnow().isoformat()``: naive UTC), in a
    container partitioned by ``/userId``; message feedback enabled."""
    docs: list[Document] = []
    for n, c in enumerate(chats):
        at = start + timedelta(minutes=5 * n)
        docs.append(
            {
                "id": c.id,
                "type": "conversation",
                "createdAt": _naive(at),
                "updatedAt": _naive(at + timedelta(seconds=len(c.turns))),
                "userId": c.user,
                "title": c.turns[0].text,
            }
        )
        for i, turn in enumerate(c.turns):
            docs.append(
                {
                    "id": str(uuid.UUID(int=n * 100 + i)),
                    "type": "message",
                    "userId": c.user,
                    "createdAt": _naive(at + timedelta(seconds=i)),
                    "updatedAt": _naive(at + timedelta(seconds=i)),
                    "conversationId": c.id,
                    "role": turn.role,
                    "content": turn.text,
                    "feedback": "",
                }
            )
    return docs


def _naive(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat()


# --- Microsoft Agent Framework ----------------------------------------------------------------


def agent_framework(chats: Sequence[Conversation], source_id: str) -> list[Document]:
    """agent_framework_azure_cosmos ``_history_provider.py``, ``CosmosHistoryProvider.
    save_messages``: one document per message, ``{"id": uuid4, "session_id", "sort_key":
    time.time_ns() + index, "source_id", "message": Message.to_dict()}`` in a container
    partitioned by ``/session_id``; ``Message.to_dict()`` is ``{"type": "message", "role",
    "contents": [{"type": "text", "text"}], "author_name"?, "additional_properties": {}}``
    (None values left out)."""
    docs: list[Document] = []
    for c in chats:
        base = time.time_ns()
        for i, turn in enumerate(c.turns):
            message: Document = {
                "type": "message",
                "role": turn.role,
                "contents": [{"type": "text", "text": turn.text}],
                "additional_properties": {},
            }
            if turn.role == "assistant":
                message["author_name"] = source_id
            docs.append(
                {
                    "id": str(uuid.uuid4()),
                    "session_id": c.id,
                    "sort_key": base + i,
                    "source_id": source_id,
                    "message": message,
                }
            )
    return docs


# --- the same messages, one agentdash document each --------------------------------------------


def per_message(
    chats: Sequence[Conversation],
    ids: Sequence[Sequence[str]],
    times: Sequence[Sequence[Any]],
    agent: str,
    *,
    usage: bool = True,
    users: bool = True,
) -> list[Document]:
    """The turns as agentdash documents with the default field names: the message ids and
    times the shaped container gives them, and the agent it is read as; with ``usage``,
    their models and token counts, with ``users`` their user (for shapes that record them)."""
    docs = []
    for c, conversation_ids, conversation_times in zip(chats, ids, times, strict=True):
        for turn, message_id, at in zip(c.turns, conversation_ids, conversation_times, strict=True):
            doc: Document = {
                "id": message_id,
                "conversationId": c.id,
                "agentId": agent,
                "role": turn.role,
                "timestamp": at,
                "content": turn.text,
            }
            if users:
                doc["userId"] = c.user
            counted = (
                ("model", turn.model),
                ("tokensIn", turn.tokens_in),
                ("tokensOut", turn.tokens_out),
                ("tokensCachedIn", turn.cached_in),
            )
            doc.update({name: value for name, value in counted if usage and value is not None})
            docs.append(doc)
    return docs
