"""Scheduled reports: the ``[[schedules]]`` tables, and which of their times are due.

A schedule is a report (``report = {window = "7d", format = "html", out = "..."}``), a
cron expression read by ``croniter`` in the time zone ``tz``, and optionally notifiers
told of each file written.  Each due time is run once across processes and replicas:
whoever claims it in the alert store (:mod:`pipelines.alerts.state`, the same lock as
the rules' evaluations) runs it.  When nothing ran at a due time (the server was down),
the latest one missed is run late, once; earlier ones are not caught up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from croniter import croniter

from pipelines.errors import ConfigError, QueryError
from pipelines.windows import WINDOWS, check_tz

if TYPE_CHECKING:
    from pipelines.alerts.rules import NotifierConfig
    from pipelines.alerts.state import AlertStore

FORMATS = ("html", "pdf", "png")
_KEYS = ["name", "report", "cron", "tz", "notify"]
_REPORT_KEYS = ["window", "format", "out", "agents", "teams", "title"]


@dataclass(frozen=True)
class Schedule:
    """A report written at each time of a cron expression in a time zone."""

    name: str
    cron: str
    tz: str = "UTC"
    window: str = "7d"
    format: str = "html"
    out: str = "reports/agents-%Y-%m-%d.html"
    """The file, with strftime codes filled from the due time in ``tz``."""
    agents: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    title: str = ""
    notify: tuple[str, ...] = ()

    def latest(self, now: datetime) -> datetime:
        """The latest due time at or before ``now``."""
        local = now.astimezone(ZoneInfo(self.tz))
        # croniter gives the time before `now` strictly: a second later includes `now` itself.
        due: datetime = croniter(self.cron, local.replace(microsecond=0)).get_prev(datetime)
        ahead: datetime = croniter(self.cron, due).get_next(datetime)
        return ahead if ahead <= local else due

    def path(self, due: datetime) -> str:
        return due.astimezone(ZoneInfo(self.tz)).strftime(self.out)


def claim_due(store: AlertStore, schedule: Schedule, now: datetime) -> datetime | None:
    """The schedule's latest due time, if no process ran it yet: it is now this caller's
    to run (recorded as run before it is); None when it was run already."""
    due = schedule.latest(now)
    key = f"schedule:{schedule.name}"
    claimed: list[bool] = []

    def change(docs: dict[str, dict[str, Any] | None]) -> dict[str, dict[str, Any]]:
        doc = docs[key]
        if doc is not None and datetime.fromisoformat(doc["last_due"]) >= due:
            return {}
        claimed.append(True)
        return {key: {"last_due": due.isoformat()}}

    store.transition([key], change, blocking=True)
    return due if claimed else None


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        raise ConfigError(f"{where} must be a list of texts")
    return tuple(raw)


def check_schedules(raw: Any, notifiers: Mapping[str, NotifierConfig]) -> tuple[Schedule, ...]:
    """The ``[[schedules]]`` entries, each checked; the first that cannot work is refused
    with its name and the reason."""
    from pipelines.settings import _refuse_unknown

    if not isinstance(raw, list):
        raise ConfigError("AGENTDASH_CONFIG: schedules must be an array of tables: [[schedules]]")
    schedules: list[Schedule] = []
    for index, entry in enumerate(raw):
        label = entry.get("name") if isinstance(entry, dict) else None
        where = (
            f"AGENTDASH_CONFIG: [[schedules]] {label!r}"
            if label
            else (f"AGENTDASH_CONFIG: [[schedules]] #{index + 1}")
        )
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        named = where.removeprefix("AGENTDASH_CONFIG: ")  # _refuse_unknown names the file
        _refuse_unknown(entry, _KEYS, named + " ", "a key")
        report = entry.get("report", {})
        if not isinstance(report, dict):
            raise ConfigError(f'{where} report must be a table: {{window = "7d", out = "..."}}')
        _refuse_unknown(report, _REPORT_KEYS, named + " report ", "a key")
        cron = entry.get("cron")
        if not isinstance(cron, str) or not croniter.is_valid(cron):
            raise ConfigError(f'{where} cron {cron!r} is not a cron expression: e.g. "0 7 * * MON"')
        tz = entry.get("tz", "UTC")
        try:
            check_tz(str(tz))
        except QueryError as exc:
            raise ConfigError(f"{where} tz: {exc}") from None
        window = report.get("window", "7d")
        if window not in WINDOWS:
            raise ConfigError(
                f"{where} report window {window!r} is not one of {', '.join(WINDOWS)}"
            )
        out = report.get("out", Schedule.out)
        fmt = report.get("format", str(out).rsplit(".", 1)[-1] if "." in str(out) else "html")
        if fmt not in FORMATS:
            raise ConfigError(f"{where} report format {fmt!r} is not one of {', '.join(FORMATS)}")
        notify = _strings(entry.get("notify", []), f"{where} notify")
        for notifier in notify:
            if notifier not in notifiers:
                raise ConfigError(f"{where} notify: {notifier!r} is not a notifier")
        schedules.append(
            Schedule(
                name=str(label or f"{cron} {out}"),
                cron=cron,
                tz=str(tz),
                window=window,
                format=fmt,
                out=str(out),
                agents=_strings(report.get("agents", []), f"{where} report agents"),
                teams=_strings(report.get("teams", []), f"{where} report teams"),
                title=str(report.get("title", "")),
                notify=notify,
            )
        )
    _unique([s.name for s in schedules])
    return tuple(schedules)


def _unique(names: Sequence[str]) -> None:
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"AGENTDASH_CONFIG: [[schedules]] {name!r} is there twice: name them")
