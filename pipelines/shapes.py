"""How a container holds its messages: one document each, or one document per session.

A :class:`Shape` (the ``[containers.messages]`` section, or a preset) turns the documents
a source reads into one document per message for normalisation:

- ``layout = "message"``: one document per message, as they are;
- ``layout = "session"``: one document per conversation whose ``messages_path`` holds an
  array of messages.  Each element is read with the field mapping relative to itself, and a
  field it lacks is taken from its document (``conversation_id`` from the document's
  ``id``, a time from the document's ``_ts``).  Its id is ``<document id>:<index>``
  unless it has its own.

With a section, a message that names no agent takes ``default_agent`` (default: the
container's name), one without a time its document's ``_ts``, and ``where_type`` keeps
only the documents whose ``type`` is that (others, such as a chat app's conversation
records, are not messages: skipped, not quarantined).  Without a section documents are
read exactly as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from pipelines.presets import PRESETS
from pipelines.query import Scalar
from pipelines.schema import FieldMapping, QuarantinedDocument, lookup, unreadable
from pipelines.sources.base import ColumnBatch, Document

LAYOUTS = ("message", "session")
TYPE_FIELD = "type"
#: The time Cosmos DB (and the embedded store) gives every document: its last write.
DOCUMENT_TIME = "_ts"


@dataclass(frozen=True)
class Shape:
    """The layout of the messages container and what it fills in (see the module doc)."""

    layout: str = "message"
    messages_path: str = "messages"
    default_agent: str | None = None
    where_type: str | None = None

    @classmethod
    def from_section(cls, section: Mapping[str, str] | None, container_name: str) -> Shape:
        """The shape a (checked) ``[containers.messages]`` section describes; no section:
        documents as they are."""
        if section is None:
            return cls()
        preset = PRESETS[section.get("preset", "agentdash")]
        return cls(
            layout=section.get("layout", preset.layout),
            messages_path=section.get("messages_path", "messages"),
            default_agent=section.get("default_agent", container_name),
            where_type=section.get("where_type", preset.where_type),
        )

    @property
    def session(self) -> bool:
        return self.layout == "session"

    # -- what to ask the source ------------------------------------------------------------
    def projection(self, mapping: FieldMapping, columns: Sequence[str]) -> tuple[str, ...]:
        """The fields to read for ``columns``: for sessions, the document's own (an element
        lacking a field takes it from there) and the array of messages."""
        fields = mapping.projection(columns)
        kept = (TYPE_FIELD,) if self.where_type is not None else ()
        if not self.session:
            # With a section, a message without a time of its own takes its document's _ts.
            written = (DOCUMENT_TIME,) if self.default_agent is not None else ()
            return tuple(dict.fromkeys([*fields, *kept, *written]))
        return tuple(dict.fromkeys(["id", DOCUMENT_TIME, *kept, *fields, self.messages_path]))

    def filters(self) -> dict[str, Scalar]:
        return {} if self.where_type is None else {TYPE_FIELD: self.where_type}

    def time_field(self, mapping: FieldMapping) -> str:
        """The field a window is pushed down on: for sessions, the document's last write."""
        return DOCUMENT_TIME if self.session else mapping.source_field("timestamp")

    def window(
        self, start: datetime | None, end: datetime | None
    ) -> tuple[datetime | None, datetime | None]:
        """The bounds pushed down for a window [start, end].

        A session document written before the window starts holds no message of it, but one
        written after it ends may hold messages inside it: only the start is pushed down,
        a second early (``_ts`` is whole seconds), and the messages are cut to the window
        once read.
        """
        if not self.session:
            return start, end
        return (None if start is None else start - timedelta(seconds=1)), None

    def conversation_filter(self, mapping: FieldMapping, conversation_id: str) -> dict[str, str]:
        """The filter reading one conversation: its document, for sessions."""
        field = "id" if self.session else mapping.source_field("conversation_id")
        return {field: conversation_id}

    def pushed_down(self) -> list[str]:
        """What a query of this shape leaves to be done after reading, in words."""
        notes = []
        if self.session:
            notes.append(
                "the window's start is pushed down on each session document's _ts (its last "
                "write); its end is not (a session holds messages of many times), and messages "
                "are cut to the window once read"
            )
        if self.where_type is not None:
            notes.append(f"only documents whose {TYPE_FIELD!r} is {self.where_type!r} are read")
        return notes

    # -- from documents to messages --------------------------------------------------------
    def messages(
        self, docs: Sequence[Document], mapping: FieldMapping
    ) -> tuple[Sequence[Document], list[QuarantinedDocument]]:
        """One document per message, keyed by the mapping's source fields, and the
        documents that hold no readable messages (quarantined, with why)."""
        if self.where_type is not None:
            docs = _where(docs, TYPE_FIELD, self.where_type)
        if self.session:
            return self._explode(docs, mapping)
        if self.default_agent is None or not docs:
            return docs, []
        docs = _fill(docs, mapping.source_field("agent_id"), [self.default_agent] * len(docs))
        return _fill(docs, mapping.source_field("timestamp"), values(docs, DOCUMENT_TIME)), []

    def _explode(
        self, docs: Sequence[Document], mapping: FieldMapping
    ) -> tuple[ColumnBatch, list[QuarantinedDocument]]:
        fields = {**dict(mapping.fields), **dict(mapping.dimensions)}
        paths = list(dict.fromkeys(fields.values()))
        id_path, agent_path = fields["id"], fields["agent_id"]
        conversation_path, time_path = fields["conversation_id"], fields["timestamp"]
        getters = [_getter(path) for path in paths]
        own = [values(docs, path) for path in paths]
        parent_ids = values(docs, "id")
        parent_times = values(docs, DOCUMENT_TIME)
        arrays = values(docs, self.messages_path)
        # Where an element lacks a field: its document's, or (for these) a default.
        instead = {
            conversation_path: parent_ids,
            time_path: parent_times,
            agent_path: [self.default_agent] * len(docs),
        }

        def defaults(i: int) -> list[Any]:
            found = []
            for path, values in zip(paths, own, strict=True):
                value = None if path == id_path else values[i]  # an id comes from the index
                if value is None and path in instead:
                    value = instead[path][i]
                found.append(value)
            return found

        columns: list[list[Any]] = [[] for _ in paths]
        ids = columns[paths.index(id_path)]
        quarantined: list[QuarantinedDocument] = []
        for i, elements in enumerate(arrays):
            if not isinstance(elements, list):
                doc = docs[i]
                quarantined.append(
                    unreadable(
                        "messages",
                        doc,
                        f"not a session: {self.messages_path!r} holds "
                        f"{'nothing' if elements is None else type(elements).__name__}, "
                        "must be a list of messages",
                    )
                )
                continue
            parent_id = parent_ids[i]
            inherited = defaults(i)
            for index, element in enumerate(elements):
                if not isinstance(element, dict):
                    element = {}  # read as a message with nothing of its own: quarantined
                for column, get, default in zip(columns, getters, inherited, strict=True):
                    value = get(element)
                    column.append(default if value is None else value)
                if ids[-1] is None:
                    ids[-1] = f"{parent_id}:{index}"
        batch: dict[str, Sequence[Any]] = dict(zip(paths, columns, strict=True))
        return ColumnBatch(batch, len(ids)), quarantined


def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    """A fast ``lookup`` of one dotted path in an element."""
    parts = path.split(".")
    if len(parts) == 1:
        key = parts[0]
        return lambda element: element.get(key)
    return lambda element: lookup(element, path)


def values(docs: Sequence[Document], path: str) -> Sequence[Any]:
    """The value at ``path`` of each document (or column batch), None where absent."""
    if isinstance(docs, ColumnBatch):
        return docs.column(path)
    return [doc.get(path) if path in doc else lookup(doc, path) for doc in docs]


def _where(docs: Sequence[Document], path: str, wanted: str) -> Sequence[Document]:
    kept = np.array([value == wanted for value in values(docs, path)], dtype=bool)
    if bool(kept.all()):
        return docs
    if isinstance(docs, ColumnBatch):
        rows = np.flatnonzero(kept).tolist()
        columns: dict[str, Sequence[Any]] = {
            p: [v[i] for i in rows] for p, v in docs.columns.items()
        }
        return ColumnBatch(columns, len(rows))
    return [doc for doc, keep in zip(docs, kept, strict=True) if keep]


def _fill(docs: Sequence[Document], path: str, defaults: Sequence[Any]) -> Sequence[Document]:
    """``docs`` whose ``path`` is missing taking their ``defaults`` there."""
    found = values(docs, path)
    if all(value is not None for value in found):
        return docs
    filled = [d if value is None else value for value, d in zip(found, defaults, strict=True)]
    if isinstance(docs, ColumnBatch):
        return ColumnBatch({**docs.columns, path: filled}, len(docs))
    return [{**doc, path: value} for doc, value in zip(docs, filled, strict=True)]
