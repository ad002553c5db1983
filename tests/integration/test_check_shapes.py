"""``agentdash check`` on containers of other shapes, and ``check --suggest`` proposing the
configuration that reads them, as a user runs them: the command, its output, its exit code."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli import main
from pipelines.settings import load_settings
from pipelines.sources.local import LocalSource
from tests import shaped


def store(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, docs: list[dict], config: str = ""
) -> None:
    path = tmp_path / "agentdash.db"
    clean_env.setenv("AGENTDASH_LOCAL_PATH", str(path))
    if config:
        (tmp_path / "agentdash.toml").write_text(config)
        clean_env.setenv("AGENTDASH_CONFIG", str(tmp_path / "agentdash.toml"))
    LocalSource(path).upsert("messages", docs)


def test_suggest_recognises_the_chat_app_and_the_block_makes_check_pass(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chats = shaped.conversations(5)
    store(tmp_path, clean_env, shaped.aoai_chat(chats, datetime.now(UTC) - timedelta(hours=1)))
    assert main(["check", "--suggest"]) == 1  # the default mapping reads none of them
    out = capsys.readouterr().out
    assert "the documents look like the 'aoai-chat' preset" in out
    block = re.search(r"paste into the AGENTDASH_CONFIG file:\n\n(.*?)\n\n", out, re.S)
    assert block is not None
    assert block[1].split() == ["[containers.messages]", "preset", "=", '"aoai-chat"']
    assert "with it 16 of 16 sampled documents normalise (100.0%)" in out

    config = tmp_path / "agentdash.toml"
    config.write_text(block[1].replace("    ", "") + "\n")
    clean_env.setenv("AGENTDASH_CONFIG", str(config))
    assert load_settings().containers == {"messages": {"preset": "aoai-chat"}}
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "not pushed down: only documents whose 'type' is 'message' are read" in out
    assert "16 documents sampled, 16 normalise (100.0%)" in out


def test_check_of_sessions_says_what_the_window_cannot_push_down(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = shaped.langchain(shaped.conversations(4))
    store(tmp_path, clean_env, docs, '[containers.messages]\npreset = "langchain"\n')
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "layout: session ('messages')" in out
    assert "its end is not (a session holds messages of many times)" in out
    assert "4 documents sampled, 12 messages, 12 normalise (100.0% of the messages)" in out


def test_a_typo_in_a_container_section_is_refused_with_the_key_meant(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store(tmp_path, clean_env, [], '[containers.messages]\npreset = "langchian"\n')
    assert main(["check"]) == 2
    assert (
        "preset 'langchian' is not a preset; did you mean 'langchain'?" in capsys.readouterr().err
    )
    (tmp_path / "agentdash.toml").write_text('[containers.messages]\nmessage_path = "turns"\n')
    assert main(["check"]) == 2
    assert "did you mean 'messages_path'?" in capsys.readouterr().err
