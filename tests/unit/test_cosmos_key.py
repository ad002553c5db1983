"""A Cosmos DB key that is not base64 is refused with the setting to fix, exit status 2."""

from __future__ import annotations

import pytest

from app.cli import main


@pytest.mark.parametrize("command", [["check"], ["serve", "--port", "1"], ["report"]])
def test_a_key_that_is_not_base64_exits_2_naming_the_setting(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    clean_env.setenv("AGENTDASH_SOURCE", "cosmos")
    clean_env.setenv("AGENTDASH_COSMOS_ENDPOINT", "https://account.documents.azure.com:443/")
    clean_env.setenv("AGENTDASH_COSMOS_DATABASE", "db")
    clean_env.setenv("AGENTDASH_COSMOS_KEY", "not base64!")
    assert main(command) == 2
    error = capsys.readouterr().err
    assert "AGENTDASH_COSMOS_KEY is not base64" in error
    assert "Traceback" not in error
