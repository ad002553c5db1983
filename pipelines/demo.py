"""Demo data: agents and messages as a team stores them in Cosmos DB.

Documents use the source field names of the public contract (``agentId``,
``latencyMs``, ISO 8601 strings...), so the demo goes through the same
normalisation as a real container.  The data carries the patterns a dashboard is
for: a daily and weekly load curve, agents with their own latency profile, error
bursts, router-to-specialist hand-offs, tool calls and unanswered questions.

Everything is drawn as numpy arrays at once and turned into dicts at the end:
a million messages take a few seconds.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from pipelines.schema import CANONICAL_FIELDS

__all__ = ["Rate", "generate", "live", "live_messages", "seed", "seed_if_new", "touch_agents"]

log = logging.getLogger(__name__)

Document = dict[str, Any]
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = 60_000
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_TIMEOUT_MS = 30_000  # the gateway gives up on a model call after this
_TOOL_TIMEOUT_MS = 10_000
_LIVE_WINDOW_MS = 10_000
_DRAW_AHEAD_MS = 10 * _MINUTE  # live mode draws its conversations this long ahead

# The default field names of the mapping: what a team stores when nothing is renamed.
# Only model replies name their model and the cached part of their prompt.
_MODEL_FIELDS = ("model", "tokensCachedIn")
_MESSAGE_FIELDS = tuple(f for f in CANONICAL_FIELDS["messages"].values() if f not in _MODEL_FIELDS)
# The models agents reply with, agent by agent in turn.
_MODELS = np.array(["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "gpt-4.1-mini"], dtype=object)
_CACHED_SHARE = 0.25  # of a reply's prompt tokens, served from the provider's prompt cache
# Which fields a message carries, by shape: clients write only what they measured.
_REPLY, _TOOL_CALL, _COUNTED, _PLAIN = range(4)
_SHAPE_FIELDS = (
    (*_MESSAGE_FIELDS, *_MODEL_FIELDS),
    tuple(f for f in _MESSAGE_FIELDS if f not in ("tokensIn", "tokensOut")),
    tuple(f for f in _MESSAGE_FIELDS if f not in ("latencyMs", "tokensOut")),
    tuple(f for f in _MESSAGE_FIELDS if f not in ("latencyMs", "tokensIn", "tokensOut")),
)
_ROLES = np.array(["user", "agent", "system", "tool"], dtype=object)
_STATUSES = np.array(["ok", "error", "timeout"], dtype=object)
_OK, _ERROR, _TIMEOUT = range(3)

# An exchange is one user message and what follows it, in five slots written in
# this order: the question, the addressed agent's hand-off note, the system's
# hand-off record, a tool call, the reply.  The role (index in _ROLES) of each:
_SLOT_ROLE = np.array([0, 1, 2, 3, 1])

# Probability of a conversation having 1, 2, ... exchanges.
_LENGTHS = np.array([0.34, 0.24, 0.16, 0.12, 0.08, 0.06])
_ROUTED_P = 0.85  # the rest come from integrations that call a specialist directly
_SECOND_HANDOFF_P = 0.22
_UNANSWERED_P = 0.08
_TOKEN_LOGGING_P = 0.6  # share of clients that count tokens of user messages too


@dataclass(frozen=True)
class _Kind:
    """What an agent of one kind is like: its speed, its tools and what it is asked."""

    team: str
    median_ms: float
    sigma: float
    tokens_per_s: float
    prompt_tokens: int
    traffic: float
    tool_p: float = 0.0
    tool_ms: float = 0.0
    tool_call: str = ""
    topics: tuple[str, ...] = ("it",)
    # (question, answer) templates; {x} a topic, {n} a reference number, {d} a digit.
    scenarios: tuple[tuple[str, str], ...] = ()


_KINDS: dict[str, _Kind] = {
    "router": _Kind(
        team="Platform",
        median_ms=380,
        sigma=0.35,
        tokens_per_s=90,
        prompt_tokens=350,
        traffic=0.0,
    ),
    "support": _Kind(
        team="Customer Care",
        median_ms=1900,
        sigma=0.5,
        tokens_per_s=55,
        prompt_tokens=1200,
        traffic=1.0,
        tool_p=0.25,
        tool_ms=180,
        tool_call='lookup_order(id="{n}") -> status=shipped',
        topics=("notifications", "dashboard", "profile", "team"),
        scenarios=(
            (
                "My order #{n} still hasn't arrived, can you check?",
                "Order #{n} left the warehouse yesterday and should arrive within {d} days.",
            ),
            (
                "The reset email never comes, how do I get into my account?",
                "I've sent a new reset link to the address on file; it expires in 30 minutes.",
            ),
            (
                "The mobile app crashes when I open {x}.",
                "That's a known issue in version 4.{d}; updating the app fixes it.",
            ),
            (
                "I was logged out and my {x} settings are gone.",
                "I've restored your {x} settings from yesterday's backup.",
            ),
        ),
    ),
    "retrieval": _Kind(
        team="Knowledge",
        median_ms=1300,
        sigma=0.45,
        tokens_per_s=60,
        prompt_tokens=900,
        traffic=0.9,
        tool_p=0.7,
        tool_ms=350,
        tool_call='search_docs(query="{x}", k=5) -> {d} hits',
        topics=("database failover", "on-call escalation", "data retention", "SSO setup"),
        scenarios=(
            (
                "Where is the runbook for {x}?",
                "The {x} runbook is in the Platform wiki, section {d}; it was updated last week.",
            ),
            (
                "What does our policy say about {x}?",
                "The handbook covers {x} in chapter {d}: changes need an owner's approval.",
            ),
            (
                "Which team owns {x}?",
                "{x} is owned by the Platform team; their channel is #platform-oncall.",
            ),
        ),
    ),
    "billing": _Kind(
        team="Finance Ops",
        median_ms=1500,
        sigma=0.45,
        tokens_per_s=50,
        prompt_tokens=1000,
        traffic=0.7,
        tool_p=0.55,
        tool_ms=220,
        tool_call='get_invoice(id="INV-{n}") -> status=paid',
        topics=("annual", "monthly", "team", "enterprise"),
        scenarios=(
            (
                "Why was I charged twice on invoice INV-{n}?",
                "INV-{n} has one charge and one card hold; the hold is released within 3 days.",
            ),
            (
                "Can I get a refund for my last {x} payment?",
                "I've issued a refund of {d}9.00 EUR for the {x} payment; allow 5-10 days.",
            ),
            (
                "When does my {x} plan renew?",
                "Your {x} plan renews on the 1st; invoice INV-{n} will follow.",
            ),
        ),
    ),
    "coder": _Kind(
        team="Developer Tools",
        median_ms=4800,
        sigma=0.55,
        tokens_per_s=70,
        prompt_tokens=2400,
        traffic=0.6,
        tool_p=0.6,
        tool_ms=900,
        tool_call='run_tests(path="tests/{x}") -> {d} passed, 0 failed',
        topics=("payments", "auth", "ingestion", "export"),
        scenarios=(
            (
                "Why does the {x} build fail with a KeyError?",
                "The {x} config key was renamed in #{n}; I've pushed a fix to your branch.",
            ),
            (
                "Write unit tests for the {x} parser.",
                "Added {d} tests for the {x} parser; they all pass.",
            ),
            (
                "Review pull request #{n} for the {x} module, please.",
                "#{n} looks good; two comments on error handling in {x}.",
            ),
        ),
    ),
    "planner": _Kind(
        team="Operations",
        median_ms=3200,
        sigma=0.5,
        tokens_per_s=45,
        prompt_tokens=1600,
        traffic=0.4,
        tool_p=0.35,
        tool_ms=260,
        tool_call='create_tasks(project="{x}", count={d}) -> ok',
        topics=("billing service", "search index", "mobile app", "reporting pipeline"),
        scenarios=(
            (
                "Plan the migration of the {x} to the new cluster.",
                "A {d}-step plan for the {x}: freeze, snapshot, migrate, verify.",
            ),
            (
                "Break the {x} launch down into tasks for next sprint.",
                "I've split the {x} launch into {d} tasks across two sprints.",
            ),
        ),
    ),
    "summarizer": _Kind(
        team="Knowledge",
        median_ms=2600,
        sigma=0.4,
        tokens_per_s=65,
        prompt_tokens=2000,
        traffic=0.5,
        tool_p=0.5,
        tool_ms=300,
        tool_call='fetch_thread(id="T-{n}") -> {d}4 messages',
        topics=("login latency", "the Q3 roadmap", "the data outage", "the vendor review"),
        scenarios=(
            (
                "Summarise yesterday's thread about {x}.",
                "On {x}: root cause found, fix deployed, {d} follow-ups assigned.",
            ),
            (
                "TL;DR of ticket T-{n}, please.",
                "T-{n} in short: exports are slow for one customer; a fix ships next week.",
            ),
        ),
    ),
    "onboarding": _Kind(
        team="Customer Care",
        median_ms=1700,
        sigma=0.45,
        tokens_per_s=55,
        prompt_tokens=1100,
        traffic=0.5,
        tool_p=0.3,
        tool_ms=150,
        tool_call='lookup_account(id="acct-{n}") -> plan=team',
        topics=("Slack", "GitHub", "Google Drive", "Jira"),
        scenarios=(
            (
                "How do I invite my team to the workspace?",
                "Open Settings > Members and click Invite; you can paste up to 50 addresses.",
            ),
            (
                "Which plan should I pick for {d}0 users?",
                "For {d}0 users the Team plan fits best; it includes SSO.",
            ),
            (
                "How do I connect {x}?",
                "Open Integrations, pick {x} and approve the permissions it asks for.",
            ),
        ),
    ),
    "compliance": _Kind(
        team="Legal",
        median_ms=2200,
        sigma=0.4,
        tokens_per_s=40,
        prompt_tokens=1800,
        traffic=0.25,
        tool_p=0.6,
        tool_ms=240,
        tool_call='check_policy(topic="{x}") -> {d} clauses',
        topics=("customer", "payroll", "analytics", "support-ticket"),
        scenarios=(
            (
                "Can we store {x} data outside the EU?",
                "Only under standard contractual clauses; see policy {d}.{n}.",
            ),
            (
                "Do we need a DPA with the vendor for {x} data?",
                "Yes, {x} data needs a DPA; the template is in the legal drive.",
            ),
        ),
    ),
    "translator": _Kind(
        team="Localization",
        median_ms=1100,
        sigma=0.35,
        tokens_per_s=80,
        prompt_tokens=500,
        traffic=0.35,
        topics=("checkout", "account settings", "billing", "onboarding"),
        scenarios=(
            (
                "Translate the {x} release notes into German.",
                "Here are the {x} release notes in German, {d} paragraphs.",
            ),
            (
                "What's the approved French term for '{x}' in our UI?",
                "The glossary entry for '{x}' is in the French UI sheet, row {n}.",
            ),
        ),
    ),
}
# Kinds in the order a team adds agents: the first is always a router.
_ROSTER = (
    "router",
    "support",
    "retrieval",
    "billing",
    "coder",
    "support",
    "planner",
    "summarizer",
    "retrieval",
    "onboarding",
    "compliance",
    "translator",
)
_CODENAMES = (
    "atlas",
    "nova",
    "orion",
    "lyra",
    "vega",
    "juno",
    "castor",
    "iris",
    "rigel",
    "talos",
    "echo",
    "sol",
    "kepler",
    "mira",
    "pavo",
    "draco",
)
# (follow-up question, answer), asked after the first answer of a conversation.
_FOLLOW_UPS = (
    ("Thanks! How long will that take?", "Usually 1-2 working days; I'll post updates here."),
    (
        "That didn't work, I still see the same problem.",
        "Sorry about that. I've escalated it and added the details to ticket T-{n}.",
    ),
    ("Can you send me a link to that?", "Here it is: https://help.example.com/a/{n}"),
    (
        "Could you explain that in more detail?",
        "Sure: there are {d} steps, and I've written each one out below.",
    ),
    ("Great, thank you.", "You're welcome! Anything else I can help with?"),
)
_ACKS = (
    "Routing you to {name}, our {kind} agent.",
    "This looks like a {kind} question: handing over to {name}.",
    "One moment, {name} will take it from here.",
)
_ERRORS = (
    "Error: the model endpoint returned 500 Internal Server Error.",
    "Error: rate limited by the model provider (429) after 3 retries.",
    "Error: the response failed output validation.",
    "Error: context length exceeded ({n} tokens).",
)
_TIMEOUTS = (
    "Timeout: no answer from the model within 30 s.",
    "Timeout: request cancelled after 30 s; please try again.",
)
_TOOL_FAILURES = (
    "{tool} failed: upstream returned 503 Service Unavailable",
    "{tool} failed: connection reset by peer",
)
_TOOL_TIMEOUT = "{tool} timed out after 10 s"


def _unit(agent_id: str, aspect: str) -> float:
    """A stable number in [0, 1) per agent and aspect.

    Profiles hang on the agent id, not on a random state, so live messages for
    stored agents behave like the history generated with them.
    """
    return zlib.crc32(f"{agent_id}/{aspect}".encode()) / 2**32


@dataclass(frozen=True)
class _Cast:
    """Per-agent parameters as arrays, indexed like the agent documents."""

    ids: list[str]
    names: list[str]
    kinds: list[str]
    median_ms: Floats
    sigma: Floats
    tokens_per_s: Floats
    prompt_tokens: Floats
    tool_p: Floats
    tool_ms: Floats
    error_p: Floats
    timeout_p: Floats
    traffic: Floats  # relative share of conversations a specialist takes on
    routing: Floats  # relative share of conversations a router opens

    @classmethod
    def of(cls, agent_docs: Sequence[Document]) -> _Cast:
        for doc in agent_docs:
            if doc.get("kind") not in _KINDS:
                raise ValueError(
                    f"agent {doc.get('id')!r} is of kind {doc.get('kind')!r}, "
                    f"not one of the demo's ({', '.join(_KINDS)})"
                )
        ids = [str(doc["id"]) for doc in agent_docs]
        kinds = [_KINDS[doc["kind"]] for doc in agent_docs]
        serving = np.array([doc["status"] != "retired" for doc in agent_docs])
        router = np.array([doc["kind"] == "router" for doc in agent_docs])

        def per_agent(values: Sequence[float]) -> Floats:
            return np.array(values, dtype=np.float64)

        def hashed(aspect: str) -> Floats:
            return per_agent([_unit(i, aspect) for i in ids])

        share = 0.5 + hashed("traffic")
        return cls(
            ids=ids,
            names=[str(doc["name"]) for doc in agent_docs],
            kinds=[str(doc["kind"]) for doc in agent_docs],
            # A cubed uniform leaves most agents near their kind's median and a few
            # up to 2.3 times slower.
            median_ms=per_agent([k.median_ms for k in kinds]) * (0.7 + 1.6 * hashed("slow") ** 3),
            sigma=per_agent([k.sigma for k in kinds]),
            tokens_per_s=per_agent([k.tokens_per_s for k in kinds]) * (0.8 + 0.4 * hashed("tps")),
            prompt_tokens=per_agent([k.prompt_tokens for k in kinds]),
            tool_p=per_agent([k.tool_p for k in kinds]),
            tool_ms=per_agent([k.tool_ms for k in kinds]),
            error_p=0.004 + 0.016 * hashed("errors"),
            timeout_p=0.001 + 0.005 * hashed("timeouts"),
            traffic=np.where(serving & ~router, per_agent([k.traffic for k in kinds]) * share, 0.0),
            routing=np.where(serving & router, share, 0.0),
        )


class _Burst(NamedTuple):
    """A window in which one agent fails much more often than usual."""

    agent: int
    start: int
    end: int
    failure_p: float
    timeout_share: float


class _Batch(NamedTuple):
    """Message documents, and the arrays they were made from that agent documents need."""

    documents: list[Document]
    timestamp: Ints  # epoch ms, ascending
    agent: Ints  # index of the agentId
    by_user: Bools


def generate(
    agents: int = 12,
    messages: int = 20_000,
    days: float = 7.0,
    *,
    seed: int = 0,
    now: datetime | None = None,
) -> tuple[list[Document], list[Document]]:
    """Agent documents and ``messages`` message documents from the ``days`` before ``now``.

    ``now`` defaults to the current time (naive datetimes are read as UTC).  The
    same ``seed`` and ``now`` give the same documents.  Messages come in
    timestamp order.  Agent statuses follow the messages: the agent in an error
    burst at ``now`` is degraded, those silent for 15 minutes are idle.
    """
    if agents < 2:
        raise ValueError(f"agents={agents}: the demo needs at least a router and a specialist")
    if messages < 0:
        raise ValueError(f"messages={messages}: give a count of zero or more")
    if days <= 0:
        raise ValueError(f"days={days}: give a window longer than zero days")
    rng = np.random.default_rng(seed)
    hi = _epoch_ms(now)
    lo = hi - round(days * _DAY)
    docs, created = _roster(rng, agents, lo)
    cast = _Cast.of(docs)
    bursts = _bursts(rng, cast, lo, hi, count=max(2, round(days)))
    batch = _simulate(rng, cast, messages, lo, hi, bursts, think_ms=30_000, max_exchanges=6)

    spoke = ~batch.by_user
    last_seen = created.copy()
    np.maximum.at(last_seen, batch.agent[spoke], batch.timestamp[spoke])
    stamps = _iso(last_seen).tolist()
    for i, doc in enumerate(docs):
        if doc["status"] == "retired":
            continue
        doc["lastSeen"] = stamps[i]
        if i == bursts[-1].agent:
            doc["status"] = "degraded"
        elif hi - last_seen[i] > 15 * _MINUTE:
            doc["status"] = "idle"
    return docs, batch.documents


def live_messages(
    agent_docs: Sequence[Document],
    n: int,
    *,
    now: datetime | None = None,
    seed: int | None = None,
) -> list[Document]:
    """``n`` new message documents from the 10 seconds before ``now``.

    They belong to new short conversations with the agents in ``agent_docs``
    (retired ones excepted), with the same profiles as the generated history;
    degraded agents keep failing often.  Without a ``seed`` every call draws
    new conversations and ids.
    """
    rng = np.random.default_rng(seed)
    hi = _epoch_ms(now)
    lo = hi - _LIVE_WINDOW_MS
    cast = _Cast.of(agent_docs)
    bursts = _degraded(agent_docs, lo, hi)
    return _simulate(rng, cast, n, lo, hi, bursts, think_ms=1_500, max_exchanges=2).documents


@dataclass(frozen=True)
class Rate:
    """Messages a second: ``per_second``, times the demo's load curve if ``on_load``.

    On the load curve, ``per_second`` is the rate at a load of 1, about that of
    a weekday at 11:00 UTC; nights and weekends are quieter.
    """

    per_second: float
    on_load: bool = False

    @classmethod
    def of_history(cls, messages: int, start: datetime, end: datetime) -> Rate:
        """The rate of ``messages`` from ``start`` to ``end`` on the load curve, as generated."""
        lo, hi = _epoch_ms(start), _epoch_ms(end)
        if messages <= 0 or hi <= lo:
            raise ValueError(
                f"no rate to tell from {messages} messages between "
                f"{start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M}"
            )
        return cls(messages / (_load_mass(lo, hi)[1].sum() / 1000), on_load=True)

    def at(self, moment: datetime) -> float:
        """Messages a second at ``moment``."""
        load = _load(np.array([_epoch_ms(moment)], dtype=np.float64))[0] if self.on_load else 1.0
        return self.per_second * float(load)

    def _expected(self, lo: int, hi: int) -> float:
        """How many messages come between ``lo`` and ``hi`` epoch ms, on average."""
        if self.on_load:
            return self.per_second * float(_load_mass(lo, hi)[1].sum()) / 1000
        return self.per_second * (hi - lo) / 1000


def live(
    agent_docs: Sequence[Document],
    rate: Rate,
    instants: Iterable[datetime],
    *,
    seed: int | None = None,
) -> Iterator[list[Document]]:
    """For each of ``instants``, in order, the new messages whose time it has passed.

    Conversations with the agents in ``agent_docs`` are drawn ten minutes ahead
    at ``rate``, like the generated history, and handed out as their timestamps
    pass: at a slow rate, whole conversations rather than the first message of
    many.  Degraded agents keep failing often.
    """
    cast = _Cast.of(agent_docs)  # refused here rather than at the first instant
    if not cast.traffic.any():
        raise ValueError("no specialist agent is in service to answer")
    return _released(np.random.default_rng(seed), cast, agent_docs, rate, instants)


def _released(
    rng: np.random.Generator,
    cast: _Cast,
    agent_docs: Sequence[Document],
    rate: Rate,
    instants: Iterable[datetime],
) -> Iterator[list[Document]]:
    times: Ints = np.empty(0, dtype=np.int64)
    docs: list[Document] = []
    drawn: int | None = None  # conversations are drawn up to this epoch ms
    for instant in instants:
        now = _epoch_ms(instant)
        first = drawn is None
        if drawn is None:
            # From a draw earlier: conversations are under way at the first instant.
            drawn = now - _DRAW_AHEAD_MS
        while drawn <= now:
            lo, drawn = drawn, drawn + _DRAW_AHEAD_MS
            n = int(rng.poisson(rate._expected(lo, drawn)))
            bursts = _degraded(agent_docs, lo, drawn)
            batch = _simulate(
                rng, cast, n, lo, drawn, bursts, think_ms=30_000, max_exchanges=6, open_ended=True
            )
            # Conversations run on past the end of their draw, into the next one's.
            times = np.r_[times, batch.timestamp]
            merged = [*docs, *batch.documents]
            order = np.argsort(times, kind="stable")
            times, docs = times[order], [merged[i] for i in order.tolist()]
        due = int(np.searchsorted(times, now, side="right"))
        yield [] if first else docs[:due]  # at the first instant, those are the past
        times, docs = times[due:], docs[due:]


def _degraded(agent_docs: Sequence[Document], lo: int, hi: int) -> list[_Burst]:
    """Bursts that keep the degraded agents failing from ``lo`` to ``hi``."""
    return [
        _Burst(i, lo, hi + 1, failure_p=0.3, timeout_share=0.5)
        for i, doc in enumerate(agent_docs)
        if doc["status"] == "degraded"
    ]


def touch_agents(agent_docs: Sequence[Document], now: datetime) -> list[Document]:
    """New versions of the agents still in service, seen at ``now``; idle ones become active."""
    seen = str(_iso([_epoch_ms(now)])[0])
    # The timestamps share one format, so comparing strings compares instants.
    return [
        {
            **doc,
            "lastSeen": max(doc["lastSeen"], seen),
            "status": "active" if doc["status"] == "idle" else doc["status"],
        }
        for doc in agent_docs
        if doc["status"] != "retired"
    ]


class _Store(Protocol):
    def upsert(self, container: str, docs: Iterable[Document]) -> int: ...


def seed(store: _Store) -> None:
    """Write the default demo agents and messages into ``store``.

    Five weeks of history: every window up to 30 days has a previous period to
    compare with (the last 5 days of the 30-day one's).
    """
    agent_docs, message_docs = generate(agents=12, messages=60_000, days=35)
    store.upsert("agents", agent_docs)
    store.upsert("messages", message_docs)


def seed_if_new(source: object) -> bool:
    """Seed an embedded store that was never written to; True if it did.

    A store written once, even by an import of nothing, is the user's: it is left as it
    is, and so is any other source (Cosmos DB): demo data belong in a new local file only.
    """
    from pipelines.sources.local import LocalSource

    if not isinstance(source, LocalSource) or not source.is_new():
        return False
    log.info("the local store %s is new: adding demo data", source.path)
    seed(source)
    return True


def _epoch_ms(moment: datetime | None) -> int:
    moment = datetime.now(UTC) if moment is None else moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _iso(epoch_ms: Sequence[int] | Ints) -> npt.NDArray[np.str_]:
    """``2026-11-25T10:15:02.123Z`` strings, the form Cosmos DB documents usually hold."""
    instants = np.asarray(epoch_ms, dtype=np.int64).astype("datetime64[ms]")
    return np.datetime_as_string(instants, unit="ms", timezone="UTC")


def _hex_ids(rng: np.random.Generator, prefix: str, n: int) -> list[str]:
    """``n`` distinct ids that look random: a bijective mix (splitmix64) of a counter.

    The counter starts at a random offset, so two batches collide only if their
    counter ranges overlap: a chance of about (n1 + n2) / 2**63.
    """
    x = np.arange(n, dtype=np.uint64) + rng.integers(2**63, dtype=np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return [f"{prefix}-{v:016x}" for v in x.tolist()]


def _roster(rng: np.random.Generator, agents: int, lo: int) -> tuple[list[Document], Ints]:
    """Agent documents, and when each agent was created (epoch ms, before ``lo``).

    ``lastSeen`` is left to fill in from the messages, but with six agents or
    more the last specialist has retired before the window.
    """
    ids = _hex_ids(rng, "a", agents)
    created = lo - rng.integers(3 * _DAY, 180 * _DAY, agents)
    created_at = _iso(created).tolist()
    docs = []
    for i in range(agents):
        kind = _ROSTER[i % len(_ROSTER)]
        name = f"{_CODENAMES[i % len(_CODENAMES)]}-{kind}"
        if i >= len(_CODENAMES):
            name += f"-{i // len(_CODENAMES) + 1}"
        docs.append(
            {
                "id": ids[i],
                "name": name,
                "kind": kind,
                "status": "active",
                "team": _KINDS[kind].team,
                "createdAt": created_at[i],
            }
        )
    if agents >= 6:
        i = agents - 1 if docs[-1]["kind"] != "router" else agents - 2
        docs[i]["status"] = "retired"
        last_seen = created[i] + (lo - created[i]) * rng.uniform(0.3, 0.95)
        docs[i]["lastSeen"] = str(_iso([int(last_seen)])[0])
    return docs, created


def _bursts(rng: np.random.Generator, cast: _Cast, lo: int, hi: int, count: int) -> list[_Burst]:
    """Incidents at busy times on busy agents; the last one is still going on at ``hi``."""
    # Cubed traffic favours the busiest agents: an incident there is one people notice.
    agents = _pick(rng, cast.traffic**3, count)
    starts = _busy_times(rng, count, lo, hi)
    lengths = rng.integers(45 * _MINUTE, 2 * _HOUR, count)
    starts[-1] = max(lo, hi - int(lengths[-1]))
    ends = np.minimum(starts + lengths, hi + 1)
    ends[-1] = hi + 1
    failure = rng.uniform(0.45, 0.75, count)
    timeout_share = rng.uniform(0.3, 0.7, count)
    return [
        _Burst(int(a), int(s), int(e), float(f), float(t))
        for a, s, e, f, t in zip(agents, starts, ends, failure, timeout_share, strict=True)
    ]


def _pick(
    rng: np.random.Generator, weights: Floats, n: int, other_than: Ints | None = None
) -> Ints:
    """``n`` indices drawn with ``weights``; never the matching entry of ``other_than``."""
    cdf = np.cumsum(weights)
    if other_than is None:
        u = rng.random(n) * cdf[-1]
    else:
        # Draw from the mass left without the excluded entry, then step over its slice.
        skipped = weights[other_than]
        u = rng.random(n) * (cdf[-1] - skipped)
        u = np.where(u < cdf[other_than] - skipped, u, u + skipped)
    picked: Ints = np.minimum(np.searchsorted(cdf, u, side="right"), len(weights) - 1)
    return picked


def _load(epoch_ms: Floats) -> Floats:
    """Relative traffic at each instant: European and American working hours, quiet weekends."""
    hour = (epoch_ms % _DAY) / _HOUR
    weekday = (epoch_ms // _DAY + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    daily = 0.08 + np.exp(-(((hour - 11) / 3) ** 2)) + 0.7 * np.exp(-(((hour - 17) / 3) ** 2))
    load: Floats = daily * np.where(weekday >= 5, 0.35, 1.0)
    return load


def _load_mass(lo: int, hi: int) -> tuple[Ints, Floats]:
    """Minute edges from ``lo`` to ``hi`` epoch ms, and the load times the ms of each minute."""
    edges = np.unique(np.r_[lo, np.arange(lo - lo % _MINUTE + _MINUTE, hi, _MINUTE), hi])
    widths = np.diff(edges).astype(np.float64)
    mass: Floats = _load(edges[:-1] + widths / 2) * widths
    return edges, mass


def _busy_times(rng: np.random.Generator, n: int, lo: int, hi: int) -> Ints:
    """``n`` instants in [lo, hi] epoch ms, drawn from the load curve minute by minute."""
    edges, mass = _load_mass(lo, hi)
    widths = np.diff(edges).astype(np.float64)
    cdf = np.cumsum(mass)
    u = rng.random(n) * cdf[-1]
    i = np.minimum(np.searchsorted(cdf, u, side="right"), len(mass) - 1)
    within = (u - (cdf[i] - mass[i])) / mass[i]
    times: Ints = edges[i] + np.floor(np.clip(within, 0, 1) * widths[i]).astype(np.int64)
    return times


class _Texts:
    """Every content string of a batch, addressed by position."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self.strings: list[str] = []

    def add(
        self,
        templates: Sequence[str],
        copies: int = 1,
        topics: Sequence[str] = ("it",),
        **names: str,
    ) -> int:
        """Append ``copies`` renderings of the templates; returns where they start.

        The templates of one rendering share their fillers, so a question, the
        tool call and the answer drawn together talk about the same thing.
        """
        start = len(self.strings)
        for _ in range(copies):
            fill = {
                "n": str(self._rng.integers(10_000, 100_000)),
                "d": str(self._rng.integers(2, 10)),
                "x": topics[int(self._rng.integers(len(topics)))],
                **names,
            }
            self.strings.extend(t.format(**fill) for t in templates)
        return start

    def tokens(self) -> Ints:
        """A rough token count per string (four characters a token)."""
        return np.array([len(s) // 4 + 1 for s in self.strings], dtype=np.int64)


@dataclass(frozen=True)
class _Library:
    """Where each family of texts starts in a :class:`_Texts`, and how many it holds.

    A kind's scenarios are (question, tool call, answer) triples; follow-ups
    are (question, answer) pairs; tool failures are two errors then a timeout.
    """

    kind_of_agent: Ints
    scenario_at: Ints
    scenarios: Ints
    failure_at: Ints
    ack_at: Ints
    follow_up_at: int
    follow_ups: int
    error_at: int
    errors: int
    timeout_at: int

    @classmethod
    def build(cls, texts: _Texts, cast: _Cast, copies: int = 8) -> _Library:
        """Render every family into ``texts``, scenarios and follow-ups ``copies`` times."""
        kinds = list(_KINDS.values())
        scenario_at, failure_at = [], []
        for kind in kinds:
            triples = [t for q, a in kind.scenarios for t in (q, kind.tool_call, a)]
            scenario_at.append(texts.add(triples, copies, kind.topics))
            tool = kind.tool_call.split("(")[0]
            failure_at.append(texts.add([*_TOOL_FAILURES, _TOOL_TIMEOUT], tool=tool))
        acks = [
            texts.add(_ACKS, name=name, kind=kind)
            for name, kind in zip(cast.names, cast.kinds, strict=True)
        ]
        return cls(
            kind_of_agent=np.array([list(_KINDS).index(k) for k in cast.kinds]),
            scenario_at=np.array(scenario_at),
            scenarios=np.array([copies * len(k.scenarios) for k in kinds]),
            failure_at=np.array(failure_at),
            ack_at=np.array(acks),
            follow_up_at=texts.add([t for pair in _FOLLOW_UPS for t in pair], copies),
            follow_ups=copies * len(_FOLLOW_UPS),
            error_at=texts.add(_ERRORS, copies),
            errors=copies * len(_ERRORS),
            timeout_at=texts.add(_TIMEOUTS),
        )


@dataclass(frozen=True)
class _Plan:
    """Who talks to whom: conversations, and their exchanges one row per user message."""

    length: Ints  # exchanges per conversation
    user: Ints
    logs_tokens: Bools  # the client also counts tokens of user messages
    busy: Ints  # epoch ms around which the conversation happens
    conv: Ints  # the conversation of each exchange (conversation-major)
    j: Ints  # the exchange's position in its conversation
    src: Ints  # the agent the user addresses
    agent: Ints  # the agent that answers: another one at a hand-off
    handoff: Bools
    tool: Bools
    replied: Bools


def _plan(
    rng: np.random.Generator, cast: _Cast, n: int, lo: int, hi: int, max_exchanges: int
) -> _Plan:
    """Conversations enough for ``n`` messages, their hand-offs and tool calls."""
    # A conversation holds at least 2 * length - unanswered messages: draw enough of them.
    p = _LENGTHS[:max_exchanges] / _LENGTHS[:max_exchanges].sum()
    length = rng.choice(np.arange(1, max_exchanges + 1), size=max(n, 1), p=p)
    unanswered = rng.random(length.size) < _UNANSWERED_P
    c = int(np.searchsorted(np.cumsum(2 * length - unanswered), n)) + 1
    length, unanswered = length[:c], unanswered[:c]

    routed = (rng.random(c) < _ROUTED_P) & bool(cast.routing.any())
    router = _pick(rng, cast.routing, c)
    first = _pick(rng, cast.traffic, c)
    second = _pick(rng, cast.traffic, c, other_than=first)
    can_pass_on = (length > 1) & (np.count_nonzero(cast.traffic) > 1)
    passes_on = can_pass_on & (rng.random(c) < _SECOND_HANDOFF_P)
    switch = np.where(passes_on, 1 + (rng.random(c) * (length - 1)).astype(np.int64), length)

    conv = np.repeat(np.arange(c), length)
    j = np.arange(conv.size) - np.repeat(np.cumsum(length) - length, length)
    agent = np.where(j < switch[conv], first[conv], second[conv])
    opened = routed[conv] & (j == 0)
    passed = j == switch[conv]
    replied = ~(unanswered[conv] & (j == length[conv] - 1))
    return _Plan(
        length=length,
        user=(rng.random(c) ** 2.5 * (40 + c // 5)).astype(np.int64),  # a few users ask a lot
        logs_tokens=rng.random(c) < _TOKEN_LOGGING_P,
        busy=_busy_times(rng, c, lo, hi),
        conv=conv,
        j=j,
        src=np.where(opened, router[conv], np.where(passed, first[conv], agent)),
        agent=agent,
        handoff=(opened | passed) & replied,
        tool=replied & (rng.random(conv.size) < cast.tool_p[agent]),
        replied=replied,
    )


def _simulate(
    rng: np.random.Generator,
    cast: _Cast,
    n: int,
    lo: int,
    hi: int,
    bursts: Sequence[_Burst],
    *,
    think_ms: float,
    max_exchanges: int,
    open_ended: bool = False,
) -> _Batch:
    """``n`` messages of conversations between users and ``cast`` within [lo, hi] epoch ms.

    ``open_ended`` conversations start within [lo, hi] and may go on past ``hi``.
    """
    plan = _plan(rng, cast, n, lo, hi, max_exchanges)
    conv, j, src, agent, tool = plan.conv, plan.j, plan.src, plan.agent, plan.tool
    x = conv.size

    # Outcome of the reply: each agent's own failure rates, raised during bursts.
    failure_p = cast.error_p[agent] + cast.timeout_p[agent]
    timeout_share = cast.timeout_p[agent] / failure_p
    for b in bursts:
        hit = (agent == b.agent) & (plan.busy[conv] >= b.start) & (plan.busy[conv] < b.end)
        failure_p = np.where(hit, b.failure_p, failure_p)
        timeout_share = np.where(hit, b.timeout_share, timeout_share)
    u = rng.random(x)
    status = np.where(u < failure_p * timeout_share, _TIMEOUT, np.where(u < failure_p, _ERROR, _OK))
    u = rng.random(x)
    tool_status = np.where(u < 0.01, _TIMEOUT, np.where(u < 0.025, _ERROR, _OK))

    # Latencies (ms): lognormal per agent; a reply includes its tool call.
    model_ms = cast.median_ms[agent] * np.exp(cast.sigma[agent] * rng.standard_normal(x))
    ack_ms = cast.median_ms[src] * np.exp(cast.sigma[src] * rng.standard_normal(x))
    tool_ms = cast.tool_ms[agent] * np.exp(0.6 * rng.standard_normal(x))
    tool_ms = np.where(tool_status == _TIMEOUT, _TOOL_TIMEOUT_MS + 200 * rng.random(x), tool_ms)
    tool_ms = np.where(tool, tool_ms, 0.0)
    reply_ms = np.select(
        [status == _OK, status == _ERROR],
        [model_ms + tool_ms, model_ms * rng.uniform(0.05, 0.4, x) + tool_ms],
        _TIMEOUT_MS + 400 * rng.random(x),
    )

    # Offsets (ms) of each slot from its user message, then of each exchange from
    # the start of its conversation; users write again sooner after a failure.
    ack_at = np.ceil(ack_ms).astype(np.int64)
    handoff_at = ack_at + rng.integers(2, 40, x)
    base = np.where(plan.handoff, handoff_at, 0)
    tool_at = base + np.ceil(tool_ms).astype(np.int64)
    reply_at = np.maximum(base + np.ceil(reply_ms).astype(np.int64), tool_at + 1)
    think = np.exp(rng.normal(np.log(think_ms), 0.9, x)) * np.where(status == _OK, 1.0, 0.3)
    think = np.clip(think, think_ms / 15, think_ms * 40)
    step = np.where(plan.replied, reply_at + np.ceil(think).astype(np.int64), 0)
    starts = np.cumsum(step) - step
    opening = np.cumsum(plan.length) - plan.length
    exchange_at = starts - np.repeat(starts[opening], plan.length)
    if open_ended:
        scale = np.ones(plan.length.size)
        conv_start = plan.busy
    else:
        # Squeeze conversations longer than the window, then place them so they end by hi.
        last = opening + plan.length - 1
        duration = exchange_at[last] + np.where(plan.replied[last], reply_at[last], 0)
        span = hi - lo
        scale = np.minimum(1.0, span / np.maximum(duration, 1))
        duration = np.floor(duration * scale).astype(np.int64)
        conv_start = lo + ((plan.busy - lo) * ((span - duration) / max(span, 1))).astype(np.int64)

    # Contents: one scenario per exchange, so question, tool call and answer match.
    texts = _Texts(rng)
    library = _Library.build(texts, cast)
    pair = src * len(cast.ids) + agent
    pairs, pair_of = np.unique(pair[plan.handoff], return_inverse=True)
    handoff_text = np.zeros(x, np.int64)
    handoff_text[plan.handoff] = pair_of + texts.add(
        [
            f"Conversation handed off from {cast.names[p // len(cast.ids)]} "
            f"to {cast.names[p % len(cast.ids)]}."
            for p in pairs.tolist()
        ]
    )
    tokens = texts.tokens()
    kind = library.kind_of_agent[agent]
    scenario = library.scenario_at[kind] + 3 * (rng.random(x) * library.scenarios[kind]).astype(
        np.int64
    )
    follow_up = library.follow_up_at + 2 * rng.integers(0, library.follow_ups, x)
    asks = (j == 0) | plan.handoff
    user_text = np.where(asks, scenario, follow_up)
    answer_text = np.select(
        [status == _ERROR, status == _TIMEOUT, asks],
        [
            library.error_at + rng.integers(0, library.errors, x),
            library.timeout_at + rng.integers(0, len(_TIMEOUTS), x),
            scenario + 2,
        ],
        follow_up + 1,
    )
    tool_text = np.where(
        tool_status == _OK,
        scenario + 1,
        library.failure_at[kind] + np.where(tool_status == _TIMEOUT, 2, rng.integers(0, 2, x)),
    )
    ack_text = library.ack_at[agent] + rng.integers(0, len(_ACKS), x)

    # Tokens: prompts grow with the conversation and with tool results; output
    # tokens follow generation time, so slow replies are long ones.
    user_tokens = np.where(plan.logs_tokens[conv], tokens[user_text], -1)
    ack_in = cast.prompt_tokens[src].astype(np.int64) + tokens[user_text]
    reply_in = (
        cast.prompt_tokens[agent].astype(np.int64)
        + 180 * j
        + tokens[user_text]
        + np.where(tool, rng.integers(300, 1500, x), 0)
    )
    speed = cast.tokens_per_s[agent] * np.exp(0.25 * rng.standard_normal(x))
    reply_out = np.where(status == _OK, np.maximum(1, model_ms / 1000 * speed).astype(np.int64), 0)

    # One row per exchange, one column per slot.
    none_i = np.full(x, -1)
    none_f = np.full(x, np.nan)
    ok = np.full(x, _OK)
    offset = np.column_stack([np.zeros(x, np.int64), ack_at, handoff_at, tool_at, reply_at])
    latency = np.column_stack([none_f, ack_ms, none_f, tool_ms, reply_ms])
    tokens_in = np.column_stack([user_tokens, ack_in, none_i, none_i, reply_in])
    tokens_out = np.column_stack([none_i, tokens[ack_text], none_i, none_i, reply_out])
    outcome = np.column_stack([ok, ok, ok, tool_status, status])
    speaker = np.column_stack([src, src, agent, agent, agent])
    content = np.column_stack([user_text, ack_text, handoff_text, tool_text, answer_text])
    user_shape = np.where(plan.logs_tokens[conv], _COUNTED, _PLAIN)
    shape = np.column_stack(
        [user_shape, *(np.full(x, s) for s in (_REPLY, _PLAIN, _TOOL_CALL, _REPLY))]
    )

    # Messages: the first n, in time order.
    msg_x, msg_slot = _lay_out(plan, n)
    msg_conv = conv[msg_x]
    when = exchange_at[msg_x] + offset[msg_x, msg_slot]
    when = conv_start[msg_conv] + np.floor(when * scale[msg_conv]).astype(np.int64)
    order = np.argsort(when, kind="stable")
    msg_x, msg_slot, msg_conv, when = msg_x[order], msg_slot[order], msg_conv[order], when[order]
    cell = (msg_x, msg_slot)

    used = int(msg_conv.max()) + 1 if n else 0
    users = np.array([f"u-{u:04d}" for u in plan.user[:used].tolist()], dtype=object)
    columns: dict[str, npt.NDArray[Any]] = {
        "id": np.array(_hex_ids(rng, "m", n), dtype=object),
        "conversationId": np.array(_hex_ids(rng, "c", used), dtype=object)[msg_conv],
        "agentId": np.array(cast.ids, dtype=object)[speaker[cell]],
        "role": _ROLES[_SLOT_ROLE[msg_slot]],
        "timestamp": _iso(when),
        "latencyMs": np.round(latency[cell], 1),
        "tokensIn": tokens_in[cell],
        "tokensOut": tokens_out[cell],
        "model": _MODELS[speaker[cell] % len(_MODELS)],
        "tokensCachedIn": (tokens_in[cell] * _CACHED_SHARE).astype(np.int64),
        "status": _STATUSES[outcome[cell]],
        "userId": users[msg_conv],
        "content": np.array(texts.strings, dtype=object)[content[cell]],
    }
    return _Batch(_documents(columns, shape[cell]), when, speaker[cell], msg_slot == 0)


def _lay_out(plan: _Plan, n: int) -> tuple[Ints, Ints]:
    """The exchange and slot of the first ``n`` messages, conversation after conversation."""
    present = np.column_stack(
        [np.ones_like(plan.replied), plan.handoff, plan.handoff, plan.tool, plan.replied]
    )
    # Row-major order is exchange after exchange, slots in the order they are written.
    exchange, slot = np.nonzero(present)
    return exchange[:n], slot[:n]


def _documents(columns: dict[str, npt.NDArray[Any]], shape: Ints) -> list[Document]:
    """One dict per row, holding the fields of its shape."""
    out = np.empty(shape.size, dtype=object)
    for s, fields in enumerate(_SHAPE_FIELDS):
        rows = np.flatnonzero(shape == s)
        values = [columns[f][rows].tolist() for f in fields]
        # map() over builtins takes half the time of a comprehension.
        out[rows] = list(map(dict, map(zip, repeat(fields), zip(*values, strict=True))))
    documents: list[Document] = out.tolist()
    return documents
