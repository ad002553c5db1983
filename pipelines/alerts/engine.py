"""Live evaluation: the due rules on the live frames, their state, their notifications.

:class:`Alerting` evaluates a rule at the instants of its step (multiples of ``every``
since the epoch, as the backtest does) on the messages frame a process already keeps
live, so an evaluation costs no source query.  Each step is evaluated once across
processes: under the alert store's lock, taken once for the rules due, the first to come
records it and alone sends what changed (one notification when an instance starts
firing, one when it resolves); a silenced rule keeps its state and sends nothing.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from pipelines.alerts.evaluate import Instance, advance, empty_value, values_at
from pipelines.alerts.notifiers import DeliveryError, Notice, Notifier
from pipelines.alerts.rules import NotifierConfig, Rule
from pipelines.alerts.state import AlertStore
from pipelines.live import FrameSpec, LiveFrames
from pipelines.metrics import trim_window
from pipelines.windows import WINDOWS, Window

log = logging.getLogger(__name__)

AGENTS = FrameSpec("agents")


def frame_spec(rule: Rule) -> FrameSpec:
    """The live messages frame a rule is evaluated on: the 24h one every server keeps (it
    holds the 48 hours of its window and the one before), or a longer one for a longer
    ``over``."""
    label = next(
        (
            label
            for label, length in WINDOWS.items()
            if length >= timedelta(hours=24) and 2 * length >= rule.over
        ),
        "30d",
    )
    return FrameSpec("messages", Window.parse(label))


def step_at(rule: Rule, now: datetime) -> datetime:
    """The latest instant of the rule's step at or before ``now``."""
    every = rule.every.total_seconds()
    return datetime.fromtimestamp(math.floor(now.timestamp() / every) * every, UTC)


@dataclass
class AlertStats:
    """What the alerting of a process did: evaluations made, instances firing at the last,
    notifications sent and those that could not be delivered."""

    evaluations: int = 0
    firing: int = 0
    sent: int = 0
    failed: int = 0

    def snapshot(self) -> dict[str, int]:
        return dict(vars(self))


class Alerting:
    """The rules of the settings, evaluated on ``frames`` and kept in ``store``."""

    def __init__(
        self,
        rules: Sequence[Rule],
        notifiers: Mapping[str, NotifierConfig],
        store: AlertStore,
        frames: LiveFrames,
        executor: Executor | None = None,
    ) -> None:
        self.rules = list(rules)
        self.notifiers = {name: Notifier(config) for name, config in notifiers.items()}
        self.store = store
        self.frames = frames
        self.stats = AlertStats()
        #: Where notifications are sent from (None: on the caller's thread, waiting).
        self.executor = executor
        self._guard = threading.Lock()
        # What this process last saw of each rule's state: the step evaluated, and the
        # instances firing.  A rule whose step it saw evaluated costs no store read.
        self._seen: dict[str, tuple[datetime, int]] = {}
        # The longest window of the rules read from each live frame: the one cut from it.
        self._longest: dict[FrameSpec, timedelta] = {}
        for rule in self.rules:
            spec = frame_spec(rule)
            self._longest[spec] = max(self._longest.get(spec, rule.over), rule.over)

    def run_due(self, now: datetime | None = None) -> int:
        """Evaluate the rules whose current step no process evaluated yet, unless another
        process is evaluating a step (it evaluates them); returns the evaluations made."""
        now = now or datetime.now(UTC)
        for spec in self._longest:
            # Read at every cycle, so that the refresher keeps them live between two steps
            # (a frame nobody reads for a while is dropped, and would be read anew).
            self.frames.get(spec)
        due = [(rule, step_at(rule, now)) for rule in self.rules]
        due = [(rule, at) for rule, at in due if not self._seen_at(rule, at)]
        if not due:  # this process saw every current step evaluated: no store read
            return 0
        docs = self.store.read([_key(rule) for rule, _ in due])
        for rule, _ in due:
            if (doc := docs[_key(rule)]) is not None:
                self._saw(rule, doc)
        due = [(rule, at) for rule, at in due if not self._seen_at(rule, at)]
        return self._evaluate(due, blocking=False) if due else 0

    def _seen_at(self, rule: Rule, at: datetime) -> bool:
        """Whether this process saw the rule evaluated at ``at`` or later."""
        seen = self._seen.get(rule.name)
        return seen is not None and seen[0] >= at

    def run_once(self, now: datetime | None = None) -> int:
        """Evaluate every rule now (``agentdash alerts run --once``), waiting while another
        process evaluates; returns the evaluations made."""
        now = now or datetime.now(UTC)
        return self._evaluate([(rule, now) for rule in self.rules], blocking=True)

    def _evaluate(self, due: list[tuple[Rule, datetime]], blocking: bool) -> int:
        """Evaluate each rule at its instant, unless it was evaluated at or after it; record
        them all in one change of the store, then send what changed."""
        cuts: dict[Any, pd.DataFrame] = {}
        seen = {rule.name: self._values(rule, at, cuts) for rule, at in due}
        notices: list[tuple[Rule, Notice]] = []
        written: dict[str, dict[str, Any]] = {}

        def change(docs: dict[str, dict[str, Any] | None]) -> dict[str, dict[str, Any]]:
            for rule, at in due:
                doc = docs[_key(rule)]
                if not _done(doc, at):
                    values, messages = seen[rule.name]
                    written[_key(rule)] = self._advance(rule, at, doc, values, messages, notices)
            return written

        if not self.store.transition([_key(rule) for rule, _ in due], change, blocking):
            return 0
        for rule, _ in due:
            if _key(rule) in written:
                self._saw(rule, written[_key(rule)])
        with self._guard:
            self.stats.evaluations += len(written)
        for rule in {rule.name: rule for rule, _ in notices}.values():
            mine = [notice for each, notice in notices if each is rule]
            silenced = self.store.silenced_until(rule.name)
            if silenced is not None and silenced > datetime.now(UTC):
                log.info("%s is silenced until %s: %d not sent", rule.name, silenced, len(mine))
                continue
            for notice in mine:
                for name in rule.notify:
                    self._send(self.notifiers[name], notice)
        return len(written)

    def _values(
        self, rule: Rule, at: datetime, cuts: dict[Any, pd.DataFrame]
    ) -> tuple[dict[str | None, float], pd.DataFrame]:
        """The rule's values at ``at``, and the messages they were computed from.

        ``cuts`` keeps what the rules evaluated together read: the agents, and from each
        live frame the rules' longest window ending at ``at``, from which each rule's is
        cut in turn (a few thousand rows rather than the frame's two days).
        """
        spec, moment = frame_spec(rule), pd.Timestamp(at)
        if (spec, moment) not in cuts:
            frame = self.frames.get(spec).frame
            cuts[spec, moment] = trim_window(frame, moment - self._longest[spec], moment)
        if AGENTS not in cuts:
            cuts[AGENTS] = self.frames.get(AGENTS).frame
        messages = cuts[spec, moment]
        return values_at(rule, messages, cuts[AGENTS], moment), messages

    def _advance(
        self,
        rule: Rule,
        at: datetime,
        doc: dict[str, Any] | None,
        values: dict[str | None, float],
        messages: pd.DataFrame,
        notices: list[tuple[Rule, Notice]],
    ) -> dict[str, Any]:
        """The rule's new state document; the notifications it sends join ``notices``."""
        stored = {} if doc is None else doc["instances"]
        groups = {_group_key(group): group for group in values}
        groups.update({key: item.get("group") for key, item in stored.items()})
        instances: dict[str, Any] = {}
        for key, group in sorted(groups.items()):
            value = values[group] if group in values else empty_value(rule, messages)
            before = Instance.from_json(stored[key]) if key in stored else None
            after, event = advance(rule, before, value, at)
            if after.state != "ok" or event is not None:  # ok instances are not kept
                instances[key] = {"group": group, **after.to_json()}
            if event is not None:
                notice = Notice.alert(
                    rule.name, group, event, rule.metric, rule.condition, after.value, at
                )
                notices.append((rule, notice))
        return {"last_at": at.isoformat(), "instances": instances}

    def _send(self, notifier: Notifier, notice: Notice) -> None:
        if self.executor is not None:
            self.executor.submit(self._deliver, notifier, notice)
        else:
            self._deliver(notifier, notice)

    def _deliver(self, notifier: Notifier, notice: Notice) -> None:
        try:
            notifier.send(notice)
        except DeliveryError as exc:
            log.error("%s", exc)
            with self._guard:
                self.stats.failed += 1
            return
        with self._guard:
            self.stats.sent += 1

    def firing(self) -> list[tuple[str, str | None]]:
        """(rule, group) of every instance firing, as the store holds them."""
        docs = self.store.read([_key(rule) for rule in self.rules])
        return [
            (rule.name, item.get("group"))
            for rule in self.rules
            for item in (docs[_key(rule)] or {"instances": {}})["instances"].values()
            if item["state"] == "firing"
        ]

    def _saw(self, rule: Rule, doc: dict[str, Any]) -> None:
        firing = sum(item["state"] == "firing" for item in doc["instances"].values())
        with self._guard:
            self._seen[rule.name] = (datetime.fromisoformat(doc["last_at"]), firing)
            self.stats.firing = sum(count for _, count in self._seen.values())


def _done(doc: dict[str, Any] | None, at: datetime) -> bool:
    """Whether the rule's state records an evaluation at or after ``at``."""
    return doc is not None and datetime.fromisoformat(doc["last_at"]) >= at


def _key(rule: Rule) -> str:
    return f"alert:{rule.name}"


def _group_key(group: str | None) -> str:
    return "" if group is None else f"={group}"
