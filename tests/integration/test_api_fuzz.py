"""Schemathesis against the served API's own OpenAPI document, with every check.

No server error, no status the document does not list, every answer as its schema
says, and the document states what the server refuses (see schemathesis.toml for the
one rule between parameters it cannot state).  Bounded: a fixed number of examples per
operation and a fixed seed, so that a run is the same run every time.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ui.conftest import ServedApp, serving

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    with serving(tmp_path_factory.mktemp("fuzz"), messages=2000, days=3) as served:
        yield served


def test_schemathesis_finds_nothing(app: ServedApp, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{app.url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "25",
        "--seed",
        "1",
        "--no-color",
    ]
    # In a folder of its own: schemathesis keeps its examples database where it runs.
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout
