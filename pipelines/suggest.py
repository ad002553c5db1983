"""A shape and field mapping for a container, proposed from a sample of its documents.

:func:`propose` first looks for a preset whose documents look like the sample (see
:mod:`pipelines.presets`).  Failing that it proposes a mapping column by column: each field
of the documents (nested ones by their dotted path) is scored by how much its name looks
like the column's usual names and by how many of its values the column's rule accepts
(which field reads as a time, which holds roles...).  Either way the proposal is tried
on the sample: :attr:`Proposal.share` is how much of it would normalise.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.presets import PRESETS
from pipelines.query import FIELD_PATTERN
from pipelines.schema import CANONICAL_FIELDS, RULES, FieldMapping, normalise
from pipelines.shapes import Shape
from pipelines.sources.base import Document

# The names a column usually goes by, compared without case, '_' or '-'.
NAMES: dict[str, tuple[str, ...]] = {
    "id": ("id", "messageid", "uuid"),
    "conversation_id": (
        "conversationid",
        "conversation",
        "threadid",
        "thread",
        "sessionid",
        "chatid",
    ),
    "agent_id": ("agentid", "agent", "agentname", "assistant", "assistantid", "bot", "botid"),
    "role": ("role", "speaker", "sender", "authorrole", "from"),
    "timestamp": ("timestamp", "time", "createdat", "created", "createdon", "sentat", "date", "ts"),
    "latency_ms": ("latencyms", "latency", "durationms", "duration", "elapsedms", "elapsed"),
    "tokens_in": ("tokensin", "inputtokens", "prompttokens", "tokensprompt"),
    "tokens_out": ("tokensout", "outputtokens", "completiontokens", "tokenscompletion"),
    "tokens_cached_in": ("tokenscachedin", "cachedtokens", "cacheread", "cachereadtokens"),
    "status": ("status", "state", "outcome", "result"),
    "user_id": ("userid", "user", "customerid", "customer", "principal"),
    "model": ("model", "modelname", "modelid", "deployment"),
    "content": ("content", "text", "message", "body"),
}
_DEPTH = 4  # nested fields looked at, as a mapping can name them
_MIN_SCORE = 0.6


@dataclass(frozen=True)
class Proposal:
    """A shape section and fields for ``[containers.messages]``/``[fields.messages]``, and
    how much of the sample they read."""

    section: dict[str, str]
    fields: dict[str, str]
    preset: str | None
    readable: int
    sampled: int
    unit: str
    why: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.readable / self.sampled if self.sampled else 0.0

    def toml(self, container: str = "messages") -> str:
        """The proposal as a block ready to paste into the ``AGENTDASH_CONFIG`` file."""
        lines = []
        if self.section:
            lines.append(f"[containers.{container}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in self.section.items()]
        if self.fields:
            lines.append(f"[fields.{container}]")
            lines += [f"{column} = {json.dumps(path)}" for column, path in self.fields.items()]
        return "\n".join(lines)


def propose(docs: Sequence[Document], container_name: str = "messages") -> Proposal:
    """The preset the sample looks like, else a mapping proposed field by field."""
    docs = [doc for doc in docs if isinstance(doc, dict)]
    preset = recognise(docs)
    if preset is not None:
        return _tried({"preset": preset}, {}, docs, container_name, preset)
    section: dict[str, str] = {}
    sample = docs
    array = _messages_array(docs)
    if array is not None:
        section = {"layout": "session", "messages_path": array}
        sample = [el for doc in docs for el in doc.get(array) or [] if isinstance(el, dict)]
    elif (kind := _message_type(docs)) is not None:
        section = {"where_type": kind}
        sample = [doc for doc in docs if doc.get("type") == kind]
    fields, why = _mapping(sample, parents=docs if array is not None else None)
    if section and "agent_id" not in fields:
        why.append("no field names an agent: every message is the default_agent's")
    return _tried(section, fields, docs, container_name, None, why)


def recognise(docs: Sequence[Document]) -> str | None:
    """The preset most of the sample matches, if any."""
    for name, looks in _LOOKS.items():
        if docs and sum(map(looks, docs)) / len(docs) >= 0.5:
            return name
    return None


def _langchain(doc: Document) -> bool:
    messages = doc.get("messages")
    return (
        isinstance(messages, list)
        and bool(messages)
        and all(
            isinstance(m, dict)
            and m.get("type") in ("human", "ai", "system", "tool", "function", "chat")
            and isinstance(m.get("data"), dict)
            for m in messages
        )
    )


def _aoai_chat(doc: Document) -> bool:
    if doc.get("type") == "conversation":
        return {"userId", "createdAt", "title"} <= doc.keys()
    return doc.get("type") == "message" and {"conversationId", "role", "createdAt"} <= doc.keys()


def _agent_framework(doc: Document) -> bool:
    message = doc.get("message")
    return (
        {"session_id", "sort_key", "source_id"} <= doc.keys()
        and isinstance(message, dict)
        and "role" in message
    )


def _agentdash(doc: Document) -> bool:
    defaults = CANONICAL_FIELDS["messages"]
    required = ("conversation_id", "agent_id", "role", "timestamp")
    return all(defaults[column] in doc for column in required)


_LOOKS = {
    "langchain": _langchain,
    "aoai-chat": _aoai_chat,
    "agent-framework": _agent_framework,
    "agentdash": _agentdash,
}


def _messages_array(docs: Sequence[Document]) -> str | None:
    """A top-level field holding a list of objects in most documents: their messages."""
    counts: Counter[str] = Counter()
    for doc in docs:
        for key, value in doc.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                counts[key] += 1
    if not counts:
        return None
    key, count = counts.most_common(1)[0]
    return key if count / len(docs) >= 0.5 and FIELD_PATTERN.fullmatch(key) else None


def _message_type(docs: Sequence[Document]) -> str | None:
    """``"message"`` when a ``type`` field tells messages from other records."""
    kinds = {doc.get("type") for doc in docs}
    return "message" if "message" in kinds and len(kinds) > 1 else None


def _paths(value: Any, prefix: str = "", depth: int = 1) -> Iterator[tuple[str, Any]]:
    if not isinstance(value, dict) or depth > _DEPTH:
        return
    for key, child in value.items():
        if not isinstance(key, str) or (key.startswith("_") and key != "_ts"):
            continue
        path = f"{prefix}{key}"
        if not FIELD_PATTERN.fullmatch(path):
            continue
        yield path, child
        yield from _paths(child, path + ".", depth + 1)


def _plain(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def _name_score(path: str, column: str) -> float:
    leaf = _plain(path.rsplit(".", 1)[-1])
    whole = _plain(path)
    return max(
        difflib.SequenceMatcher(None, candidate, name).ratio()
        for candidate in NAMES[column]
        for name in (leaf, whole)
    )


def _fit(column: str, values: list[Any]) -> float:
    """The share of the present values that the column's rule reads."""
    present = [v for v in values if v is not None]
    if not present:
        return 0.0
    _, bad = RULES["messages"][column].kind.read(present)
    return 1.0 - float(bad.mean())


def _mapping(
    docs: Sequence[Document], parents: Sequence[Document] | None
) -> tuple[dict[str, str], list[str]]:
    """Column -> source field, for columns whose best field scores well enough."""
    values: dict[str, list[Any]] = {}
    for doc in docs:
        for path, value in _paths(doc):
            values.setdefault(path, []).append(value)
    for doc in parents or ():  # a session document's own fields, for what elements lack
        for path, value in _paths(doc):
            if not isinstance(value, list):
                values.setdefault(path, []).append(value)
    scored = []
    for column in NAMES:
        for path, found in values.items():
            if isinstance(found[0], dict | list) and column != "content":
                continue
            # Of two fields named alike, the shallower (an "id" before a "data.id").
            depth = path.count(".")
            score = _name_score(path, column) * _fit(column, found) * (1 - 0.05 * depth)
            if score >= _MIN_SCORE:
                scored.append((score, column, path))
    chosen: dict[str, str] = {}
    taken: set[str] = set()
    for _score, column, path in sorted(scored, reverse=True):
        if column not in chosen and path not in taken:
            chosen[column], taken = path, taken | {path}
    defaults = CANONICAL_FIELDS["messages"]
    fields = {c: chosen[c] for c in NAMES if c in chosen and chosen[c] != defaults[c]}
    why = [
        f"no field looks like {column}: kept {defaults[column]!r}"
        for column in ("conversation_id", "agent_id", "role", "timestamp")
        if column not in chosen
    ]
    return fields, why


def _tried(
    section: Mapping[str, str],
    fields: Mapping[str, str],
    docs: Sequence[Document],
    container_name: str,
    preset: str | None,
    why: list[str] | None = None,
) -> Proposal:
    """The proposal with the share of the sample it reads."""
    chosen = PRESETS[section.get("preset", "agentdash")]
    mapping = FieldMapping.for_container("messages", {"messages": {**chosen.fields, **fields}})
    shape = Shape.from_section(section, container_name)
    messages, unreadable = shape.messages(docs, mapping)
    result = normalise(messages, mapping)
    if shape.session:
        readable, sampled, unit = len(result.frame), len(messages) + len(unreadable), "messages"
    else:
        skipped = len(docs) - len(messages)  # records that are no messages: not counted
        readable, sampled, unit = len(result.frame), len(docs) - skipped, "documents"
    return Proposal(dict(section), dict(fields), preset, readable, sampled, unit, why or [])
