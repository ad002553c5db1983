"""Param-driven pipelines: the user's question as parameters, frames as answers.

Usable anywhere Python runs::

    from pipelines import MessagesPipeline
    MessagesPipeline(window="24h").frame

The question is declared once, here: each filter is a parameter (its type says
which values it takes, its ``doc=`` what it means, its ``link`` its name in a
URL) and :attr:`Pipeline.columns` says which column it keeps rows by.  The
dashboard's sidebar builds its widgets from these parameters, the page's URL
and the REST API read and write them, and every cache and memo key is made of
them (:meth:`Pipeline.question`).  ``version`` changes whenever ``frame`` would
return something different (a filter, the window, the time zone, new data), so
a view that follows it needs no other dependency::

    pn.bind(lambda _: metrics.kpis(messages.frame), messages.param.version)

``teams`` is the one part of the question a user does not ask: the scope of the
signed-in identity, set by the server (never by a link or an API query).  A
scoped pipeline holds only the agents whose ``team`` is one of them and only
those agents' messages, cut in memory from the live frames every user shares.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import date, datetime
from typing import Any, ClassVar, Self
from zoneinfo import ZoneInfo

import pandas as pd
import param

from pipelines import metrics
from pipelines.answers import Answers, FrameAnswers
from pipelines.errors import QueryError
from pipelines.live import FrameSpec, LiveFrame, LiveFrames
from pipelines.parameters import Choice, Choices, Instant, Names, Text, TimeZone
from pipelines.rollups import Rollups, conversation_hashes
from pipelines.schema import ROLES, STATUSES, TIME_FIELD, empty_frame
from pipelines.windows import WINDOWS, Window, as_utc


def _hashable(value: Any) -> Hashable:
    # List filters keep rows whose value is in the list: their order does not change
    # the question.
    if isinstance(value, list | tuple):
        return tuple(sorted({_hashable(v) for v in value}, key=repr))
    if isinstance(value, date):
        return value.isoformat()
    return value


class Slices:
    """Frames cut from live frames, shared by every pipeline of the process.

    Sessions asking the same question (same filters, same window) get the same
    frame object instead of a copy each; bounded, least recently used out.  A cut
    given a ``stamp`` (the bounds of a sliding window) replaces the entry of the same
    key cut with another stamp: a window that slides at every refresh keeps one copy,
    not one per refresh.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], tuple[pd.DataFrame, Hashable, pd.DataFrame]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(
        self,
        source: pd.DataFrame,
        key: tuple[Any, ...],
        cut: Callable[[], pd.DataFrame],
        stamp: Hashable = None,
    ) -> pd.DataFrame:
        # The entry keeps its source alive, so the source's id cannot be reused meanwhile.
        full_key = (id(source), *key)
        with self._lock:
            entry = self._entries.get(full_key)
            if entry is not None and entry[0] is source and entry[1] == stamp:
                self._entries.move_to_end(full_key)
                return entry[2]
        result = cut()
        with self._lock:
            self._entries[full_key] = (source, stamp, result)
            self._entries.move_to_end(full_key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return result


SLICES = Slices()


class Pipeline(param.Parameterized):
    """What every pipeline shares: the live frames it reads, the time zone, the version."""

    frames = param.ClassSelector(
        class_=LiveFrames,
        default=None,
        allow_None=True,
        precedence=-1,
        doc="Source, cache and live frames to read; the process-wide default when None.",
    )
    teams = param.List(
        default=None,
        allow_None=True,
        item_type=str,
        constant=True,
        precedence=-1,
        doc="The teams whose agents, and their messages, the frame may hold: all when None, "
        "none when empty. The scope of the signed-in user, never a filter of the page.",
    )
    tz = TimeZone(
        default="UTC",
        link="tz",
        query=None,  # the API answers in UTC
        doc="IANA time zone for time bins and display. Frames always hold UTC timestamps.",
    )
    version = param.Integer(
        default=0,
        bounds=(0, None),
        precedence=-1,
        constant=True,
        doc="Changes whenever the frame, or how it is shown, would be different: a filter, "
        "the window, the time zone, new data. Watch this to follow the pipeline.",
    )

    columns: ClassVar[Mapping[str, str | tuple[str, ...]]] = {}
    """Filter parameter -> the column it keeps rows by (values in the list; for a text,
    rows whose columns contain it, in any case). An empty filter keeps every row."""
    _container: ClassVar[str] = "messages"
    _agent_column: ClassVar[str] = "agent_id"
    """The column holding the agent of a row, which the team scope keeps rows by."""
    _NOT_ASKED: ClassVar[frozenset[str]] = frozenset({"name", "frames", "version"})
    _DISPLAY: ClassVar[frozenset[str]] = frozenset({"tz"})
    """Parameters that change how the rows are shown, not which rows the frame holds."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        # (frame key, live version) of each live frame read, as last announced by ``version``.
        self._announced: tuple[Hashable, ...] | None = None
        # The agents frame the scope was last worked out from, the teams, and its agent ids.
        self._scoped: tuple[pd.DataFrame, tuple[str, ...], frozenset[str]] | None = None
        self.param.watch(self._asked, self.asked_names())

    @classmethod
    def asked_names(cls) -> list[str]:
        """The parameters of the user's question, in declaration order (the time zone too)."""
        return [name for name in cls.param if name not in cls._NOT_ASKED]

    @classmethod
    def question_names(cls) -> list[str]:
        """The parameters that say which rows the frame holds: the filters and the window."""
        return [name for name in cls.asked_names() if name not in cls._DISPLAY]

    def question(self) -> tuple[Hashable, ...]:
        """Which rows the frame holds, as a hashable value: equal for pipelines asking the
        same thing (lists in any order), whatever the time zone they show it in."""
        values = self.param.values()
        return (
            type(self).__name__,
            *sorted((name, _hashable(values[name])) for name in self.question_names()),
        )

    def filters(self) -> dict[str, Any]:
        """The filters that keep fewer than all rows, by parameter name (the scope too)."""
        kept = {name: getattr(self, name) for name in self.columns if getattr(self, name)}
        return kept if self.teams is None else {**kept, "teams": self.teams}

    def follow(self, parent: Pipeline, **fixed: Any) -> Self:
        """Keep the question parameters this pipeline shares with ``parent`` (same name, same
        type) equal to its, except ``fixed`` (set here once), on the same live frames unless
        given others; returns self::

            week = MessagesPipeline().follow(messages, window="7d")
        """
        names = [
            n
            for n in parent.asked_names()
            if n not in fixed and n in self.param and type(self.param[n]) is type(parent.param[n])
        ]
        if self.frames is None:
            self.frames = parent.frames
        # The scope is constant for the page and its widgets, not for what follows it.
        with param.edit_constant(self):
            self.param.update({**{n: getattr(parent, n) for n in names}, **fixed})
        parent.param.watch(self._follow, names)
        return self

    def _follow(self, *events: param.parameterized.Event) -> None:
        with param.edit_constant(self):
            self.param.update({e.name: e.new for e in events})

    def _asked(self, *events: param.parameterized.Event) -> None:
        with param.edit_constant(self):
            self.version += 1

    @property
    def data(self) -> LiveFrames:
        """The live frames read (the process-wide default unless ``frames`` was given)."""
        if self.frames is None:
            with param.edit_constant(self):
                self.frames = LiveFrames.default()
        return self.frames

    def spec(self) -> FrameSpec:
        return FrameSpec(self._container)

    def _specs(self) -> list[FrameSpec]:
        """The live frames the frame is cut from: its own, and the agents' for a scope."""
        own = self.spec()
        return [own] if self.teams is None or own == _AGENTS else [own, _AGENTS]

    def _versions(self) -> tuple[Hashable, ...]:
        return tuple((self.data.key(s), self.data.get(s).version) for s in self._specs())

    def ready(self) -> bool:
        """True when the live frames it reads are in this process's memory: its frame costs
        no read from the cache or the source.  A question that cannot be asked (a window
        ending before it starts) has nothing to read: True, and reading it says why."""
        try:
            return all(self.data.holds(spec) for spec in self._specs())
        except QueryError:
            return True

    @property
    def live(self) -> LiveFrame:
        """The live frame the question reads (its rows before the filters)."""
        live = self.data.get(self.spec())
        self._read_once()
        return live

    def prefetch(self) -> None:
        """Read what the question needs into memory (a page calls it off its event loop)."""
        for spec in self._specs():
            self.data.get(spec)
        self._read_once()

    def _read_once(self) -> None:
        """From the first read on, :meth:`sync` announces new data."""
        if self._announced is None:
            self._announced = self._versions()

    def data_version(self) -> tuple[Hashable, ...]:
        """Equal while the live frames the frame is cut from hold the same data."""
        return tuple((live.version, live.as_of) for live in map(self.data.get, self._specs()))

    @property
    def as_of(self) -> datetime:
        """The time the data was read at (the end of a relative window)."""
        return self.live.as_of

    @property
    def stale(self) -> bool:
        """True when the last refresh failed and the frame is the last good one."""
        return self.live.stale

    @property
    def error(self) -> str | None:
        """Why the last refresh failed, while :attr:`stale`."""
        return self.live.error if self.stale else None

    def refresh(self) -> int:
        """Read the changes since the last read; returns the number of changed rows."""
        refreshed = self.data.refresh(self.spec())
        self.sync()
        return len(refreshed.changed)

    def sync(self) -> int:
        """Take up data that a refresher already read: ``version`` changes when the live
        frame is another than the one last announced.  Returns the version."""
        # Nothing read yet, or a question whose frames are still being read (a page reads
        # them off the event loop; this runs on it): nothing to announce.
        if self._announced is not None and self.ready():
            current = self._versions()
            if current != self._announced:
                self._announced = current
                with param.edit_constant(self):
                    self.version += 1
        return self.version

    def scope(self) -> frozenset[str] | None:
        """The ids of the agents whose ``team`` is one of ``teams``; None without a scope.

        Worked out from the live agents frame every pipeline shares, so a scope costs
        no query of its own, and an agent that changes team changes the scope.
        """
        if self.teams is None:
            return None
        agents = self.data.get(_AGENTS).frame
        teams = tuple(sorted(set(self.teams)))
        scoped = self._scoped
        if scoped is None or scoped[0] is not agents or scoped[1] != teams:
            ids = agents.loc[agents["team"].isin(teams), "id"]
            scoped = self._scoped = (agents, teams, frozenset(ids.dropna()))
        return scoped[2]

    def _in_scope(self, frame: pd.DataFrame, scope: frozenset[str] | None) -> pd.DataFrame:
        if scope is None:
            return frame
        return frame.loc[frame[self._agent_column].isin(scope)].reset_index(drop=True)

    def agent_ids(self, agents: Iterable[str]) -> list[str]:
        """``agents`` as agent ids: each an id, or a name standing for every agent of that
        name (the sidebar, links and the API take both); one that is neither is kept as it
        is, and matches nothing."""
        agents = list(agents)
        known = self.data.get(FrameSpec("agents")).frame if agents else None
        if known is None or set(agents) <= set(known["id"]):
            return agents
        ids = set(known["id"])
        by_name = known.dropna(subset=["name"]).groupby("name")["id"].agg(list)
        return [
            each
            for agent in agents
            for each in ([agent] if agent in ids else by_name.get(agent, [agent]))
        ]

    def _select(self, frame: pd.DataFrame) -> pd.Series:
        mask = pd.Series(True, index=frame.index)
        for name, column in self.columns.items():
            value = getattr(self, name)
            if not value:
                continue
            if name == "agents":
                value = self.agent_ids(value)
            if isinstance(column, tuple):
                needle = str(value).lower()
                found = pd.Series(False, index=frame.index)
                for each in column:
                    text = frame[each].str.lower().str.contains(needle, regex=False)
                    found |= text.fillna(False).astype(bool)
                mask &= found
            else:
                mask &= frame[column].isin(value)
        return mask

    def _filtered(self, frame: pd.DataFrame) -> pd.DataFrame:
        scope = self.scope()

        def cut() -> pd.DataFrame:
            scoped = self._in_scope(frame, scope)
            mask = self._select(scoped)
            return scoped if bool(mask.all()) else scoped.loc[mask].reset_index(drop=True)

        key = tuple((name, _hashable(getattr(self, name))) for name in self.columns)
        return SLICES.get(frame, (type(self).__name__, ("scope", scope), *key), cut)

    @property
    def frame(self) -> pd.DataFrame:
        """The canonical frame for the current parameters."""
        return self._filtered(self.live.frame)


class MessagesPipeline(Pipeline):
    """Messages in a time window, filtered by agent, status, role and id search."""

    window: str = Choice(  # type: ignore[assignment]
        default="24h",
        objects=[*WINDOWS, "custom"],
        link="window",
        doc="Relative window ending at the time of the data; 'custom' uses start and end "
        "(set to the bounds of the window shown before, when not given).",
    )
    start = Instant(
        default=None,
        allow_None=True,
        link="start",
        doc="Start of a custom window, ISO 8601 (UTC when it has no offset); needs end.",
    )
    end = Instant(
        default=None,
        allow_None=True,
        link="end",
        doc="End of a custom window, ISO 8601; needs start.",
    )
    agents = Names(link="agent", doc="Keep these agents, by id or name (all when empty).")
    statuses = Choices(
        objects=list(STATUSES), link="status", doc="Keep these statuses (all when empty)."
    )
    roles = Choices(objects=list(ROLES), link="role", doc="Keep these roles (all when empty).")
    models = Names(link="model", doc="Keep messages of these models (all when empty).")
    search = Text(
        link="search",
        query="q",
        doc="Keep conversations or users whose id contains this text (any case).",
    )

    columns = {
        "agents": "agent_id",
        "statuses": "status",
        "roles": "role",
        "models": "model",
        "search": ("conversation_id", "user_id"),
    }
    _container = "messages"

    @classmethod
    def declare_dimensions(cls, dimensions: Mapping[str, str]) -> None:
        """Declare a filter for each configured dimension (``[dimensions] tenant =
        "tenantId"``): a parameter of that name, its link and API name too, keeping the
        rows whose column of that name holds one of its values.

        Done when the settings are read (:meth:`LiveFrames.from_settings`, the
        ``agentdash`` commands); declaring one again changes nothing.
        """
        for name, source_field in dimensions.items():
            if name in cls.param:
                continue
            cls.param.add_parameter(
                name,
                Names(
                    link=name,
                    doc=f"Keep messages whose {name} (source field {source_field}) is one "
                    "of these (all when empty).",
                ),
            )
            cls.columns = {**cls.columns, name: name}

    @classmethod
    def breakdowns(cls) -> list[str]:
        """The filters that keep rows by one column's values, besides agents and statuses:
        the model and the configured dimensions (each a breakdown too)."""
        return [
            name
            for name, column in cls.columns.items()
            if isinstance(column, str) and name not in ("agents", "statuses", "roles")
        ]

    def __init__(self, **params: Any) -> None:
        if ("start" in params or "end" in params) and "window" not in params:
            params["window"] = "custom"
        super().__init__(**params)
        self._shown = self.window_spec  # refuse a bad custom window at once

    def _asked(self, *events: param.parameterized.Event) -> None:
        # Runs before any other watcher: they see window, start and end made consistent.
        if {"window", "start", "end"} & {event.name for event in events}:
            self._complete_window()
        super()._asked(*events)

    def _complete_window(self) -> None:
        """A relative window has no bounds; a custom one missing them takes the bounds of
        the window shown before.  (A custom window ending before it starts is refused
        when read: ``window_spec`` raises.)"""
        if self.window != "custom":
            if self.start is not None or self.end is not None:
                self.param.update(start=None, end=None)
        elif self.start is None or self.end is None:
            start, end = self._shown.bounds(self._shown_as_of())
            self.param.update(start=self.start or start, end=self.end or end)
        with contextlib.suppress(QueryError):
            self._shown = self.window_spec

    def _shown_as_of(self) -> datetime:
        if self._shown.label is None:
            assert self._shown.end is not None
            return self._shown.end
        return self.data.get(FrameSpec("messages", self._shown)).as_of

    @property
    def window_spec(self) -> Window:
        if self.window == "custom":
            if self.start is None or self.end is None:
                raise QueryError("window='custom' needs both start and end")
            return Window.parse(start=as_utc(self.start, "start"), end=as_utc(self.end, "end"))
        return Window.parse(self.window)

    def spec(self) -> FrameSpec:
        return FrameSpec("messages", self.window_spec)

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end] of the window in UTC."""
        return self.window_spec.bounds(self.as_of)

    @property
    def previous_bounds(self) -> tuple[datetime, datetime]:
        return self.window_spec.previous_bounds(self.as_of)

    def _between(self, bounds: tuple[datetime, datetime], period: str) -> pd.DataFrame:
        start, end = bounds
        everything = self._filtered(self.live.frame)

        def cut() -> pd.DataFrame:
            ts = everything[TIME_FIELD["messages"]]
            return everything.loc[(ts >= start) & (ts <= end)].reset_index(drop=True)

        # Keyed by the period, stamped with its bounds: one copy per question and period.
        return SLICES.get(everything, ("between", period), cut, stamp=bounds)

    @property
    def frame(self) -> pd.DataFrame:
        """Messages in the window, as the canonical frame."""
        return self._between(self.bounds, "window")

    @property
    def previous_frame(self) -> pd.DataFrame:
        """Messages in the period of the same length just before the window."""
        return self._between(self.previous_bounds, "previous")

    # -- long windows: answered from hourly rollups ---------------------------------------
    def _versions(self) -> tuple[Hashable, ...]:
        if not self.rolled_up():
            return super()._versions()
        # The rows too, when held: the views that read them (the message table) follow them;
        # and the agents for a scope.
        held = tuple(
            (self.data.key(spec), self.data.get(spec).version)
            for spec in super()._specs()
            if spec == _AGENTS or self.data.holds(spec)
        )
        return (self._rollup_version(), *held)

    def ready(self) -> bool:
        if not self.rolled_up():
            return super().ready()
        held = self.data.holds_rollups(self.rollup_offset())
        return held and (self.teams is None or self.data.holds(_AGENTS))

    def data_version(self) -> tuple[Hashable, ...]:
        return self._versions() if self.rolled_up() else super().data_version()

    def prefetch(self) -> None:
        if not self.rolled_up():
            super().prefetch()
            return
        self.data.rollups(self.rollup_offset())
        if self.teams is not None:
            self.data.get(_AGENTS)

    def values(self, column: str) -> list[Any]:
        """The values ``column`` takes in the window's data before the filters, sorted (the
        choices a picker offers): of the rows, or of the rollups' keys."""
        if self.rolled_up():
            table = self.data.rollups(self.rollup_offset()).table
        else:
            table = self.live.frame
        if column not in table:
            return []
        return sorted(table[column].dropna().unique().tolist())

    @property
    def as_of(self) -> datetime:
        """The time the data was read at (the end of a relative window): of the rollups'
        last refresh when the question is answered from them."""
        if self.rolled_up():
            return self.data.rollups_version(self.rollup_offset())[1]
        return self.live.as_of

    @property
    def stale(self) -> bool:
        """True when the last refresh failed (of the rollups, for a long window)."""
        if self.rolled_up():
            return self.data.rollups_error(self.rollup_offset()) is not None
        return self.live.stale

    @property
    def error(self) -> str | None:
        if self.rolled_up():
            return self.data.rollups_error(self.rollup_offset())
        return super().error

    def refresh(self) -> int:
        """Read the changes since the last read (into the rollups too, for a long window);
        returns the number of rows changed in the window's rows (0 when none are held)."""
        if not self.rolled_up():
            return super().refresh()
        spec = self.spec()
        changed = len(self.data.refresh(spec).changed) if self.data.holds(spec) else 0
        self.data.refresh_rollups(self.rollup_offset())
        self.sync()
        return changed

    def rolled_up(self) -> bool:
        """True when the question is answered from the hourly rollups rather than rows: a
        window at least ``AGENTDASH_ROLLUP_FROM`` long without an id search (which needs
        rows).  Its numbers are those of the window widened to whole hours: from the start
        of its first hour to the end of its last (for a relative window: now)."""
        if self.search:
            return False
        try:
            return self.window_spec.length >= self.data.rollup_from
        except QueryError:
            return False

    def rollup_offset(self) -> int:
        """Minutes past UTC's hours at which the hours of the time zone start (Asia/Kolkata:
        30), so that its days are made of whole rollup hours."""
        offset = datetime.now(ZoneInfo(self.tz)).utcoffset()
        # Local hours start where UTC + offset is whole: +13:45 (Chatham) at UTC's :15.
        return 0 if offset is None else -int(offset.total_seconds() // 60) % 60

    def _rollup_version(self) -> tuple[Hashable, ...]:
        """Changes when the rollups take changes in, or the window's first hour moves on."""
        offset = self.rollup_offset()
        version, as_of = self.data.rollups_version(offset)
        first = pd.Timestamp(self.window_spec.previous_bounds(as_of)[0]).floor("h")
        return ("rollups", offset, version, first)

    def answers(self, period: str = "current") -> Answers:
        """The metrics of the window (``"current"``) or of the period before it
        (``"previous"``): from rows, or from the rollups when :meth:`rolled_up`."""
        if not self.rolled_up():
            return FrameAnswers(self.frame if period == "current" else self.previous_frame)
        return self._rollups(period)

    def _rollups(self, period: str) -> Rollups:
        """The rollups of the window or of the period before it, with the filters."""
        start, end = self.bounds if period == "current" else self.previous_bounds
        rollups = self.data.rollups(self.rollup_offset())
        self._read_once()
        agents: list[str] | None = self.agent_ids(self.agents) if self.agents else None
        scope = self.scope()
        if scope is not None:
            agents = sorted(scope) if agents is None else [a for a in agents if a in scope]
        dimensions = {
            name: list(getattr(self, name))
            for name in self.breakdowns()
            if name != "models" and getattr(self, name)
        }
        return rollups.select(
            pd.Timestamp(start),
            pd.Timestamp(end) + pd.Timedelta(1, "ns"),  # the window's end is inclusive
            agents=agents,
            statuses=list(self.statuses) or None,
            roles=list(self.roles) or None,
            models=list(self.models) or None,
            dimensions=dimensions or None,
        )

    def slowest_conversations(self, n: int = 10) -> pd.DataFrame:
        """``metrics.slowest_conversations`` of the window's messages.

        A long window (:meth:`rolled_up`) is not read: the rollups rank its conversations
        by their replies' total latency over its whole hours, which is at least their total
        within the window; the best ranked are read whole and cut to the window and the
        filters, in batches of ``n``, until no conversation left could beat the ``n``-th
        found.  The answer is that of the window's rows, as current as the rollups.
        """
        if not self.rolled_up():
            return metrics.slowest_conversations(self.frame, n)
        start, end = (pd.Timestamp(moment) for moment in self.bounds)
        ranking = self._rollups("current").latency_ranking()
        scope = self.scope()
        bounds = ranking["latency_total_ms"].to_numpy()
        frames = [empty_frame("messages")]
        slowest = metrics.slowest_conversations(frames[0], n)
        done = 0
        while done < len(ranking) and n > 0:
            batch = ranking.iloc[done : done + n]
            done += len(batch)
            for conversation_id in self._conversation_ids(batch):
                # Costs are no column of the table: the rows are not priced.
                frame = self._in_scope(self.data.conversation(conversation_id, priced=False), scope)
                times = frame["timestamp"]
                frame = frame.loc[(times >= start) & (times <= end)].reset_index(drop=True)
                frames.append(frame.loc[self._select(frame)].reset_index(drop=True))
            slowest = metrics.slowest_conversations(pd.concat(frames, ignore_index=True), n)
            found = slowest["latency_total_ms"].to_numpy()
            if len(found) == n and (done == len(ranking) or found[-1] > bounds[done]):
                break
        return slowest

    def _conversation_ids(self, ranked: pd.DataFrame) -> list[str]:
        """The ids of ``ranked`` conversations (``Rollups.latency_ranking`` rows), in their
        order, from the messages at the time of each one's first reply counted (a
        conversation no longer there is left out)."""
        known: dict[int, str] = {}
        for first in sorted(set(ranked["first"])):
            pages = self.data.row_pages(first, first + pd.Timedelta(1, "ns"), ["conversation_id"])
            for page in pages:
                ids = page["conversation_id"].dropna().astype("str").drop_duplicates()
                hashes = conversation_hashes(ids)
                known.update(zip(hashes.tolist(), ids.tolist(), strict=True))
        return [known[h] for h in ranked["conversation"].tolist() if h in known]

    def conversation(self, conversation_id: str) -> pd.DataFrame:
        """Every message of one conversation with its text (``content``), oldest first;
        within the scope, only the messages of its agents (none: no such conversation)."""
        return self._in_scope(self.data.conversation(conversation_id), self.scope())


class AgentsPipeline(Pipeline):
    """The agents, filtered by id and status."""

    agents = Names(link="agent", doc="Keep these agents, by id or name (all when empty).")
    statuses = Names(query=None, doc="Keep agents with these statuses (all when empty).")

    columns = {"agents": "id", "statuses": "status"}
    _container = "agents"
    _agent_column = "id"


_AGENTS = FrameSpec("agents")
