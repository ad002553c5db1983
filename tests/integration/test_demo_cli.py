"""``agentdash demo``: the store it writes, live mode on top of it, and the file it names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.query import Query
from pipelines.sources.local import LocalSource
from pipelines.windows import as_utc
from tests.conftest import wait_until


def environment(**settings: str) -> dict[str, str]:
    """The process environment without AGENTDASH_* settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTDASH_")}
    return {**env, **settings}


def agentdash(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def timestamps(store: Path) -> list[datetime]:
    source = LocalSource(store)
    query = Query.build("messages", projection=["timestamp"])
    try:
        return [as_utc(doc["timestamp"]) for batch in source.fetch(query) for doc in batch]
    finally:
        source.close()


def count(store: Path, container: str) -> int:
    source = LocalSource(store)
    try:
        return sum(len(page) for page in source.fetch(Query.build(container, projection=["id"])))
    finally:
        source.close()


def interrupt(process: subprocess.Popen[str]) -> tuple[str, str]:
    """Ctrl-C to the process; its output once it has stopped."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out, err


def test_live_mode_goes_on_from_a_store_without_writing_history_again(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    env = environment(AGENTDASH_LOCAL_PATH=str(store))
    # 5000 messages in half an hour: about three a second to go on at.
    seeded = run("demo", "--messages", "5000", "--days", "0.02", env=env)
    assert seeded.returncode == 0, seeded.stderr
    started = datetime.now(UTC)

    live = agentdash("demo", "--live", env=env)
    wait_until(
        lambda: live.poll() is not None or count(store, "messages") >= 5010,
        timeout=120,
        message="live mode to append messages",
    )
    out, _ = interrupt(live)

    assert f"store: {store}" in out
    assert "the store holds 5000 messages" in out and "wrote" not in out
    assert "messages a second" in out
    history = [t for t in timestamps(store) if t < started]
    appended = count(store, "messages") - len(history)
    assert len(history) == 5000
    assert 10 <= appended < 2500  # tens of messages, not another history
    assert count(store, "agents") == 12


def test_live_mode_on_an_empty_store_writes_the_history_first(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    env = environment(AGENTDASH_LOCAL_PATH=str(store))

    live = agentdash("demo", "--live", "--messages", "2000", "--days", "1", "--rate", "5", env=env)
    wait_until(
        lambda: live.poll() is not None or count(store, "messages") > 2000,
        timeout=120,
        message="live mode to append messages",
    )
    out, _ = interrupt(live)

    assert "wrote 12 agents and 2000 messages" in out
    assert "appending about 5.0 messages a second" in out


def test_live_mode_refuses_a_store_that_holds_no_demo_data(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    source = LocalSource(store)
    source.upsert(
        "agents", [{"id": "a-1", "name": "helper", "kind": "chatbot", "status": "active"}]
    )
    source.upsert(
        "messages", [{"id": f"m-{h}", "timestamp": f"2026-11-25T{h}:00:00Z"} for h in (10, 11)]
    )
    source.close()

    result = run("demo", "--live", env=environment(AGENTDASH_LOCAL_PATH=str(store)))

    assert result.returncode == 2
    assert "agentdash: error: demo: agent 'a-1' is of kind 'chatbot'" in result.stderr
    assert "--rate" in result.stderr
    assert count(store, "messages") == 2


@pytest.mark.parametrize(
    ("flag", "value"), [("--rate", "0"), ("--rate", "nan"), ("--agents", "1"), ("--days", "-2")]
)
def test_impossible_numbers_are_refused_naming_the_flag(
    tmp_path: Path, flag: str, value: str
) -> None:
    store = tmp_path / "store.db"
    result = run("demo", flag, value, env=environment(AGENTDASH_LOCAL_PATH=str(store)))
    assert result.returncode == 2
    assert f"argument {flag}: {value}: give a number" in result.stderr
    assert not store.exists()


def test_live_mode_needs_a_rate_when_there_is_no_history(tmp_path: Path) -> None:
    env = environment(AGENTDASH_LOCAL_PATH=str(tmp_path / "store.db"))

    result = run("demo", "--live", "--messages", "0", env=env)

    assert result.returncode == 2
    assert "agentdash: error: demo: no rate to tell from 0 messages" in result.stderr
    assert "--rate" in result.stderr


def test_a_relative_store_path_is_taken_from_the_folder_the_command_starts_in(
    tmp_path: Path,
) -> None:
    env = environment(AGENTDASH_LOCAL_PATH="stores/demo.db")
    result = run("demo", "--messages", "100", "--days", "1", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"store: {tmp_path / 'stores' / 'demo.db'}" in result.stdout
    assert count(tmp_path / "stores" / "demo.db", "messages") == 100


def test_the_default_store_is_the_users_wherever_the_command_runs(tmp_path: Path) -> None:
    env = {**environment(), "XDG_DATA_HOME": str(tmp_path / "data")}
    store = tmp_path / "data" / "agentdash" / "agentdash.db"
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        result = run("demo", "--messages", "100", "--days", "1", env=env, cwd=tmp_path / folder)
        assert result.returncode == 0, result.stderr
        assert f"store: {store}" in result.stdout
    assert count(store, "agents") == 12
    assert not any((tmp_path / folder / "data").exists() for folder in ("one", "two"))
