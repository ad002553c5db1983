"""Scheduled reports, run by the server's refresher or ``agentdash schedules run --due``.

Which schedules are due, and who runs each due time once, is the data layer's
(:mod:`pipelines.schedules`); writing the report is the report's (:mod:`app.report`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from pipelines.alerts.notifiers import DeliveryError, Notice, Notifier
from pipelines.alerts.state import AlertStore
from pipelines.schedules import Schedule, claim_due
from pipelines.settings import Settings

log = logging.getLogger(__name__)


def run_schedule(settings: Settings, schedule: Schedule, due: datetime) -> Path:
    """Write the schedule's report for its due time ``due``, and tell its notifiers."""
    from app.report import Report

    out = Path(schedule.path(due))
    out.parent.mkdir(parents=True, exist_ok=True)
    report = Report.from_settings(
        settings,
        window=schedule.window,
        agents=schedule.agents,
        tz=schedule.tz,
        teams=list(schedule.teams) or None,
        title=schedule.title,
    )
    report.save(out, schedule.format)
    notice = Notice(
        f"report {schedule.name!r} of {due:%Y-%m-%d %H:%M %Z}: {out}",
        {"kind": "report", "schedule": schedule.name, "due": due.isoformat(), "file": str(out)},
        attachment=out,
    )
    for name in schedule.notify:
        try:
            Notifier(settings.notifiers[name]).send(notice)
        except DeliveryError as exc:
            log.error("%s", exc)
    return out


def run_due(
    settings: Settings, store: AlertStore, now: datetime | None = None
) -> list[tuple[Schedule, Path]]:
    """Run each schedule whose latest due time no process has run; what was written.

    A report that fails is logged and recorded as run: it waits for its next due time
    rather than being retried at every refresh.
    """
    now = now or datetime.now(UTC)
    written: list[tuple[Schedule, Path]] = []
    for schedule in settings.schedules:
        due = claim_due(store, schedule, now)
        if due is None:
            continue
        try:
            written.append((schedule, run_schedule(settings, schedule, due)))
        except Exception:
            log.exception("schedule %s of %s failed", schedule.name, due.isoformat())
    return written
