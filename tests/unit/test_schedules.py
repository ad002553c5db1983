"""Scheduled reports: their cron times in their time zone, and how a bad one is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pipelines.alerts.state import SqliteAlertStore
from pipelines.errors import ConfigError
from pipelines.schedules import Schedule, check_schedules, claim_due

BERLIN = ZoneInfo("Europe/Berlin")


def schedule(**entry: Any) -> Schedule:
    table = {"cron": "0 7 * * MON", "tz": "Europe/Berlin", **entry}
    return check_schedules([table], {})[0]


def test_the_latest_due_time_is_in_the_schedule_s_time_zone() -> None:
    weekly = schedule(report={"window": "7d", "out": "reports/agents-%Y-%m-%d.html"})
    # Monday 2026-03-30, 07:00 in Berlin is 05:00 UTC (summer time since the day before).
    due = weekly.latest(datetime(2026, 4, 1, 12, tzinfo=UTC))
    assert due == datetime(2026, 3, 30, 7, tzinfo=BERLIN)
    assert due.utcoffset() is not None and due.utcoffset().total_seconds() == 7200  # type: ignore[union-attr]
    assert weekly.latest(datetime(2026, 3, 30, 5, tzinfo=UTC)) == due  # at the due time itself
    assert weekly.latest(datetime(2026, 3, 30, 4, 59, tzinfo=UTC)) == datetime(
        2026, 3, 23, 7, tzinfo=BERLIN
    )
    assert weekly.path(due) == "reports/agents-2026-03-30.html"
    assert (weekly.window, weekly.format) == ("7d", "html")


def test_each_due_time_is_claimed_once(tmp_path: Path) -> None:
    store = SqliteAlertStore(tmp_path / "state.db")
    weekly = schedule(name="weekly")
    monday = datetime(2026, 3, 30, 6, tzinfo=UTC)
    assert claim_due(store, weekly, monday) == datetime(2026, 3, 30, 7, tzinfo=BERLIN)
    assert claim_due(store, weekly, monday) is None
    assert claim_due(store, weekly, datetime(2026, 4, 5, tzinfo=UTC)) is None  # same week
    assert claim_due(store, weekly, datetime(2026, 4, 6, 6, tzinfo=UTC)) is not None


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"cron": "every monday"}, "cron 'every monday' is not a cron expression"),
        ({"tz": "Mars/Olympus"}, "tz: time zone 'Mars/Olympus' is unknown"),
        ({"report": {"window": "2d"}}, "report window '2d' is not one of"),
        ({"report": {"format": "docx"}}, "report format 'docx' is not one of"),
        ({"report": {"windw": "7d"}}, "did you mean 'window'?"),
        ({"notify": ["pager"]}, "notify: 'pager' is not a notifier"),
    ],
)
def test_a_schedule_that_cannot_work_is_refused(entry: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match="'weekly'") as refused:
        schedule(name="weekly", **entry)
    assert says in str(refused.value)
