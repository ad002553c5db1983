"""Load JSON or JSON-lines exports into the embedded store.

An entry that cannot be read or stored (malformed JSON, NaN or Infinity, nesting
too deep, text that is not Unicode, no id) is skipped and reported with its place;
every other document is imported.
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import AgentdashError
from pipelines.sources.local import MAX_DEPTH, LocalSource, Refused, encode


@dataclass(frozen=True)
class Entry:
    """One entry of an export: where it is, and its document or why it cannot be read."""

    where: str
    document: Any = None
    problem: str | None = None


@dataclass
class Imported:
    """How many documents an import wrote, and the entries it skipped."""

    written: int
    skipped: list[Entry] = field(default_factory=list)


def _problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return f"nested deeper than {MAX_DEPTH} levels"
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg} at column {exc.colno})"
    return f"not JSON ({exc})"  # e.g. an integer of more digits than Python reads


def _lines(path: Path) -> Iterator[Entry]:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            where = f"line {number}"
            try:
                # Windows tools often start UTF-8 files with a byte order mark.
                line = (raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw).decode()
            except UnicodeDecodeError:
                yield Entry(where, problem="not UTF-8 text")
                continue
            if not line.strip():
                continue
            try:
                yield Entry(where, json.loads(line))
            except (ValueError, RecursionError) as exc:
                yield Entry(where, problem=_problem(exc))


# A string, or a character that opens, closes or separates values.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]')
_SPACE = re.compile(r"\s*")


def _after_space(text: str, index: int) -> int:
    match = _SPACE.match(text, index)
    assert match is not None  # zero or more spaces match anywhere
    return match.end()


def _end_of_value(text: str, start: int) -> int | None:
    """Where the value starting at ``start`` of a JSON array ends, read by its brackets
    alone; None when the text ends first."""
    depth = 0
    for match in _TOKENS.finditer(text, start):
        token = match.group()
        if token in "[{":
            depth += 1
        elif token in "]}":
            if depth == 0:
                return match.start()
            depth -= 1
            if depth == 0:
                return match.end()
        elif token == "," and depth == 0:
            return match.start()
    return None


def _items(text: str, at: int) -> Iterator[Entry]:
    """The items of the JSON array opening at ``at``, one by one: a bad item is skipped by
    its brackets and the next one read."""
    decoder = json.JSONDecoder()
    line, counted = 1, 0
    index = _after_space(text, at + 1)
    if text.startswith("]", index):
        return
    for item in itertools.count():
        line += text.count("\n", counted, index)
        counted = index
        where = f"index {item} (line {line})"
        try:
            document, index = decoder.raw_decode(text, index)
            yield Entry(where, document)
        except (ValueError, RecursionError) as exc:
            yield Entry(where, problem=_problem(exc))
            end = _end_of_value(text, index)
            if end is None:
                return
            index = end
        index = _after_space(text, index)
        if not text.startswith(",", index):
            if index < len(text) and not text.startswith("]", index):
                line += text.count("\n", counted, index)
                yield Entry(f"line {line}", problem="not JSON (expected ',' or ']')")
            return
        index = _after_space(text, index + 1)


def read_documents(path: Path) -> Iterator[Entry]:
    """The entries of a JSON array, of a file of one JSON object per line, or of one object.

    Raises :class:`AgentdashError` when the file cannot be read at all.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(1024).removeprefix(codecs.BOM_UTF8).lstrip()
        if not head.startswith(b"["):
            yield from _lines(path)
            return
        data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    except OSError as exc:
        raise AgentdashError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise AgentdashError(
            f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from None
    yield from _items(text, text.index("["))


def import_entries(store: LocalSource, container: str, entries: Iterable[Entry]) -> Imported:
    """Store the documents of ``entries``; those that cannot be read or stored are skipped.

    Documents are stored as they are: normalisation (and quarantine of what
    cannot be read) happens when they are read, as for any source.
    """
    skipped: list[Entry] = []

    def storable() -> Iterator[dict[str, Any]]:
        for entry in entries:
            if entry.problem is None:
                try:
                    encode(entry.document)
                except Refused as exc:
                    entry = Entry(entry.where, problem=exc.reason)
                else:
                    yield entry.document
                    continue
            skipped.append(entry)

    written = store.upsert(container, storable())
    return Imported(written, skipped)


def import_file(store: LocalSource, path: Path, container: str) -> Imported:
    """Store the documents of the export at ``path`` (see :func:`import_entries`)."""
    return import_entries(store, container, read_documents(path))
