"""Live evaluation: the due rules on the live frames, their state, their notifications.

:class:`Alerting` evaluates a rule at the instants of its step (multiples of ``every``
since the epoch, as the backtest does) on the messages frame a process already keeps
live, so an evaluation costs no source query.  Each step is evaluated once across
processes: under the rule's lock in the alert store, the first to come records it and
alone sends what changed (one notification when an instance starts firing, one when it
resolves); a silenced rule keeps its state and sends nothing.
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
        """Evaluate each rule whose current step no process evaluated yet, without waiting
        for a rule another process is evaluating; returns the evaluations made."""
        now = now or datetime.now(UTC)
        made = 0
        windows: dict[tuple[Any, ...], pd.DataFrame] = {}
        for spec in self._longest:
            # Read at every cycle, so that the refresher keeps them live between two steps
            # (a frame nobody reads for a while is dropped, and would be read anew).
            self.frames.get(spec)
        for rule in self.rules:
            at = step_at(rule, now)
            seen = self._seen.get(rule.name)
            if seen is not None and seen[0] >= at:
                continue
            doc = self.store.read(_key(rule))
            if doc is not None and datetime.fromisoformat(doc["last_at"]) >= at:
                self._saw(rule, doc)
                continue
            made += self.evaluate(rule, at, blocking=False, windows=windows)
        return made

    def run_once(self, now: datetime | None = None) -> int:
        """Evaluate every rule now (``agentdash alerts run --once``), waiting for a lock
        another process holds; returns the evaluations made."""
        now = now or datetime.now(UTC)
        windows: dict[tuple[Any, ...], pd.DataFrame] = {}
        return sum(self.evaluate(rule, now, True, windows) for rule in self.rules)

    def evaluate(
        self,
        rule: Rule,
        at: datetime,
        blocking: bool,
        windows: dict[tuple[Any, ...], pd.DataFrame] | None = None,
    ) -> bool:
        """Evaluate ``rule`` at ``at`` unless it was evaluated at or after it; send what changed.

        ``windows`` keeps what was cut from the live frames for the rules evaluated together:
        the rules' longest window ending at ``at``, from which each rule's is cut in turn
        (a few thousand rows rather than the frame's two days).
        """
        spec, moment = frame_spec(rule), pd.Timestamp(at)
        live = self.frames.get(spec)
        cut = (self.frames.key(spec), live.version, moment)
        windows = {} if windows is None else windows
        if cut not in windows:
            windows[cut] = trim_window(live.frame, moment - self._longest[spec], moment)
        messages = windows[cut]
        values = values_at(rule, messages, self.frames.get(AGENTS).frame, moment)
        notices: list[Notice] = []
        written: list[dict[str, Any]] = []

        def change(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            if doc is not None and datetime.fromisoformat(doc["last_at"]) >= at:
                return None
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
                    notices.append(
                        Notice.alert(
                            rule.name, group, event, rule.metric, rule.condition, after.value, at
                        )
                    )
            written.append({"last_at": at.isoformat(), "instances": instances})
            return written[-1]

        if not self.store.transition(_key(rule), change, blocking):
            return False
        self._saw(rule, written[-1])
        with self._guard:
            self.stats.evaluations += 1
        if not notices:
            return True
        silenced = self.store.silenced_until(rule.name)
        if silenced is not None and silenced > datetime.now(UTC):
            log.info(
                "%s is silenced until %s: %d notifications not sent",
                rule.name,
                silenced,
                len(notices),
            )
            return True
        for notice in notices:
            for name in rule.notify:
                self._send(self.notifiers[name], notice)
        return True

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
        found: list[tuple[str, str | None]] = []
        for rule in self.rules:
            doc = self.store.read(_key(rule)) or {"instances": {}}
            found += [
                (rule.name, item.get("group"))
                for item in doc["instances"].values()
                if item["state"] == "firing"
            ]
        return found

    def _saw(self, rule: Rule, doc: dict[str, Any]) -> None:
        firing = sum(item["state"] == "firing" for item in doc["instances"].values())
        with self._guard:
            self._seen[rule.name] = (datetime.fromisoformat(doc["last_at"]), firing)
            self.stats.firing = sum(count for _, count in self._seen.values())


def _key(rule: Rule) -> str:
    return f"alert:{rule.name}"


def _group_key(group: str | None) -> str:
    return "" if group is None else f"={group}"
