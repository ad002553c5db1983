"""``agentdash report --team``: a team's report holds that team's agents and messages only."""

from __future__ import annotations

from pathlib import Path

from pipelines import AgentsPipeline, LiveFrames, MessagesPipeline
from pipelines.cache import MemoryFrameCache
from pipelines.sources.local import LocalSource
from tests.ui.conftest import make_served_app


def test_a_teams_report_names_its_team_and_holds_none_of_the_others(tmp_path: Path) -> None:
    app = make_served_app(tmp_path, messages=2000, days=3)
    frames = LiveFrames(LocalSource(app.store), MemoryFrameCache())
    agents = AgentsPipeline(frames=frames).frame
    team = str(agents["team"].value_counts().index[0])
    out = tmp_path / "team.html"

    result = app.command("report", "--window", "7d", "--team", team, "--out", str(out))

    ours = MessagesPipeline(frames=frames, window="7d", teams=[team]).frame
    assert f"{len(ours):,} messages" in result.stdout
    html = out.read_text()
    assert f"teams {team}" in html
    for name in agents.loc[agents["team"] == team, "name"]:
        assert name in html
    for name in agents.loc[agents["team"] != team, "name"]:
        assert name not in html
