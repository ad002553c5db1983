"""Canonical frames, the rule each column holds documents to, and normalisation.

Users' containers name things differently; a :class:`FieldMapping` says which
source field feeds each canonical column.  :data:`RULES` says, in one table,
what each column requires of the value a document gives it.  Normalisation
applies every rule to every document, column by column and vectorised (it runs
over millions of documents), and never raises on bad data: a document that
breaks a rule is quarantined with a reason naming the field and what it holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.sources.base import ColumnBatch

# Part of every cache key: a frame cached under other rules may hold rows these refuse.
SCHEMA_VERSION = 3

ROLES = ("user", "agent", "system", "tool")
STATUSES = ("ok", "error", "timeout", "other")

# Canonical column -> default source field name, per container (a public contract).
CANONICAL_FIELDS: dict[str, dict[str, str]] = {
    "messages": {
        "id": "id",
        "conversation_id": "conversationId",
        "agent_id": "agentId",
        "role": "role",
        "timestamp": "timestamp",
        "latency_ms": "latencyMs",
        "tokens_in": "tokensIn",
        "tokens_out": "tokensOut",
        "status": "status",
        "user_id": "userId",
        "model": "model",
        "tokens_cached_in": "tokensCachedIn",
        "content": "content",
    },
    "agents": {
        "id": "id",
        "name": "name",
        "kind": "kind",
        "status": "status",
        "team": "team",
        "created_at": "createdAt",
        "last_seen": "lastSeen",
    },
}

MESSAGE_DTYPES: dict[str, Any] = {
    "id": "str",
    "conversation_id": "str",
    "agent_id": "str",
    "role": "str",
    "timestamp": "datetime64[ns, UTC]",
    "latency_ms": "float64",
    "tokens_in": "Int64",
    "tokens_out": "Int64",
    "status": "str",
    "user_id": "str",
    "model": "str",
    "tokens_cached_in": "Int64",
    "cost_usd": "float64",
}
AGENT_DTYPES: dict[str, Any] = {
    "id": "str",
    "name": "str",
    "kind": "str",
    "status": "str",
    "team": "str",
    "created_at": "datetime64[ns, UTC]",
    "last_seen": "datetime64[ns, UTC]",
}
DTYPES: dict[str, dict[str, Any]] = {"messages": MESSAGE_DTYPES, "agents": AGENT_DTYPES}
OPTIONAL_DTYPES: dict[str, Any] = {"content": "str"}
MESSAGE_COLUMNS = tuple(MESSAGE_DTYPES)
AGENT_COLUMNS = tuple(AGENT_DTYPES)
TIME_FIELD = {"messages": "timestamp", "agents": "last_seen"}

_ROLE_SYNONYMS = {
    "assistant": "agent",
    "developer": "system",
    "ai": "agent",
    "bot": "agent",
    "human": "user",
    "function": "tool",
}
_STATUS_SYNONYMS = {
    "success": "ok",
    "succeeded": "ok",
    "completed": "ok",
    "fail": "error",
    "failed": "error",
    "failure": "error",
    "exception": "error",
    "timed_out": "timeout",
    "timedout": "timeout",
    "time_out": "timeout",
}
# Epoch numbers below this are seconds, above it milliseconds: 1e11 s is the
# year 5138, 1e11 ms is March 1973, so no real timestamp is ambiguous.  In the same
# way numbers from 1e14 are microseconds and from 1e17 nanoseconds (as Python's
# time.time_ns() writes them).
EPOCH_MS_THRESHOLD = 1e11
EPOCH_US_THRESHOLD = 1e14
EPOCH_NS_THRESHOLD = 1e17
# The times a document can hold: none before 2000 (an unset clock, a zero), and none past
# the end of datetime64[ns] (in 2262; the bound keeps a margin for rounding).
EARLIEST_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
LATEST_EPOCH_MS = 9.2e12
# Later than this after the time of reading is a wrong clock, not a message.
MAX_AHEAD = pd.Timedelta(days=1)

_MIN_TIME = pd.Timestamp.min.tz_localize("UTC")
_MAX_TIME = pd.Timestamp.max.tz_localize("UTC")
_NAT = np.iinfo(np.int64).min
_EARLIEST_NS = EARLIEST_EPOCH_MS * 1_000_000
_INT64_MAX = 2**63 - 1
_EXACT_FLOAT = 2**53  # integers above this may have lost digits as a float
_STR = pd.StringDtype(na_value=np.nan)  # the "str" dtype, Arrow-backed
# What pa.array raises on values it cannot hold as one typed array.
_ARROW_REFUSALS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, UnicodeEncodeError)

Read = tuple[pd.Series, np.ndarray]
"""A column read from raw values: the canonical series, and a mask of values that break its
rule (present but not acceptable; absent values are null in the series and not in the mask)."""


# --- what a value holds, for reasons ---------------------------------------------------------


def _is_unicode(text: str) -> bool:
    """False for text holding a lone surrogate (JSON can escape one; UTF-8 cannot hold it)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _type_of(value: Any) -> str:
    if isinstance(value, str):
        if not _is_unicode(value):
            return "text that is not Unicode (a lone surrogate)"
        return "empty text" if value == "" else "text"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a Python {type(value).__name__}"


def _describe_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _type_of(value)
    if value != value:
        return "NaN"
    if value < 0:
        return "a negative number"
    if value == math.inf:
        return "infinity"
    return "a number too large"


def _describe_count(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
        return "a fraction"
    return _describe_number(value)


def _describe_role(value: Any) -> str:
    return "an unknown role" if isinstance(value, str) and _is_unicode(value) else _type_of(value)


def _describe_time(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return _type_of(value)
    [ns], _ = _parse_ns([value])
    if ns != _NAT:
        return "a time before 2000-01-01" if ns < _EARLIEST_NS else "a time more than a day ahead"
    if isinstance(value, str):
        return "text that is no time" if value and _is_unicode(value) else _type_of(value)
    return "a number out of range"


# --- text --------------------------------------------------------------------------------------


def _text_array(values: Sequence[Any]) -> pa.Array | None:
    """``values`` as an Arrow string array when all are Unicode text or None, else None.

    Clean data then runs at C speed; anything else takes the value-by-value path
    that can say what is wrong.
    """
    try:
        return pa.array(values, type=pa.string())
    except _ARROW_REFUSALS:
        return None


def _text(values: Sequence[Any], integers: bool) -> tuple[pa.Array, np.ndarray]:
    """Text values as an Arrow string array (empty text is absent), and the mask of the rest.

    With ``integers`` a whole number of 64 bits reads as its decimal text (``42`` is ``"42"``).
    """
    array = _text_array(values)
    if array is not None:
        empty = pc.equal(array, "")
        return pc.if_else(empty, pa.scalar(None, pa.string()), array), np.zeros(len(array), bool)
    out: list[str | None] = [None] * len(values)
    bad = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        if type(value) is str:
            if value and _is_unicode(value):
                out[i] = value
            elif value:
                bad[i] = True
        elif integers and type(value) is int and -_INT64_MAX - 1 <= value <= _INT64_MAX:
            out[i] = str(value)
        elif value is not None:
            bad[i] = True
    return pa.array(out, type=pa.string()), bad


def _str_series(array: pa.Array) -> pd.Series:
    """An Arrow string array as a "str" series, without a round trip through objects."""
    return pd.Series(array.to_pandas(types_mapper={pa.string(): _STR}.get))


def _read_text(values: Sequence[Any]) -> Read:
    array, bad = _text(values, integers=True)
    return _str_series(array), bad


def _categories(
    values: Sequence[Any], allowed: Sequence[str], synonyms: Mapping[str, str], default: str | None
) -> Read:
    """Words mapped to ``allowed`` (through ``synonyms``, any case): each distinct word once.

    Without a ``default`` an unknown word breaks the rule; with one it reads as the default,
    and so does an absent value.  A value that is not text always breaks the rule.
    """
    array, bad = _text(values, integers=False)
    encoded = pc.dictionary_encode(array)
    words = encoded.dictionary.to_pylist()
    canonical = [synonyms.get(w, w) for w in (w.strip().lower() for w in words)]
    known = [w if w in allowed else None for w in canonical]
    slots = pc.fill_null(encoded.indices, len(words))  # the last slot: absent
    if default is None:
        mapped = pc.take(pa.array([*known, None], type=pa.string()), slots)
        unknown = np.array([w is None for w in known] + [False], dtype=bool)[slots.to_numpy()]
        return _str_series(mapped), bad | unknown
    filled = [default if w is None else w for w in known]
    return _str_series(pc.take(pa.array([*filled, default], type=pa.string()), slots)), bad


def _block_text(value: Any) -> Any:
    """A list of content blocks (``[{"type": "text", "text": ...}, ...]``, or strings) as the
    text of its text parts; anything else as it is."""
    if not isinstance(value, list):
        return value
    parts = [
        block if isinstance(block, str) else block.get("text")
        for block in value
        if isinstance(block, str) or (isinstance(block, dict) and block.get("type") == "text")
    ]
    texts = [part for part in parts if isinstance(part, str)]
    if len(texts) != len(parts):
        return value
    return "\n".join(texts) or None


def _read_content(values: Sequence[Any]) -> Read:
    if _text_array(values) is not None:
        return _read_text(values)
    return _read_text([_block_text(value) for value in values])


def _read_role(values: Sequence[Any]) -> Read:
    return _categories(values, ROLES, _ROLE_SYNONYMS, None)


def _read_status(values: Sequence[Any]) -> Read:
    return _categories(values, STATUSES, _STATUS_SYNONYMS, "other")


# --- numbers -------------------------------------------------------------------------------


def _number_array(values: Sequence[Any]) -> pa.Array | None:
    """``values`` as an Arrow int64 or float64 array when all are numbers or None, else None."""
    try:
        array = pa.array(values)
    except _ARROW_REFUSALS:
        return None
    if pa.types.is_null(array.type):
        return array.cast(pa.float64())
    if pa.types.is_int64(array.type) or pa.types.is_float64(array.type):
        return array
    return None


def _floats_one_by_one(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Numbers as floats (inf when too large for one, NaN when not a number), and the absent."""
    nums = np.full(len(values), np.nan)
    absent = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        if value is None:
            absent[i] = True
        elif isinstance(value, float):
            nums[i] = value
        elif isinstance(value, int) and not isinstance(value, bool):
            try:
                nums[i] = float(value)
            except OverflowError:
                nums[i] = math.inf
    return nums, absent


def _read_number(values: Sequence[Any]) -> Read:
    array = _number_array(values)
    if array is not None:
        absent = array.is_null().to_numpy(zero_copy_only=False)
        # Not a safe cast: an integer past 2**53 may round, as a float64 column must.
        nums = pc.cast(array, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    else:
        nums, absent = _floats_one_by_one(values)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(nums) & (nums >= 0)
    return pd.Series(np.where(ok, nums, np.nan)), ~ok & ~absent


def _read_count(values: Sequence[Any]) -> Read:
    array = _number_array(values)
    if array is not None and pa.types.is_int64(array.type):
        absent = array.is_null().to_numpy(zero_copy_only=False)
        ints = pc.fill_null(array, 0).to_numpy().copy()
        bad = ints < 0
        return pd.Series(pd.arrays.IntegerArray(ints, absent | bad)), bad
    exact: dict[int, int] = {}
    if array is not None and (pc.max(array).as_py() or 0) < _EXACT_FLOAT:
        absent = array.is_null().to_numpy(zero_copy_only=False)
        nums = pc.fill_null(array, 0.0).to_numpy()
    else:  # not all numbers, or integers past 2**53 beside floats: one by one, exactly
        nums, absent = _floats_one_by_one(values)
        exact = {i: v for i, v in enumerate(values) if type(v) is int and 0 <= v <= _INT64_MAX}
    with np.errstate(invalid="ignore"):
        ok = (nums >= 0) & (nums < 2.0**63) & (nums == np.floor(nums))
    ints = np.where(ok, nums, 0).astype(np.int64)
    if exact:  # through a float, an int64 would lose its last digits
        ints[list(exact)] = list(exact.values())
        ok[list(exact)] = True
    bad = ~ok & ~absent
    return pd.Series(pd.arrays.IntegerArray(ints, absent | bad)), bad


# --- times ---------------------------------------------------------------------------------

# Text that reads as a number: such timestamps are epoch values.
_NUMERIC_TEXT = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def _epoch_numbers_ns(numbers: np.ndarray) -> np.ndarray:
    """Epoch seconds, milliseconds, microseconds or nanoseconds to int64 nanoseconds
    (``_NAT`` when out of range: past 2262 in its unit)."""
    with np.errstate(invalid="ignore", over="ignore"):
        size = np.abs(numbers)
        ms = np.where(size < EPOCH_MS_THRESHOLD, numbers * 1000.0, numbers)
        # Round to microseconds in float64 (exact below 2**53), then scale in integers:
        # ms * 1e6 in floats would move an epoch-ms value by up to 128 ns.
        micros = np.round(
            np.select(
                [size < EPOCH_US_THRESHOLD, size < EPOCH_NS_THRESHOLD],
                [ms * 1000.0, numbers],
                numbers / 1000.0,
            )
        )
        # Each unit up to the end of datetime64[ns]; False for NaN and infinities.
        unit = np.select(
            [size < EPOCH_MS_THRESHOLD, size < EPOCH_US_THRESHOLD, size < EPOCH_NS_THRESHOLD],
            [1.0, 1.0, 1000.0],
            1e6,
        )
        good = (np.abs(micros) < LATEST_EPOCH_MS * 1000) & (size < LATEST_EPOCH_MS * unit)
    out = np.full(len(numbers), _NAT, dtype=np.int64)
    out[good] = micros[good].astype(np.int64) * 1000
    return out


def _exact_nanoseconds(ints: np.ndarray, out: np.ndarray) -> None:
    """Put into ``out`` the integer epoch microseconds and nanoseconds of ``ints`` exactly:
    through a float they would lose their last digits (the order of one batch's writes)."""
    size = np.abs(ints)
    micros = (size >= EPOCH_US_THRESHOLD) & (size < LATEST_EPOCH_MS * 1000)
    nanos = (size >= EPOCH_NS_THRESHOLD) & (size < LATEST_EPOCH_MS * 1e6)
    out[micros] = ints[micros] * 1000
    out[nanos] = ints[nanos]


def _iso_ns(strings: pd.Series) -> np.ndarray:
    parsed = pd.to_datetime(strings, utc=True, errors="coerce", format="ISO8601")
    # Parsed at a coarser unit, a date outside the nanosecond range would wrap around.
    parsed = parsed.where((parsed >= _MIN_TIME) & (parsed <= _MAX_TIME))
    return np.asarray(parsed.to_numpy(dtype="datetime64[ns]").view(np.int64))


def _parse_text_ns(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    with contextlib.suppress(pa.ArrowInvalid):
        # ISO 8601 with a zone (Z or an offset) throughout, the commonest form: Arrow
        # reads it directly.  It refuses anything else (numbers, dates without a zone,
        # dates out of range), which then takes the general path below.
        parsed = pc.cast(array, pa.timestamp("ns", "UTC")).cast(pa.int64())
        return pc.fill_null(parsed, _NAT).to_numpy(), parsed.is_null().to_numpy(False)
    out = np.full(len(array), _NAT, dtype=np.int64)
    present = array.is_valid().to_numpy(zero_copy_only=False)
    numeric = pc.fill_null(pc.match_substring_regex(array, _NUMERIC_TEXT), False)
    numeric_mask = numeric.to_numpy(zero_copy_only=False)
    text = present & ~numeric_mask
    strings = pd.Series(array.to_pandas(), dtype=object)
    if text.any():
        out[text] = _iso_ns(strings[text])
    if numeric_mask.any():
        numbers = pd.to_numeric(strings[numeric_mask], errors="coerce").to_numpy(float)
        out[numeric_mask] = _epoch_numbers_ns(numbers)
    return out, ~present


def _parse_ns(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Epoch nanoseconds of each value (``_NAT`` where none), and the mask of values present
    that could not be read."""
    text_array = _text_array(values)
    if text_array is not None:  # all text: the usual case, at C speed
        out, absent = _parse_text_ns(text_array)
        return out, ~absent & (out == _NAT)
    number_array = _number_array(values)
    if number_array is not None:  # all numbers
        absent = number_array.is_null().to_numpy(zero_copy_only=False)
        nums = pc.cast(number_array, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    else:  # mixed forms, or values of the wrong type: one by one
        nums, absent = _floats_one_by_one(values)
    out = _epoch_numbers_ns(nums)
    if number_array is not None and pa.types.is_int64(number_array.type):
        _exact_nanoseconds(pc.fill_null(number_array, 0).to_numpy(), out)
    if number_array is None:
        texts = [i for i, v in enumerate(values) if type(v) is str and _is_unicode(v)]
        if texts:
            out[texts], _ = _parse_text_ns(pa.array([values[i] for i in texts], pa.string()))
    return out, ~absent & (out == _NAT)


def _utc_series(ns: np.ndarray) -> pd.Series:
    array = pa.array(ns, type=pa.timestamp("ns", "UTC"), mask=ns == _NAT)
    return pd.Series(array.to_pandas(), dtype="datetime64[ns, UTC]")


def parse_timestamps(values: Sequence[Any]) -> tuple[pd.Series, np.ndarray]:
    """Parse ISO 8601 strings and epoch seconds, milliseconds, microseconds or nanoseconds
    to UTC.

    Numbers, and text that reads as a number, are epoch values.  Returns the
    parsed series (NaT where absent or unreadable) and a mask of values that
    were present but could not be read.
    """
    ns, bad = _parse_ns(values)
    return _utc_series(ns), bad


def epoch_ns(values: Sequence[Any]) -> list[int | None]:
    """Each value as the epoch nanoseconds normalisation can read from it, else None.

    None for a value absent or unreadable, or before 2000-01-01: the documents whose
    time no window holds and normalisation always quarantines.  A time ahead of the
    clock is kept: whether it is too far ahead depends on when it is read.
    """
    ns, _ = _parse_ns(values)
    return [None if t < _EARLIEST_NS else t for t in ns.tolist()]


def _read_time(values: Sequence[Any]) -> Read:
    ns, bad = _parse_ns(values)
    latest = pd.Timestamp.now(tz="UTC") + MAX_AHEAD
    implausible = (ns != _NAT) & ((ns < _EARLIEST_NS) | (ns > latest.value))
    return _utc_series(np.where(implausible, _NAT, ns)), bad | implausible


# --- the rules -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """How values of one kind are read, and how a value that breaks the rule is told."""

    #: What a reason calls the problem ("wrong type", "bad timestamp"...).
    problem: str
    #: What a value must be, as a reason says it.
    requirement: str
    read: Callable[[Sequence[Any]], Read]
    describe: Callable[[Any], str] = _type_of


TEXT = Kind("wrong type", "text", _read_text)
CONTENT = Kind("wrong type", "text, or a list of content blocks", _read_content)
ROLE = Kind("bad role", f"one of {', '.join(ROLES)}", _read_role, _describe_role)
STATUS = Kind("bad status", "text", _read_status)
TIME = Kind(
    "bad timestamp",
    "ISO 8601 or epoch seconds/milliseconds/microseconds/nanoseconds, from 2000-01-01 to a day "
    "ahead",
    _read_time,
    _describe_time,
)
NUMBER = Kind("wrong type", "a non-negative number", _read_number, _describe_number)
COUNT = Kind("wrong type", "a non-negative integer", _read_count, _describe_count)


@dataclass(frozen=True)
class Rule:
    """What one canonical column requires; a column not ``required`` may be absent (null)."""

    kind: Kind
    required: bool = False


# What each canonical column requires of its value, document by document, on every path.
# Text: a whole number of 64 bits reads as its decimal text; empty text is absent.  Content
# may also be a list of content blocks (LangChain, Agent Framework): their text parts.
# Role and status: words of any case, synonyms included; a status that is absent or an
# unknown word reads as "other".  Numbers: finite and non-negative, counts integers that
# fit int64; text holding a number is not a number.  Times: from 2000 to a day ahead.
RULES: dict[str, dict[str, Rule]] = {
    "messages": {
        "id": Rule(TEXT, required=True),
        "conversation_id": Rule(TEXT, required=True),
        "agent_id": Rule(TEXT, required=True),
        "role": Rule(ROLE, required=True),
        "timestamp": Rule(TIME, required=True),
        "latency_ms": Rule(NUMBER),
        "tokens_in": Rule(COUNT),
        "tokens_out": Rule(COUNT),
        "status": Rule(STATUS),
        "user_id": Rule(TEXT),
        "model": Rule(TEXT),
        "tokens_cached_in": Rule(COUNT),
        "content": Rule(CONTENT),
    },
    "agents": {
        "id": Rule(TEXT, required=True),
        "name": Rule(TEXT),
        "kind": Rule(TEXT),
        "status": Rule(TEXT),
        "team": Rule(TEXT),
        "created_at": Rule(TIME),
        "last_seen": Rule(TIME),
    },
}
# Columns no document gives: normalisation leaves them NaN, and they are computed after it.
# cost_usd: the price of a message's tokens at its model's prices (see pipelines.prices).
DERIVED: dict[str, tuple[str, ...]] = {"messages": ("cost_usd",), "agents": ()}
# A configured dimension (``[dimensions] tenant = "tenantId"``) is a text column.
DIMENSION = Rule(TEXT)
# Columns without which a row means nothing; the rest may be absent (null).
REQUIRED = {
    container: tuple(column for column, rule in rules.items() if rule.required)
    for container, rules in RULES.items()
}


@dataclass(frozen=True)
class FieldMapping:
    """Which source field feeds each canonical column of one container, and the source
    field of each configured dimension (an extra text column named by it)."""

    container: str
    fields: tuple[tuple[str, str], ...]
    dimensions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_container(
        cls,
        container: str,
        overrides: Mapping[str, Mapping[str, str]] | None = None,
        dimensions: Mapping[str, str] | None = None,
    ) -> FieldMapping:
        if container not in CANONICAL_FIELDS:
            raise ValueError(f"unknown container {container!r}")
        fields = dict(CANONICAL_FIELDS[container])
        fields.update((overrides or {}).get(container, {}))
        extra = tuple((dimensions or {}).items()) if container == "messages" else ()
        return cls(container, tuple(fields.items()), extra)

    def source_field(self, column: str) -> str:
        return {**dict(self.fields), **dict(self.dimensions)}[column]

    @property
    def columns(self) -> tuple[str, ...]:
        """The frame's columns: the canonical ones, then the dimensions."""
        return (*DTYPES[self.container], *(name for name, _ in self.dimensions))

    def projection(self, columns: Iterable[str]) -> tuple[str, ...]:
        """The source fields of ``columns``; derived columns have none."""
        mapping = {**dict(self.fields), **dict(self.dimensions)}
        return tuple(dict.fromkeys(mapping[c] for c in columns if c in mapping))


# --- quarantine ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QuarantinedDocument:
    container: str
    #: The id as a frame holds it; None when the document has no id that reads as text.
    id: str | None
    reason: str
    document: Any
    #: The same for every read of the document, in every process: what is counted once.
    identity: str


def unreadable(container: str, doc: Any, reason: str) -> QuarantinedDocument:
    """The quarantine record of a whole document that holds nothing to read, and why."""
    raw_id = doc.get("id") if isinstance(doc, dict) else None
    return QuarantinedDocument(
        container,
        raw_id if isinstance(raw_id, str) and raw_id else None,
        reason,
        doc,
        _identity(raw_id, [doc]),
    )


def _identity(raw_id: Any, values: list[Any]) -> str:
    """A document's id as its source holds it, or (without one) all its canonical values.

    ``repr`` of values decoded from JSON is the same text in every process.
    """
    text = f"id {raw_id!r}" if raw_id is not None and raw_id != "" else f"values {values!r}"
    return hashlib.sha256(text.encode()).hexdigest()


# --- normalisation -------------------------------------------------------------------------


@dataclass
class Normalised:
    frame: pd.DataFrame
    quarantined: list[QuarantinedDocument] = field(default_factory=list)


def empty_frame(container: str, extra: Sequence[str] = ()) -> pd.DataFrame:
    """No rows, the canonical columns, and ``extra`` ones (``content``, dimensions: text)."""
    dtypes = {**DTYPES[container], **{c: OPTIONAL_DTYPES.get(c, "str") for c in extra}}
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in dtypes.items()})


def coerce(frame: pd.DataFrame, container: str) -> pd.DataFrame:
    """Give a frame read back from a cache exactly the canonical dtypes."""
    dtypes = {**DTYPES[container], **OPTIONAL_DTYPES}
    wrong = {c: t for c, t in dtypes.items() if c in frame and str(frame[c].dtype) != str(t)}
    return frame.astype(wrong) if wrong else frame


def lookup(doc: dict[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a whole document, or None."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _lookup(path: str) -> Any:
    def get(doc: dict[str, Any]) -> Any:
        if path in doc:  # a source that projected the path already
            return doc[path]
        return lookup(doc, path)

    return get


def _values(objs: Sequence[Any], source: str) -> Sequence[Any]:
    if isinstance(objs, ColumnBatch):
        return objs.column(source)
    if "." in source:
        getter = _lookup(source)
        return [getter(d) for d in objs]
    return list(map(dict.get, objs, repeat(source)))  # the common case, at C speed


def normalise(
    docs: Sequence[Any],
    mapping: FieldMapping,
    extra: Sequence[str] = (),
    *,
    deduplicate: bool = True,
) -> Normalised:
    """Map raw documents to the canonical frame of ``mapping.container``.

    ``docs`` is a list of documents, or a :class:`ColumnBatch` keyed by field path.
    Each document lands either in the frame or, when it breaks a rule of
    :data:`RULES`, in the quarantined list (the first broken rule, in column
    order, is its reason).

    ``extra`` names optional columns to keep as well (``content``).  With
    ``deduplicate`` an id read twice keeps its last version, in the frame or in
    quarantine; a caller that joins several batches and de-duplicates the whole
    turns it off.
    """
    container = mapping.container
    dimensions = [name for name, _ in mapping.dimensions]
    if not docs:
        return Normalised(empty_frame(container, [*dimensions, *extra]))
    fields = {**dict(mapping.fields), **dict(mapping.dimensions)}
    rules = RULES[container]
    quarantined: list[QuarantinedDocument] = []
    objs: Sequence[Any]
    # Values already by field, or documents that are all objects (the common case, checked
    # at C speed): nothing to take apart.
    if isinstance(docs, ColumnBatch) or set(map(type, docs)) == {dict}:
        objs = docs
    else:
        is_dict = np.fromiter((isinstance(d, dict) for d in docs), dtype=bool, count=len(docs))
        quarantined = [
            QuarantinedDocument(
                container,
                None,
                "not an object: a document must be a JSON object",
                d,
                _identity(None, [d]),
            )
            for d, ok in zip(docs, is_dict, strict=True)
            if not ok
        ]
        objs = [d for d, ok in zip(docs, is_dict, strict=True) if ok]
    columns: dict[str, pd.Series] = {}
    raw: dict[str, Sequence[Any]] = {}
    # In column order: (mask of the documents breaking a rule, reason of document i).
    problems: list[tuple[np.ndarray, Callable[[int], str]]] = []
    readable = [c for c in (*mapping.columns, *extra) if c not in DERIVED[container]]
    for column in readable:
        rule, source = rules.get(column, DIMENSION), fields[column]
        values = raw[column] = _values(objs, source)
        series, bad = rule.kind.read(values)
        columns[column] = series
        problems.append((bad, _reason(rule.kind, source, values)))
        if rule.required:
            missing = series.isna().to_numpy() & ~bad
            problems.append((missing, _missing(source)))
    nothing = pd.Series(np.full(len(objs), np.nan))  # derived columns, filled later
    frame = pd.DataFrame({c: columns.get(c, nothing) for c in (*mapping.columns, *extra)})
    rejected = np.zeros(len(objs), dtype=bool)
    why: dict[int, str] = {}
    for mask, reason in problems:
        for i in np.flatnonzero(mask & ~rejected).tolist():
            why[i] = reason(i)
        rejected |= mask
    superseded = np.zeros(len(objs), dtype=bool)
    if deduplicate:  # the same id twice in one read: the later version wins, as in an upsert
        ids = frame["id"]
        superseded = (ids.duplicated(keep="last") & ids.notna()).to_numpy()
    if rejected.any():
        kept = np.flatnonzero(rejected & ~superseded)
        ids_read = frame["id"].take(kept).tolist()
        quarantined.extend(
            QuarantinedDocument(
                container,
                read if isinstance(read, str) else None,
                why[i],
                objs[i],
                _identity(raw["id"][i], [raw[c][i] for c in readable if c not in extra]),
            )
            for i, read in zip(kept.tolist(), ids_read, strict=True)
        )
    if rejected.any() or superseded.any():
        frame = frame.loc[~rejected & ~superseded]
    frame = frame.reset_index(drop=True)
    return Normalised(coerce(frame, container), quarantined)


def _missing(source: str) -> Callable[[int], str]:
    return lambda _: f"missing field: {source!r}"


def _reason(kind: Kind, source: str, values: Sequence[Any]) -> Callable[[int], str]:
    def reason(i: int) -> str:
        holds = kind.describe(values[i])
        return f"{kind.problem}: {source!r} holds {holds}, must be {kind.requirement}"

    return reason
