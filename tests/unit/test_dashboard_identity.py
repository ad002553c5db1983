"""A session built for an identity: its team's data only, and Ops details for admins only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import holoviews as hv
import panel as pn
import pytest
from bokeh.document import Document

from app.auth.identity import ADMIN, VIEWER, Identity
from app.dashboard import Dashboard
from pipelines import LiveFrames, demo
from pipelines.cache import MemoryFrameCache
from pipelines.sources.local import LocalSource

pn.extension("tabulator")
hv.extension("bokeh")

AGENTS, MESSAGES = demo.generate(6, 1000, 2, seed=2)
TEAM = AGENTS[0]["team"]
BAD = {**MESSAGES[0], "id": "m-raw-secret", "timestamp": "not a time"}


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LiveFrames]:
    store = LocalSource(tmp_path / "store.db")
    store.upsert("agents", AGENTS)
    store.upsert("messages", [*MESSAGES, BAD])
    yield LiveFrames(store, MemoryFrameCache())
    store.close()


def texts(view: pn.viewable.Viewer) -> str:
    """Everything the view's panes and tables hold, as text."""
    layout = view.__panel__()
    doc = Document()
    doc.add_root(layout.get_root(doc))
    shown = layout.select(lambda obj: isinstance(obj, pn.pane.Markdown | pn.widgets.Tabulator))
    return "\n".join(
        obj.value.to_csv() if isinstance(obj, pn.widgets.Tabulator) else str(obj.object)
        for obj in shown
    )


def test_a_viewers_session_holds_their_team_and_no_quarantined_document(
    backend: LiveFrames,
) -> None:
    dashboard = Dashboard(backend, identity=Identity("ada", VIEWER, (TEAM,)))
    ours = {agent["id"] for agent in AGENTS if agent["team"] == TEAM}
    assert set(dashboard.messages.frame["agent_id"]) <= ours
    assert set(dashboard.agents.frame["id"]) == ours
    dashboard.tab = "ops"
    shown = texts(dashboard.views["ops"])
    assert backend.quarantine.count == 1
    assert "m-raw-secret" not in shown
    assert "Only admins see the quarantined documents themselves." in shown


def test_an_admins_session_holds_every_team_and_the_quarantined_documents(
    backend: LiveFrames,
) -> None:
    dashboard = Dashboard(backend, identity=Identity("root", ADMIN))
    assert dashboard.messages.teams is None
    dashboard.tab = "ops"
    assert "m-raw-secret" in texts(dashboard.views["ops"])
