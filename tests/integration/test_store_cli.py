"""Every command that uses the embedded store names the file, absolute, before it starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from pipelines import demo
from pipelines.sources.local import LocalSource


@pytest.fixture
def store(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A demo store named by a path relative to the working folder."""
    path = tmp_path / "stores" / "agentdash.db"
    source = LocalSource(path)
    agents, messages = demo.generate(6, 2000, days=3, seed=2)
    source.upsert("agents", agents)
    source.upsert("messages", messages)
    source.close()
    clean_env.chdir(tmp_path)
    clean_env.setenv("AGENTDASH_LOCAL_PATH", "stores/agentdash.db")
    return path


def test_import_names_the_store(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "agents.json"
    export.write_text(json.dumps([{"id": "a-new", "name": "new", "kind": "support"}]))

    assert main(["import", str(export), "--container", "agents"]) == 0

    assert capsys.readouterr().out.splitlines()[0] == f"store: {store}"


def test_report_names_the_store(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--window", "24h", "--out", str(tmp_path / "r.html")]) == 0

    assert capsys.readouterr().out.splitlines()[0] == f"store: {store}"


def test_a_missing_store_is_named_with_the_refusal(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.chdir(tmp_path)
    clean_env.setenv("AGENTDASH_LOCAL_PATH", "nowhere/agentdash.db")

    assert main(["report", "--out", str(tmp_path / "r.html")]) == 2

    captured = capsys.readouterr()
    assert captured.out == f"store: {tmp_path / 'nowhere' / 'agentdash.db'}\n"
    assert f"there is no local store at {tmp_path / 'nowhere' / 'agentdash.db'}" in captured.err
