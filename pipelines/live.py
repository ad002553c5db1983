"""The live frames of one process: read once through the cache, kept current by refreshes.

:class:`LiveFrames` orchestrates a source, a cache and, per :class:`FrameSpec`
(a container, and for messages a window), the latest canonical frame: the
window and the period before it, for comparisons.  Every pipeline, session
and view of a process reads the same live frame, so a refresh cycle costs one
source query per frame whatever the number of viewers.  The work itself is
done elsewhere: reading pages (:mod:`pipelines.reading`), applying changes
(:func:`pipelines.merge.merge`), caching (:mod:`pipelines.cache`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

from pipelines.arrow import isin
from pipelines.cache import CachedFrame, FrameCache, cache_key, make_cache
from pipelines.errors import AgentdashError, SourceError, SourceUnavailableError
from pipelines.merge import merge
from pipelines.prices import PriceTable
from pipelines.quarantine import Quarantine, open_quarantine
from pipelines.query import Query
from pipelines.reading import collector_paused, normalise_shaped, read_frame
from pipelines.rollup_store import (
    FileRollupStore,
    MemoryRollupStore,
    RedisRollupStore,
    RollupKeeper,
    RollupState,
    RollupStore,
    StoredRollups,
)
from pipelines.rollups import Rollups
from pipelines.schema import (
    REQUIRED,
    SCHEMA_VERSION,
    TIME_FIELD,
    FieldMapping,
    coerce,
)
from pipelines.settings import Settings, load_settings
from pipelines.shapes import Shape
from pipelines.sources import open_source
from pipelines.sources.base import ChangeSet, Source
from pipelines.status import FrameState, RefreshRecord, Status
from pipelines.windows import Window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameSpec:
    """Which live frame: a container, and for messages the window it covers."""

    container: str
    window: Window | None = None

    def describe(self) -> str:
        return self.container + (f"[{self.window.describe()}]" if self.window else "")


@dataclass
class LiveFrame:
    """The latest frame of a spec and the state of its refreshes."""

    frame: pd.DataFrame
    token: str | None
    as_of: datetime
    version: int = 0
    stale: bool = False
    error: str | None = None
    last_success: float = field(default_factory=time.time)
    #: When a reader last asked for this frame (monotonic seconds), for eviction.
    last_read: float = field(default_factory=time.monotonic)
    #: The time its rows were cut to its periods: its ``as_of`` when this frame was made
    #: (a refresh that reads nothing moves ``as_of`` on, not this).
    cut_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.cut_at is None:
            self.cut_at = self.as_of
        self._nbytes: int | None = None

    @property
    def nbytes(self) -> int:
        """Bytes its frame holds (measured once: a live frame's rows never change)."""
        if self._nbytes is None:
            self._nbytes = int(self.frame.memory_usage(index=True, deep=True).sum())
        return self._nbytes


@dataclass(frozen=True)
class Refreshed:
    """A live frame after a refresh, and the rows the refresh brought into its periods."""

    live: LiveFrame
    changed: pd.DataFrame
    #: The refresh failed because the source cannot be reached (not one container's fault).
    unreachable: bool = False


Listener = Callable[[FrameSpec, pd.DataFrame, LiveFrame], None]


def _now() -> datetime:
    return datetime.now(UTC)


def open_rollup_store(settings: Settings, cache: FrameCache) -> RollupStore:
    """Redis when configured (every process and replica shares the rollups), otherwise a
    folder beside the embedded store (``rollups/`` next to its file)."""
    client = getattr(cache, "client", None)
    if settings.redis_url and client is not None:
        return RedisRollupStore(client)
    return FileRollupStore(settings.local_path.parent / "rollups")


class LiveFrames:
    """A source, a cache and the live frames one process reads from them.

    ``shape`` says how the messages container holds its messages, ``prices`` what they
    cost, ``dimensions`` the more columns read from it (column -> source field).
    """

    def __init__(
        self,
        source: Source,
        cache: FrameCache,
        fields: dict[str, dict[str, str]] | None = None,
        history: int = 200,
        idle_seconds: float = 900,
        *,
        shape: Shape | None = None,
        prices: PriceTable | None = None,
        dimensions: dict[str, str] | None = None,
        max_frames: int = 10,
        memory_budget: int = 1_000_000_000,
        quarantine: Quarantine | None = None,
        rollup_store: RollupStore | None = None,
        rollup_from: timedelta = timedelta(days=7),
    ) -> None:
        self.source = source
        self.shape = shape or Shape()
        self.prices = prices or PriceTable()
        self.dimensions = dimensions or {}
        #: A frame nobody read for this long is no longer refreshed (and is dropped).
        self.idle_seconds = idle_seconds
        #: Live frames kept at most; past that, the one read least recently is dropped.
        self.max_frames = max_frames
        #: Bytes of frames kept at most; past that, those read least recently are dropped
        #: (and read again when asked for). One frame larger than this is still served.
        self.memory_budget = memory_budget
        #: Windows at least this long are answered from the rollups (see :meth:`rollups`).
        self.rollup_from = rollup_from
        self.rollup_store: RollupStore = rollup_store or MemoryRollupStore()
        self._keepers: dict[int, RollupKeeper] = {}
        #: Skip a refresh when another process refreshed the same frame this recently.
        self.min_refresh_seconds = 0.0
        self.cache = cache
        self.fields = fields or {}
        #: Documents that cannot be read, counted once (see :mod:`pipelines.quarantine`).
        self.quarantine = quarantine or Quarantine()
        self.refreshes: deque[RefreshRecord] = deque(maxlen=history)
        self._live: dict[str, LiveFrame] = {}
        self._specs: dict[str, FrameSpec] = {}
        self._guards: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._listeners: list[Listener] = []
        # Windows cut from a live frame: (id of the frame, its version, the cut), recent ones.
        self._derived: OrderedDict[str, tuple[int, int, LiveFrame]] = OrderedDict()
        self._scope = threading.local()
        # The change feed read during a refresh cycle, by (container, projection, token):
        # frames and rollups at the same token read it once between them.
        self._feed: dict[tuple[str, tuple[str, ...] | None, str], ChangeSet] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveFrames:
        """The source, cache, field mapping, shape and prices the settings describe; the
        configured dimensions become filters of the messages pipelines."""
        from pipelines.pipeline import MessagesPipeline  # it reads these frames

        MessagesPipeline.declare_dimensions(settings.dimensions)
        cache = make_cache(settings.redis_url, settings.cache_ttl_seconds)
        fields = {k: dict(v) for k, v in settings.fields.items()}
        source = open_source(settings)
        return cls(
            source,
            cache,
            fields,
            shape=Shape.from_section(
                settings.containers.get("messages"), settings.messages_container
            ),
            prices=PriceTable.from_settings(settings),
            dimensions=dict(settings.dimensions),
            memory_budget=settings.memory_budget,
            quarantine=open_quarantine(settings, source.identity),
            rollup_store=open_rollup_store(settings, cache),
            rollup_from=settings.rollup_from,
        )

    _default: LiveFrames | None = None
    _default_lock = threading.Lock()

    @classmethod
    def default(cls) -> LiveFrames:
        """The process-wide live frames from the environment, made on first use.

        An embedded store never written to gets demo data first, so that a first look
        (the dashboard, a notebook) shows something.
        """
        with cls._default_lock:
            if cls._default is None:
                from pipelines.demo import seed_if_new

                frames = cls.from_settings(load_settings())
                seed_if_new(frames.source)
                cls._default = frames
            return cls._default

    @classmethod
    def set_default(cls, frames: LiveFrames | None) -> None:
        with cls._default_lock:
            cls._default = frames

    # -- queries ----------------------------------------------------------------------
    def mapping(self, container: str) -> FieldMapping:
        return FieldMapping.for_container(container, self.fields, self.dimensions)

    def shape_of(self, container: str) -> Shape:
        """How the container holds its documents (agents: one each, as they are)."""
        return self.shape if container == "messages" else Shape()

    def base_query(self, spec: FrameSpec, as_of: datetime | None = None) -> Query:
        """The source query behind a spec: canonical fields only, no message text."""
        mapping, shape = self.mapping(spec.container), self.shape_of(spec.container)
        projection = shape.projection(mapping, mapping.columns)
        if spec.window is None:
            return Query.build(spec.container, filters=shape.filters(), projection=projection)
        start: datetime | None = spec.window.previous_bounds(as_of or _now())[0]
        end = spec.window.end if spec.window.label is None else None
        start, end = shape.window(start, end)
        return Query.build(
            spec.container,
            time_field=shape.time_field(mapping)
            if spec.container == "messages"
            else mapping.source_field(TIME_FIELD[spec.container]),
            start=start,
            end=end,
            filters=shape.filters(),
            projection=projection,
        )

    def key(self, spec: FrameSpec) -> str:
        """The cache key of a spec's frame: its source, container, window and field mapping.

        Relative windows are keyed by their label, not their moving bounds.
        """
        return cache_key(
            {
                "source": self.source.identity,
                "container": spec.container,
                "window": spec.window.describe() if spec.window else None,
                "fields": self.mapping(spec.container).fields,
                "dimensions": self.mapping(spec.container).dimensions,
                "shape": asdict(self.shape_of(spec.container)),
                "prices": self.prices.identity if spec.container == "messages" else None,
            }
        )

    def _guard_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._guards.setdefault(key, threading.Lock())

    # -- reading ----------------------------------------------------------------------
    def holds(self, spec: FrameSpec) -> bool:
        """True when :meth:`get` answers from memory: the spec's frame is held, or can be
        cut from one held (a page built on it waits for no read)."""
        return self.key(spec) in self._live or self._covering(spec) is not None

    def get(self, spec: FrameSpec) -> LiveFrame:
        """The live frame of ``spec``: from memory, else the cache, else the source.

        A custom window lying inside a relative one already read (a drill-down)
        is cut from that frame instead of being read again; inside :meth:`once`,
        one that no live frame holds is read for the block only.
        """
        key = self.key(spec)
        live = self._live.get(key)
        if live is None:
            parent = self._covering(spec)
            if parent is not None:
                return self._cut(spec, key, parent)
            held: dict[str, LiveFrame] | None = getattr(self._scope, "held", None)
            if held is not None and spec.window is not None and spec.window.label is None:
                if key not in held:
                    held[key] = self._read_once(spec, key)
                return held[key]
            live = self._read(spec, key)
        live.last_read = time.monotonic()
        return live

    @contextlib.contextmanager
    def once(self) -> Iterator[None]:
        """On this thread, within the block, read an explicit window that no live frame holds
        once, and forget it at the end, rather than keep it live: what one API request
        asks for costs one read, however many distinct windows requests ask for."""
        if getattr(self._scope, "held", None) is not None:  # nested: the outer block holds
            yield
            return
        self._scope.held = {}
        try:
            yield
        finally:
            self._scope.held = None

    def _read_once(self, spec: FrameSpec, key: str) -> LiveFrame:
        # From the cache when another process keeps it; never written there (not kept).
        entry = self.cache.get(key) or self._load(spec)
        return LiveFrame(coerce(entry.frame, spec.container), entry.token, entry.as_of)

    def held_bytes(self) -> int:
        """Bytes of the frames this process holds: live frames and the windows cut from them."""
        return sum(v.nbytes for v in list(self._live.values())) + sum(
            d[2].nbytes for d in list(self._derived.values())
        )

    def _keep(self, key: str, spec: FrameSpec, live: LiveFrame) -> None:
        """Hold ``live`` as the frame of ``spec``; past ``max_frames`` or ``memory_budget``,
        drop the windows cut from frames, then the frames read least recently."""
        with self._guard:
            self._live[key], self._specs[key] = live, spec
            while len(self._live) > self.max_frames:
                oldest = min(self._live, key=lambda k: self._live[k].last_read)
                log.info(
                    "dropping %s: more than %d live frames",
                    self._specs[oldest].describe(),
                    self.max_frames,
                )
                self._drop(oldest)
            while self._derived and self.held_bytes() > self.memory_budget:
                self._derived.popitem(last=False)
            while len(self._live) > 1 and self.held_bytes() > self.memory_budget:
                others = [k for k in self._live if k != key]
                oldest = min(others, key=lambda k: self._live[k].last_read)
                log.info(
                    "dropping %s: the frames held exceed the memory budget of %.0f MB",
                    self._specs[oldest].describe(),
                    self.memory_budget / 1e6,
                )
                self._drop(oldest)

    def _drop(self, key: str) -> None:
        self._live.pop(key, None)
        self._specs.pop(key, None)

    def _read(self, spec: FrameSpec, key: str) -> LiveFrame:
        with self._guard_for(key):
            live = self._live.get(key)
            if live is not None:
                return live
            entry = self.cache.get(key)
            if entry is None:
                with self.cache.lock(key):
                    # Another process may have filled it while this one waited.
                    entry = self.cache.get(key)
                    if entry is None:
                        entry = self._load(spec)
                        self.cache.put(key, entry)
            live = LiveFrame(coerce(entry.frame, spec.container), entry.token, entry.as_of)
            self._keep(key, spec, live)
            return live

    def _covering(self, spec: FrameSpec) -> LiveFrame | None:
        """A live relative-window frame holding all that a custom window needs."""
        window = spec.window
        if window is None or window.label is not None:
            return None
        assert window.start is not None and window.end is not None
        needed = window.start - window.length
        for key, other in list(self._specs.items()):
            live = self._live.get(key)
            if (
                live is not None
                and other.container == spec.container
                and other.window is not None
                and other.window.label is not None
                and other.window.previous_bounds(live.as_of)[0] <= needed
                and window.end <= live.as_of
            ):
                return live
        return None

    def _cut(self, spec: FrameSpec, key: str, parent: LiveFrame) -> LiveFrame:
        parent.last_read = time.monotonic()
        cached = self._derived.get(key)
        if cached is not None and cached[:2] == (id(parent), parent.version):
            self._derived.move_to_end(key)
            return cached[2]
        assert spec.window is not None and spec.window.end is not None
        column = parent.frame[TIME_FIELD[spec.container]]
        start = spec.window.previous_bounds(parent.as_of)[0]
        inside = (column >= start) & (column <= spec.window.end)
        live = LiveFrame(
            parent.frame.loc[inside].reset_index(drop=True),
            parent.token,
            parent.as_of,
            parent.version,
            parent.stale,
            parent.error,
        )
        self._derived[key] = (id(parent), parent.version, live)
        self._derived.move_to_end(key)
        while len(self._derived) > self.max_frames or (
            len(self._derived) > 1 and self.held_bytes() > self.memory_budget
        ):
            self._derived.popitem(last=False)
        return live

    def _load(self, spec: FrameSpec) -> CachedFrame:
        as_of = _now()
        query = self.base_query(spec, as_of)
        started = time.perf_counter()
        before = self.source.stats.snapshot()
        try:
            # The token first: whatever is written during the read comes back as a change.
            token = self.source.changes(query, None).token
            with collector_paused():
                frame = self._priced(
                    read_frame(
                        self.source,
                        query,
                        self.mapping(spec.container),
                        self.quarantine,
                        shape=self.shape_of(spec.container),
                    )
                )
        except AgentdashError:
            raise
        except Exception as exc:  # a source library's own error: say which source failed
            raise SourceUnavailableError(f"reading {spec.describe()} failed: {exc}") from exc
        self._record(spec, before, started, len(frame), len(frame))
        log.info(
            "loaded %s: %d rows in %.2f s",
            spec.describe(),
            len(frame),
            time.perf_counter() - started,
        )
        return CachedFrame(frame, token, as_of, {"schema": SCHEMA_VERSION})

    # -- refreshing -------------------------------------------------------------------
    def refresh(self, spec: FrameSpec) -> Refreshed:
        """Bring a live frame up to date with the changes since its token.

        Single flight: when another process holds the key's lock, or refreshed
        the frame less than ``min_refresh_seconds`` ago, this one reads no
        source and adopts what that process wrote to the cache.  A failing
        source leaves the last frame in place, marked stale.
        """
        key = self.key(spec)
        parent = None if key in self._live else self._covering(spec)
        if parent is not None:  # a drill-down window: refresh the frame it is cut from
            parent_key = next(k for k, v in self._live.items() if v is parent)
            refreshed = self.refresh(self._specs[parent_key])
            return Refreshed(self.get(spec), refreshed.changed)
        live = self.get(spec)
        nothing = live.frame.iloc[:0]
        with self._guard_for(key), self.cache.lock(key, blocking=False) as acquired:
            if not acquired:
                return self._adopt(spec, key, live)
            shared = self.cache.stamp(key)
            ours = shared is not None and shared[0] == live.token
            if shared is not None and not ours and shared[1] > live.as_of:
                return self._adopt(spec, key, live)
            recent = _now().timestamp() - self.min_refresh_seconds
            if ours and shared is not None and shared[1].timestamp() > recent and not live.stale:
                if shared[1] > live.as_of:
                    live.as_of = shared[1]
                return Refreshed(live, nothing)
            # The cache holds this frame, or nothing, or older data (a late write): go on
            # from this frame, whose write then replaces what is older.
            return self._apply_changes(spec, key, live, cached=ours)

    def _adopt(self, spec: FrameSpec, key: str, live: LiveFrame) -> Refreshed:
        entry = self.cache.get(key)
        # Only newer data: a process that fell behind must not roll the others back.
        if entry is None or entry.token == live.token or entry.as_of <= live.as_of:
            return Refreshed(live, live.frame.iloc[:0])
        before = live.frame
        fresh = LiveFrame(
            coerce(entry.frame, spec.container),
            entry.token,
            entry.as_of,
            live.version + 1,
            last_read=live.last_read,  # a refresh is no reader
        )
        self._keep(key, spec, fresh)
        # New ids only: comparing whole frames column by column would cost more than the read.
        added = fresh.frame.loc[~isin(fresh.frame["id"], before["id"])]
        self.refreshes.append(
            RefreshRecord(spec.describe(), _now(), 0, len(added), 0.0, 0.0, 0, 0, adopted=True)
        )
        self._notify(spec, added, fresh)
        return Refreshed(fresh, added)

    def _apply_changes(
        self, spec: FrameSpec, key: str, live: LiveFrame, cached: bool = True
    ) -> Refreshed:
        started = time.perf_counter()
        before = self.source.stats.snapshot()
        as_of = _now()
        query = self.base_query(spec, as_of)
        try:
            changes = self.changes(query, live.token)
        except Exception as exc:
            message = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
            self._record(spec, before, started, 0, 0, error=message)
            return self._stale(spec, live, message, isinstance(exc, SourceUnavailableError))
        shape = self.shape_of(spec.container)
        result = normalise_shaped(changes.documents, self.mapping(spec.container), shape)
        self.quarantine.add(result.quarantined)
        # Upserts replace: a document updated into one that cannot be read leaves the frame,
        # and so do the messages a session document updated no longer holds.
        gone = [q.id for q in result.quarantined if q.id is not None]
        if shape.session and changes.documents:
            sessions = [d.get("id") for d in changes.documents if isinstance(d, dict)]
            replaced = isin(live.frame["conversation_id"], pd.Series(sessions, dtype="str"))
            gone += live.frame.loc[replaced, "id"].tolist()
        merged = merge(
            live.frame,
            self._priced(result.frame),
            spec.window,
            as_of,
            container=spec.container,
            time_column=TIME_FIELD[spec.container],
            previous_as_of=live.cut_at,
            gone=gone,
        )
        self._record(spec, before, started, len(changes.documents), len(merged.changed))
        if merged.unchanged and not live.stale:
            # Nothing changed and no row moved between periods: same frame, same
            # version (views stay as they are); only the time of the data moves on.
            previous = live.token
            live.as_of, live.token, live.last_success = as_of, changes.token, time.time()
            if cached:
                self.cache.restamp(key, previous, changes.token, as_of)
            else:  # the cache lost it (expired, or Redis restarted empty)
                self.cache.put(key, CachedFrame(live.frame, changes.token, as_of, {}))
            self._notify(spec, merged.changed, live)
            return Refreshed(live, merged.changed)
        fresh = LiveFrame(
            merged.frame, changes.token, as_of, live.version + 1, last_read=live.last_read
        )
        self._keep(key, spec, fresh)
        self.cache.put(
            key, CachedFrame(merged.frame, changes.token, as_of, {"schema": SCHEMA_VERSION})
        )
        self._notify(spec, merged.changed, fresh)
        return Refreshed(fresh, merged.changed)

    def changes(self, query: Query, token: str | None) -> ChangeSet:
        """The source's changes since ``token`` (see :meth:`Source.changes`); during
        :meth:`refresh_all`, read once for every frame and rollup at the same token.

        Consumers at one token stay at one: each cycle reads the feed once, however
        many windows are open.
        """
        feed = self._feed
        if feed is None or token is None:
            return self.source.changes(query, token)
        key = (query.container, query.projection, token)
        found = feed.get(key)
        if found is None:
            found = feed[key] = self.source.changes(query, token)
        return found

    def refresh_all(self) -> list[Refreshed]:
        """Refresh every frame read in this process lately, then the rollups (the change
        feed read once for all at one token); drop the frames nobody reads."""
        self._feed = {}
        try:
            return self._refresh_all()
        finally:
            self._feed = None

    def _refresh_all(self) -> list[Refreshed]:
        idle_since = time.monotonic() - self.idle_seconds
        for key, live in list(self._live.items()):
            if live.last_read < idle_since:
                log.info(
                    "dropping %s: not read for %.0f s",
                    self._specs[key].describe(),
                    self.idle_seconds,
                )
                self._drop(key)
        held = {id(live) for live in self._live.values()}
        for key, derived in list(self._derived.items()):
            if derived[0] not in held:
                self._derived.pop(key, None)
        refreshed: list[Refreshed] = []
        for spec in list(self._specs.values()):
            down = next((r.live.error for r in refreshed if r.unreachable), None)
            if down is None:
                refreshed.append(self.refresh(spec))
                continue
            # The source is unreachable: the other frames wait for the next cycle rather
            # than each spend its retries on it (a cycle costs one frame's, not all).
            current = self._live.get(self.key(spec))
            if current is not None:
                self._record(spec, self.source.stats.snapshot(), time.perf_counter(), 0, 0, down)
                refreshed.append(self._stale(spec, current, down, unreachable=True))
        down = next((r.live.error for r in refreshed if r.unreachable), None)
        if down is None:
            self._refresh_rollups()
        else:  # the rollups wait for the source too, and say why
            for keeper in list(self._keepers.values()):
                keeper.error = down
        return refreshed

    def _stale(
        self, spec: FrameSpec, live: LiveFrame, message: str, unreachable: bool
    ) -> Refreshed:
        """Keep serving ``live``, marked stale for ``message``."""
        live.stale, live.error = True, message
        log.warning("refresh of %s failed, serving the last frame: %s", spec.describe(), message)
        # No rows changed, but listeners learn that the frame is now stale.
        self._notify(spec, live.frame.iloc[:0], live)
        return Refreshed(live, live.frame.iloc[:0], unreachable)

    def _record(
        self,
        spec: FrameSpec,
        before: dict[str, float],
        started: float,
        documents: int,
        changed: int,
        error: str | None = None,
    ) -> None:
        after = self.source.stats.snapshot()
        self.refreshes.append(
            RefreshRecord(
                spec.describe(),
                _now(),
                documents,
                changed,
                time.perf_counter() - started,
                after["request_charge"] - before["request_charge"],
                int(after["throttled"] - before["throttled"]),
                int(after["requests"] - before["requests"]),
                error,
            )
        )

    # -- live fan-out -----------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(spec, changed_rows, live)`` after each refresh; returns the undo."""
        with self._guard:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._guard:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _notify(self, spec: FrameSpec, changed: pd.DataFrame, live: LiveFrame) -> None:
        for listener in list(self._listeners):
            try:
                listener(spec, changed, live)
            except Exception:
                log.exception("a refresh listener failed")

    # -- rollups -------------------------------------------------------------------------
    def _keeper(self, offset_minutes: int) -> RollupKeeper:
        with self._guard:
            keeper = self._keepers.get(offset_minutes)
            if keeper is None:
                spec = FrameSpec("messages")
                mapping = self.mapping("messages")
                key = cache_key(
                    {
                        "rollups": offset_minutes,
                        "source": self.source.identity,
                        "fields": mapping.fields,
                        "dimensions": mapping.dimensions,
                        "shape": asdict(self.shape),
                        "prices": self.prices.identity,
                    }
                )
                keeper = self._keepers[offset_minutes] = RollupKeeper(
                    self.source,
                    self.base_query(spec),
                    mapping,
                    self.shape,
                    self.quarantine,
                    self._priced,
                    self.rows_between,
                    self.rollup_store,
                    key,
                    offset_minutes,
                    changes=self.changes,
                )
            return keeper

    def rollups(self, offset_minutes: int = 0) -> Rollups:
        """The hourly rollups of every message (hours starting ``offset_minutes`` past
        UTC's, for time zones off whole hours): built or loaded on first use, then kept
        current by :meth:`refresh_all`."""
        return self._keeper(offset_minutes).get()

    def rollups_version(self, offset_minutes: int = 0) -> tuple[int, datetime]:
        """How many times the rollups took changes in, and the time of their data."""
        keeper = self._keeper(offset_minutes)
        keeper.get()
        return keeper.state.version, keeper.state.as_of or _now()

    def rollups_error(self, offset_minutes: int = 0) -> str | None:
        """Why the rollups' last refresh failed, until one succeeds (None: it did not)."""
        keeper = self._keepers.get(offset_minutes)
        return None if keeper is None else keeper.error

    def rollup_state(self, offset_minutes: int = 0) -> RollupState:
        """What building and refreshing the rollups cost, and how current they are."""
        return self._keeper(offset_minutes).state

    def stored_rollups(self, offset_minutes: int = 0) -> StoredRollups | None:
        """The rollups kept in the store for this source, if any (read, not taken up)."""
        keeper = self._keeper(offset_minutes)
        return keeper.store.load(keeper.key)

    def holds_rollups(self, offset_minutes: int = 0) -> bool:
        keeper = self._keepers.get(offset_minutes)
        return keeper is not None and keeper.ready

    def rows_between(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """The messages with ``start <= timestamp < end``, read from the source (priced)."""
        mapping = self.mapping("messages")
        query = self._between_query(start, end, mapping.columns)
        frame = read_frame(self.source, query, mapping, self.quarantine, shape=self.shape)
        return self._priced(_cut(frame, start, end))

    def row_pages(
        self, start: pd.Timestamp, end: pd.Timestamp, columns: Sequence[str]
    ) -> Iterator[pd.DataFrame]:
        """The messages with ``start <= timestamp < end``, page by page as the source
        returns them, with only ``columns`` and the required ones read: a long window is
        gone through without holding it.  A document rewritten while the pages are read
        may come in two pages; unreadable documents are quarantined."""
        mapping = self.mapping("messages")
        wanted = list(dict.fromkeys([*REQUIRED["messages"], *columns]))
        for page in self.source.fetch(self._between_query(start, end, wanted)):
            result = normalise_shaped(page, mapping, self.shape, deduplicate=False)
            self.quarantine.add(result.quarantined)
            kept = _cut(result.frame, start, end)
            if len(kept):
                yield kept

    def _between_query(
        self, start: pd.Timestamp, end: pd.Timestamp, columns: Sequence[str]
    ) -> Query:
        mapping = self.mapping("messages")
        # To whole microseconds, outwards: the rows read are cut to the bounds exactly.
        low, high = self.shape.window(
            start.floor("us").to_pydatetime(), end.ceil("us").to_pydatetime()
        )
        return Query.build(
            "messages",
            time_field=self.shape.time_field(mapping),
            start=low,
            end=high,
            filters=self.shape.filters(),
            projection=self.shape.projection(mapping, columns),
        )

    def _refresh_rollups(self) -> None:
        for offset in list(self._keepers):
            self.refresh_rollups(offset)

    def refresh_rollups(self, offset_minutes: int = 0) -> None:
        """Take the changes since their token into the rollups (once built); a failure is
        kept as their error (they stay as they were) until a refresh succeeds."""
        keeper = self._keepers.get(offset_minutes)
        if keeper is None:
            return
        try:
            keeper.refresh()
            keeper.error = None
        except Exception as exc:  # the rollups wait for the next cycle; frames go on
            keeper.error = str(exc)
            log.warning("refresh of the rollups failed: %s", exc)

    # -- reading beyond the live frames ---------------------------------------------------
    def conversation(self, conversation_id: str, priced: bool = True) -> pd.DataFrame:
        """Every message of one conversation, with its text, oldest first (without
        ``priced``, ``cost_usd`` is left NaN and the price table is not read)."""
        mapping = self.mapping("messages")
        query = Query.build(
            "messages",
            filters={
                **self.shape.filters(),
                **self.shape.conversation_filter(mapping, conversation_id),
            },
            projection=self.shape.projection(mapping, [*mapping.columns, "content"]),
        )
        frame = read_frame(
            self.source, query, mapping, self.quarantine, extra=("content",), shape=self.shape
        )
        frame = frame[frame["conversation_id"] == conversation_id]
        frame = self._priced(frame) if priced else frame
        # Stable: messages of one time (a session's) keep the order their document gives.
        return frame.sort_values("timestamp", kind="stable", ignore_index=True)

    def _priced(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Messages with their cost; other frames as they are."""
        return self.prices.priced(frame) if "cost_usd" in frame else frame

    def status(self) -> Status:
        """Freshness and costs, for the Ops view and the health endpoint."""
        quarantined = self.quarantine.summary()
        return Status(
            source=self.source.identity,
            source_stats=self.source.stats.snapshot(),
            cache=type(self.cache).__name__,
            cache_healthy=self.cache.healthy,
            cache_stats=self.cache.stats.snapshot(),
            quarantined=quarantined.count,
            quarantine_reasons=quarantined.reasons,
            frames=tuple(
                FrameState(
                    self._specs[k].describe(),
                    len(v.frame),
                    v.as_of,
                    v.stale,
                    v.error,
                    v.version,
                    v.nbytes,
                )
                for k, v in list(self._live.items())
            )
            + tuple(
                FrameState(
                    "rollups" + (f"[+{offset} min]" if offset else ""),
                    keeper.buckets,
                    keeper.state.as_of,
                    False,
                    keeper.error,
                    keeper.state.version,
                    keeper.state.nbytes,
                )
                for offset, keeper in list(self._keepers.items())
                if keeper.ready and keeper.state.as_of is not None
            ),
            refreshes=tuple(self.refreshes),
            listeners=len(self._listeners),
        )


def _cut(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The messages of ``frame`` with ``start <= timestamp < end`` (a shape's window is
    pushed down coarser than that, see :meth:`Shape.window`)."""
    times = frame["timestamp"]
    return frame.loc[(times >= start) & (times < end)].reset_index(drop=True)
