"""Alert rules and notifiers as data: the ``[[alerts]]`` and ``[notifiers.NAME]`` tables.

A rule names a KPI of :func:`pipelines.metrics.kpis`, the rolling window it is computed
on (``over``), how often it is evaluated (``every``), a condition (``> 4000``), how long
the condition must hold before it fires (``for``), an optional scope (the messages
pipeline's own filters, with glob patterns for agents) and ``group_by`` (one instance
per agent, model, user...).  Everything is checked when the settings are read: a rule
that cannot work is refused with its name and the reason.
"""

from __future__ import annotations

import fnmatch
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipelines.errors import ConfigError
from pipelines.metrics import Kpis
from pipelines.schema import ROLES, STATUSES

METRICS = tuple(f.name for f in fields(Kpis))
"""What a rule may watch: every KPI of the summary."""
NOTIFIER_KINDS = ("webhook", "slack", "teams", "email")
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
GROUPS = {
    "agent": "agent_id",
    "model": "model",
    "user": "user_id",
    "conversation": "conversation_id",
    "status": "status",
    "role": "role",
}
"""``group_by`` names and the column each groups by (a configured dimension too)."""

_DURATION = re.compile(r"(\d+)\s*(s|m|h|d|w)")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_CONDITION = re.compile(r"\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*")
_RULE_KEYS = [
    "name",
    "metric",
    "over",
    "every",
    "condition",
    "for",
    "agents",
    "teams",
    "team",
    "statuses",
    "roles",
    "models",
    "group_by",
    "notify",
]
_NOTIFIER_KEYS = {
    "webhook": ["kind", "url", "headers", "timeout_seconds", "retries"],
    "slack": ["kind", "url", "headers", "timeout_seconds", "retries"],
    "teams": ["kind", "url", "headers", "timeout_seconds", "retries"],
    "email": [
        "kind",
        "host",
        "port",
        "sender",
        "from",
        "to",
        "username",
        "password",
        "starttls",
        "timeout_seconds",
        "retries",
    ],
}


def parse_duration(text: Any, where: str, zero: bool = False) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``30d``, ``1w`` as a timedelta (above zero, unless ``zero``
    allows ``0``)."""
    if zero and text in (0, "0"):
        return timedelta(0)
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or (int(match[1]) == 0 and not zero):
        raise ConfigError(f"{where} {text!r} is not a duration: give e.g. 90s, 15m, 2h, 30d or 1w")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def describe_duration(length: timedelta) -> str:
    """The shortest text :func:`parse_duration` reads back as ``length``."""
    seconds = int(length.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Scope:
    """Which messages a rule watches: the messages pipeline's filters (empty keeps all).

    ``agents`` are ids or names as in the pipeline, and may be glob patterns
    (``support-*``, matched against ids and names); ``teams`` keeps the agents of
    those teams; ``dimensions`` holds the configured dimensions' filters.
    """

    agents: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    dimensions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def agent_ids(self, agents: pd.DataFrame, seen: pd.Series) -> set[str] | None:
        """The agent ids in scope (None: every agent), from the agents frame and the agent
        ids of the messages ``seen`` (an agent without a document is matched by its id)."""
        if not self.agents and not self.teams:
            return None
        ids: set[str] | None = None
        if self.agents:
            known = agents.dropna(subset=["id"])
            candidates = pd.concat([known["id"], seen.dropna()]).drop_duplicates()
            matched = {
                str(value)
                for value in candidates
                if any(fnmatch.fnmatchcase(str(value), pattern) for pattern in self.agents)
            }
            names = known["name"].fillna("").astype(str)
            by_name = np.zeros(len(known), dtype=bool)
            for pattern in self.agents:
                by_name |= names.map(lambda n, p=pattern: fnmatch.fnmatchcase(n, p)).to_numpy(
                    dtype=bool
                )
            ids = matched | set(known.loc[by_name, "id"].astype(str))
        if self.teams:
            team_ids = set(agents.loc[agents["team"].isin(self.teams), "id"].dropna().astype(str))
            ids = team_ids if ids is None else ids & team_ids
        return ids

    def mask(self, messages: pd.DataFrame, agents: pd.DataFrame) -> np.ndarray:
        """Which rows of ``messages`` the scope keeps."""
        keep = np.ones(len(messages), dtype=bool)
        ids = self.agent_ids(agents, messages["agent_id"])
        if ids is not None:
            keep &= messages["agent_id"].isin(ids).to_numpy(dtype=bool)
        for column, values in (
            ("status", self.statuses),
            ("role", self.roles),
            ("model", self.models),
            *self.dimensions,
        ):
            if values:
                keep &= messages[column].isin(values).to_numpy(dtype=bool)
        return keep


@dataclass(frozen=True)
class Rule:
    """One alert rule (see the module docstring)."""

    name: str
    metric: str
    over: timedelta
    every: timedelta
    op: str
    threshold: float
    hold: timedelta = timedelta(0)
    scope: Scope = field(default_factory=Scope)
    group_by: str | None = None
    """The column an instance is kept per (``agent`` groups by ``agent_id``)."""
    notify: tuple[str, ...] = ()

    @property
    def condition(self) -> str:
        return f"{self.op} {self.threshold:g}"

    def holds(self, values: Any) -> Any:
        """Whether the condition holds for ``values`` (a number or an array): never for
        NaN, a metric undefined for lack of data."""
        return OPERATORS[self.op](values, self.threshold)

    def worse(self, values: np.ndarray) -> float:
        """The most extreme of ``values`` in the condition's direction (the peak)."""
        return float(np.nanmax(values) if self.op in (">", ">=") else np.nanmin(values))


@dataclass(frozen=True)
class NotifierConfig:
    """Where notifications go: ``kind`` and its options (url, or SMTP settings)."""

    name: str
    kind: str
    options: Mapping[str, Any]
    timeout_seconds: float = 10.0
    retries: int = 3


def _where(index: int, raw: Mapping[str, Any]) -> str:
    name = raw.get("name")
    return f"[[alerts]] {name!r}" if isinstance(name, str) and name else f"[[alerts]] #{index + 1}"


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        raise ConfigError(f'{where} must be a list of texts, e.g. ["a", "b"]')
    return tuple(raw)


def _refuse_unknown(keys: Sequence[str], known: Sequence[str], where: str) -> None:
    from pipelines.settings import _refuse_unknown as refuse

    # It names the file itself.
    refuse(keys, list(known), where.removeprefix("AGENTDASH_CONFIG: ") + " ", "a key")


def check_notifiers(raw: Any) -> dict[str, NotifierConfig]:
    """``[notifiers.NAME]`` tables, each checked for its kind."""
    if not isinstance(raw, dict):
        raise ConfigError("AGENTDASH_CONFIG: [notifiers] must be a table of notifiers")
    checked: dict[str, NotifierConfig] = {}
    for name, table in raw.items():
        where = f"AGENTDASH_CONFIG: [notifiers.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        kind = table.get("kind")
        if kind not in NOTIFIER_KINDS:
            raise ConfigError(f"{where} kind {kind!r} is not one of {', '.join(NOTIFIER_KINDS)}")
        _refuse_unknown(list(table), _NOTIFIER_KEYS[kind], where)
        if kind == "email" and "from" in table:  # `from` reads better; `sender` is the same
            if "sender" in table:
                raise ConfigError(f"{where} has both from and sender: keep one")
            table = {**{k: v for k, v in table.items() if k != "from"}, "sender": table["from"]}
        required = ("host", "sender", "to") if kind == "email" else ("url",)
        for key in required:
            if key not in table:
                raise ConfigError(f"{where} needs {key}")
        headers = table.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ConfigError(
                f'{where} headers must be a table of texts: {{Authorization = "..."}}'
            )
        if kind != "email" and not str(table["url"]).startswith(("https://", "http://")):
            raise ConfigError(f"{where} url {table['url']!r} must be an http(s) URL")
        options = {
            k: v for k, v in table.items() if k not in ("kind", "timeout_seconds", "retries")
        }
        if kind == "email":
            options["to"] = _strings(table["to"], f"{where} to")
        retries, timeout = table.get("retries", 3), table.get("timeout_seconds", 10)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
            raise ConfigError(f"{where} retries must be a whole number of attempts, 1 or more")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError(f"{where} timeout_seconds must be a number above 0")
        checked[name] = NotifierConfig(name, kind, options, float(timeout), retries)
    return checked


def check_rules(
    raw: Any, notifiers: Mapping[str, NotifierConfig], dimensions: Mapping[str, str]
) -> tuple[Rule, ...]:
    """The ``[[alerts]]`` entries as rules; the first that cannot work is refused with its
    name and the reason."""
    if not isinstance(raw, list):
        raise ConfigError("AGENTDASH_CONFIG: alerts must be an array of tables: [[alerts]]")
    rules: list[Rule] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ConfigError(f"AGENTDASH_CONFIG: [[alerts]] #{index + 1} must be a table")
        rules.append(
            _check_rule(entry, f"AGENTDASH_CONFIG: {_where(index, entry)}", notifiers, dimensions)
        )
    names = [rule.name for rule in rules]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"AGENTDASH_CONFIG: [[alerts]] {name!r} is named twice")
    return tuple(rules)


def _check_rule(
    entry: dict[str, Any],
    where: str,
    notifiers: Mapping[str, NotifierConfig],
    dimensions: Mapping[str, str],
) -> Rule:
    _refuse_unknown(list(entry), [*_RULE_KEYS, *dimensions], where)
    for key in ("name", "metric", "over", "every", "condition"):
        if key not in entry:
            raise ConfigError(f"{where} needs {key}")
    name = entry["name"]
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where} name must be a non-empty text")
    metric = entry["metric"]
    if metric not in METRICS:
        raise ConfigError(
            f"{where} metric {metric!r} is not a KPI; use one of {', '.join(METRICS)}"
        )
    over = parse_duration(entry["over"], f"{where} over")
    every = parse_duration(entry["every"], f"{where} every")
    if over < every:
        raise ConfigError(
            f"{where}: its window over = {entry['over']!r} is shorter than its step "
            f"every = {entry['every']!r}: messages between two windows would never be seen"
        )
    hold = parse_duration(entry.get("for", 0), f"{where} for", zero=True)
    match = (
        _CONDITION.fullmatch(entry["condition"]) if isinstance(entry["condition"], str) else None
    )
    if match is None or not math.isfinite(float(match[2])):
        raise ConfigError(
            f"{where} condition {entry['condition']!r} is not a comparison: "
            'give > >= < or <= and a number, e.g. "> 4000"'
        )
    statuses = _strings(entry.get("statuses", []), f"{where} statuses")
    roles = _strings(entry.get("roles", []), f"{where} roles")
    for key, values, allowed in (("statuses", statuses, STATUSES), ("roles", roles, ROLES)):
        for value in values:
            if value not in allowed:
                raise ConfigError(f"{where} {key}: {value!r} is not one of {', '.join(allowed)}")
    scope = Scope(
        agents=_strings(entry.get("agents", []), f"{where} agents"),
        teams=_strings(entry.get("teams", []), f"{where} teams")
        + _strings(entry.get("team", []), f"{where} team"),
        statuses=statuses,
        roles=roles,
        models=_strings(entry.get("models", []), f"{where} models"),
        dimensions=tuple(
            (dim, _strings(entry[dim], f"{where} {dim}")) for dim in dimensions if dim in entry
        ),
    )
    group_by = entry.get("group_by")
    column: str | None = None
    if group_by is not None:
        known = {**GROUPS, **{dim: dim for dim in dimensions}}
        if group_by not in known and group_by not in known.values():
            raise ConfigError(
                f"{where} group_by {group_by!r} is not a breakdown; use one of {', '.join(known)}"
            )
        column = known.get(group_by, group_by)
    notify = _strings(entry.get("notify", []), f"{where} notify")
    for notifier in notify:
        if notifier not in notifiers:
            configured = ", ".join(notifiers) or "none is configured"
            raise ConfigError(
                f"{where} notify: {notifier!r} is not a notifier ([notifiers.{notifier}]); "
                f"configured: {configured}"
            )
    return Rule(
        name=name,
        metric=metric,
        over=over,
        every=every,
        op=match[1],
        threshold=float(match[2]),
        hold=hold,
        scope=scope,
        group_by=column,
        notify=notify,
    )
