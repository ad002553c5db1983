"""What the Ops tab and ``/metrics`` tell of the alerting of a process."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from app import live
from app.monitoring import metrics
from app.views.ops import OpsView
from pipelines import MessagesPipeline
from tests.alerting import AGENTS, planted
from tests.conftest import stored_frames

RULE = """
[[alerts]]
name = "errors"
metric = "error_rate"
over = "5m"
every = "5m"
condition = "> 0.5"
group_by = "agent"
"""


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_the_ops_tab_and_the_metrics_count_evaluations_and_firing_instances(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "agentdash.toml"
    config.write_text(RULE)
    clean_env.setenv("AGENTDASH_CONFIG", str(config))
    clean_env.setenv("AGENTDASH_LOCAL_PATH", str(tmp_path / "store.db"))
    clean_env.setenv("AGENTDASH_REFRESH_SECONDS", "3600")  # no cycle of its own meanwhile
    incidents = planted()
    before = sample("agentdash_alert_evaluations_total")
    with stored_frames(tmp_path, AGENTS, incidents.messages) as frames:
        refresher = live.ensure_refresher(frames)
        try:
            assert refresher.alerting is not None
            refresher.alerting.run_due(incidents.error_start + timedelta(minutes=10))
            view = OpsView(messages=MessagesPipeline(frames=frames))
            view.refresh()
            shown = view.counters.values
            metrics.watch(frames).sync()
        finally:
            refresher.stop()
    assert {k: shown[k] for k in shown if k.startswith("alerts.")} == {
        "alerts.evaluations": 1,
        "alerts.firing": 1,
        "alerts.sent": 0,
        "alerts.failed": 0,
    }
    assert sample("agentdash_alert_evaluations_total") - before == 1
    assert sample("agentdash_alerts_firing") == 1
