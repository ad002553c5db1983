"""The quarantine: each bad document counted once, the latest kept, in a file other
processes read (Redis: tests/integration/test_quarantine_inspected.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from pipelines.quarantine import RAW_LIMIT, Quarantine, SqliteStore
from pipelines.schema import FieldMapping, normalise
from tests.unit.test_schema import message

MESSAGES = FieldMapping.for_container("messages")


def quarantined(*docs: Any) -> list[Any]:
    return normalise(list(docs), MESSAGES).quarantined


def test_counts_reasons_and_keeps_the_documents_newest_first() -> None:
    quarantine = Quarantine()
    quarantine.add(
        quarantined(
            message(id="ok"),
            message(id="q1", role="wizard"),
            message(id="q2", timestamp="never"),
            message(id="q3", timestamp="later"),
            message(id="q4", conversationId=None),
            "not a document",
        )
    )
    quarantine.add(quarantined(message(id="q5", latencyMs="250")))
    listing = quarantine.listing(raw=True)
    assert listing["count"] == 6
    assert listing["reasons"] == {
        "not an object": 1,
        "bad role": 1,
        "bad timestamp": 2,
        "missing field": 1,
        "wrong type": 1,
    }
    documents = listing["documents"]
    assert documents[0]["id"] == "q5"
    assert sorted(str(d["id"]) for d in documents) == ["None", "q1", "q2", "q3", "q4", "q5"]
    assert set(documents[0]) == {"id", "container", "reason", "seen_at", "document"}
    assert documents[0]["reason"] == (
        "wrong type: 'latencyMs' holds text, must be a non-negative number"
    )
    assert documents[0]["document"]["latencyMs"] == "250"  # as read, JSON values
    assert "document" not in quarantine.listing()["documents"][0]  # only when raw


def test_a_document_read_again_and_again_is_counted_once() -> None:
    quarantine = Quarantine()
    for _ in range(3):  # three refreshes reading the same bad document
        quarantine.add(quarantined(message(id="q1", role="wizard")))
    # Updated into another bad version: still the same document.
    quarantine.add(quarantined(message(id="q1", timestamp="never")))
    assert quarantine.count == 1
    assert len(quarantine.entries()) == 1
    assert quarantine.read == 4  # what this process's reads left out, each read counted


def test_documents_without_a_text_id_are_counted_once_however_often_they_are_read() -> None:
    bad_ids = [1.5, True, {"a": 1}, None, "", "x\ud800"]
    docs = [message(id=i, latencyMs=float(n)) for n, i in enumerate(bad_ids)]
    docs.append({k: v for k, v in message(latencyMs=99.0).items() if k != "id"})
    quarantine = Quarantine()
    for _ in range(6):  # six cold loads
        quarantine.add(quarantined(*docs))
    assert quarantine.count == len(docs)
    entries = quarantine.entries()
    assert all(entry.id is None for entry in entries)
    # A lone surrogate travels as JSON escapes and comes back as it was read.
    assert any(entry.document.get("id") == "x\ud800" for entry in entries)


def test_raw_text_is_kept_for_the_latest_only_and_every_document_is_counted(
    tmp_path: Path,
) -> None:
    quarantine = Quarantine(SqliteStore(tmp_path / "q.db", "local:test", keep=2))
    quarantine.add(quarantined(*(message(id=f"q{i}", role="wizard") for i in range(5))))
    assert quarantine.count == 5
    entries = quarantine.entries(10)
    assert [e.id for e in entries] == ["q4", "q3", "q2", "q1", "q0"]
    assert [e.document is not None for e in entries] == [True, True, False, False, False]


def test_a_huge_or_unencodable_document_is_kept_cut_or_as_text() -> None:
    quarantine = Quarantine()
    quarantine.add(quarantined(message(id="big", role="wizard", content="x" * (3 * RAW_LIMIT))))
    quarantine.add(quarantined(message(id="nan", role="wizard", latencyMs=float("nan"))))
    documents = {e.id: e.document for e in quarantine.entries()}
    assert isinstance(documents["big"], str) and documents["big"].endswith("…")
    assert len(documents["big"]) <= RAW_LIMIT + 1
    assert isinstance(documents["nan"], str) and "nan" in documents["nan"]


def test_another_process_reads_the_same_quarantine(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    Quarantine(SqliteStore(path, "local:a")).add(quarantined(message(id="q1", role="wizard")))
    code = (
        "import json; from pipelines.quarantine import Quarantine, SqliteStore;"
        f" print(json.dumps(Quarantine(SqliteStore({str(path)!r}, 'local:a')).listing()))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    listing = json.loads(other.stdout)
    assert (listing["count"], listing["documents"][0]["id"]) == (1, "q1")
    # Another source's documents are its own.
    assert Quarantine(SqliteStore(path, "local:b")).count == 0


def test_listing_where_no_store_exists_creates_none(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("AGENTDASH_LOCAL_PATH", str(tmp_path / "none" / "agentdash.db"))
    assert main(["quarantine", "list"]) == 0
    assert "0 documents quarantined" in capsys.readouterr().out
    assert not (tmp_path / "none").exists()  # a store made here would be seeded as new
