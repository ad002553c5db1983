"""``agentdash schedules run --due`` from an external scheduler: each due time once."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pipelines.sources.local import LocalSource
from tests.alerting import AGENTS, planted, receiving

YEARLY = """
[[schedules]]
name = "new year"
cron = "0 0 1 1 *"
tz = "Pacific/Auckland"
notify = ["hook"]
report = {{window = "24h", out = "{out}/agents-%Y-%m-%d.html"}}

[notifiers.hook]
kind = "webhook"
url = "{hook}"
"""


def test_racing_runs_write_the_due_report_once_and_then_nothing_is_due(tmp_path: Path) -> None:
    store = LocalSource(tmp_path / "store.db")
    store.upsert("agents", AGENTS)
    store.upsert("messages", planted().messages)
    store.close()
    with receiving() as hook:
        config = tmp_path / "agentdash.toml"
        config.write_text(YEARLY.format(out=tmp_path / "reports", hook=hook.url))
        env = {
            "PATH": "/usr/bin:/bin",
            "AGENTDASH_LOCAL_PATH": str(tmp_path / "store.db"),
            "AGENTDASH_CONFIG": str(config),
        }
        command = [sys.executable, "-m", "app.cli", "schedules", "run", "--due"]
        runs = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=300)[0].decode() for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        reports = [body for body in hook.bodies if body["kind"] == "report"]
    due = f"{datetime.now(UTC).astimezone(ZoneInfo('Pacific/Auckland')).year}-01-01"
    written = tmp_path / "reports" / f"agents-{due}.html"
    assert sorted(o.count(f"wrote {written}") for o in outputs) == [0, 1], outputs
    assert "no schedule is due" in again.stdout
    assert [(r["schedule"], r["file"]) for r in reports] == [("new year", str(written))]
    assert written.stat().st_size > 0
