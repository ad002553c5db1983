"""Load JSON or JSON-lines exports into the embedded store."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.errors import AgentdashError
from pipelines.sources.local import LocalSource


def read_documents(path: Path) -> Iterator[Any]:
    """Documents of a JSON array, a JSON object per line, or one JSON object."""
    try:
        with path.open("rb") as fh:
            # Windows tools often start UTF-8 files with a byte order mark.
            head = fh.read(1024).removeprefix(codecs.BOM_UTF8).lstrip()
    except OSError as exc:
        raise AgentdashError(f"cannot read {path}: {exc.strerror}") from None
    if head.startswith(b"["):
        try:
            docs = json.loads(path.read_bytes())
        except json.JSONDecodeError as exc:
            raise AgentdashError(f"{path} is not valid JSON: {exc}") from None
        yield from docs
        return
    with path.open("r", encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise AgentdashError(
                    f"{path}:{number} is not a JSON document ({exc.msg}); "
                    "give a JSON array or one JSON object per line"
                ) from None


def import_file(store: LocalSource, path: Path, container: str) -> tuple[int, int]:
    """Store the documents of ``path``; returns (written, skipped without an id).

    Documents are stored as they are: normalisation (and quarantine of what
    cannot be read) happens when they are read, as for any source.
    """
    skipped = 0

    def with_ids() -> Iterator[dict[str, Any]]:
        nonlocal skipped
        for doc in read_documents(path):
            if isinstance(doc, dict) and doc.get("id") not in (None, ""):
                yield doc
            else:
                skipped += 1

    written = store.upsert(container, with_ids())
    return written, skipped
