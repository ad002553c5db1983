"""Alert rules: how they are read, what the backtest finds on planted incidents, and that
the backtest and the live evaluation compute the KPIs' own numbers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines import demo, metrics
from pipelines.alerts import Alerting, Firing, Scope, backtest, rolling
from pipelines.alerts.evaluate import Instance, advance, values_at
from pipelines.alerts.rolling import series
from pipelines.alerts.rules import METRICS, check_notifiers, check_rules
from pipelines.alerts.state import SqliteAlertStore
from pipelines.errors import ConfigError
from pipelines.live import FrameSpec, LiveFrames
from pipelines.settings import load_settings
from pipelines.windows import Window
from tests.alerting import AGENTS, Planted, planted, receiving
from tests.conftest import stored_frames

FIVE = timedelta(minutes=5)
DAY = FrameSpec("messages", Window.parse("24h"))


def rule(**entry: Any) -> Any:
    """One rule read from its TOML table (with a notifier ``hook`` when it names one)."""
    notifiers = check_notifiers({"hook": {"kind": "webhook", "url": entry.pop("url", "http://x/")}})
    table = {"name": "r", "metric": "error_rate", "over": "5m", "every": "5m", **entry}
    return check_rules([table], notifiers, {})[0]


# -- reading rules -----------------------------------------------------------------------


def test_the_issue_s_example_reads(tmp_path: Path) -> None:
    config = tmp_path / "agentdash.toml"
    config.write_text(
        """
[[alerts]]
name = "support p95 high"
metric = "latency_p95"
over = "15m"
every = "5m"
condition = "> 4000"
for = "10m"
agents = ["support-*"]
group_by = "agent"
notify = ["ops-webhook"]
[notifiers.ops-webhook]
kind = "webhook"
url = "https://hooks.example/ops"
"""
    )
    settings = load_settings({"AGENTDASH_CONFIG": str(config)})
    (read,) = settings.alerts
    assert (read.name, read.metric, read.op, read.threshold) == (
        "support p95 high",
        "latency_p95",
        ">",
        4000,
    )
    assert (read.over, read.every, read.hold) == (
        timedelta(minutes=15),
        FIVE,
        timedelta(minutes=10),
    )
    assert read.scope.agents == ("support-*",)
    assert read.group_by == "agent_id"
    assert read.notify == ("ops-webhook",)
    assert settings.notifiers["ops-webhook"].kind == "webhook"


def test_rules_may_come_from_their_own_file(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.toml"
    rules.write_text(
        '[[alerts]]\nname = "quiet"\nmetric = "messages"\n'
        'over = "1h"\nevery = "5m"\ncondition = "< 1"\n'
    )
    (read,) = load_settings({"AGENTDASH_ALERTS": str(rules)}).alerts
    assert (read.name, read.hold, read.notify) == ("quiet", timedelta(0), ())


def test_a_scope_takes_the_pipeline_s_filters_and_an_email_its_sender_as_from() -> None:
    notifiers = check_notifiers(
        {"mail": {"kind": "email", "host": "smtp", "from": "a@example.org", "to": "b@example.org"}}
    )
    assert notifiers["mail"].options["sender"] == "a@example.org"
    assert notifiers["mail"].options["to"] == ("b@example.org",)
    (read,) = check_rules(
        [
            {
                "name": "r",
                "metric": "messages",
                "over": "1h",
                "every": "5m",
                "condition": "< 1",
                "team": "care",
                "statuses": ["error", "timeout"],
                "roles": ["agent"],
                "models": ["gpt-4o"],
                "tenant": ["acme"],
                "notify": ["mail"],
            }
        ],
        notifiers,
        {"tenant": "tenantId"},
    )
    assert read.scope == Scope(
        teams=("care",),
        statuses=("error", "timeout"),
        roles=("agent",),
        models=("gpt-4o",),
        dimensions=(("tenant", ("acme",)),),
    )


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"metric": "latency_p90"}, "metric 'latency_p90' is not a KPI"),
        ({"notify": ["pager"]}, "'pager' is not a notifier"),
        ({"over": "1m"}, "shorter than its step"),
        ({"condition": "above 3"}, "is not a comparison"),
        ({"every": "soon"}, "is not a duration"),
        ({"group_by": "planet"}, "is not a breakdown"),
        ({"statuses": ["broken"]}, "'broken' is not one of"),
        ({"conditon": "> 3"}, "did you mean 'condition'?"),
    ],
)
def test_a_rule_that_cannot_work_is_refused_with_its_name_and_why(
    entry: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ConfigError, match="'support p95 high'") as refused:
        rule(**{"name": "support p95 high", "condition": "> 1", **entry})
    assert reason in str(refused.value)


def test_every_kpi_of_the_summary_may_be_watched() -> None:
    assert set(METRICS) >= {
        "messages", "conversations", "active_agents", "error_rate", "latency_p50",
        "latency_p95", "latency_p99", "tokens_in", "tokens_out", "cost_usd",
    }  # fmt: skip


# -- the state of an instance ---------------------------------------------------------------


def test_an_instance_fires_once_its_condition_held_for_long_enough() -> None:
    watched = rule(condition="> 0.5", **{"for": "10m"})
    start = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    instance: Instance | None = None
    seen = []
    for minutes, value in [
        (0, 0.0),
        (5, 0.9),
        (10, 0.9),
        (15, 0.9),
        (20, 0.9),
        (25, 0.1),
        (30, 0.1),
    ]:
        instance, event = advance(watched, instance, value, start + timedelta(minutes=minutes))
        seen.append((minutes, instance.state, event))
    assert seen == [
        (0, "ok", None),
        (5, "pending", None),
        (10, "pending", None),
        (15, "firing", "firing"),
        (20, "firing", None),
        (25, "resolved", "resolved"),
        (30, "ok", None),
    ]


# -- the backtest ---------------------------------------------------------------------------


@pytest.fixture
def history(tmp_path: Path) -> Iterator[tuple[Planted, LiveFrames]]:
    incidents = planted()
    with stored_frames(tmp_path, AGENTS, incidents.messages) as frames:
        yield incidents, frames


def replay(
    frames: LiveFrames, incidents: Planted, *rules: Any
) -> dict[tuple[str, Any], tuple[Firing, ...]]:
    messages = frames.get(DAY).frame
    agents = frames.get(FrameSpec("agents")).frame
    start = pd.Timestamp(incidents.end - timedelta(hours=12))
    found = backtest(rules, messages, agents, start, pd.Timestamp(incidents.end))
    return {(r.rule.name, r.group): r.firings for r in found}


def at(moment: Any) -> pd.Timestamp:
    return pd.Timestamp(moment)


def test_the_backtest_finds_the_error_burst_of_one_agent(
    history: tuple[Planted, LiveFrames],
) -> None:
    incidents, frames = history
    found = replay(frames, incidents, rule(name="errors", condition="> 0.5", group_by="agent"))
    # Five-minute windows: the first wholly inside the burst ends a step after it starts,
    # the last one ends as it ends; the next step sees no error and resolves it.
    assert found == {
        ("errors", "a-sup1"): (
            Firing(at(incidents.error_start + FIVE), at(incidents.error_end + FIVE), 1.0),
        ),
        ("errors", "a-sup2"): (),
        ("errors", "a-bill"): (),
    }


def test_for_holds_a_firing_back_until_the_condition_held_that_long(
    history: tuple[Planted, LiveFrames],
) -> None:
    incidents, frames = history
    held = rule(name="held", condition="> 0.5", group_by="agent", **{"for": "10m"})
    found = replay(frames, incidents, held)
    start = incidents.error_start + FIVE + timedelta(minutes=10)
    assert found[("held", "a-sup1")] == (Firing(at(start), at(incidents.error_end + FIVE), 1.0),)


def test_without_group_by_one_agent_s_burst_is_diluted_by_the_others(
    history: tuple[Planted, LiveFrames],
) -> None:
    incidents, frames = history
    everyone = rule(name="all", condition="> 0.5")
    support = rule(name="support", condition="> 0.4", agents=["support-*"])
    found = replay(frames, incidents, everyone, support)
    burst = Firing(at(incidents.error_start + FIVE), at(incidents.error_end + FIVE), 0.5)
    assert found == {("all", None): (), ("support", None): (burst,)}


def test_the_backtest_finds_the_latency_step(history: tuple[Planted, LiveFrames]) -> None:
    incidents, frames = history
    slow = rule(
        name="slow",
        metric="latency_p95",
        condition="> 4000",
        agents=["billing-*"],
        group_by="agent",
    )
    found = replay(frames, incidents, slow)
    assert found == {
        ("slow", "a-bill"): (
            Firing(at(incidents.slow_start + FIVE), at(incidents.slow_end + FIVE), 6000.0),
        )
    }


def test_an_incident_still_going_on_has_no_end(tmp_path: Path) -> None:
    incidents = planted()
    start = incidents.end - timedelta(minutes=30)
    ongoing = [m for m in incidents.messages if pd.Timestamp(m["timestamp"]) < start]
    for m in incidents.messages:
        if pd.Timestamp(m["timestamp"]) >= start:
            ongoing.append({**m, "status": "timeout"})
    with stored_frames(tmp_path, AGENTS, ongoing) as frames:
        found = replay(frames, incidents, rule(name="down", condition="> 0.5"))
    assert found == {("down", None): (Firing(at(start + FIVE), None, 1.0),)}


@pytest.mark.parametrize(("cells", "wide"), [(rolling.CELLS, rolling.WIDE), (64, 4)])
@pytest.mark.parametrize("metric", METRICS)
def test_the_metric_of_each_window_is_its_kpi(
    tmp_path: Path, metric: str, cells: int, wide: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows laid out as the rows of one chunk, or of many, or (wide) one at a time.
    monkeypatch.setattr(rolling, "CELLS", cells)
    monkeypatch.setattr(rolling, "WIDE", wide)
    agents, messages = demo.generate(8, 4000, 2, seed=3)
    with stored_frames(tmp_path, agents, messages) as frames:
        frame = frames.get(DAY).frame
        known = frames.get(FrameSpec("agents")).frame
    watched = rule(metric=metric, over="1h", every="5m", condition="> 0")
    rng = np.random.default_rng(0)
    low, high = frame["timestamp"].min().value, frame["timestamp"].max().value
    # Any instants, some on a message's own time (where the window's inclusive ends count).
    own = frame["timestamp"].sample(10, random_state=1).map(lambda t: t.value)
    times = pd.to_datetime(sorted([*rng.integers(low, high, 40), *own]), utc=True)
    expected = [
        getattr(metrics.kpis(metrics.trim_window(frame, t - watched.over, t)), metric)
        for t in times
    ]
    # The backtest's, all instants at once, and the live evaluation's, one at a time.
    backtested = series(watched, frame, times)
    live = [values_at(watched, frame, known, t)[None] for t in times]
    np.testing.assert_allclose(backtested, expected, rtol=1e-9, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(live, expected, rtol=1e-9, atol=1e-9, equal_nan=True)


# -- live evaluation ----------------------------------------------------------------------


def test_evaluated_step_by_step_the_live_rule_notifies_what_the_backtest_finds(
    history: tuple[Planted, LiveFrames], tmp_path: Path
) -> None:
    incidents, frames = history
    with receiving() as hook:
        watched = rule(
            name="errors", condition="> 0.5", group_by="agent", notify=["hook"], url=hook.url
        )
        alerting = Alerting(
            [watched],
            check_notifiers({"hook": {"kind": "webhook", "url": hook.url}}),
            SqliteAlertStore(tmp_path / "state.db"),
            frames,
        )
        step = incidents.end - timedelta(hours=12)
        while step <= incidents.end:
            assert alerting.run_due(step) == 1
            assert alerting.run_due(step) == 0  # a step is evaluated once
            step += FIVE
        bodies = hook.bodies
    assert [(b["group"], b["state"], b["at"]) for b in bodies] == [
        ("a-sup1", "firing", (incidents.error_start + FIVE).isoformat()),
        ("a-sup1", "resolved", (incidents.error_end + FIVE).isoformat()),
    ]
    assert bodies[0]["value"] == 1.0 and bodies[1]["value"] == 0.0
    assert [b["status"] for b in bodies] == ["firing", "resolved"]
    assert alerting.stats.snapshot() == {"evaluations": 145, "firing": 0, "sent": 2, "failed": 0}
