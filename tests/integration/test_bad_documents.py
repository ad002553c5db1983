"""Every kind of bad document, end to end: imported, stored, read by windows, quarantined once,
checked; the good documents beside them always readable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline, demo
from pipelines.cache import MemoryFrameCache
from pipelines.sources.local import LocalSource

AGENTS, GOOD = demo.generate(4, 40, days=0.5, seed=3)  # all inside the last 24 hours
RECENT = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


def reply(**fields: Any) -> dict[str, Any]:
    """An agent reply of a minute ago; ``fields`` replace fields (None drops one)."""
    doc = {
        "conversationId": "c-bad",
        "agentId": AGENTS[0]["id"],
        "role": "agent",
        "timestamp": RECENT,
        "latencyMs": 120.0,
        "tokensIn": 10,
        "tokensOut": 20,
        "status": "ok",
        **fields,
    }
    return {k: v for k, v in doc.items() if v is not None}


# Stored, then quarantined when read: in every window (their time is recent or unreadable).
STORED_BAD = [
    reply(id="tokens-in-1e300", tokensIn=1e300),
    reply(id="tokens-out-2**63", tokensOut=2**63),
    reply(id="latency-401-digits", latencyMs=10**400),
    reply(id="time-401-digits", timestamp=10**400),
    reply(id="no-time", timestamp=None),
    reply(id="null-time") | {"timestamp": None},
    reply(id="not-a-date", timestamp="not a date"),
    reply(id="month-13", timestamp="2026-13-45T00:00:00Z"),
    reply(id="year-0", timestamp="0000-01-01T00:00:00Z"),
    reply(id="minus-1e20", timestamp=-1e20),
    reply(id="true-time", timestamp=True),
    reply(id="object-time", timestamp={"$date": RECENT}),
    reply(id="empty-time", timestamp=""),
    reply(id="year-2200", timestamp="2200-01-01T00:00:00Z"),
    reply(id="no-agent", agentId=None),
    reply(id="latency-text", latencyMs="250"),
    reply(id=1.5),
    reply(id=True),
    reply(id={"a": 1}),
]
# Refused by the import, with these reasons.
REFUSED = [
    ('{"id": "nan", "latencyMs": NaN}', "NaN and Infinity are not JSON; use null"),
    ('{"id": "inf", "latencyMs": Infinity}', "NaN and Infinity are not JSON; use null"),
    ('{"id": "deep", "x": ' + "[" * 1200 + "]" * 1200 + "}", "nested deeper than 128 levels"),
    ('{"id": "lone-\\ud800"}', "holds text that is not Unicode (a lone surrogate)"),
]


def export(path: Path, docs: list[Any], refused: list[tuple[str, str]]) -> Path:
    lines = [json.dumps(d) for d in docs[:5]] + [line for line, _ in refused]
    path.write_text("\n".join([*lines, *(json.dumps(d) for d in docs[5:])]) + "\n")
    return path


@pytest.fixture
def store_path(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    clean_env.setenv("AGENTDASH_LOCAL_PATH", str(path))
    return path


def test_an_import_keeps_the_good_documents_and_lists_the_bad_ones(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = export(tmp_path / "messages.jsonl", GOOD + STORED_BAD, REFUSED)

    assert main(["import", str(file), "--container", "messages"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out.pop(0) == f"store: {store_path}"
    written = len(GOOD) + len(STORED_BAD)
    assert out[0] == (
        f"imported {written} messages documents into {store_path}, skipped {len(REFUSED)}:"
    )
    assert out[1:] == [f"  line {6 + i}: {why}" for i, (_, why) in enumerate(REFUSED)]


def test_an_import_lists_ten_reasons_then_how_many_more(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = export(tmp_path / "messages.jsonl", GOOD, REFUSED * 4)

    assert main(["import", str(file), "--container", "messages"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out.pop(0) == f"store: {store_path}"
    assert out[0].endswith(", skipped 16:")
    assert len(out) == 12 and out[-1] == "  and 6 more"


def test_an_import_of_nothing_readable_exits_2_and_marks_the_store_written(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = export(tmp_path / "messages.jsonl", [], REFUSED)

    assert main(["import", str(file), "--container", "messages"]) == 2

    captured = capsys.readouterr()
    assert f"skipped {len(REFUSED)}:" in captured.out
    assert "no entry of" in captured.err and "could be imported" in captured.err
    assert not LocalSource(store_path).is_new()  # so no demo data is added to it


def test_an_import_of_an_empty_file_writes_nothing_and_succeeds(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty.jsonl").write_text("")

    assert main(["import", str(tmp_path / "empty.jsonl"), "--container", "messages"]) == 0

    assert "\nimported 0 messages documents" in capsys.readouterr().out
    assert not LocalSource(store_path).is_new()


def loaded_store(path: Path) -> LocalSource:
    store = LocalSource(path)
    store.upsert("agents", AGENTS)
    store.upsert("messages", GOOD + STORED_BAD)
    return store


def test_every_window_reads_the_good_documents_and_counts_each_bad_one_once(
    store_path: Path,
) -> None:
    backend = LiveFrames(loaded_store(store_path), MemoryFrameCache())

    day = MessagesPipeline(frames=backend, window="24h").frame
    assert sorted(day["id"]) == sorted(m["id"] for m in GOOD)
    assert backend.quarantine.count == len(STORED_BAD)
    for window in ("15m", "1h", "7d", "30d", "24h"):  # cold loads, each reading them again
        frame = MessagesPipeline(frames=backend, window=window).frame
        assert set(frame["id"]) <= set(day["id"])
        assert backend.quarantine.count == len(STORED_BAD)
    assert backend.quarantine.reasons() == {"wrong type": 7, "bad timestamp": 9, "missing field": 3}
    assert len(AgentsPipeline(frames=backend).frame) == len(AGENTS)


def test_a_conversation_read_quarantines_its_bad_messages_without_counting_them_again(
    store_path: Path,
) -> None:
    backend = LiveFrames(loaded_store(store_path), MemoryFrameCache())
    assert len(MessagesPipeline(frames=backend, window="24h").frame) == len(GOOD)

    assert len(backend.conversation("c-bad")) == 0
    assert backend.quarantine.count == len(STORED_BAD)
    first = GOOD[0]["conversationId"]
    assert set(backend.conversation(first)["id"]) == {
        m["id"] for m in GOOD if m["conversationId"] == first
    }


def test_check_reads_a_store_of_bad_documents_without_crashing(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded_store(store_path)

    assert main(["check", "--sample", "500"]) == 0

    out = capsys.readouterr().out
    total = len(GOOD) + len(STORED_BAD)
    assert f"{total} documents sampled, {len(GOOD)} normalise" in out
    assert "quarantined 1: wrong type: 'latencyMs' holds text, must be a non-negative number" in out
    assert "quarantined 1: missing field: 'agentId'" in out


def test_check_says_not_ok_when_no_message_reads(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    LocalSource(store_path).upsert("messages", STORED_BAD)

    assert main(["check"]) == 1

    out = capsys.readouterr().out
    assert f"{len(STORED_BAD)} documents sampled, 0 normalise (0.0%)" in out
    assert out.rstrip().endswith("see the hints above")
