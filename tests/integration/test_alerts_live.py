"""Two ``agentdash serve`` processes sharing one Redis and one store evaluate the rules on
every refresh: an incident planted while they run reaches a webhook once when it starts
firing and once when it resolves; a scheduled report is written once per due time."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipelines.sources.local import LocalSource
from tests.alerting import Receiver, receiving
from tests.conftest import RedisServer, wait_until
from tests.ui.conftest import ServedApp, make_served_app, new_message

RULES = """
[[alerts]]
name = "live errors"
metric = "error_rate"
over = "20s"
every = "2s"
condition = "> 0.5"
agents = ["a-live*"]
group_by = "agent"
notify = ["hook", "broken"]

[notifiers.hook]
kind = "webhook"
url = "{hook}"

[notifiers.broken]
kind = "webhook"
url = "{broken}"
retries = 2

[[schedules]]
name = "minutely"
cron = "* * * * *"
tz = "Europe/Berlin"
notify = ["hook"]
report = {{window = "30d", format = "html", out = "{out}/agents-%Y-%m-%d-%H%M.html"}}
"""


@dataclass
class Pair:
    apps: list[ServedApp]
    hook: Receiver
    broken: Receiver
    reports: Path

    @property
    def store(self) -> LocalSource:
        return LocalSource(self.apps[0].store)

    def alerts(self) -> list[dict[str, Any]]:
        """Each process's alert counters, as its /health tells them."""
        return [app.get_json("/health")[1]["alerts"] for app in self.apps]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Pair]:
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    reports = tmp_path_factory.mktemp("reports")
    config = tmp_path_factory.mktemp("config") / "agentdash.toml"
    with receiving() as hook, receiving(500) as broken:
        config.write_text(RULES.format(hook=hook.url, broken=broken.url, out=reports))
        first = make_served_app(
            tmp_path_factory.mktemp("first"),
            AGENTDASH_REDIS_URL=redis_server.url,
            AGENTDASH_CONFIG=str(config),
        )
        second = ServedApp(tmp_path_factory.mktemp("second"), env=dict(first.env))
        try:
            for app in (first, second):
                app.start()
            yield Pair([first, second], hook, broken, reports)
        finally:
            for app in (first, second):
                app.stop()


def test_a_planted_incident_is_notified_once_firing_and_once_resolved(pair: Pair) -> None:
    # Whichever process comes first after a step evaluates it: maybe always the same one.
    wait_until(
        lambda: sum(alerts["evaluations"] for alerts in pair.alerts()) > 0,
        timeout=60,
        message="the rule to be evaluated",
    )
    assert pair.hook.states() == []
    pair.store.upsert(
        "messages",
        [new_message(agentId="a-live-1", status="error") for _ in range(3)],
    )
    wait_until(
        lambda: pair.hook.states() == [("live errors", "a-live-1", "firing")],
        timeout=60,
        message="the firing notification",
    )
    # No new message: once the errors leave the 20 s window, the instance resolves.
    wait_until(
        lambda: len(pair.hook.states()) >= 2, timeout=90, message="the resolved notification"
    )
    resolved = sum(alerts["evaluations"] for alerts in pair.alerts())
    # More steps, in both processes: none sends again.
    wait_until(
        lambda: sum(alerts["evaluations"] for alerts in pair.alerts()) >= resolved + 4,
        timeout=60,
        message="more evaluations",
    )
    assert pair.hook.states() == [
        ("live errors", "a-live-1", "firing"),
        ("live errors", "a-live-1", "resolved"),
    ]
    # The failing notifier was tried twice for each, and never stopped the refresher.
    wait_until(lambda: pair.broken.attempts == 4, message="the failing notifier's retries")
    alerts = pair.alerts()
    assert sum(a["sent"] for a in alerts) == 2
    assert sum(a["failed"] for a in alerts) == 2
    assert all(app.get_json("/health")[1]["refresher"]["running"] for app in pair.apps)
    # /metrics of each process: together, what the two did.
    scraped = [scrape(app) for app in pair.apps]
    assert sum(s["agentdash_notifications_sent_total"] for s in scraped) == 2
    assert sum(s["agentdash_notifications_failed_total"] for s in scraped) == 2
    assert sum(s["agentdash_alert_evaluations_total"] for s in scraped) >= resolved
    assert all(s["agentdash_alerts_firing"] == 0 for s in scraped)


def scrape(app: ServedApp) -> dict[str, float]:
    with urllib.request.urlopen(f"{app.url}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def test_a_schedule_writes_one_report_per_due_time_across_both_processes(pair: Pair) -> None:
    def reported() -> list[dict[str, Any]]:
        return [body for body in list(pair.hook.bodies) if body.get("kind") == "report"]

    wait_until(lambda: len(reported()) >= 2, timeout=180, message="two minutes' reports")
    dues = [body["due"] for body in reported()]
    assert len(set(dues)) == len(dues), dues  # each due time run by one process only
    for body in reported():
        due = datetime.fromisoformat(body["due"])
        assert due.utcoffset() == ZoneInfo("Europe/Berlin").utcoffset(due.replace(tzinfo=None))
        assert Path(body["file"]) == pair.reports / f"agents-{due:%Y-%m-%d-%H%M}.html"
        assert Path(body["file"]).stat().st_size > 0
