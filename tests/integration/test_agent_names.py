"""Agents by name or by id: the API answers the same, reports refuse an unknown one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from pipelines import AgentsPipeline, LiveFrames
from pipelines.cache import MemoryFrameCache
from pipelines.sources.local import LocalSource
from tests.ui.conftest import ServedApp, make_served_app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    served = make_served_app(tmp_path_factory.mktemp("names"), messages=3000, days=10)
    served.start()
    yield served
    served.stop()


@pytest.mark.parametrize("path", ["/api/v1/metrics/summary", "/api/v1/agents", "/api/v1/messages"])
def test_the_api_answers_the_same_for_a_name_and_its_id(app: ServedApp, path: str) -> None:
    agents = AgentsPipeline(frames=LiveFrames(LocalSource(app.store), MemoryFrameCache())).frame
    agent = agents.dropna(subset=["name"]).iloc[0]
    by_id = app.get_json(f"{path}?window=7d&agent={quote(agent['id'])}")
    by_name = app.get_json(f"{path}?window=7d&agent={quote(agent['name'])}")
    assert by_id[0] == by_name[0] == 200
    assert by_name[1] == by_id[1]
    if path.endswith("summary"):
        assert by_name[1]["messages"] > 0
    unknown = app.get_json(f"{path}?window=7d&agent=nobody")
    assert unknown[0] == 200 and unknown[1] != by_id[1]


def test_a_report_of_an_unknown_agent_is_refused(app: ServedApp, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = app.command("report", "--agents", "nobody", "--out", str(out), check=False)
    assert result.returncode == 2
    assert "unknown agent: nobody" in result.stderr
    assert not out.exists()
